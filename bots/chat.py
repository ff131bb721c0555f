"""``loopline chat``: a simulated phone in the terminal, through the same engine, store and outbox."""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import TextIO

from bots.app import build
from bots.config import Settings
from channels.base import InboundMessage, OutboundMessage
from channels.simulator import Simulator


async def chat(settings: Settings, address: str, *, stdin: TextIO, stdout: TextIO) -> None:
    def show(message: OutboundMessage) -> None:
        stdout.write(f"\n{message.text}\n")
        stdout.flush()

    simulator = Simulator(on_message=show)
    loopline = build(settings, extra_channels={simulator.name: simulator})
    interactive = stdin.isatty()
    stdout.write(
        f"Simulated phone {address}. Text a survey keyword (e.g. PARKS), STOP or HELP. Ctrl-D to quit.\n"
    )
    try:
        while True:
            if interactive:
                stdout.write("\nyou> ")
                stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            text = line.rstrip("\n")
            if not interactive:
                stdout.write(f"\nyou> {text}\n")
            message = InboundMessage(
                channel=simulator.name, sender=address, text=text, provider_id=f"sim-{uuid.uuid4()}"
            )
            await loopline.conversations.handle(message, now=datetime.now(UTC))
            await loopline.sender.drain_until_empty()
    finally:
        await loopline.close()
    stdout.write("\n")


def run_chat(settings: Settings, address: str) -> None:
    asyncio.run(chat(settings, address, stdin=sys.stdin, stdout=sys.stdout))
