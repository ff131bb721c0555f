"""The weekly digest and the comms team's report commands."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from bots import digest
from bots.cli import main
from channels.slack import ReportForm
from tests.fakes.slack_api import SlackSigner, post
from tests.harness import THEMES_FILE, Harness

LONDON = ZoneInfo("Europe/London")
signer = SlackSigner()


async def _report(server: Harness, text: str) -> None:
    status, _ = await post(server.http, f"{server.local_url}/slack/events", signer.slash_command(text))
    assert status == 200


def test_the_digest_is_due_from_monday_nine_for_the_week_before() -> None:
    sunday_night = datetime(2026, 11, 22, 23, 0, tzinfo=LONDON)
    monday_early = datetime(2026, 11, 23, 8, 59, tzinfo=LONDON)
    monday_nine = datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)

    assert digest.due_week(sunday_night, LONDON).period == "2026-W46"
    assert digest.due_week(monday_early, LONDON).period == "2026-W46"
    assert digest.due_week(monday_nine, LONDON).period == "2026-W47"
    week = digest.due_week(datetime(2026, 3, 30, 10, 0, tzinfo=LONDON), LONDON)  # after the clocks change
    assert (week.start.hour, week.end.hour) == (0, 0)


async def test_the_weekly_digest_goes_out_once_with_themes_wards_myths_and_spikes(
    slack_server: Harness,
) -> None:
    for n in range(6):
        await _report(slack_server, f"Bins not collected again on Elm Road, house {n}")
    form = ReportForm(
        heard="People think the council tax rise pays for councillors' pay",
        kind="myth",
        place="Old Town",
        themes=("council-tax",),
    )
    await post(slack_server.http, f"{slack_server.local_url}/slack/events", signer.view_submission(form))
    desk = slack_server.loopline.slack
    assert desk is not None
    monday = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)  # the next Monday: the week of 23 November
    slack_server.clock.now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)

    async def due(at: datetime) -> bool:
        return await digest.post_if_due(
            slack_server.loopline.db, desk.client, "C0STREET", desk.desk.themes, now=at, timezone=LONDON
        )

    # reports were made on 22 Nov (a Sunday): the week of 16 Nov, due from Monday 23 Nov 09:00
    assert await due(datetime(2026, 11, 23, 9, 5, tzinfo=UTC))
    assert not await due(datetime(2026, 11, 23, 10, 5, tzinfo=UTC))  # already posted this week
    assert slack_server.slack is not None
    [message] = slack_server.slack.messages
    text = message["text"]
    assert message["channel"] == "C0STREET"
    assert text.startswith("*Word on the street: week of 16 Nov 2026* (7 reports)")
    assert "Bins" in text
    assert "*Spikes:* " in text
    assert "*Myths to correct:*\n• People think the council tax rise" in text
    assert "Old Town 1" in text
    assert await due(monday) is True  # the next week gets its own (empty) digest
    assert slack_server.slack.messages[-1]["text"].endswith("No reports this week.")


def _cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("LOOPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOOPLINE_THEMES_FILE", THEMES_FILE)
    monkeypatch.setenv("LOOPLINE_LOG_LEVEL", "WARNING")


async def test_reports_can_be_listed_filtered_and_exported(
    slack_server: Harness,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await _report(slack_server, "Mattress dumped behind the shops on Elm Road")
    await _report(slack_server, "Street lights out in the underpass, people feel unsafe")
    _cli_env(monkeypatch, database_url)

    assert await asyncio.to_thread(main, ["reports", "list", "--theme", "fly-tipping"]) == 0
    listed = capsys.readouterr().out.strip().splitlines()
    assert len(listed) == 1
    assert "Mattress dumped" in listed[0]

    assert await asyncio.to_thread(main, ["reports", "export", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["heard"][:8] for r in rows] == ["Mattress", "Street l"]
    assert rows[0]["themes"] == "fly-tipping"
    assert rows[0]["reporter"] == "sam.officer"

    assert await asyncio.to_thread(main, ["themes"]) == 0
    themes = capsys.readouterr().out
    assert "fly-tipping" in themes


def test_the_slack_manifest_points_at_the_public_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOOPLINE_PUBLIC_URL", "https://engage.example.gov.uk")

    assert main(["slack", "manifest"]) == 0

    manifest = json.loads(capsys.readouterr().out)
    text = json.dumps(manifest)
    assert "https://engage.example.gov.uk/slack/events" in text
    assert "/street" in text
