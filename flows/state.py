"""What the engine knows about one resident between messages; plain data the store serialises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from flows.definition import AnswerValue


@dataclass(frozen=True, slots=True)
class Session:
    """A survey in progress."""

    survey: str  # slug
    question: str  # id of the question waiting for an answer
    language: str
    started_at: datetime
    last_activity_at: datetime
    retries: int = 0
    reminded: bool = False
    answers: Mapping[str, AnswerValue | None] = field(default_factory=lambda: MappingProxyType({}))

    def to_json(self) -> dict[str, Any]:
        return {
            "survey": self.survey,
            "question": self.question,
            "language": self.language,
            "started_at": self.started_at.isoformat(),
            "last_activity_at": self.last_activity_at.isoformat(),
            "retries": self.retries,
            "reminded": self.reminded,
            "answers": dict(self.answers),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        return cls(
            survey=data["survey"],
            question=data["question"],
            language=data["language"],
            started_at=datetime.fromisoformat(data["started_at"]),
            last_activity_at=datetime.fromisoformat(data["last_activity_at"]),
            retries=int(data["retries"]),
            reminded=bool(data["reminded"]),
            answers=MappingProxyType(dict(data["answers"])),
        )

    def with_answer(self, question: str, value: AnswerValue | None) -> Session:
        return replace(self, answers=MappingProxyType({**self.answers, question: value}))


@dataclass(frozen=True, slots=True)
class Resident:
    """The engine's view of a person: opted out or not, language, survey in progress, surveys done."""

    opted_out: bool = False
    language: str | None = None
    session: Session | None = None
    completed: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Policy:
    """Council-wide settings the engine applies."""

    council: str = "the council"
    help_contact: str = ""
    expiry: timedelta = timedelta(days=3)
    reminder_after: timedelta = timedelta(days=2)
    max_retries: int = 2

    def reminder_due(self, session: Session) -> datetime:
        return session.last_activity_at + self.reminder_after

    def expires_at(self, session: Session) -> datetime:
        return session.last_activity_at + self.expiry

    def next_check(self, resident: Resident) -> datetime | None:
        """When a sweeper must next look at this resident: the reminder, then the expiry."""
        session = resident.session
        if session is None:
            return None
        return self.expires_at(session) if session.reminded else self.reminder_due(session)
