"""The Slack adapter, exercised with Bolt's real AsyncApp behind dispatch(), and slack_sdk against FakeSlack.

Requests are built and signed by SlackSigner exactly as Slack sends them (real current time), and go
through ``dispatch`` as the web layer will pass them. The handlers are a small recorder: the seam the
wiring in ``bots/`` implements.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_bolt.request.async_request import AsyncBoltRequest

from channels.base import HttpRequest
from channels.errors import Misconfigured, ProviderUnavailable, Rejected
from channels.slack import (
    ACTION_ADD_DETAIL,
    BLOCK_HEARD,
    BLOCK_KIND,
    BLOCK_PLACE_OTHER,
    MAX_HEARD_CHARS,
    UNKNOWN_WORKSPACE_TEXT,
    BotIdentity,
    LooplineSlackApp,
    ModalSource,
    QuickReport,
    ReportForm,
    StaffUser,
    StreetCommand,
    ViewSubmission,
    build_bolt_app,
    dispatch,
    manifest,
    open_view,
    parse_view_submission,
    post_message,
    recorded_message,
    report_modal,
    verify,
    view_errors,
    web_client,
    whoami,
)
from tests.fakes.slack_api import (
    BOT_ID,
    BOT_USER_ID,
    CHANNEL_ID,
    DEFAULT_BOT_TOKEN,
    OTHER_TEAM_ID,
    SIGNING_SECRET,
    STAFF_USER_ID,
    STAFF_USERNAME,
    TEAM_ID,
    FakeSlack,
    Fault,
    SlackSigner,
    new_trigger_id,
    state_values,
)

WARDS = ("Castle", "Riverside", "St Anne's")
THEMES = (("fly-tipping", "Fly-tipping"), ("parking", "Parking"), ("libraries", "Libraries"))
IDENTITY = BotIdentity(team_id=TEAM_ID, bot_user_id=BOT_USER_ID, bot_id=BOT_ID)
STAFF = StaffUser(team_id=TEAM_ID, user_id=STAFF_USER_ID, name=STAFF_USERNAME)

# -- the handlers seam, recorded ---------------------------------------------------------------------------


@dataclass
class Recorder:
    """SlackHandlers that records every call and answers as configured."""

    calls: list[tuple[str, Any]] = field(default_factory=list)
    submit_answer: dict[str, Any] | None = None
    fail_with: Exception | None = None

    def _seen(self, name: str, value: Any) -> None:
        self.calls.append((name, value))
        if self.fail_with is not None:
            raise self.fail_with

    def named(self, name: str) -> list[Any]:
        return [value for seen, value in self.calls if seen == name]

    async def quick_report(self, report: QuickReport) -> dict[str, Any]:
        self._seen("quick_report", report)
        return recorded_message("recorded", [("Fly-tipping", "matched 'mattress'")], 41)

    async def street_command(self, command: StreetCommand) -> dict[str, Any] | None:
        self._seen("street_command", command)
        if command.subcommand == "modal":
            return None
        return {"response_type": "ephemeral", "text": f"{command.subcommand}: {' '.join(command.args)}"}

    async def open_report_modal(
        self,
        user: StaffUser,
        trigger_id: str,
        initial: ReportForm | None,
        source: ModalSource,
        report_id: int | None,
    ) -> None:
        self._seen("open_report_modal", (user, trigger_id, initial, source, report_id))

    async def submit_report(self, submission: ViewSubmission) -> dict[str, Any] | None:
        self._seen("submit_report", submission)
        return self.submit_answer

    async def event(self, event_id: str, retry_num: int | None, event: Mapping[str, Any]) -> None:
        self._seen("event", (event_id, retry_num, dict(event)))


@dataclass
class Slack:
    """The app under test, its handlers and a signer."""

    app: LooplineSlackApp
    handlers: Recorder
    signer: SlackSigner

    async def send(self, signed: tuple[bytes, dict[str, str]]) -> tuple[int, dict[str, str], bytes]:
        return await dispatch(self.app, SlackSigner.http_request(signed))

    async def send_json(self, signed: tuple[bytes, dict[str, str]]) -> tuple[int, Any]:
        status, _, body = await self.send(signed)
        return status, json.loads(body) if body else None


def make_slack(base_url: str = "http://127.0.0.1:9/api/") -> Slack:
    handlers = Recorder()
    client = web_client(DEFAULT_BOT_TOKEN, base_url=base_url, timeout=1.0)
    app = build_bolt_app(signing_secret=SIGNING_SECRET, client=client, handlers=handlers, identity=IDENTITY)
    return Slack(app=app, handlers=handlers, signer=SlackSigner())


@pytest.fixture
def slack() -> Slack:
    return make_slack()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


# -- verification ------------------------------------------------------------------------------------------


def test_slacks_published_example_verifies_with_the_sdk_verifier() -> None:
    body = (
        b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
        b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
        b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlg"
        b"cZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    headers = {
        "x-slack-request-timestamp": "1531420618",
        "x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
    }
    request = HttpRequest(url="https://x/slack/events", headers=headers, body=body)
    assert verify(request, signing_secret="8f742231b10e8888abcd99yyyzzz85a5", now=1531420618 + 60)
    assert not verify(request, signing_secret="8f742231b10e8888abcd99yyyzzz85a5", now=1531420618 + 301)
    assert not verify(request, signing_secret="8f742231b10e8888abcd99yyyzzz85a5")  # the real clock: stale


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, b"text=hi"),
        ({"x-slack-signature": "v0=00"}, b"text=hi"),
        ({"x-slack-request-timestamp": "1531420618"}, b"text=hi"),
        ({"x-slack-request-timestamp": "abc", "x-slack-signature": "v0=00"}, b"text=hi"),
        ({"x-slack-request-timestamp": "", "x-slack-signature": ""}, b""),
        ({"x-slack-request-timestamp": "1e9", "x-slack-signature": "v0=00"}, b"{"),
        ({"x-slack-request-timestamp": str(int(time.time())), "x-slack-signature": "v0=00"}, b"\xff\xfe"),
        ({"x-slack-request-timestamp": "9" * 40, "x-slack-signature": "v0=00"}, b"{not json"),
    ],
    ids=["none", "no timestamp", "no signature", "abc", "empty", "float", "bad utf-8", "huge"],
)
def test_verify_never_raises_and_says_false_to_anything_unsigned(
    headers: dict[str, str], body: bytes
) -> None:
    assert (
        verify(HttpRequest(url="https://x", headers=headers, body=body), signing_secret=SIGNING_SECRET)
        is False
    )


def test_verify_with_an_empty_secret_is_false_not_an_error(slack: Slack) -> None:
    request = SlackSigner.http_request(slack.signer.slash_command("hi"))
    assert verify(request, signing_secret="") is False
    assert verify(request, signing_secret=SIGNING_SECRET) is True


async def test_a_forged_signature_is_401_and_reaches_no_handler(slack: Slack) -> None:
    body, headers = slack.signer.slash_command("fly-tipping on Elm Road")
    forged = {**headers, "x-slack-signature": "v0=" + "0" * 64}
    status, _, response_body = await slack.send((body, forged))
    assert (status, response_body) == (401, b"")
    assert slack.handlers.calls == []


async def test_a_body_changed_after_signing_is_401(slack: Slack) -> None:
    body, headers = slack.signer.slash_command("bins missed")
    status, _, _ = await slack.send((body.replace(b"bins", b"cats"), headers))
    assert status == 401
    assert slack.handlers.calls == []


@pytest.mark.parametrize("skew", [-301, 301], ids=["301 s old (replay)", "301 s ahead"])
async def test_a_timestamp_more_than_300_seconds_away_is_401(slack: Slack, skew: int) -> None:
    # Whole seconds rounded up, so the skew Loopline sees is at least |skew| - (time to dispatch).
    status, _, _ = await slack.send(
        slack.signer.slash_command("bins", timestamp=math.ceil(time.time()) + skew)
    )
    assert status == 401
    assert slack.handlers.calls == []


async def test_a_timestamp_299_seconds_old_is_accepted(slack: Slack) -> None:
    status, _, _ = await slack.send(
        slack.signer.slash_command("bins", timestamp=math.ceil(time.time()) - 299)
    )
    assert status == 200
    assert len(slack.handlers.named("quick_report")) == 1


async def test_a_non_numeric_timestamp_is_401_not_500(slack: Slack) -> None:
    body, headers = slack.signer.slash_command("bins")
    status, _, _ = await slack.send((body, {**headers, "x-slack-request-timestamp": "abc"}))
    assert status == 401


@pytest.mark.parametrize("body", [b"{not json", b"payload=%7Bnot+json", b"\xff\xfe\x00garbage"])
async def test_unsigned_garbage_is_401_not_500(slack: Slack, body: bytes) -> None:
    request = HttpRequest(url="https://x", headers={"content-type": "application/json"}, body=body)
    status, _, response_body = await dispatch(slack.app, request)
    assert (status, response_body) == (401, b"")


@pytest.mark.parametrize(
    "body",
    [
        b"payload=%7Bnot+json",
        b"payload=%5B1%2C2%5D",
        b"payload=%22just+a+string%22",
        b'{"type": 5}',
        b'{"type": "event_callback", "event": "app_mention"}',
        b'{"type": "block_actions", "actions": ["add_detail"], "team": {"id": "T0LOOPLINE"}}',
    ],
    ids=["not json", "a list", "a string", "type not a string", "event not an object", "actions not objects"],
)
async def test_a_signed_but_malformed_body_is_400_not_500(slack: Slack, body: bytes) -> None:
    status, headers, _ = await slack.send(slack.signer.raw(body))
    assert status == 400
    assert headers.get("x-slack-no-retry") == "1"
    assert slack.handlers.calls == []


async def test_the_app_refuses_requests_that_did_not_come_through_dispatch(slack: Slack) -> None:
    body, headers = slack.signer.slash_command("bins")
    response = await slack.app.async_dispatch(AsyncBoltRequest(body=body.decode(), headers=dict(headers)))
    assert response.status == 401
    assert slack.handlers.calls == []


# -- slash command -----------------------------------------------------------------------------------------


async def test_a_slash_command_reaches_quick_report_with_slack_markup_intact_and_acks_its_answer(
    slack: Slack,
) -> None:
    text = "<@U0BOB|bob> says the <#C0PARKS|parks> bins &amp; benches are &lt;broken&gt; :wastebasket: 🗑️"
    status, body = await slack.send_json(slack.signer.slash_command(text))
    assert status == 200
    [report] = slack.handlers.named("quick_report")
    assert report == QuickReport(
        user=STAFF, text=text, channel_id=CHANNEL_ID, response_url=report.response_url
    )
    assert report.response_url is not None
    assert report.response_url.startswith("https://hooks.slack.com/commands/")
    assert body["response_type"] == "ephemeral"
    [button] = body["blocks"][-1]["elements"]
    assert (button["action_id"], button["value"]) == (ACTION_ADD_DETAIL, "41")


async def test_a_4000_character_slash_command_arrives_whole(slack: Slack) -> None:
    text = ("Residents on the Castle estate say " * 200)[:4000].strip()
    status, _, _ = await slack.send(slack.signer.slash_command(text))
    assert status == 200
    assert slack.handlers.named("quick_report")[0].text == text


async def test_street_with_no_text_takes_the_modal_path_and_acks_with_an_empty_body(slack: Slack) -> None:
    status, _, body = await slack.send(slack.signer.slash_command("   ", trigger_id="1.2.0123456789abcdef"))
    assert (status, body) == (200, b"")
    [command] = slack.handlers.named("street_command")
    assert (command.subcommand, command.args, command.trigger_id) == ("modal", (), "1.2.0123456789abcdef")
    assert slack.handlers.named("quick_report") == []


@pytest.mark.parametrize(
    ("text", "subcommand", "args"),
    [("mine", "mine", ()), ("THEMES 7d Castle", "themes", ("7d", "Castle")), ("help", "help", ())],
)
async def test_street_subcommands_reach_street_command(
    slack: Slack, text: str, subcommand: str, args: tuple[str, ...]
) -> None:
    status, body = await slack.send_json(slack.signer.slash_command(text))
    assert status == 200
    [command] = slack.handlers.named("street_command")
    assert (command.subcommand, command.args, command.user) == (subcommand, args, STAFF)
    assert body["text"].startswith(subcommand)


async def test_a_report_that_merely_starts_like_a_word_is_still_a_report(slack: Slack) -> None:
    await slack.send(slack.signer.slash_command("minefield of potholes on Mill Lane"))
    assert [r.text for r in slack.handlers.named("quick_report")] == ["minefield of potholes on Mill Lane"]


# -- shortcuts, button, modal ------------------------------------------------------------------------------


async def test_the_global_shortcut_opens_the_modal_without_a_prefill(slack: Slack) -> None:
    trigger = new_trigger_id()
    status, _, body = await slack.send(slack.signer.global_shortcut(trigger_id=trigger))
    assert (status, body) == (200, b"")
    assert slack.handlers.named("open_report_modal") == [(STAFF, trigger, None, "shortcut", None)]


async def test_the_message_shortcut_prefills_heard_with_the_message_text(slack: Slack) -> None:
    text = "A resident told me <@U0BOB> that the library on Elm Road is closing"
    await slack.send(slack.signer.message_shortcut(text))
    [(user, trigger, initial, source, report_id)] = slack.handlers.named("open_report_modal")
    assert (user, source, report_id) == (STAFF, "message_shortcut", None)
    assert initial == ReportForm(heard=text)
    assert trigger


async def test_the_add_detail_button_opens_the_modal_for_that_report(slack: Slack) -> None:
    status, _, _ = await slack.send(slack.signer.add_detail_press(41))
    assert status == 200
    [(_, _, initial, source, report_id)] = slack.handlers.named("open_report_modal")
    assert (initial, source, report_id) == (None, "add_detail", 41)


async def test_an_add_detail_press_without_a_report_id_is_400(slack: Slack) -> None:
    status, _, _ = await slack.send(slack.signer.add_detail_press("not-a-number"))
    assert status == 400
    assert slack.handlers.calls == []


FULL_FORM = ReportForm(
    heard="People think the bins on Elm Road will be collected fortnightly from March",
    kind="myth",
    place="Riverside",
    how_many="many",
    themes=("parking", "fly-tipping"),
    quote="They're cutting our bins",
    follow_up=True,
)


async def test_a_valid_submission_reaches_submit_report_and_closes_the_modal(slack: Slack) -> None:
    signed = slack.signer.view_submission(
        FULL_FORM, wards=WARDS, themes=THEMES, view_id="V0ABC", view_hash="h1", private_metadata="41"
    )
    status, _, body = await slack.send(signed)
    assert (status, body) == (200, b"")
    [submission] = slack.handlers.named("submit_report")
    assert submission == ViewSubmission(
        user=STAFF,
        view_id="V0ABC",
        view_hash="h1",
        callback_id="street_report",
        private_metadata="41",
        form=FULL_FORM,
        errors={},
    )


async def test_a_typed_place_that_is_not_a_ward_comes_back_as_typed(slack: Slack) -> None:
    form = ReportForm(heard="Potholes", kind="concern", place="Outside the Co-op, Mill Lane")
    await slack.send(slack.signer.view_submission(form, wards=WARDS, themes=THEMES))
    assert slack.handlers.named("submit_report")[0].form == form


async def test_a_submission_without_heard_is_answered_with_errors_keyed_by_block_id(slack: Slack) -> None:
    form = ReportForm(heard="   ", kind=None)
    status, body = await slack.send_json(slack.signer.view_submission(form, wards=WARDS, themes=THEMES))
    assert status == 200
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {BLOCK_HEARD, BLOCK_KIND}
    assert "required" in body["errors"][BLOCK_HEARD]
    assert slack.handlers.named("submit_report") == []


async def test_a_ward_and_a_typed_place_together_are_refused_on_the_typed_place(slack: Slack) -> None:
    values = state_values(ReportForm(heard="x", kind="idea", place="Castle"), wards=WARDS)
    values[BLOCK_PLACE_OTHER] = {BLOCK_PLACE_OTHER: {"type": "plain_text_input", "value": "Mill Lane"}}
    status, body = await slack.send_json(slack.signer.view_submission(values=values, wards=WARDS))
    assert status == 200
    assert body["errors"] == {BLOCK_PLACE_OTHER: "Pick a ward from the list or type a place, not both"}


@pytest.mark.parametrize(("length", "accepted"), [(MAX_HEARD_CHARS, True), (MAX_HEARD_CHARS + 1, False)])
async def test_heard_of_3000_characters_is_accepted_and_3001_refused(
    slack: Slack, length: int, accepted: bool
) -> None:
    form = ReportForm(heard="é" * length, kind="concern")
    status, _, body = await slack.send(slack.signer.view_submission(form))
    assert status == 200
    if accepted:
        assert body == b""
        assert slack.handlers.named("submit_report")[0].form.heard == "é" * length
    else:
        assert json.loads(body)["errors"] == {BLOCK_HEARD: "Too long (3,000 characters at most)"}
        assert slack.handlers.named("submit_report") == []


async def test_errors_from_submit_report_are_shown_in_the_modal(slack: Slack) -> None:
    slack.handlers.submit_answer = view_errors({BLOCK_KIND: "Pick again"})
    status, body = await slack.send_json(slack.signer.view_submission(FULL_FORM, wards=WARDS, themes=THEMES))
    assert (status, body) == (200, {"response_action": "errors", "errors": {BLOCK_KIND: "Pick again"}})


def test_parse_view_submission_refuses_a_payload_without_state() -> None:
    from channels.errors import BadRequest

    with pytest.raises(BadRequest, match="state"):
        parse_view_submission({"type": "view_submission", "view": {"id": "V1"}, "user": {"id": "U1"}})


# -- events and the rest -----------------------------------------------------------------------------------


async def test_a_retried_event_carries_retry_num_and_the_same_event_id(slack: Slack) -> None:
    event = slack.signer.app_mention("anything new on parking?")
    first = await slack.send(slack.signer.event_callback(event, event_id="Ev0RETRY1"))
    again = await slack.send(slack.signer.event_callback(event, event_id="Ev0RETRY1", retry_num=1))
    assert first[0] == again[0] == 200
    assert [(e, r) for e, r, _ in slack.handlers.named("event")] == [("Ev0RETRY1", None), ("Ev0RETRY1", 1)]
    assert slack.handlers.named("event")[1][2]["text"].endswith("anything new on parking?")


@pytest.mark.parametrize(
    "event",
    [
        {"type": "message", "subtype": "bot_message", "bot_id": "B0OTHER", "text": "beep", "ts": "1.2"},
        {"type": "app_mention", "user": BOT_USER_ID, "text": "me", "ts": "1.2", "channel": CHANNEL_ID},
        {"type": "message", "bot_id": BOT_ID, "user": BOT_USER_ID, "text": "our own", "ts": "1.2"},
    ],
    ids=["another bot", "our bot user", "our bot id"],
)
async def test_events_from_bots_are_acknowledged_and_ignored(slack: Slack, event: dict[str, Any]) -> None:
    status, _, _ = await slack.send(slack.signer.event_callback(event))
    assert status == 200
    assert slack.handlers.calls == []


async def test_a_handler_failure_is_a_500_so_slack_retries_the_event(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    slack.handlers.fail_with = RuntimeError("database said: text='the secret report text'")
    status, _, _ = await slack.send(slack.signer.event_callback(slack.signer.app_mention("hi")))
    assert status == 500
    assert "RuntimeError" in caplog.text
    assert "secret report text" not in caplog.text


async def test_no_report_text_reaches_the_logs_at_info(
    slack: Slack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    secret = "Mrs Example at 4 Elm Road says"
    await slack.send(slack.signer.slash_command(secret))
    await slack.send(slack.signer.slash_command(secret, team_id=OTHER_TEAM_ID))
    await slack.send(slack.signer.slash_command(secret, command="/unknown"))
    await slack.send(slack.signer.view_submission(ReportForm(heard=secret * 100, kind="concern")))
    await slack.send(slack.signer.raw(b"payload=" + secret.encode()))
    body, headers = slack.signer.slash_command(secret)
    await slack.send((body, {**headers, "x-slack-signature": "v0=" + "0" * 64}))
    assert secret not in caplog.text


async def test_bolts_internal_headers_cannot_be_smuggled_onto_a_signed_request(slack: Slack) -> None:
    body, headers = slack.signer.slash_command("bins")
    headers = {**headers, "x-slack-bolt-lazy-only": "1", "x-slack-bolt-lazy-function-name": "x"}
    status, _, _ = await slack.send((body, headers))
    assert status == 200
    assert len(slack.handlers.named("quick_report")) == 1


@pytest.mark.parametrize(
    "signed",
    [
        lambda s: s.slash_command("fly-tipping", team_id=OTHER_TEAM_ID),
        lambda s: s.global_shortcut(team_id=OTHER_TEAM_ID),
        lambda s: s.view_submission(FULL_FORM, team_id=OTHER_TEAM_ID),
        lambda s: s.event_callback(s.app_mention("hi"), team_id=OTHER_TEAM_ID),
    ],
    ids=["command", "shortcut", "view", "event"],
)
async def test_requests_from_an_unknown_workspace_are_refused(slack: Slack, signed: Any) -> None:
    status, body = await slack.send_json(signed(slack.signer))
    assert (status, body["text"]) == (200, UNKNOWN_WORKSPACE_TEXT)
    assert slack.handlers.calls == []


async def test_url_verification_is_answered_with_the_challenge(slack: Slack) -> None:
    status, body = await slack.send_json(slack.signer.url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3g"))
    assert (status, body) == (200, {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3g"})


async def test_ssl_check_is_answered_200_and_unsigned_ssl_check_401(slack: Slack) -> None:
    assert (await slack.send(slack.signer.ssl_check()))[0] == 200
    unsigned = HttpRequest(url="https://x", headers={}, body=b"ssl_check=1&token=x")
    assert (await dispatch(slack.app, unsigned))[0] == 401


@pytest.mark.parametrize(
    "signed",
    [
        lambda s: s.event_callback({"type": "reaction_added", "user": STAFF_USER_ID, "reaction": "eyes"}),
        lambda s: s.global_shortcut(callback_id="someone_elses_shortcut"),
        lambda s: s.slash_command("hello", command="/other"),
        lambda s: s.view_submission(FULL_FORM, callback_id="another_modal"),
    ],
    ids=["event type", "shortcut", "command", "modal"],
)
async def test_a_request_no_listener_handles_gets_a_deliberate_200(slack: Slack, signed: Any) -> None:
    status, _, body = await slack.send(signed(slack.signer))
    assert (status, body) == (200, b"")
    assert slack.handlers.calls == []


async def test_events_never_depend_on_auth_test_so_a_failing_one_cannot_drop_them(fake: FakeSlack) -> None:
    fake.always = Fault.invalid_auth().on("auth.test")
    slack = make_slack(fake.base_url)
    status, _, _ = await slack.send(
        slack.signer.event_callback(slack.signer.app_mention("hi"), event_id="Ev01")
    )
    assert status == 200
    assert [e for e, _, _ in slack.handlers.named("event")] == ["Ev01"]
    assert fake.calls("auth.test") == []
    with pytest.raises(Misconfigured):  # ...and the start-up check fails loudly instead
        await whoami(web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=1.0))


async def test_whoami_reads_the_identity_from_auth_test(fake: FakeSlack) -> None:
    identity = await whoami(web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=1.0))
    assert identity == IDENTITY


# -- Web API -----------------------------------------------------------------------------------------------


async def test_post_message_honours_retry_after_on_a_429_then_succeeds(fake: FakeSlack) -> None:
    fake.faults.append(Fault.ratelimited(retry_after=1))
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    ts = await post_message(client, CHANNEL_ID, "Weekly street themes")
    first, second = fake.calls("chat.postMessage")
    assert (first.answered, first.error, second.answered) == (429, "ratelimited", 200)
    assert second.at - first.at >= 1.0
    assert [m["ts"] for m in fake.messages] == [ts]


async def test_a_long_retry_after_comes_back_to_the_caller_instead_of_sleeping(fake: FakeSlack) -> None:
    fake.faults.append(Fault.ratelimited(retry_after=30))
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    with pytest.raises(ProviderUnavailable) as caught:
        await post_message(client, CHANNEL_ID, "hello")
    assert (caught.value.retry_after, caught.value.provider_code) == (30.0, "ratelimited")
    assert len(fake.calls("chat.postMessage")) == 1


@pytest.mark.parametrize("status", [500, 503])
async def test_post_message_retries_a_server_error(fake: FakeSlack, status: int) -> None:
    fake.faults.append(Fault.server_error(status))
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    await post_message(client, CHANNEL_ID, "hello")
    assert [c.answered for c in fake.calls("chat.postMessage")] == [status, 200]


@pytest.mark.parametrize(
    ("fault", "error", "code"),
    [
        (Fault.channel_not_found(), Rejected, "channel_not_found"),
        (Fault.not_in_channel(), Rejected, "not_in_channel"),
        (Fault.invalid_auth(), Misconfigured, "invalid_auth"),
        (Fault.html(502), ProviderUnavailable, None),
    ],
    ids=["channel_not_found", "not_in_channel", "invalid_auth", "html 502"],
)
async def test_post_message_failures_are_classified_without_retrying(
    fake: FakeSlack, fault: Fault, error: type[Exception], code: str | None
) -> None:
    fake.faults.append(fault)
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    with pytest.raises(error) as caught:
        await post_message(client, CHANNEL_ID, "hello")
    assert getattr(caught.value, "provider_code", None) == code
    assert len(fake.calls("chat.postMessage")) == 1


async def test_the_fake_knows_channels_and_tokens_like_slack(fake: FakeSlack) -> None:
    fake.channels["C0NOTJOINED"] = False
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    with pytest.raises(Rejected, match="channel_not_found"):
        await post_message(client, "C0NOWHERE", "hello")
    with pytest.raises(Rejected, match="not_in_channel"):
        await post_message(client, "C0NOTJOINED", "hello")
    with pytest.raises(Misconfigured, match="invalid_auth"):
        await post_message(web_client("xoxb-wrong", base_url=fake.base_url, timeout=2.0), CHANNEL_ID, "hi")


async def test_a_hung_api_is_provider_unavailable_within_the_timeout(fake: FakeSlack) -> None:
    fake.faults.append(Fault.hang())
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable):
        await post_message(client, CHANNEL_ID, "hello")
    assert time.monotonic() - started < 2.0


async def test_proxy_variables_do_not_divert_the_client(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:1")
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    assert client.proxy is None
    await post_message(client, CHANNEL_ID, "hello")
    assert len(fake.messages) == 1


async def test_the_report_modal_is_accepted_by_views_open_and_a_spent_trigger_is_rejected(
    fake: FakeSlack,
) -> None:
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    long_heard = ReportForm(heard="x" * 5000, kind="idea", place="Mill Lane", quote="q", follow_up=True)
    view = report_modal(
        wards=[f"Ward {n}" for n in range(100)],
        themes=THEMES,
        initial=long_heard,
        suggested=["parking", "not-a-theme"],
        private_metadata="41",
    )
    trigger = new_trigger_id()
    view_id = await open_view(client, trigger, view)
    assert fake.views[view_id]["callback_id"] == "street_report"
    with pytest.raises(Rejected, match="exchanged_trigger_id"):
        await open_view(client, trigger, view)
    fake.faults.append(Fault.expired_trigger_id())
    with pytest.raises(Rejected) as caught:
        await open_view(client, new_trigger_id(), view)
    assert caught.value.provider_code == "expired_trigger_id"


async def test_the_recorded_message_is_valid_block_kit_for_chat_post_message(fake: FakeSlack) -> None:
    message = recorded_message("Bins <!channel> & benches", [("Fly-tipping", "matched 'bins'")] * 12, 7)
    client = web_client(DEFAULT_BOT_TOKEN, base_url=fake.base_url, timeout=2.0)
    await post_message(client, CHANNEL_ID, message["text"], message["blocks"])
    assert "&lt;!channel&gt; &amp; benches" in json.dumps(fake.messages[0]["blocks"])


def test_a_modal_prefilled_from_a_form_round_trips_through_a_submission() -> None:
    view = report_modal(wards=WARDS, themes=THEMES, initial=FULL_FORM, suggested=())
    by_block = {block["block_id"]: block["element"] for block in view["blocks"]}
    assert by_block["kind"]["initial_option"]["value"] == "myth"
    assert by_block["place"]["initial_option"]["value"] == "Riverside"
    assert "initial_value" not in by_block["place_other"]
    assert [o["value"] for o in by_block["themes"]["initial_options"]] == ["parking", "fly-tipping"]
    payload = {
        "view": {"id": "V1", "state": {"values": state_values(FULL_FORM, wards=WARDS, themes=THEMES)}},
        "user": {"id": STAFF_USER_ID, "username": STAFF_USERNAME, "team_id": TEAM_ID},
    }
    assert parse_view_submission(payload).form == FULL_FORM


def test_report_modal_refuses_lists_slack_would_refuse() -> None:
    with pytest.raises(ValueError, match="100"):
        report_modal(wards=[f"W{n}" for n in range(101)], themes=THEMES, initial=None, suggested=())
    with pytest.raises(ValueError, match="private_metadata"):
        report_modal(wards=WARDS, themes=THEMES, initial=None, suggested=(), private_metadata="x" * 3001)


def test_the_manifest_wires_the_command_shortcuts_and_one_request_url() -> None:
    app = manifest("https://loopline.example.gov.uk/")
    url = "https://loopline.example.gov.uk/slack/events"
    [command] = app["features"]["slash_commands"]
    assert (command["command"], command["url"], command["should_escape"]) == ("/street", url, True)
    assert "themes" in command["usage_hint"]
    shortcuts = {(s["type"], s["callback_id"]) for s in app["features"]["shortcuts"]}
    assert shortcuts == {("global", "street_report"), ("message", "report_heard")}
    assert app["settings"]["interactivity"] == {"is_enabled": True, "request_url": url}
    assert app["settings"]["event_subscriptions"] == {"request_url": url, "bot_events": ["app_mention"]}
    assert set(app["oauth_config"]["scopes"]["bot"]) == {
        "commands",
        "chat:write",
        "users:read",
        "app_mentions:read",
    }
    with pytest.raises(ValueError, match="https"):
        manifest("http://loopline.example.gov.uk")


def test_build_bolt_app_refuses_the_oauth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "shh")
    with pytest.raises(ValueError, match="SLACK_CLIENT_ID"):
        make_slack()


def test_the_signer_form_encodes_like_slack() -> None:
    body, headers = SlackSigner().slash_command("a b&c")
    fields = parse_qs(body.decode())
    assert fields["text"] == ["a b&c"]
    assert b"text=a+b%26c" in body
    assert headers["content-type"] == "application/x-www-form-urlencoded"


async def test_concurrent_commands_do_not_share_state(slack: Slack) -> None:
    results = await asyncio.gather(
        *(slack.send(slack.signer.slash_command(f"report {n}")) for n in range(20))
    )
    assert {status for status, _, _ in results} == {200}
    assert sorted(r.text for r in slack.handlers.named("quick_report")) == sorted(
        f"report {n}" for n in range(20)
    )
