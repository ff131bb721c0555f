"""Play a resident's messages through the engine and read back what they saw and what was stored.

    replies, answers = play(["PARKS", "1", "four"])

``Conversation`` is the same thing one message at a time, for transcripts that wait, get reminded or expire.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flows.definition import AnswerValue, Survey
from flows.effects import (
    AnswerRecorded,
    AnswerStatus,
    Effect,
    Outcome,
    Reply,
    ReplyKind,
    ResponseEnded,
    ResponseStarted,
)
from flows.engine import Catalogue, Transition, expire, handle_message, remind
from flows.state import Policy, Resident
from flows.survey_file import parse_survey

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=LONDON)  # parks-2026 is open 2026-11-01 .. 2026-12-31
POLICY = Policy(council="Exampleshire Council")
EXAMPLE_FILE = Path(__file__).resolve().parents[2] / "examples" / "parks.yaml"
PARKS = parse_survey(EXAMPLE_FILE.read_text(encoding="utf-8"), "parks.yaml")

YESNO_YAML = """\
slug: {slug}
title: Bins
keyword: {keyword}
lead: {{name: Waste team, contact: waste@example.gov.uk}}
purpose: Check the new collection days.
can_influence: the collection day
cannot_influence: the fortnightly schedule
opens: {opens}
closes: {closes}
languages: {languages}
questions:
  - id: happy
    type: yesno
    text: {{{text}}}
  - id: comment
    type: text
    optional: true
    text: {{{comment}}}
"""


def yesno_survey(
    *,
    welsh: bool,
    keyword: str = "BINS",
    slug: str = "bins-2026",
    opens: str = "2026-11-01",
    closes: str = "2026-12-31",
) -> Survey:
    """A small yes/no survey, written as a council would write it and read with ``parse_survey``."""
    if welsh:
        text = "en: Are you happy with the new day?, cy: Ydych chi'n hapus gyda'r diwrnod newydd?"
        comment = "en: Anything else?, cy: Unrhyw beth arall?"
        languages = "[en, cy]"
    else:
        text, comment, languages = "en: Are you happy with the new day?", "en: Anything else?", "[en]"
    yaml = YESNO_YAML.format(
        slug=slug,
        keyword=keyword,
        languages=languages,
        text=text,
        comment=comment,
        opens=opens,
        closes=closes,
    )
    return parse_survey(yaml, f"{slug}.yaml")


class Conversation:
    """One resident talking to the engine; ``now`` moves on a little with every message."""

    def __init__(
        self,
        *surveys: Survey,
        resident: Resident | None = None,
        now: datetime = NOW,
        policy: Policy = POLICY,
        buttons: bool = False,
        step: timedelta = timedelta(minutes=1),
    ) -> None:
        self.catalogue = Catalogue.of(surveys or (PARKS,))
        self.resident = resident if resident is not None else Resident()
        self.now = now
        self.policy = policy
        self.buttons = buttons
        self.step = step
        self.effects: list[Effect] = []
        self.last: Transition = Transition(self.resident, ())

    def send(self, text: str) -> list[str]:
        """The resident texts ``text``; the texts of the replies they get back."""
        transition = handle_message(
            self.resident,
            text,
            catalogue=self.catalogue,
            now=self.now,
            policy=self.policy,
            buttons=self.buttons,
        )
        self.now += self.step
        return self._took(transition)

    def wait(self, **delta: Any) -> None:
        self.now += timedelta(**delta)

    def remind(self) -> list[str]:
        transition = remind(
            self.resident, catalogue=self.catalogue, now=self.now, policy=self.policy, buttons=self.buttons
        )
        return self._took(transition)

    def expire(self) -> list[str]:
        return self._took(expire(self.resident, catalogue=self.catalogue, now=self.now, policy=self.policy))

    def _took(self, transition: Transition) -> list[str]:
        self.last = transition
        self.resident = transition.resident
        self.effects.extend(transition.effects)
        return [effect.text for effect in transition.effects if isinstance(effect, Reply)]

    # What the transcript adds up to.

    @property
    def replies(self) -> list[str]:
        return [effect.text for effect in self.effects if isinstance(effect, Reply)]

    @property
    def reply_kinds(self) -> list[ReplyKind]:
        return [effect.kind for effect in self.effects if isinstance(effect, Reply)]

    @property
    def answers(self) -> dict[str, AnswerValue | None]:
        return {a.question: a.value for a in self.effects if isinstance(a, AnswerRecorded)}

    @property
    def statuses(self) -> dict[str, AnswerStatus]:
        return {a.question: a.status for a in self.effects if isinstance(a, AnswerRecorded)}

    @property
    def in_progress(self) -> str | None:
        """The slug of the survey in progress, if any."""
        session = self.resident.session
        return None if session is None else session.survey

    @property
    def question(self) -> str | None:
        """The id of the question waiting for an answer, if any."""
        session = self.resident.session
        return None if session is None else session.question

    @property
    def started(self) -> list[str]:
        return [e.survey for e in self.effects if isinstance(e, ResponseStarted)]

    @property
    def ended(self) -> list[tuple[str, Outcome]]:
        return [(e.survey, e.outcome) for e in self.effects if isinstance(e, ResponseEnded)]


class Transcript(Conversation):
    """A finished conversation; unpacks as ``replies, answers``."""

    def __iter__(self) -> Iterator[Any]:
        return iter((self.replies, self.answers))


def play(
    messages: Sequence[str],
    *surveys: Survey,
    resident: Resident | None = None,
    now: datetime = NOW,
    policy: Policy = POLICY,
    buttons: bool = False,
) -> Transcript:
    """Play ``messages`` one after another, a minute apart, threading the resident's state through."""
    transcript = Transcript(*surveys, resident=resident, now=now, policy=policy, buttons=buttons)
    for message in messages:
        transcript.send(message)
    return transcript
