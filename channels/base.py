"""Provider-neutral value types shared by every channel adapter."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A webhook request as the provider sent it, independent of any web framework.

    ``url`` is the public URL the provider called (configured base URL + path + query), never the URL
    the local server saw behind a proxy: providers sign the public one.
    """

    url: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes

    def header(self, name: str) -> str | None:
        """A header by its lower-case name, tolerant of a caller that did not lower-case the names."""
        value = self.headers.get(name)
        if value is not None:
            return value
        return next((v for k, v in self.headers.items() if k.lower() == name), None)


class InboundKind(StrEnum):
    TEXT = "text"  # something typed (``command`` set for a bot command such as /start)
    BUTTON = "button"  # a button press; ``text`` is the button's value, ``press`` says which
    CONTACT = "contact"  # the sender shared their own phone number (``contact_phone``)
    BLOCKED = "blocked"  # the sender blocked the bot or deleted their account
    UNBLOCKED = "unblocked"
    UNSUPPORTED = "unsupported"  # a photo, sticker, voice note, edit...: answer politely or ignore


@dataclass(frozen=True, slots=True)
class ButtonPress:
    """Which button was pressed, so the adapter can acknowledge it and update the question."""

    query_id: str
    message_id: int | None
    data: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message from a resident or staff member, normalised."""

    channel: str  # "sms", "telegram", "sim", ...
    sender: str  # provider address: E.164 for SMS, chat id for Telegram
    text: str
    provider_id: str  # the provider's idempotency key (MessageSid, update_id, ...)
    kind: InboundKind = InboundKind.TEXT
    command: str | None = None  # "start", "stop", "help", "language" (without the slash), if any
    language: str | None = None  # the sender's app language (Telegram language_code), if known
    contact_phone: str | None = None  # CONTACT: the sender's own number, E.164
    press: ButtonPress | None = None  # BUTTON
    private: bool = True  # False for group chats, where Loopline stays quiet


@dataclass(frozen=True, slots=True)
class Button:
    """A tappable answer on channels that have buttons; SMS renders the text instead. A button with a
    ``url`` opens that link instead of answering."""

    label: str
    value: str
    url: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One message to send; ``id`` is Loopline's outbox id, used to correlate delivery callbacks."""

    id: int
    to: str
    text: str
    buttons: tuple[Button, ...] = field(default=())
    ask_for_contact: bool = False  # offer a "Share my phone number" button where the channel has one


class DeliveryStatus(StrEnum):
    """Delivery states in the order they can happen; a later state never goes back to an earlier one."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENDING: 1,
    DeliveryStatus.SENT: 2,
    DeliveryStatus.DELIVERED: 3,
    DeliveryStatus.UNDELIVERED: 3,
    DeliveryStatus.FAILED: 3,
}


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """A delivery report for a message we sent."""

    outbox_id: int | None  # our id, from the callback URL
    provider_id: str | None
    status: DeliveryStatus | None  # None: a status we do not track (e.g. "read"); ignore
    error_code: str | None = None
