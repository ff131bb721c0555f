"""Building the running parts from settings: database, channels, conversations, sender."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from bots.catalogue import CatalogueCache
from bots.config import Settings
from bots.conversation import Conversations
from bots.sender import Sender, SendingChannel, utc_now
from bots.web import Services
from channels.twilio_sms import TwilioSms
from flows.segments import segments
from store.db import Database, connect


@dataclass(slots=True)
class Loopline:
    settings: Settings
    db: Database
    conversations: Conversations
    sender: Sender
    sms: TwilioSms | None
    clock: Callable[[], datetime]

    def services(self) -> Services:
        return Services(
            db=self.db,
            conversations=self.conversations,
            public_url=self.settings.public_url,
            sms=self.sms,
            clock=self.clock,
        )

    async def close(self) -> None:
        if self.sms is not None:
            await self.sms.close()
        await self.db.dispose()


def build(
    settings: Settings,
    *,
    extra_channels: Mapping[str, SendingChannel] | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Loopline:
    """Wire everything (call inside the event loop). ``extra_channels`` adds e.g. the simulator;
    ``clock`` lets tests and the simulator choose the time."""
    db = connect(settings.database_url, synchronous=settings.sqlite_synchronous)
    sms = _sms(settings)
    channels: dict[str, SendingChannel] = dict(extra_channels or {})
    rates: dict[str, float] = {}
    if sms is not None and settings.twilio is not None:
        channels[sms.name] = sms
        rates[sms.name] = settings.twilio.segments_per_second
    sender = Sender(
        db,
        channels,
        rates=rates,
        max_attempts=settings.send_max_attempts,
        retry_base_seconds=settings.retry_base_seconds,
        clock=clock,
        costs={"sms": segments},
    )
    conversations = Conversations(
        db=db,
        catalogue=CatalogueCache(),
        policy=settings.policy,
        timezone=settings.timezone,
        on_queued=sender.wake,
    )
    return Loopline(settings, db, conversations, sender, sms, clock)


def _sms(settings: Settings) -> TwilioSms | None:
    twilio = settings.twilio
    if twilio is None:
        return None
    return TwilioSms(
        account_sid=twilio.account_sid,
        auth_token=twilio.auth_token,
        status_callback_url=f"{settings.public_url}/webhooks/twilio/status",
        from_number=twilio.from_number,
        messaging_service_sid=twilio.messaging_service_sid,
        api_base_url=twilio.api_base_url,
        timeout=twilio.timeout,
    )
