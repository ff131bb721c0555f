"""``loopline chat``: a simulated phone in the terminal, through the same engine, store and outbox.

With ``telegram=True`` it plays a Telegram user: buttons are shown as numbered choices, and typing a
choice's number presses that button; ``/start``, ``/stop``, ``/help`` and ``/language`` work.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from datetime import UTC, datetime
from typing import TextIO

from bots.app import build
from bots.config import Settings
from channels.base import Button, ButtonPress, InboundKind, InboundMessage, OutboundMessage
from channels.simulator import Simulator
from channels.telegram import decode_button


async def chat(
    settings: Settings, address: str, *, stdin: TextIO, stdout: TextIO, telegram: bool = False
) -> None:
    buttons: list[Button] = []
    shown: list[int] = []  # the number of the message whose buttons are on screen

    def show(message: OutboundMessage) -> None:
        stdout.write(f"\n{message.text}\n")
        if telegram and message.buttons:
            buttons[:] = message.buttons
            shown[:] = [len(simulator.outbox_seen)]
            for n, button in enumerate(message.buttons, 1):
                stdout.write(f"  [{n}] {button.label}\n")
        stdout.flush()

    simulator = Simulator(on_message=show)
    name = "telegram-sim" if telegram else simulator.name
    loopline = build(
        settings,
        extra_channels={name: simulator},
        button_channels={name: decode_button} if telegram else None,
    )
    interactive = stdin.isatty()
    hint = (
        "Type /start, or a number to press a button." if telegram else "Text a survey keyword (e.g. PARKS)."
    )
    stdout.write(
        f"Simulated {'Telegram user' if telegram else 'phone'} {address}. {hint} STOP or HELP work "
        "too. Ctrl-D to quit.\n"
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
            message = _typed(name, address, text, buttons if telegram else [], shown[0] if shown else None)
            handled = await loopline.conversations.handle(message, now=datetime.now(UTC))
            ack = handled.acknowledgement
            if ack is not None:
                stdout.write(f"  ✓ {ack.chosen}\n" if ack.chosen else f"  ({ack.notice})\n")
            await loopline.sender.drain_until_empty()
    finally:
        await loopline.close()
    stdout.write("\n")


def _typed(channel: str, address: str, text: str, buttons: list[Button], shown: int | None) -> InboundMessage:
    provider_id = f"sim-{uuid.uuid4()}"
    stripped = text.strip()
    if stripped.isdigit() and 1 <= int(stripped) <= len(buttons):
        data = buttons[int(stripped) - 1].value
        decoded = decode_button(data)
        press = ButtonPress(query_id=provider_id, message_id=shown, data=data)
        return InboundMessage(
            channel, address, decoded[1] if decoded else "", provider_id, kind=InboundKind.BUTTON, press=press
        )
    if stripped.startswith("/"):
        command, _, argument = stripped[1:].partition(" ")
        return InboundMessage(channel, address, argument.strip(), provider_id, command=command.lower())
    return InboundMessage(channel, address, text, provider_id)


def run_chat(settings: Settings, address: str, *, telegram: bool = False) -> None:
    asyncio.run(chat(settings, address, stdin=sys.stdin, stdout=sys.stdout, telegram=telegram))
