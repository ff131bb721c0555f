"""Survey results for the comms team: a readable summary, or a CSV with one row per participant."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from flows.definition import Question, Survey, text_in
from store import responses


async def write_summary(session: AsyncSession, survey: Survey, out: TextIO) -> None:
    summary = await responses.summarise(session, survey=survey.slug)
    language = survey.default_language
    out.write(f"{text_in(survey.title, language, language)} ({survey.slug})\n")
    out.write(f"{summary.started} took part, {summary.completed} finished\n")
    by_question: dict[str, list[responses.Tally]] = defaultdict(list)
    for tally in summary.tallies:
        by_question[tally.question].append(tally)
    for question in survey.questions:
        out.write(f"\n{question.id}: {text_in(question.text, language, language)}\n")
        _write_question(question, by_question[question.id], language, out)


def _write_question(question: Question, tallies: list[responses.Tally], language: str, out: TextIO) -> None:
    answered = {t.value: t.count for t in tallies if t.status == "answered"}
    total = sum(answered.values())
    if question.type == "text":
        out.write(f"  {total} answers\n")
        for value in sorted(v for v in answered if v is not None):
            for _ in range(answered[value]):
                out.write(f"  - {value}\n")
    else:
        for value, label in _labels(question, language):
            count = answered.get(value, 0)
            share = f"{100 * count / total:5.1f}%" if total else "    -"
            out.write(f"  {label:<32} {count:>6}  {share}\n")
        if question.type == "scale" and total:
            mean = sum(int(v) * n for v, n in answered.items() if v is not None) / total
            out.write(f"  {'average':<32} {mean:>6.2f}\n")
    for status in ("skipped", "unanswered"):
        count = sum(t.count for t in tallies if t.status == status)
        if count:
            out.write(f"  ({status}){'':<{31 - len(status)}} {count:>6}\n")


def _labels(question: Question, language: str) -> list[tuple[str, str]]:
    if question.type == "choice":
        return [(o.id, text_in(o.text, language, next(iter(o.text)))) for o in question.options]
    if question.type == "scale":
        return [(str(n), str(n)) for n in range(question.min, question.max + 1)]
    return [("yes", "yes"), ("no", "no")]


async def write_csv(session: AsyncSession, survey: Survey, out: TextIO) -> int:
    """Stream one row per participant; returns the number of rows."""
    writer = csv.writer(out)
    question_ids = [q.id for q in survey.questions]
    writer.writerow(
        ["participant", "channel", "language", "started_at", "completed_at", "outcome", *question_ids]
    )
    rows = 0
    async for p in responses.participations(session, survey=survey.slug):
        completed = p.ended_at.isoformat() if p.ended_at and p.outcome == "completed" else ""
        writer.writerow(
            [
                p.participant,
                p.channel,
                p.language,
                p.started_at.isoformat(),
                completed,
                p.outcome or "in_progress",
                *(p.answers.get(q) or "" for q in question_ids),
            ]
        )
        rows += 1
    return rows
