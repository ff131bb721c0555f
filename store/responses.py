"""Survey responses and answers, and the results the comms team reads."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ScalarSelect, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import AnswerRow, Base, ResponseRow, SurveyRow

RESPONSES = Base.metadata.tables["responses"]
ANSWERS = Base.metadata.tables["answers"]


def _open_response(survey: str, resident_id: int) -> ScalarSelect[int]:
    return (
        select(ResponseRow.id)
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(
            SurveyRow.slug == survey, ResponseRow.resident_id == resident_id, ResponseRow.outcome.is_(None)
        )
        .order_by(ResponseRow.id.desc())
        .limit(1)
        .scalar_subquery()
    )


async def start(
    session: AsyncSession, *, survey: str, resident_id: int, channel: str, language: str, at: datetime
) -> None:
    survey_id = select(SurveyRow.id).where(SurveyRow.slug == survey).scalar_subquery()
    await session.execute(
        RESPONSES.insert().values(
            survey_id=survey_id,
            resident_id=resident_id,
            participant=secrets.token_hex(6),
            channel=channel,
            language=language,
            started_at=at,
        )
    )


async def end(session: AsyncSession, *, survey: str, resident_id: int, outcome: str, at: datetime) -> None:
    await session.execute(
        RESPONSES.update()
        .where(ResponseRow.id == _open_response(survey, resident_id))
        .values(outcome=outcome, ended_at=at)
    )


async def record_answer(
    session: AsyncSession,
    *,
    survey: str,
    resident_id: int,
    question: str,
    value: str | None,
    status: str,
    at: datetime,
) -> None:
    """Attach an answer to the resident's response in progress (one set-based statement)."""
    chosen = select(
        ResponseRow.id,
        literal(question, AnswerRow.question.type),
        literal(value, AnswerRow.value.type),
        literal(status, AnswerRow.status.type),
        literal(at, AnswerRow.answered_at.type),
    ).where(ResponseRow.id == _open_response(survey, resident_id))
    await session.execute(
        ANSWERS.insert().from_select(["response_id", "question", "value", "status", "answered_at"], chosen)
    )


@dataclass(frozen=True, slots=True)
class Tally:
    question: str
    value: str | None
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class Summary:
    started: int
    completed: int
    tallies: Sequence[Tally]


async def summarise(session: AsyncSession, *, survey: str) -> Summary:
    """Counts per question and answer (free-text answers included, one row each)."""
    responses = (
        select(ResponseRow.outcome, func.count())
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(SurveyRow.slug == survey)
        .group_by(ResponseRow.outcome)
    )
    by_outcome = {outcome: count for outcome, count in (await session.execute(responses)).all()}
    tallies = (
        select(AnswerRow.question, AnswerRow.value, AnswerRow.status, func.count())
        .join(ResponseRow, ResponseRow.id == AnswerRow.response_id)
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(SurveyRow.slug == survey)
        .group_by(AnswerRow.question, AnswerRow.value, AnswerRow.status)
    )
    rows = [Tally(q, v, s, n) for q, v, s, n in (await session.execute(tallies)).all()]
    return Summary(sum(by_outcome.values()), by_outcome.get("completed", 0), rows)


@dataclass(slots=True)
class Participation:
    participant: str
    channel: str
    language: str
    started_at: datetime
    ended_at: datetime | None
    outcome: str | None
    answers: dict[str, str | None] = field(default_factory=dict)


async def participations(session: AsyncSession, *, survey: str) -> AsyncIterator[Participation]:
    """Every response with its answers, streamed in order (for CSV export of any size)."""
    query = (
        select(ResponseRow, AnswerRow.question, AnswerRow.value)
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .outerjoin(AnswerRow, AnswerRow.response_id == ResponseRow.id)
        .where(SurveyRow.slug == survey)
        .order_by(ResponseRow.id, AnswerRow.id)
        .execution_options(yield_per=1000)
    )
    current: Participation | None = None
    current_id = None
    async for response, question, value in await session.stream(query):
        if response.id != current_id:
            if current is not None:
                yield current
            current_id = response.id
            current = Participation(
                response.participant,
                response.channel,
                response.language,
                response.started_at,
                response.ended_at,
                response.outcome,
            )
        if question is not None and current is not None:
            current.answers[question] = value
    if current is not None:
        yield current


async def answers_since(
    session: AsyncSession, *, since: datetime, questions: Collection[tuple[str, str]], limit: int = 5000
) -> list[tuple[str, str]]:
    """(survey slug, answer) for the given (survey, question) pairs answered since ``since``, newest first
    (used to find free-text answers on the same themes as staff reports)."""
    if not questions:
        return []
    pairs = [and_(SurveyRow.slug == s, AnswerRow.question == q) for s, q in questions]
    query = (
        select(SurveyRow.slug, AnswerRow.value)
        .join(ResponseRow, ResponseRow.id == AnswerRow.response_id)
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(AnswerRow.status == "answered", AnswerRow.answered_at >= since, or_(*pairs))
        .order_by(AnswerRow.id.desc())
        .limit(limit)
    )
    return [(slug, value) for slug, value in (await session.execute(query)).all() if value]


async def text_answers(
    session: AsyncSession, *, survey: str, questions: Collection[tuple[str, str]]
) -> list[tuple[int, str]]:
    """(response id, answer) for a survey's free-text questions, for theme filters."""
    if not questions:
        return []
    pairs = [and_(SurveyRow.slug == s, AnswerRow.question == q) for s, q in questions]
    query = (
        select(AnswerRow.response_id, AnswerRow.value)
        .join(ResponseRow, ResponseRow.id == AnswerRow.response_id)
        .join(SurveyRow, SurveyRow.id == ResponseRow.survey_id)
        .where(SurveyRow.slug == survey, AnswerRow.status == "answered", or_(*pairs))
    )
    return [(response_id, value) for response_id, value in (await session.execute(query)).all() if value]
