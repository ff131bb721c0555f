"""What happens when frontline staff report the "word on the street" from Slack.

Implements ``channels.slack.SlackHandlers``: every report is stored (once per Slack request) before
Slack gets its answer, tagged with suggested themes that say which words matched.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from channels.slack import (
    QuickReport,
    ReportForm,
    SlackClient,
    StaffUser,
    StreetCommand,
    ViewSubmission,
    ephemeral,
    open_view,
    recorded_message,
    report_modal,
    reports_message,
)
from flows.definition import Survey
from flows.themes import Suggestion, ThemeList, clean_slack_text, suggest_kind, suggest_themes
from store import reports, responses, surveys
from store.db import Database

log = logging.getLogger(__name__)

HELP = (
    "*/street <what you heard>* records it at once. */street* alone opens the full form.\n"
    "*/street mine* lists your reports. */street themes [7d|30d] [ward]* shows the top themes."
)


@dataclass(frozen=True, slots=True)
class StaffDesk:
    db: Database
    client: SlackClient
    themes: ThemeList
    wards: tuple[str, ...]
    clock: Callable[[], datetime]

    # -- SlackHandlers -----------------------------------------------------------------------------

    async def quick_report(self, report: QuickReport) -> dict[str, Any]:
        text = clean_slack_text(report.text).strip()
        if not text:
            return ephemeral(HELP)
        key = f"command:{report.response_url or uuid.uuid4()}"
        suggestions = self._suggest(text)  # tagged once: the tagger is the costliest step here
        report_id = await self._record(report.user, text, key, source="command", suggestions=suggestions)
        return recorded_message(text, self._why(suggestions), report_id)

    async def street_command(self, command: StreetCommand) -> dict[str, Any] | None:
        if command.subcommand == "modal":
            await self.open_report_modal(command.user, command.trigger_id, None, "shortcut", None)
            return None
        if command.subcommand == "mine":
            return await self._mine(command.user)
        if command.subcommand == "themes":
            return ephemeral(await self._theme_summary(command.args))
        return ephemeral(HELP)

    async def open_report_modal(
        self,
        user: StaffUser,
        trigger_id: str,
        initial: ReportForm | None,
        source: str,
        report_id: int | None,
    ) -> None:
        metadata = ""
        if report_id is not None:
            async with self.db.sessions() as session:
                existing = await reports.get(session, report_id=report_id)
            if existing is not None and existing.user_id == user.user_id:
                initial = ReportForm(
                    heard=existing.heard,
                    kind=cast(Any, existing.kind),
                    place=existing.place,
                    how_many=cast(Any, existing.how_many or "one"),
                    themes=tuple(t.theme for t in existing.themes),
                    quote=existing.quote,
                    follow_up=existing.follow_up,
                )
                metadata = str(report_id)
        heard = clean_slack_text(initial.heard) if initial else ""
        if initial is not None and not initial.themes:
            initial = ReportForm(
                heard,
                initial.kind or cast(Any, suggest_kind(heard)),
                initial.place,
                initial.how_many,
                (),
                initial.quote,
                initial.follow_up,
            )
        suggested = (
            list(initial.themes) if initial and initial.themes else [s.theme for s in self._suggest(heard)]
        )
        view = report_modal(
            wards=self.wards,
            themes=[(t.name, t.label) for t in self.themes.themes],
            initial=initial,
            suggested=suggested,
            private_metadata=metadata,
        )
        await open_view(self.client, trigger_id, view)

    async def submit_report(self, submission: ViewSubmission) -> dict[str, Any] | None:
        form = submission.form
        assert form is not None
        heard = clean_slack_text(form.heard).strip()
        why = {s.theme: s.explain() for s in self._suggest(heard, limit=10)}
        tags = [reports.ThemeTag(theme, why.get(theme), True) for theme in form.themes]
        details = _new_report(submission.user, heard, form, f"view:{submission.view_id}", "modal")
        now = self.clock()
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            if submission.private_metadata.isdigit():
                await reports.revise(
                    session,
                    report_id=int(submission.private_metadata),
                    user_id=submission.user.user_id,
                    changes=details,
                    tags=tags,
                    now=now,
                )
            else:
                await reports.record(session, details, tags, now=now)
        return None

    async def event(self, event_id: str, retry_num: int | None, event: Mapping[str, Any]) -> None:
        if event.get("type") != "app_mention":
            return
        text = clean_slack_text(str(event.get("text") or "")).strip()
        user = StaffUser(
            str(event.get("team") or ""), str(event.get("user") or ""), str(event.get("user") or "")
        )
        if text:
            await self._record(user, text, f"event:{event_id}", source="mention")

    # -- the work ----------------------------------------------------------------------------------

    def _suggest(self, text: str, *, limit: int = 3) -> list[Suggestion]:
        return suggest_themes(text, self.themes, limit=limit) if text else []

    def _why(self, suggestions: Sequence[Suggestion]) -> list[tuple[str, str]]:
        labels = {t.name: t.label for t in self.themes.themes}
        return [(labels.get(s.theme, s.theme), s.explain()) for s in suggestions]

    async def _record(
        self,
        user: StaffUser,
        text: str,
        key: str,
        *,
        source: str,
        suggestions: Sequence[Suggestion] | None = None,
    ) -> int:
        found = self._suggest(text) if suggestions is None else suggestions
        tags = [reports.ThemeTag(s.theme, s.explain(), False) for s in found]
        form = ReportForm(heard=text, kind=cast(Any, suggest_kind(text) or "concern"))
        async with self.db.writing(), self.db.sessions() as session, session.begin():
            report_id = await reports.record(
                session, _new_report(user, text, form, key, source), tags, now=self.clock()
            )
        if report_id is None:  # Slack retried a request we already stored
            async with self.db.sessions() as session:
                report_id = await reports.id_for(session, dedupe_key=key)
        log.info("street report recorded", extra={"report_id": report_id, "source": source})
        assert report_id is not None
        return report_id

    async def _mine(self, user: StaffUser) -> dict[str, Any]:
        async with self.db.sessions() as session:
            mine = await reports.by_user(session, user_id=user.user_id)
        if not mine:
            return ephemeral("You have no reports yet. Try */street* followed by what you heard.")
        summaries = [
            (
                r.id,
                f"#{r.id} {r.created_at:%d %b}: {r.heard[:80]} ({r.kind}; "
                f"{', '.join(t.theme for t in r.themes) or 'no theme'})",
            )
            for r in mine
        ]
        return reports_message(
            f"*Your last {len(mine)} reports.* Edit one to add detail or correct its themes:", summaries
        )

    async def _theme_summary(self, args: Sequence[str]) -> str:
        days = 7
        words = list(args)
        if words and words[0].lower() in ("7d", "30d"):
            days = int(words.pop(0)[:-1])
        place = " ".join(words) or None
        if place and self.wards and place.lower() not in {w.lower() for w in self.wards}:
            return f"I don't know the ward {place!r}. Wards: {', '.join(self.wards)}."
        until = self.clock() + timedelta(seconds=1)  # include a report made this second
        since = until - timedelta(days=days)
        async with self.db.sessions() as session:
            counts = await reports.theme_counts(session, since=since, until=until, place=place)
            related = await self._surveys_on_themes(
                session, [c.theme for c in counts[:5]], since - timedelta(days=90)
            )
        if not counts:
            return f"No reports in the last {days} days{' in ' + place if place else ''}."
        labels = {t.name: t.label for t in self.themes.themes}
        where = f" in {place}" if place else ""
        lines = [f"*Top themes, last {days} days{where}* (change on the {days} days before):"]
        for c in counts[:8]:
            change = c.count - c.previous
            arrow = f"+{change}" if change > 0 else str(change) if change < 0 else "no change"
            also = (
                f" Survey answers on this too: {', '.join(related[c.theme])}." if related.get(c.theme) else ""
            )
            lines.append(f"• *{labels.get(c.theme, c.theme)}*: {c.count} ({arrow}).{also}")
        return "\n".join(lines)

    async def _surveys_on_themes(
        self, session: Any, themes: Sequence[str], since: datetime
    ) -> dict[str, list[str]]:
        """Which surveys have free-text answers tagged with the same themes."""
        stored: list[Survey] = await surveys.all_surveys(session)
        text_questions = [(s.slug, q.id) for s in stored for q in s.questions if q.type == "text"]
        found: dict[str, list[str]] = {}
        for slug, answer in await responses.answers_since(session, since=since, questions=text_questions):
            for suggestion in self._suggest(answer):
                if suggestion.theme in themes and slug not in found.setdefault(suggestion.theme, []):
                    found[suggestion.theme].append(slug)
        return found


def _new_report(user: StaffUser, heard: str, form: ReportForm, key: str, source: str) -> reports.NewReport:
    return reports.NewReport(
        team_id=user.team_id,
        user_id=user.user_id,
        user_name=user.name,
        heard=heard,
        kind=form.kind or "concern",
        place=form.place,
        how_many=form.how_many,
        quote=form.quote,
        follow_up=form.follow_up,
        source=source,
        dedupe_key=key,
    )
