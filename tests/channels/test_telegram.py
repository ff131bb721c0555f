"""The Telegram adapter, exercised with python-telegram-bot's real ``Bot`` against FakeTelegram.

Updates are built with the fake's helpers (realistic Update JSON) and, where the HTTP shape matters,
POSTed the way Telegram delivers them. Chat ids are made up; phone numbers are Ofcom drama numbers.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from channels.base import Button, ButtonPress, HttpRequest, InboundKind, InboundMessage, OutboundMessage
from channels.errors import (
    AddressInvalid,
    BadRequest,
    Misconfigured,
    ProviderUnavailable,
    RecipientOptedOut,
    Rejected,
    SendError,
)
from channels.telegram import (
    ALLOWED_UPDATES,
    CONTACT_BUTTON_TEXT,
    MAX_TEXT_UNITS,
    Telegram,
    decode_button,
    encode_button,
    split_text,
    utf16_len,
)
from tests.fakes.telegram_api import (
    BOT_USERNAME,
    DEFAULT_TOKEN,
    FakeTelegram,
    Fault,
    post_update,
    update_blocked,
    update_button,
    update_channel_post,
    update_contact,
    update_document,
    update_edited,
    update_group_text,
    update_location,
    update_photo,
    update_sticker,
    update_text,
    update_unblocked,
    update_voice,
)

SECRET = "Lp-webhook_secret-2026"
RESIDENT = 900000001
NEIGHBOUR = 900000002
GROUP = -1001234567890
PHONE = "+447700900123"

# -- helpers and fixtures ------------------------------------------------------------------------------------


def offline() -> Telegram:
    """An adapter that is never started: verify and parse_update need no I/O."""
    return Telegram(token=DEFAULT_TOKEN, webhook_secret=SECRET)


def raw(update: dict[str, Any]) -> bytes:
    return json.dumps(update).encode()


def parse(update: dict[str, Any]) -> InboundMessage | None:
    return offline().parse_update(raw(update))


def parsed(update: dict[str, Any]) -> InboundMessage:
    message = parse(update)
    assert message is not None
    return message


def webhook(headers: dict[str, str], body: bytes = b"{}") -> HttpRequest:
    return HttpRequest(url="https://loopline.example.gov.uk/webhooks/telegram", headers=headers, body=body)


def outbound(text: str = "How satisfied are you with your local park?", **fields: Any) -> OutboundMessage:
    return OutboundMessage(id=42, to=str(fields.pop("to", RESIDENT)), text=text, **fields)


def scale(question: str = "parks-q1") -> tuple[Button, ...]:
    return tuple(Button(str(n), encode_button(question, str(n))) for n in range(1, 6))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def adapter_for(fake: FakeTelegram, *, timeout: float = 2.0, per_chat_interval: float = 0.0) -> Telegram:
    return Telegram(
        token=fake.token,
        webhook_secret=SECRET,
        api_base_url=fake.base_url,
        timeout=timeout,
        per_chat_interval=per_chat_interval,
    )


@pytest.fixture
async def telegram(fake: FakeTelegram) -> AsyncIterator[Telegram]:
    adapter = adapter_for(fake)
    await adapter.start()
    yield adapter
    await adapter.close()


# -- construction and start ----------------------------------------------------------------------------------


def test_the_adapter_is_built_outside_an_event_loop_and_never_shows_its_token() -> None:
    adapter = offline()
    assert adapter.name == "telegram"
    assert DEFAULT_TOKEN.split(":")[1] not in repr(adapter)
    with pytest.raises(RuntimeError):
        _ = adapter.username


@pytest.mark.parametrize("secret", ["", "has space", "semi;colon", "x" * 257, "ü"])
def test_a_webhook_secret_telegram_would_refuse_is_rejected_at_construction(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook_secret"):
        Telegram(token=DEFAULT_TOKEN, webhook_secret=secret)


async def test_start_calls_get_me_and_learns_the_username_for_deep_links(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    assert telegram.username == BOT_USERNAME
    assert telegram.deep_link("parks-2026") == f"https://t.me/{BOT_USERNAME}?start=parks-2026"
    assert [r.answered for r in fake.calls("getMe")] == [200]
    with pytest.raises(ValueError, match="payload"):
        telegram.deep_link("not allowed!")


@pytest.mark.parametrize(
    "token",
    ["5123456789:AAHwrong-Loopline_token-0123456789abcdef", "not-a-token"],
    ids=["well-formed but unknown (401)", "malformed (404)"],
)
async def test_a_bad_token_fails_loudly_at_start_without_leaking_the_token(
    fake: FakeTelegram, token: str
) -> None:
    adapter = Telegram(token=token, webhook_secret=SECRET, api_base_url=fake.base_url)
    with pytest.raises(Misconfigured) as caught:
        await adapter.start()
    error = caught.value
    assert not error.retryable
    assert token not in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
    await adapter.close()


async def test_an_unreachable_api_at_start_is_provider_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    adapter = Telegram(token=DEFAULT_TOKEN, webhook_secret=SECRET, api_base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderUnavailable):
        await adapter.start()
    await adapter.close()


async def test_send_before_start_starts_once_and_close_is_idempotent(fake: FakeTelegram) -> None:
    adapter = adapter_for(fake)
    await adapter.send(outbound("one"))
    await adapter.send(outbound("two"))
    assert len(fake.calls("getMe")) == 1
    await adapter.close()
    await adapter.close()


# -- verify --------------------------------------------------------------------------------------------------


def test_a_request_with_our_secret_token_is_accepted() -> None:
    assert offline().verify(webhook({"x-telegram-bot-api-secret-token": SECRET}))


def test_the_header_name_is_matched_whatever_its_case() -> None:
    assert offline().verify(webhook({"X-Telegram-Bot-Api-Secret-Token": SECRET}))


def test_a_wrong_secret_token_is_rejected() -> None:
    assert not offline().verify(webhook({"x-telegram-bot-api-secret-token": "Lp-webhook_secret-2025"}))


@pytest.mark.parametrize("headers", [{}, {"x-telegram-bot-api-secret-token": ""}], ids=["missing", "empty"])
def test_a_missing_or_empty_secret_token_is_rejected(headers: dict[str, str]) -> None:
    assert not offline().verify(webhook(headers))


@pytest.mark.parametrize(
    "supplied",
    [
        SECRET.upper(),
        SECRET.lower(),
        f" {SECRET}",
        f"{SECRET} ",
        f"{SECRET}\n",
        SECRET[:-1],
        SECRET + "6",
        "Ü",
    ],
)
def test_the_secret_token_must_match_exactly_in_case_and_whitespace(supplied: str) -> None:
    assert not offline().verify(webhook({"x-telegram-bot-api-secret-token": supplied}))


async def test_an_update_posted_as_telegram_does_is_verified_and_parsed() -> None:
    adapter = offline()
    seen: list[InboundMessage | None] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {name.lower(): value for name, value in request.headers.items()}
        provider_request = HttpRequest(url=str(request.url), headers=headers, body=body)
        if not adapter.verify(provider_request):
            return web.Response(status=403)
        try:
            seen.append(adapter.parse_update(body))
        except BadRequest:
            return web.Response(status=400)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/webhooks/telegram", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    url = f"http://{host}:{port}/webhooks/telegram"
    update = update_text(RESIDENT, "Bore da! 🌳 Ydw")
    try:
        async with aiohttp.ClientSession() as session:
            assert await post_update(session, url, update, secret=SECRET) == 200
            assert await post_update(session, url, update, secret=SECRET) == 200  # a redelivery
            assert await post_update(session, url, update, secret="wrong") == 403
            assert await post_update(session, url, update, secret=None) == 403
            async with session.post(
                url, data=b"{not json", headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}
            ) as response:
                assert response.status == 400
    finally:
        await runner.cleanup()
    assert [m.text if m else None for m in seen] == ["Bore da! 🌳 Ydw", "Bore da! 🌳 Ydw"]
    assert {m.provider_id if m else None for m in seen} == {str(update["update_id"])}


# -- parse_update: messages ----------------------------------------------------------------------------------


def test_a_text_message_becomes_text_from_the_chat_with_the_update_id_as_provider_id() -> None:
    update = update_text(RESIDENT, "The swings are broken", update_id=700123456)
    message = parsed(update)
    assert message.channel == "telegram"
    assert message.kind is InboundKind.TEXT
    assert message.sender == str(RESIDENT)
    assert message.text == "The swings are broken"
    assert message.provider_id == "700123456"
    assert message.command is None
    assert message.private is True


@pytest.mark.parametrize(
    "text",
    ["/start parks-2026", f"/start@{BOT_USERNAME} parks-2026", "/START   parks-2026  "],
)
def test_start_with_a_deep_link_payload_gives_the_command_and_the_payload(text: str) -> None:
    message = parsed(update_text(RESIDENT, text))
    assert (message.kind, message.command, message.text) == (InboundKind.TEXT, "start", "parks-2026")


@pytest.mark.parametrize("command", ["start", "stop", "help", "language"])
def test_bare_commands_have_empty_text(command: str) -> None:
    message = parsed(update_text(RESIDENT, f"/{command}"))
    assert (message.command, message.text) == (command, "")


def test_an_unknown_command_keeps_its_name() -> None:
    message = parsed(update_text(RESIDENT, "/report pothole on Mill Lane"))
    assert (message.command, message.text) == ("report", "pothole on Mill Lane")


def test_a_slash_that_is_not_a_command_stays_text() -> None:
    for text in ["/ hello", " /start", "1/2 of the bins", "/?"]:
        message = parsed(update_text(RESIDENT, text))
        assert (message.command, message.text) == (None, text)


async def test_a_command_addressed_to_another_bot_is_plain_text(telegram: Telegram) -> None:
    message = telegram.parse_update(raw(update_text(RESIDENT, "/start@SomeOtherBot x")))
    assert message is not None
    assert (message.command, message.text) == (None, "/start@SomeOtherBot x")
    ours = telegram.parse_update(raw(update_text(RESIDENT, f"/stop@{BOT_USERNAME.lower()}")))
    assert ours is not None
    assert ours.command == "stop"


@pytest.mark.parametrize(
    ("code", "language"),
    [
        ("cy", "cy"),
        ("en", "en"),
        ("en-GB", "en"),
        ("pt-br", "pt"),
        ("zh_Hans", "zh"),
        (None, None),
        ("", None),
        ("??", None),
    ],
)
def test_the_language_is_the_primary_subtag_of_the_users_language_code(
    code: str | None, language: str | None
) -> None:
    assert parsed(update_text(RESIDENT, "hi", language_code=code)).language == language


def test_a_5000_character_message_is_parsed_whole() -> None:
    text = ("Mae'r parc yn hyfryd 🌳 " * 250)[:5000]
    assert parsed(update_text(RESIDENT, text)).text == text


def test_nul_characters_are_removed_from_text() -> None:
    assert parsed(update_text(RESIDENT, "yes\x00")).text == "yes"


def test_a_group_message_is_not_private_but_keeps_its_kind_and_command() -> None:
    message = parsed(update_group_text(GROUP, "/start parks-2026"))
    assert (message.kind, message.command, message.private) == (InboundKind.TEXT, "start", False)
    assert message.sender == str(GROUP)


@pytest.mark.parametrize(
    "update",
    [
        update_photo(RESIDENT),
        update_photo(RESIDENT, caption="the broken bench"),
        update_sticker(RESIDENT),
        update_voice(RESIDENT),
        update_document(RESIDENT),
        update_location(RESIDENT),
        update_edited(RESIDENT, "actually, no"),
        update_contact(RESIDENT, PHONE, own=False),
    ],
    ids=[
        "photo",
        "photo with caption",
        "sticker",
        "voice",
        "document",
        "location",
        "edit",
        "someone's contact",
    ],
)
def test_anything_but_text_buttons_and_own_contacts_is_unsupported_with_empty_text(
    update: dict[str, Any],
) -> None:
    message = parsed(update)
    assert (message.kind, message.text, message.sender, message.private) == (
        InboundKind.UNSUPPORTED,
        "",
        str(RESIDENT),
        True,
    )


def test_a_channel_post_is_unsupported_and_not_private() -> None:
    message = parsed(update_channel_post(-1009876543210, "Council news"))
    assert (message.kind, message.private) == (InboundKind.UNSUPPORTED, False)


@pytest.mark.parametrize("phone", ["447700900123", "+447700900123", "+44 7700 900123"])
def test_the_senders_own_contact_gives_their_phone_in_e164(phone: str) -> None:
    message = parsed(update_contact(RESIDENT, phone))
    assert (message.kind, message.contact_phone, message.text) == (InboundKind.CONTACT, PHONE, "")


def test_a_contact_with_no_usable_number_is_unsupported() -> None:
    assert parsed(update_contact(RESIDENT, "12")).kind is InboundKind.UNSUPPORTED


# -- parse_update: buttons, membership, other updates --------------------------------------------------------


def test_a_button_press_gives_the_decoded_value_and_the_press() -> None:
    data = encode_button("parks-q1", "4")
    update = update_button(RESIDENT, data, message_id=77, query_id="4382917450001", language_code="cy")
    message = parsed(update)
    assert (message.kind, message.text, message.sender, message.language) == (
        InboundKind.BUTTON,
        "4",
        str(RESIDENT),
        "cy",
    )
    assert message.press == ButtonPress(query_id="4382917450001", message_id=77, data=data)


@pytest.mark.parametrize(
    "data", ["b|parks-q1|4", "a|parks-q1", "garbage", "", "a|q|" + "x" * 70, None], ids=repr
)
def test_a_press_with_forged_or_missing_data_is_a_button_with_empty_text(data: str | None) -> None:
    message = parsed(update_button(RESIDENT, data, message_id=77))
    assert (message.kind, message.text) == (InboundKind.BUTTON, "")
    assert message.press is not None
    assert message.press.data == (data or "")


def test_a_press_on_an_inline_mode_message_comes_from_the_user() -> None:
    update = update_button(RESIDENT, "a|q|1", message_id=1)
    del update["callback_query"]["message"]
    update["callback_query"]["inline_message_id"] = "AAAAAHk"
    message = parsed(update)
    assert (message.sender, message.private) == (str(RESIDENT), False)
    assert message.press is not None
    assert message.press.message_id is None


def test_blocking_and_unblocking_the_bot_are_reported() -> None:
    assert parsed(update_blocked(RESIDENT)).kind is InboundKind.BLOCKED
    assert parsed(update_unblocked(RESIDENT)).kind is InboundKind.UNBLOCKED
    assert parsed(update_blocked(RESIDENT)).sender == str(RESIDENT)


def test_membership_changes_in_groups_carry_nothing_to_store() -> None:
    update = update_blocked(RESIDENT)
    update["my_chat_member"]["chat"] = {"id": GROUP, "title": "Riverside residents", "type": "supergroup"}
    assert parse(update) is None
    promoted = update_blocked(RESIDENT)
    promoted["my_chat_member"]["new_chat_member"]["status"] = "administrator"
    assert parse(promoted) is None


def test_unknown_update_types_never_raise() -> None:
    reaction = {
        "update_id": 1,
        "message_reaction": {"chat": {"id": RESIDENT, "type": "private"}, "message_id": 3, "date": 1},
    }
    assert parsed(reaction).kind is InboundKind.UNSUPPORTED
    assert parse({"update_id": 2, "poll": {"id": "5", "question": "?", "options": []}}) is None
    assert parse({"update_id": 3, "brand_new_type": {"x": [1, 2]}}) is None
    assert parse({"update_id": 4}) is None


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{not json",
        b"\xff\xfe\x00",
        b"[" * 100_000,
        b"[]",
        b'"text"',
        b"42",
        b"{}",
        b'{"message": {"text": "hi"}}',
        b'{"update_id": "1"}',
        b'{"update_id": true}',
        b'{"update_id": 1.5}',
        b'{"update_id": -1}',
    ],
    ids=lambda b: repr(b[:20]),
)
def test_a_body_that_is_not_an_update_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        offline().parse_update(body)


@pytest.mark.parametrize(
    "update",
    [
        {"update_id": 1, "message": "hi"},
        {"update_id": 1, "message": {"text": "hi"}},
        {"update_id": 1, "message": {"text": "hi", "chat": {"id": "900000001"}}},
        {"update_id": 1, "callback_query": {"data": "a|q|1"}},
        {"update_id": 1, "my_chat_member": {"new_chat_member": {"status": "kicked"}}},
    ],
)
def test_a_known_update_without_the_fields_telegram_always_sends_is_a_bad_request(
    update: dict[str, Any],
) -> None:
    with pytest.raises(BadRequest):
        parse(update)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_update_keys = st.sampled_from(
    ["message", "edited_message", "callback_query", "my_chat_member", "channel_post", "poll", "chat"]
)


@given(update_id=st.integers(min_value=0, max_value=2**40), key=_update_keys, payload=_json)
def test_parse_update_answers_any_update_shaped_json_with_a_message_none_or_bad_request(
    update_id: int, key: str, payload: object
) -> None:
    try:
        result = offline().parse_update(json.dumps({"update_id": update_id, key: payload}).encode())
    except BadRequest:
        return
    assert result is None or result.provider_id == str(update_id)


# -- callback_data -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "value"),
    [("parks-q1", "4"), ("", "yes"), ("q", "Ydw, yn bendant ✓"), ("q7", "a|b")],
)
def test_button_data_round_trips(question: str, value: str) -> None:
    data = encode_button(question, value)
    assert len(data.encode()) <= 64
    assert decode_button(data) == (question, value)


def test_button_data_over_64_bytes_is_refused_counting_bytes_not_characters() -> None:
    encode_button("q", "x" * 60)  # 4 + 60 = 64 bytes: fits
    with pytest.raises(ValueError, match="64"):
        encode_button("q", "x" * 61)
    with pytest.raises(ValueError, match="64"):
        encode_button("q", "ŵ" * 31)  # 31 characters, 62 bytes + 4


@pytest.mark.parametrize(("question", "value"), [("a|b", "1"), ("q", ""), ("q", "line\nbreak")])
def test_button_data_that_could_not_be_decoded_is_refused(question: str, value: str) -> None:
    with pytest.raises(ValueError, match=r"question id|value|control"):
        encode_button(question, value)


@pytest.mark.parametrize(
    "data",
    ["", "a", "a|", "a|q", "a|q|", "b|q|1", "A|q|1", "|q|1", "a|q|" + "x" * 61, "a|q|1\x00", "a|q|\ud800"],
)
def test_forged_or_garbage_button_data_decodes_to_none(data: str) -> None:
    assert decode_button(data) is None


@given(question=st.text(max_size=30), value=st.text(max_size=40))
def test_whatever_encodes_decodes_to_itself(question: str, value: str) -> None:
    try:
        data = encode_button(question, value)
    except ValueError:
        return
    assert decode_button(data) == (question, value)


@given(st.text(max_size=80))
def test_decoding_never_raises(data: str) -> None:
    decoded = decode_button(data)
    assert decoded is None or len(data.encode()) <= 64


# -- split_text ----------------------------------------------------------------------------------------------


def assert_clean_parts(parts: list[str]) -> None:
    for part in parts:
        assert 0 < utf16_len(part) <= MAX_TEXT_UNITS
        part.encode("utf-8")  # raises on a lone surrogate


def test_4096_characters_go_as_one_message() -> None:
    text = "a" * 4096
    assert split_text(text) == [text]


def test_4097_characters_split_at_a_space_into_parts_that_fit() -> None:
    text = ("word " * 820)[:4097]
    parts = split_text(text)
    assert len(parts) == 2
    assert_clean_parts(parts)
    assert " ".join(parts).split() == text.split()


@pytest.mark.parametrize(
    "emoji",
    [
        "😀",
        "👍🏽",
        "🇬🇧",
        "👩\u200d👩\u200d👧",
        "🏴\U000e0067\U000e0062\U000e0077\U000e006c\U000e0073\U000e007f",
        "ŵ",
    ],
    ids=["astral", "skin tone", "flag", "zwj family", "welsh flag", "w circumflex (nfd)"],
)
def test_an_emoji_across_the_split_point_stays_whole(emoji: str) -> None:
    if emoji == "ŵ":
        emoji = "w\u0302"  # w + combining circumflex
    text = "a" * (MAX_TEXT_UNITS - 1) + emoji
    parts = split_text(text)
    assert_clean_parts(parts)
    assert "".join(parts) == text
    assert parts[-1].endswith(emoji)
    assert emoji in parts[-1]


def test_10000_characters_with_emoji_split_on_line_ends() -> None:
    lines = [f"{n}. The park by the river 🌳 needs more benches 👍🏽 and bins" for n in range(1, 400)]
    text = "\n".join(lines)[:10_000]
    parts = split_text(text)
    assert len(parts) == 3
    assert_clean_parts(parts)
    assert "\n".join(parts) == text
    for part in parts[:-1]:
        assert part.split("\n")[-1] in lines  # each cut falls at a line end


def test_a_split_surrogate_pair_is_rejoined_and_a_lone_surrogate_replaced() -> None:
    pair = "\ud83d\ude00"  # 😀 written as two code points
    assert split_text(f"hi {pair}") == ["hi 😀"]
    assert split_text("bad \ud800 end") == ["bad \ufffd end"]


@given(st.text(max_size=300), st.integers(min_value=2, max_value=40))
def test_every_part_fits_and_nothing_but_whitespace_is_lost(text: str, limit: int) -> None:
    parts = split_text(text, limit)
    for part in parts:
        assert utf16_len(part) <= limit
        part.encode("utf-8")
    assert "".join("".join(parts).split()) == "".join(text.replace("\x00", "").split())


# -- send ----------------------------------------------------------------------------------------------------


async def test_a_message_is_sent_to_the_chat_and_its_id_returned(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    provider_id = await telegram.send(outbound("Diolch! Thank you."))
    [sent] = fake.sent
    assert provider_id == f"{RESIDENT}:{sent['message_id']}"
    assert (sent["chat_id"], sent["text"], sent["reply_markup"]) == (RESIDENT, "Diolch! Thank you.", None)
    assert await telegram.send(outbound("again")) == f"{RESIDENT}:{sent['message_id'] + 1}"


async def test_a_1_to_5_scale_goes_in_one_row_with_the_data_as_given(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.send(outbound(buttons=scale()))
    [row] = fake.sent[0]["reply_markup"]["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for b in row] == [
        (str(n), f"a|parks-q1|{n}") for n in range(1, 6)
    ]


async def test_long_labels_go_one_per_row(fake: FakeTelegram, telegram: Telegram) -> None:
    labels = ["Very satisfied", "Satisfied", "Dissatisfied"]
    buttons = tuple(Button(label, encode_button("q2", str(n))) for n, label in enumerate(labels))
    await telegram.send(outbound(buttons=buttons))
    rows = fake.sent[0]["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [[label] for label in labels]


async def test_many_short_labels_are_spread_over_balanced_rows(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    buttons = tuple(Button(str(n), encode_button("q3", str(n))) for n in range(1, 9))
    await telegram.send(outbound(buttons=buttons))
    rows = fake.sent[0]["reply_markup"]["inline_keyboard"]
    assert [len(row) for row in rows] == [4, 4]


async def test_asking_for_contact_offers_a_one_time_share_my_phone_number_button(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.send(outbound("Share your number so we can text you too?", ask_for_contact=True))
    markup = fake.sent[0]["reply_markup"]
    assert markup["keyboard"] == [[{"text": CONTACT_BUTTON_TEXT, "request_contact": True}]]
    assert markup["one_time_keyboard"] is True


async def test_buttons_that_telegram_would_refuse_are_rejected_before_sending(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    with pytest.raises(Rejected, match="64"):
        await telegram.send(outbound(buttons=(Button("1", "x" * 65),)))
    with pytest.raises(Rejected):
        await telegram.send(outbound(buttons=scale(), ask_for_contact=True))
    assert fake.sent == []


async def test_long_text_goes_as_several_messages_with_buttons_on_the_last(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    text = "\n".join(f"{n}. Rate the play area 🛝 by the river" for n in range(1, 400))[:10_000]
    provider_id = await telegram.send(outbound(text, buttons=scale()))
    parts = fake.sent_to(RESIDENT)
    assert len(parts) == 3
    assert all(len(p["text"]) <= 4096 and utf16_len(p["text"]) <= 4096 for p in parts)
    assert "\n".join(p["text"] for p in parts) == text
    assert [p["reply_markup"] is not None for p in parts] == [False, False, True]
    assert provider_id == f"{RESIDENT}:{parts[-1]['message_id']}"


async def test_4096_astral_emoji_are_sent_in_two_parts_that_telegram_accepts(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.send(outbound("😀" * 4096))
    assert [len(p["text"]) for p in fake.sent] == [2048, 2048]


async def test_messages_to_one_chat_are_spaced_a_second_apart_but_other_chats_wait_for_nobody(
    fake: FakeTelegram,
) -> None:
    adapter = adapter_for(fake, per_chat_interval=1.0)
    try:
        await adapter.start()
        await adapter.send(outbound("first", to=RESIDENT))
        await adapter.send(outbound("other chat", to=NEIGHBOUR))
        await adapter.send(outbound("second", to=RESIDENT))
    finally:
        await adapter.close()
    first, other, second = fake.sent
    assert other["at"] - first["at"] < 0.5
    assert second["at"] - first["at"] >= 0.95


@pytest.mark.parametrize(
    ("fault", "expected", "retryable"),
    [
        pytest.param(Fault.retry_after(7), ProviderUnavailable, True, id="429 retry_after"),
        pytest.param(Fault.blocked(), RecipientOptedOut, False, id="403 blocked"),
        pytest.param(Fault.deactivated(), RecipientOptedOut, False, id="403 deactivated"),
        pytest.param(Fault.cannot_initiate(), Rejected, False, id="403 cannot initiate"),
        pytest.param(Fault.kicked_from_group(), Rejected, False, id="403 kicked from group"),
        pytest.param(Fault.chat_not_found(), AddressInvalid, False, id="400 chat not found"),
        pytest.param(Fault.migrated(-1009999999999), AddressInvalid, False, id="400 migrated"),
        pytest.param(Fault.too_long(), Rejected, False, id="400 too long"),
        pytest.param(Fault.unauthorized(), Misconfigured, False, id="401"),
        pytest.param(Fault.server_error(502), ProviderUnavailable, True, id="502 json"),
        pytest.param(Fault.server_error(500), ProviderUnavailable, True, id="500 json"),
        pytest.param(Fault.html(502), ProviderUnavailable, True, id="502 html"),
        pytest.param(Fault.invalid_json(), ProviderUnavailable, True, id="200 invalid json"),
        pytest.param(Fault.disconnect(), ProviderUnavailable, True, id="connection dropped"),
    ],
)
async def test_telegram_errors_map_to_the_channel_error_tree(
    fake: FakeTelegram, telegram: Telegram, fault: Fault, expected: type[SendError], retryable: bool
) -> None:
    fake.faults.append(fault.on("sendMessage"))
    with pytest.raises(expected) as caught:
        await telegram.send(outbound())
    assert type(caught.value) is expected
    assert caught.value.retryable is retryable


async def test_flood_control_says_how_long_to_wait(fake: FakeTelegram, telegram: Telegram) -> None:
    fake.faults.append(Fault.retry_after(7))
    with pytest.raises(ProviderUnavailable) as caught:
        await telegram.send(outbound())
    assert caught.value.retry_after == 7
    assert caught.value.provider_code == "429"


async def test_after_flood_control_the_chat_waits_before_the_next_message(fake: FakeTelegram) -> None:
    adapter = adapter_for(fake, per_chat_interval=0.01)
    try:
        fake.faults_for[str(RESIDENT)] = [Fault.retry_after(1)]
        with pytest.raises(ProviderUnavailable):
            await adapter.send(outbound())
        started = time.monotonic()
        await adapter.send(outbound("to someone else", to=NEIGHBOUR))
        assert time.monotonic() - started < 0.5
        await adapter.send(outbound())
        assert time.monotonic() - started >= 0.9
    finally:
        await adapter.close()


async def test_a_per_chat_fault_hits_only_that_chat(fake: FakeTelegram, telegram: Telegram) -> None:
    fake.faults_for[str(RESIDENT)] = [Fault.blocked()]
    await telegram.send(outbound(to=NEIGHBOUR))
    with pytest.raises(RecipientOptedOut):
        await telegram.send(outbound(to=RESIDENT))
    await telegram.send(outbound(to=RESIDENT))


async def test_a_hanging_api_times_out_as_provider_unavailable(fake: FakeTelegram) -> None:
    adapter = adapter_for(fake, timeout=0.5)
    try:
        await adapter.start()
        fake.always = Fault.hang().on("sendMessage")
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable):
            await adapter.send(outbound())
        assert time.monotonic() - started < 1.5
    finally:
        fake.always = None
        await adapter.close()


async def test_no_send_error_message_contains_the_text_or_the_token(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    secret_text = "my address is 1 Mill Lane"
    for fault in (Fault.blocked(), Fault.chat_not_found(), Fault.html(), Fault.unauthorized()):
        fake.faults.append(fault)
        with pytest.raises(SendError) as caught:
            await telegram.send(outbound(secret_text))
        assert secret_text not in str(caught.value)
        assert fake.token not in str(caught.value)


# -- acknowledge ---------------------------------------------------------------------------------------------


async def ask(telegram: Telegram, fake: FakeTelegram, text: str = "How satisfied are you?") -> ButtonPress:
    provider_id = await telegram.send(outbound(text, buttons=scale()))
    message_id = int(provider_id.split(":")[1])
    return ButtonPress(query_id="4382917450001", message_id=message_id, data=encode_button("parks-q1", "4"))


async def test_acknowledging_answers_the_press_and_marks_the_question_answered(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = await ask(telegram, fake)
    await telegram.acknowledge(
        press, chat_id=str(RESIDENT), chosen="4", original_text="How satisfied are you?"
    )
    assert [a["callback_query_id"] for a in fake.callback_answers] == ["4382917450001"]
    assert fake.callback_answers[0]["text"] is None
    state = fake.message(RESIDENT, press.message_id or 0)
    assert state is not None
    assert state["text"] == "How satisfied are you?\n\n✓ 4"
    assert state["reply_markup"] is None


async def test_a_notice_is_shown_and_nothing_is_edited_without_a_choice(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = await ask(telegram, fake)
    await telegram.acknowledge(press, chat_id=str(RESIDENT), chosen=None, notice="That question has closed.")
    assert fake.callback_answers[0]["text"] == "That question has closed."
    assert fake.edits == []


async def test_without_the_original_text_only_the_buttons_are_removed(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = await ask(telegram, fake)
    await telegram.acknowledge(press, chat_id=str(RESIDENT), chosen="4")
    assert [e["method"] for e in fake.edits] == ["editMessageReplyMarkup"]
    state = fake.message(RESIDENT, press.message_id or 0)
    assert state is not None
    assert state["text"] == "How satisfied are you?"
    assert state["reply_markup"] is None


async def test_a_split_question_is_edited_from_its_last_part(fake: FakeTelegram, telegram: Telegram) -> None:
    text = "\n".join(f"{n}. Tell us about the park" for n in range(1, 300))
    press = await ask(telegram, fake, text)
    await telegram.acknowledge(press, chat_id=str(RESIDENT), chosen="Very satisfied", original_text=text)
    state = fake.message(RESIDENT, press.message_id or 0)
    assert state is not None
    assert state["text"] == split_text(text)[-1] + "\n\n✓ Very satisfied"


async def test_a_second_press_of_an_answered_question_raises_nothing(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = await ask(telegram, fake)
    for _ in range(2):  # the second answer is "query is too old", the second edit "not modified"
        await telegram.acknowledge(
            press, chat_id=str(RESIDENT), chosen="4", original_text="How satisfied are you?"
        )
    assert [r.answered for r in fake.calls("answerCallbackQuery")] == [200, 400]
    assert [r.answered for r in fake.calls("editMessageText")] == [200, 400]


async def test_a_press_on_a_message_that_is_gone_raises_nothing(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = ButtonPress(query_id="99", message_id=123456, data="a|q|1")
    await telegram.acknowledge(press, chat_id=str(RESIDENT), chosen="1", original_text="Gone?")
    assert [r.answered for r in fake.calls("editMessageText")] == [400]


async def test_a_real_failure_while_acknowledging_is_raised_like_send(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    press = await ask(telegram, fake)
    fake.faults.append(Fault.server_error().on("answerCallbackQuery"))
    with pytest.raises(ProviderUnavailable):
        await telegram.acknowledge(press, chat_id=str(RESIDENT), chosen="4")


# -- webhook management --------------------------------------------------------------------------------------


async def test_set_webhook_registers_the_url_our_secret_and_the_allowed_updates(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.set_webhook(
        "https://loopline.example.gov.uk/webhooks/telegram", allowed_updates=ALLOWED_UPDATES
    )
    assert fake.webhook == {
        "url": "https://loopline.example.gov.uk/webhooks/telegram",
        "secret_token": SECRET,
        "allowed_updates": list(ALLOWED_UPDATES),
        "max_connections": 40,
    }


async def test_a_webhook_telegram_refuses_is_rejected(fake: FakeTelegram, telegram: Telegram) -> None:
    with pytest.raises(Rejected, match=r"(?i)https url"):
        await telegram.set_webhook("http://loopline.example.gov.uk/hook", allowed_updates=ALLOWED_UPDATES)
    assert fake.webhook is None


async def test_webhook_info_reports_pending_updates_and_the_last_error(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.set_webhook(
        "https://loopline.example.gov.uk/webhooks/telegram", allowed_updates=ALLOWED_UPDATES
    )
    fake.push_update(update_text(RESIDENT, "one"))
    fake.push_update(update_text(RESIDENT, "two"))
    fake.set_webhook_error("Wrong response from the webhook: 500 Internal Server Error", date=1_790_000_000)
    info = await telegram.webhook_info()
    assert info["url"] == "https://loopline.example.gov.uk/webhooks/telegram"
    assert info["pending_update_count"] == 2
    assert info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    last_error = info["last_error_date"]
    assert isinstance(last_error, datetime)
    assert last_error.timestamp() == 1_790_000_000
    assert info["allowed_updates"] == ALLOWED_UPDATES


async def test_polling_while_a_webhook_is_set_is_misconfigured_until_it_is_deleted(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    await telegram.set_webhook(
        "https://loopline.example.gov.uk/webhooks/telegram", allowed_updates=ALLOWED_UPDATES
    )
    with pytest.raises(Misconfigured):
        await telegram.get_updates(offset=None, timeout=0)
    await telegram.delete_webhook()
    assert fake.webhook is None
    assert await telegram.get_updates(offset=None, timeout=0) == []


# -- long polling --------------------------------------------------------------------------------------------


async def test_polled_updates_come_back_as_raw_bytes_that_parse_like_webhook_bodies(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    pushed = [
        fake.push_update(update_text(RESIDENT, "/start parks-2026", language_code="cy")),
        fake.push_update(update_button(RESIDENT, encode_button("parks-q1", "5"), message_id=3)),
        fake.push_update(update_blocked(NEIGHBOUR)),
        fake.push_update(update_text(RESIDENT, "Ŵyn bach 🐑")),
    ]
    updates = await telegram.get_updates(offset=None, timeout=0)
    assert [update_id for update_id, _ in updates] == [u["update_id"] for u in pushed]
    assert [json.loads(body) for _, body in updates] == pushed
    messages = [telegram.parse_update(body) for _, body in updates]
    assert [(m.kind, m.command, m.text) if m else None for m in messages] == [
        (InboundKind.TEXT, "start", "parks-2026"),
        (InboundKind.BUTTON, None, "5"),
        (InboundKind.BLOCKED, None, ""),
        (InboundKind.TEXT, None, "Ŵyn bach 🐑"),
    ]
    assert fake.calls("getUpdates")[-1].params["allowed_updates"] == list(ALLOWED_UPDATES)


async def test_an_offset_confirms_every_earlier_update(fake: FakeTelegram, telegram: Telegram) -> None:
    first = fake.push_update(update_text(RESIDENT, "one"))
    second = fake.push_update(update_text(RESIDENT, "two"))
    assert [i for i, _ in await telegram.get_updates(offset=None, timeout=0)] == [
        first["update_id"],
        second["update_id"],
    ]
    assert [i for i, _ in await telegram.get_updates(offset=second["update_id"], timeout=0)] == [
        second["update_id"]
    ]
    assert await telegram.get_updates(offset=second["update_id"] + 1, timeout=0) == []
    assert fake.pending_updates == []


async def test_a_long_poll_returns_as_soon_as_an_update_arrives(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, fake.push_update, update_text(RESIDENT, "late"))
    started = time.monotonic()
    updates = await telegram.get_updates(offset=None, timeout=5)
    assert len(updates) == 1
    assert time.monotonic() - started < 2


async def test_an_update_ptb_could_not_model_is_still_returned_raw(
    fake: FakeTelegram, telegram: Telegram
) -> None:
    odd = fake.push_update({"message": {"message_id": 1, "chat": "not an object", "text": "hi"}})
    [(update_id, body)] = await telegram.get_updates(offset=None, timeout=0)
    assert update_id == odd["update_id"]
    with pytest.raises(BadRequest):
        telegram.parse_update(body)


# -- the fake itself -----------------------------------------------------------------------------------------


async def test_the_fake_answers_unknown_methods_and_tokens_as_telegram_does(fake: FakeTelegram) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{fake.base_url}/bot{fake.token}/sendPigeon") as response:
            assert response.status == 404
            assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        async with session.get(
            f"{fake.base_url}/bot5123456789:AAHwrong-Loopline_token-0123456789abcdef/getMe"
        ) as response:
            assert response.status == 401
    assert fake.unknown_methods == ["sendPigeon"]


async def test_the_fake_accepts_json_bodies_and_validates_like_telegram(fake: FakeTelegram) -> None:
    url = f"{fake.base_url}/bot{fake.token}/sendMessage"
    markup = {"inline_keyboard": [[{"text": "1", "callback_data": "a|q|1"}]]}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url, json={"chat_id": RESIDENT, "text": "hi", "reply_markup": markup}
        ) as response:
            body = await response.json()
            assert body["ok"] is True
            assert body["result"]["reply_markup"] == markup
        async with session.post(url, json={"chat_id": RESIDENT, "text": "x" * 4097}) as response:
            assert (await response.json())["description"] == "Bad Request: message is too long"
        bad = {"inline_keyboard": [[{"text": "1", "callback_data": "x" * 65}]]}
        async with session.post(
            url, json={"chat_id": RESIDENT, "text": "hi", "reply_markup": bad}
        ) as response:
            assert (await response.json())["description"] == "Bad Request: BUTTON_DATA_INVALID"
    assert [s["text"] for s in fake.sent] == ["hi"]
