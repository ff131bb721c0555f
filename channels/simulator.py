"""A local "phone" for ``loopline chat``: outbound messages are kept in memory and shown on screen."""

from __future__ import annotations

from collections.abc import Callable

from channels.base import OutboundMessage


class Simulator:
    """A channel that delivers to the terminal instead of a provider.

    ``send`` records every message in :attr:`outbox_seen`, calls ``on_message`` (e.g. print it) and
    returns a provider id ``"<to>:<n>"`` (the form of Telegram's chat:message ids), n counting from 1.
    It never fails on its own; an exception from ``on_message`` propagates to the caller.
    """

    name = "sim"

    def __init__(self, on_message: Callable[[OutboundMessage], None] | None = None) -> None:
        self.outbox_seen: list[OutboundMessage] = []
        self._on_message = on_message

    async def send(self, message: OutboundMessage) -> str:
        self.outbox_seen.append(message)
        if self._on_message is not None:
            self._on_message(message)
        return f"{message.to}:{len(self.outbox_seen)}"

    async def close(self) -> None:
        """Nothing to release; present so every channel can be closed the same way."""
