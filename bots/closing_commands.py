"""``loopline yswd …``, ``loopline loops`` and ``loopline calendar``: the comms team closing the loop."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta

from bots.closing import Closing
from bots.config import Settings
from flows.yswd import Card, CardFileError, MissingPlaceholder
from store import cards, migrate, surveys
from store.cards import CardError


def run_card_step(settings: Settings, work: Callable[[Closing], Awaitable[str]]) -> int:
    """Run one card step; a refused step (e.g. approving your own card) is a clear error, exit 1."""
    from bots.app import build

    migrate.upgrade(settings.database_url)

    async def run() -> int:
        loopline = build(settings)
        try:
            print(await work(loopline.closing))
        except (CardError, CardFileError, MissingPlaceholder) as error:
            print(f"loopline: {error}", file=sys.stderr)
            return 1
        finally:
            await loopline.close()
        return 0

    return asyncio.run(run())


def yswd_create(settings: Settings, args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")

    async def work(closing: Closing) -> str:
        card_id = await closing.create(text, str(args.file), author=args.actor)
        return f"Card {card_id} drafted. A colleague approves it: loopline yswd approve {card_id} --as NAME"

    return run_card_step(settings, work)


def yswd_edit(settings: Settings, args: argparse.Namespace) -> int:
    text = args.file.read_text(encoding="utf-8")

    async def work(closing: Closing) -> str:
        await closing.edit(args.card, text, str(args.file), actor=args.actor)
        return f"Card {args.card} changed; it needs approving again."

    return run_card_step(settings, work)


def yswd_approve(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        await closing.approve(args.card, approver=args.actor)
        return f"Card {args.card} approved by {args.actor}."

    return run_card_step(settings, work)


def yswd_schedule(settings: Settings, args: argparse.Namespace) -> int:
    try:
        at = datetime.fromisoformat(args.at)
    except ValueError:
        print(f"loopline: --at must look like '2027-01-15 10:00', not {args.at!r}", file=sys.stderr)
        return 2
    at = at.replace(tzinfo=settings.timezone) if at.tzinfo is None else at

    async def work(closing: Closing) -> str:
        send_id, starts = await closing.schedule(args.card, at=at, actor=args.actor)
        moved = (
            ""
            if starts == at
            else f" (moved out of quiet hours, holidays or purdah to {starts:%Y-%m-%d %H:%M})"
        )
        return f"Card {args.card} scheduled as sending {send_id} for {at:%Y-%m-%d %H:%M}{moved}."

    return run_card_step(settings, work)


def yswd_cancel(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        stopped = await closing.cancel(args.card, actor=args.actor)
        return f"Card {args.card}: sending cancelled, {stopped} unsent messages stopped."

    return run_card_step(settings, work)


def yswd_preview(settings: Settings, args: argparse.Namespace) -> int:
    return run_card_step(settings, lambda closing: closing.preview(args.card))


def yswd_status(settings: Settings, args: argparse.Namespace) -> int:
    return run_card_step(settings, lambda closing: closing.status(args.card))


def yswd_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        async with closing.db.sessions() as session:
            found = await cards.listing(session)
        lines = [f"{'card':<6} {'survey':<20} {'state':<10} {'author':<14} {'approver':<14} title"]
        for c in found:
            title = Card.model_validate(c.definition).text("title", "en")
            lines.append(
                f"{c.id:<6} {c.survey:<20} {c.state:<10} {c.author:<14} {c.approver or '-':<14} {title}"
            )
        return "\n".join(lines)

    return run_card_step(settings, work)


def calendar(settings: Settings, args: argparse.Namespace) -> int:
    """Consultation fatigue is real: show what residents will hear about, when, and who hears twice."""

    async def work(closing: Closing) -> str:
        today = datetime.now(settings.timezone).date()
        async with closing.db.sessions() as session:
            stored = [s for s in await surveys.all_surveys(session) if s.closes >= today]
            sends = await cards.scheduled(session)
            entries: list[tuple[date, str]] = [
                (
                    s.opens,
                    f"{s.opens} to {s.closes}  survey {s.slug} ({s.keyword})"
                    f"{' open now' if s.is_open_on(today) else ''}",
                )
                for s in stored
            ]
            for send, slug, definition in sends:
                title = Card.model_validate(definition).text("title", "en")
                local = send.due_at.astimezone(settings.timezone)
                entries.append(
                    (
                        local.date(),
                        f"{local:%Y-%m-%d %H:%M}  You Said, We Did {title!r} "
                        f"(card {send.card_id}, {slug}), {send.state}",
                    )
                )
            warnings = []
            window = timedelta(days=settings.budget_window_days)
            for n, (first, first_slug, _) in enumerate(sends):
                for second, second_slug, _ in sends[n + 1 :]:
                    if abs(second.due_at - first.due_at) <= window:
                        shared = await cards.shared_participants(
                            session, survey_a=first_slug, survey_b=second_slug
                        )
                        if shared:
                            warnings.append(
                                f"! cards {first.card_id} and {second.card_id} reach {shared} of the "
                                f"same residents within {window.days} days"
                            )
            for n, first_survey in enumerate(stored):
                for second_survey in stored[n + 1 :]:
                    if (
                        first_survey.opens <= second_survey.closes
                        and second_survey.opens <= first_survey.closes
                    ):
                        warnings.append(
                            f"! surveys {first_survey.slug} and {second_survey.slug} are open at the "
                            "same time"
                        )
        lines = [text for _, text in sorted(entries)] or ["Nothing open or planned."]
        return "\n".join(lines + warnings)

    return run_card_step(settings, work)


def loops(settings: Settings, args: argparse.Namespace) -> int:
    async def work(closing: Closing) -> str:
        async with closing.db.sessions() as session:
            found = await cards.loops(session)
        today = datetime.now(settings.timezone).date()
        lines = [f"{'survey':<22} {'closed':<11} {'took part':>9} {'told':>6} {'share':>6}  loop"]
        for loop in found:
            share = f"{100 * loop.told / loop.participants:.0f}%" if loop.participants else "-"
            days = (today - loop.closes).days
            if days < 0:
                state = "open"
            elif loop.told == 0 and days > args.days:
                state = f"OVERDUE: closed {days} days ago, nobody told yet"
            else:
                state = "closing" if loop.told < loop.participants else "closed"
            lines.append(
                f"{loop.survey:<22} {loop.closes!s:<11} {loop.participants:>9} {loop.told:>6} {share:>6}  "
                f"{state}"
            )
        return "\n".join(lines)

    return run_card_step(settings, work)
