"""What the engine asks the outside world to do; ``bots/`` interprets these, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from flows.definition import AnswerValue


class ReplyKind(StrEnum):
    REPLY = "reply"  # an answer to something the resident just sent
    OPT_OUT_CONFIRMATION = "opt_out_confirmation"  # the one message allowed after STOP
    REMINDER = "reminder"  # unprompted: an unfinished survey


@dataclass(frozen=True, slots=True)
class Choice:
    label: str
    value: str


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    choices: tuple[Choice, ...] = ()
    kind: ReplyKind = ReplyKind.REPLY
    question: str | None = None  # the question this message asks, so a button press can be checked


class AnswerStatus(StrEnum):
    ANSWERED = "answered"
    SKIPPED = "skipped"  # an optional question the resident skipped
    UNANSWERED = "unanswered"  # no valid answer after the allowed retries


@dataclass(frozen=True, slots=True)
class AnswerRecorded:
    survey: str
    question: str
    value: AnswerValue | None
    status: AnswerStatus


class Outcome(StrEnum):
    COMPLETED = "completed"
    EXPIRED = "expired"
    STOPPED = "stopped"
    ABANDONED = "abandoned"  # the resident started another survey


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    survey: str
    language: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    survey: str
    outcome: Outcome
    at: datetime


@dataclass(frozen=True, slots=True)
class OptedOut:
    at: datetime


@dataclass(frozen=True, slots=True)
class OptedIn:
    at: datetime


@dataclass(frozen=True, slots=True)
class LanguageChosen:
    language: str


Effect = Reply | AnswerRecorded | ResponseStarted | ResponseEnded | OptedOut | OptedIn | LanguageChosen
