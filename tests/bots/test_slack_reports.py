"""Frontline staff report the word on the street from Slack, through Loopline's real server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.slack import ReportForm
from tests.fakes.slack_api import OTHER_TEAM_ID, FakeSlack, Fault, SlackSigner, post
from tests.harness import Harness

signer = SlackSigner()


async def _post(server: Harness, signed: tuple[bytes, dict[str, str]]) -> tuple[int, Any]:
    status, body = await post(server.http, f"{server.local_url}/slack/events", signed)
    return status, (json.loads(body) if body.startswith(b"{") else body)


def _fake(server: Harness) -> FakeSlack:
    assert server.slack is not None
    return server.slack


async def _themes(server: Harness) -> list[tuple[int, str, bool]]:
    rows = await server.rows("SELECT report_id, theme, by_staff FROM report_themes ORDER BY report_id, theme")
    return [(r.report_id, r.theme, bool(r.by_staff)) for r in rows]


async def test_a_quick_report_is_stored_tagged_and_explained(slack_server: Harness) -> None:
    text = (
        "Resident at <@U0RESIDENT> says the bins haven't been collected for 3 weeks &amp; foxes rip the bags"
    )

    status, answer = await _post(slack_server, signer.slash_command(text))

    assert status == 200
    [report] = await slack_server.rows("SELECT heard, kind, source, user_name FROM reports")
    assert report.heard.startswith("Resident at")
    assert "&amp;" not in report.heard
    assert (report.source, report.user_name) == ("command", "sam.officer")
    assert next(theme for _, theme, _ in await _themes(slack_server)).startswith("bins")
    shown = json.dumps(answer)
    assert "Recorded" in shown
    assert "matched" in shown  # the suggestion says which words matched
    assert "add_detail" in shown


async def test_the_full_form_opens_and_a_submission_is_stored_with_staff_chosen_themes(
    slack_server: Harness,
) -> None:
    status, _ = await _post(slack_server, signer.slash_command(""))
    assert status == 200
    assert len(_fake(slack_server).views) == 1

    form = ReportForm(
        heard="People at the library think council tax is going up 20% for new offices",
        kind="myth",
        place="Old Town",
        how_many="many",
        themes=("council-tax",),
        quote="They're building a palace",
        follow_up=True,
    )
    status, _ = await _post(
        slack_server, signer.view_submission(form, wards=["Northfield", "Riverside", "Old Town"])
    )
    assert status == 200
    [report] = await slack_server.rows("SELECT kind, place, how_many, quote, follow_up, source FROM reports")
    assert tuple(report) == ("myth", "Old Town", "many", "They're building a palace", True, "modal")
    assert await _themes(slack_server) == [(1, "council-tax", True)]


async def test_a_modal_missing_what_was_heard_shows_the_error_by_field(slack_server: Harness) -> None:
    status, body = await _post(slack_server, signer.view_submission(ReportForm(heard="", kind="concern")))

    assert status == 200
    assert body["response_action"] == "errors"
    assert "heard" in body["errors"]
    assert await slack_server.count("reports") == 0


async def test_a_double_submitted_modal_is_one_report(slack_server: Harness) -> None:
    form = ReportForm(heard="Potholes on Mill Lane again", kind="concern")
    await _post(slack_server, signer.view_submission(form))
    await _post(slack_server, signer.view_submission(form))

    assert await slack_server.count("reports") == 1


async def test_add_detail_opens_the_report_and_a_correction_replaces_the_suggested_themes(
    slack_server: Harness,
) -> None:
    await _post(slack_server, signer.slash_command("Mattress dumped behind the shops on Elm Road"))
    assert await _themes(slack_server) == [(1, "fly-tipping", False)]

    await _post(slack_server, signer.add_detail_press(1))
    [view] = _fake(slack_server).views.values()
    assert "Mattress dumped" in json.dumps(view)
    corrected = ReportForm(
        heard="Mattress dumped behind the shops on Elm Road",
        kind="concern",
        themes=("fly-tipping", "street-cleaning"),
    )
    await _post(slack_server, signer.view_submission(corrected, view_id="V0DETAIL01", private_metadata="1"))

    assert await slack_server.count("reports") == 1
    assert await _themes(slack_server) == [(1, "fly-tipping", True), (1, "street-cleaning", True)]


async def test_a_message_shortcut_prefills_what_was_heard(slack_server: Harness) -> None:
    status, _ = await _post(
        slack_server, signer.message_shortcut("Lots of rats by the bin store at Marsh House")
    )

    assert status == 200
    [view] = _fake(slack_server).views.values()
    assert "Lots of rats by the bin store" in json.dumps(view)


async def test_staff_see_their_own_reports_and_the_top_themes(slack_server: Harness) -> None:
    for text in (
        "Bins not collected on Elm Road",
        "Missed bin collection again on Ash Grove",
        "Street lights out on the underpass",
    ):
        await _post(slack_server, signer.slash_command(text))

    _, mine = await _post(slack_server, signer.slash_command("mine"))
    _, themes = await _post(slack_server, signer.slash_command("themes 7d"))

    assert "Your last 3 reports" in json.dumps(mine)
    summary = json.dumps(themes)
    assert "Top themes, last 7 days" in summary
    assert "Bins" in summary


async def test_forged_stale_and_unsigned_requests_are_refused_and_write_nothing(
    slack_server: Harness,
) -> None:
    forger = SlackSigner("0" * 32)
    stale = signer.slash_command("Potholes", timestamp=str(int(time.time()) - 301))
    ahead = signer.slash_command("Potholes", timestamp=str(int(time.time()) + 301))
    body, headers = signer.slash_command("Potholes")
    nonsense = (body, {**headers, "x-slack-request-timestamp": "abc"})
    for signed in (forger.slash_command("Potholes"), stale, ahead, nonsense):
        status, _ = await _post(slack_server, signed)
        assert status == 401
    async with slack_server.http.post(
        f"{slack_server.local_url}/slack/events",
        data=b"{not json",
        headers={"content-type": "application/json"},
    ) as response:
        assert response.status == 401

    assert await slack_server.count("reports") == 0


async def test_a_report_from_another_workspace_is_refused(slack_server: Harness) -> None:
    status, _ = await _post(slack_server, signer.slash_command("Potholes", team_id=OTHER_TEAM_ID))

    assert status == 200
    assert await slack_server.count("reports") == 0


async def test_a_retried_event_is_processed_once(slack_server: Harness) -> None:
    event = {
        "type": "app_mention",
        "user": "U0STAFF01",
        "team": "T0LOOPLINE",
        "text": "<@U0LOOPBOT> graffiti all over the bus shelter on High St",
        "channel": "C0STREET",
        "ts": "1767225600.000100",
        "event_ts": "1767225600.000100",
    }

    first = await _post(slack_server, signer.event_callback(event, event_id="Ev0001"))
    retries = await asyncio.gather(
        *(
            _post(slack_server, signer.event_callback(event, event_id="Ev0001", retry_num=n))
            for n in (1, 2, 3)
        )
    )

    assert [first[0], *(r[0] for r in retries)] == [200] * 4
    assert await slack_server.count("reports") == 1


async def test_a_3000_character_report_is_accepted_and_3001_refused_in_the_form(
    slack_server: Harness,
) -> None:
    ok = await _post(slack_server, signer.view_submission(ReportForm(heard="a" * 3000, kind="concern")))
    too_long = await _post(
        slack_server, signer.view_submission(ReportForm(heard="b" * 3001, kind="concern"), view_id="V0LONG")
    )

    assert ok[0] == 200
    assert too_long[1]["response_action"] == "errors"
    assert await slack_server.count("reports") == 1


async def test_opening_the_form_survives_slack_rate_limiting(slack_server: Harness) -> None:
    _fake(slack_server).faults.append(Fault.ratelimited(1).on("views.open"))

    status, _ = await _post(slack_server, signer.slash_command(""))

    assert status == 200
    assert len(_fake(slack_server).views) == 1
