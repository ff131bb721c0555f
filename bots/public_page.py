"""``GET /you-said-we-did``: the published cards as an accessible page (or JSON), with small counts
suppressed so no small group of residents can be identified."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from flows.definition import text_in
from flows.yswd import Card
from store import cards, surveys
from store.db import Database

STATUS_LABELS = {
    "planned": "Planned",
    "in_progress": "In progress",
    "done": "Done",
    "not_possible": "Not possible",
}


def templates() -> Environment:
    return Environment(loader=PackageLoader("bots", "templates"), autoescape=select_autoescape(["html"]))


def shown(count: int, threshold: int) -> str:
    """A count, or "fewer than N" when it is small enough to point at individuals."""
    return f"fewer than {threshold}" if count < threshold else str(count)


async def published_cards(db: Database, *, threshold: int) -> list[dict[str, Any]]:
    async with db.sessions() as session:
        found = await cards.published(session)
        loops = {loop.survey: loop for loop in await cards.loops(session)}
        titles = {s.slug: s for s in await surveys.all_surveys(session)}
    result = []
    for record, pulse in found:
        card = Card.model_validate(record.definition)
        language = card.default_language
        survey = titles.get(card.survey)
        answered = sum(pulse.values())
        result.append(
            {
                "id": record.id,
                "title": card.text("title", language),
                "survey": card.survey,
                "survey_title": text_in(survey.title, language, survey.default_language)
                if survey
                else card.survey,
                "status": card.status,
                "status_label": STATUS_LABELS[card.status],
                "you_said": card.text("you_said", language),
                "we_did": card.text("we_did", language),
                "cannot_change": card.text("cannot_change", language) or None,
                "lead_contact": card.lead_contact,
                "participants": shown(
                    loops[card.survey].participants if card.survey in loops else 0, threshold
                ),
                "pulse": _pulse(pulse, answered, threshold),
            }
        )
    return result


def _pulse(pulse: Mapping[str, int], answered: int, threshold: int) -> str:
    if answered < threshold:
        return f"fewer than {threshold} answers so far"
    return ", ".join(
        f"{label} {pulse.get(key, 0)}" for key, label in (("yes", "yes"), ("partly", "partly"), ("no", "no"))
    )
