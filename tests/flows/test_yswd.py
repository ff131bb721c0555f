"""You Said, We Did cards: reading them from YAML, who they go to, the message they become, what it costs
to send, and reading the resident's answer to "Did this answer your concern?"."""

from __future__ import annotations

from decimal import Decimal

import pytest

from flows.effects import Choice
from flows.segments import is_gsm
from flows.yswd import (
    PULSE_CHOICES,
    TELEGRAM_LIMIT,
    Audience,
    Card,
    CardFileError,
    MissingPlaceholder,
    Problem,
    Replacement,
    card_advice,
    default_template,
    gsm_safe,
    matches,
    parse_card,
    placeholders,
    read_pulse,
    render_message,
    render_template,
    sms_preview,
    telegram_preview,
)
from tests.flows.transcript import PARKS

SOURCE = "lights.yaml"
EMOJI = "\N{GRINNING FACE}"
PRICE = Decimal("0.0395")

LIGHTS = """\
title: Brighter paths in Central Park
survey: parks-2026
status: done
you_said: the main path is too dark after 4pm in winter
we_did: We fitted 12 new lights along the main path
cannot_change: We can't light the woodland trail, because bats roost there
lead_contact: parks@example.gov.uk
public_url: https://example.gov.uk/parks/yswd
audience:
  max_rating: {rating: 2}
"""

WELSH = """\
title: {en: Brighter paths, cy: Llwybrau mwy disglair}
survey: parks-2026
status: in_progress
languages: [en, cy]
you_said: {en: the path is too dark, cy: mae'r llwybr yn rhy dywyll}
we_did: {en: fitting 12 new lights, cy: gosod 12 golau newydd}
lead_contact: parks@example.gov.uk
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of ``text`` where ``fragment`` first appears."""
    for number, line in enumerate(text.splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} is not in the file")


def edit(old: str, new: str, text: str = LIGHTS) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems_in(text: str, **kwargs: object) -> tuple[CardFileError, list[Problem]]:
    with pytest.raises(CardFileError) as caught:
        parse_card(text, SOURCE, **kwargs)  # type: ignore[arg-type]
    return caught.value, list(caught.value.problems)


def card(text: str = LIGHTS) -> Card:
    return parse_card(text, SOURCE)


# Reading a card file


def test_a_good_card_parses_and_plain_strings_are_in_the_default_language() -> None:
    lights = card()

    assert lights.survey == "parks-2026"
    assert lights.status == "done"
    assert lights.title == {"en": "Brighter paths in Central Park"}
    assert lights.cannot_change == {"en": "We can't light the woodland trail, because bats roost there"}
    assert lights.audience == Audience(max_rating={"rating": 2})
    assert not lights.exempt_from_purdah


def test_a_card_checked_against_its_survey_parses() -> None:
    assert parse_card(LIGHTS, SOURCE, survey=PARKS) == card()


def test_a_card_can_be_written_in_several_languages() -> None:
    welsh = card(WELSH)

    assert welsh.default_language == "en"
    assert welsh.text("we_did", "cy") == "gosod 12 golau newydd"
    assert welsh.text("we_did", "pl") == "fitting 12 new lights"
    assert welsh.text("cannot_change", "cy") == ""


def test_not_possible_needs_what_couldnt_change_and_why_pointing_at_the_status_line() -> None:
    text = edit(
        "status: done",
        "status: not_possible",
        edit("cannot_change: We can't light the woodland trail, because bats roost there\n", ""),
    )

    error, problems = problems_in(text)

    assert problems == [
        Problem(
            "cannot_change",
            line_of(text, "status:"),
            "a card whose status is not_possible must say what couldn't change and why",
        )
    ]
    assert str(error).startswith(f"{SOURCE}:3: cannot_change: a card whose status is not_possible")


def test_a_blank_cannot_change_does_not_count_and_points_at_its_own_line() -> None:
    text = edit(
        "status: done",
        "status: not_possible",
        edit(
            "cannot_change: We can't light the woodland trail, because bats roost there",
            'cannot_change: "  "',
        ),
    )

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("cannot_change", line_of(text, "cannot_change:"))]


def test_not_possible_with_a_reason_parses() -> None:
    assert card(edit("status: done", "status: not_possible")).status == "not_possible"


def test_every_card_is_encouraged_to_say_what_couldnt_change() -> None:
    text = edit("cannot_change: We can't light the woodland trail, because bats roost there\n", "")

    assert card_advice(card(text))[0].startswith("Say what couldn't change and why")
    assert card_advice(card()) == ()


@pytest.mark.parametrize(
    ("old", "new", "field", "fragment", "message"),
    [
        ("status: done", "status: finished", "status", "status:", "Input should be 'planned'"),
        ("lead_contact: parks@example.gov.uk", "lead_contact: ''", "lead_contact", "lead_contact:",
         "at least 1 character"),
        ("public_url: https://example.gov.uk/parks/yswd", "public_url: example.gov.uk", "public_url",
         "public_url:", "must be a full https:// link"),
        ("survey: parks-2026", "survey: Parks 2026", "survey", "survey:", "should match pattern"),
        ("status: done", "status: done\nlanguages: []", "languages", "languages:", "at least 1 item"),
        ("max_rating: {rating: 2}", "max_rating: {rating: low}", "audience.max_rating.rating", "max_rating:",
         "valid integer"),
        ("max_rating: {rating: 2}", "questions: {visits: []}", "audience.questions.visits", "questions:",
         "list at least one answer"),
        ("max_rating: {rating: 2}", "themes: [Parks]", "audience.themes[0]", "themes:",
         "'Parks' is not a theme name"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named_with_its_line(
    old: str, new: str, field: str, fragment: str, message: str
) -> None:
    text = edit(old, new)

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [(field, line_of(text, fragment))]
    assert message in problems[0].message


def test_a_missing_field_is_named() -> None:
    _, problems = problems_in(edit("we_did: We fitted 12 new lights along the main path\n", ""))

    assert [(p.field, p.message) for p in problems] == [("we_did", "Field required")]


def test_a_misspelt_field_is_named_with_its_line_as_well_as_the_missing_one() -> None:
    text = edit("we_did:", "we_dd:")

    _, problems = problems_in(text)

    assert [(p.field, p.line, p.message) for p in problems] == [
        ("we_did", 1, "Field required"),
        ("we_dd", line_of(text, "we_dd:"), "Extra inputs are not permitted"),
    ]


def test_a_translation_must_include_the_default_language() -> None:
    text = edit("we_did: {en: fitting 12 new lights, cy: gosod 12 golau newydd}",
                "we_did: {cy: gosod 12 golau newydd}", WELSH)  # fmt: skip

    _, problems = problems_in(text)

    assert [(p.field, p.line, p.message) for p in problems] == [
        ("we_did", line_of(text, "we_did:"), "no text in the default language 'en'")
    ]


def test_broken_yaml_names_the_line() -> None:
    text = edit("status: done", "status: [done")

    error, problems = problems_in(text)

    assert problems[0].field == "(file)"
    assert problems[0].message.startswith("not valid YAML")
    assert str(error).startswith(f"{SOURCE}:")


def test_a_file_that_is_not_a_mapping_is_refused() -> None:
    _, problems = problems_in("- just a list\n")

    assert problems == [Problem("(file)", 1, "expected a mapping of card fields")]


def test_against_its_survey_the_audience_must_name_real_questions_and_possible_answers() -> None:
    text = edit(
        "  max_rating: {rating: 2}\n",
        "  questions:\n    visits: [weekly, daily]\n    colour: [red]\n    why: [anything]\n"
        "  max_rating: {visits: 2}\n",
    )

    _, problems = problems_in(text, survey=PARKS)

    assert [(p.field, p.line) for p in problems] == [
        ("audience.questions.visits", line_of(text, "visits: [weekly")),
        ("audience.questions.colour", line_of(text, "colour:")),
        ("audience.questions.why", line_of(text, "why:")),
        ("audience.max_rating.visits", line_of(text, "max_rating:")),
    ]
    assert "['daily'] are not possible answers to 'visits'" in problems[0].message
    assert "has no question 'colour'" in problems[1].message
    assert "free-text question" in problems[2].message
    assert "needs a scale question" in problems[3].message


def test_against_another_survey_the_card_is_refused() -> None:
    text = edit("survey: parks-2026", "survey: bins-2026")

    _, problems = problems_in(text, survey=PARKS)

    assert [(p.field, p.line) for p in problems] == [("survey", line_of(text, "survey:"))]


# Who a card is for

LOW_RATERS = Audience(questions={"rating": ("1", "2")})


def test_a_card_without_an_audience_goes_to_everyone_who_took_part() -> None:
    assert Audience().everyone
    assert matches(Audience(), {}, None, ())


def test_yaml_numbers_in_an_audience_are_read_as_answers() -> None:
    text = edit("max_rating: {rating: 2}", "questions: {rating: [1, 2], visits: weekly}")

    assert card(text).audience.questions == {"rating": ("1", "2"), "visits": ("weekly",)}


def test_the_answer_must_be_one_of_those_listed() -> None:
    assert matches(LOW_RATERS, {"rating": "1"}, None, ())
    assert not matches(LOW_RATERS, {"rating": "3"}, None, ())
    assert not matches(LOW_RATERS, {"rating": None}, None, ())  # skipped
    assert not matches(LOW_RATERS, {}, None, ())  # never asked


def test_rated_at_most_n() -> None:
    at_most_two = Audience(max_rating={"rating": 2})

    assert matches(at_most_two, {"rating": "2"}, None, ())
    assert matches(at_most_two, {"rating": "1"}, None, ())
    assert not matches(at_most_two, {"rating": "3"}, None, ())
    assert not matches(at_most_two, {"rating": "low"}, None, ())
    assert not matches(at_most_two, {}, None, ())


def test_the_ward_must_be_one_of_those_listed() -> None:
    abbey = Audience(wards=("Abbey", "Castle Hill"))

    assert matches(abbey, {}, "Castle Hill", ())
    assert not matches(abbey, {}, "Riverside", ())
    assert not matches(abbey, {}, None, ())


def test_any_one_of_the_themes_is_enough() -> None:
    lighting = Audience(themes=("street-lighting", "anti-social-behaviour"))

    assert matches(lighting, {}, None, {"parks", "street-lighting"})
    assert not matches(lighting, {}, None, {"parks"})
    assert not matches(lighting, {}, None, ())


def test_every_condition_must_hold() -> None:
    narrow = Audience(questions={"visits": ("weekly",)}, max_rating={"rating": 2}, wards=("Abbey",))

    assert matches(narrow, {"visits": "weekly", "rating": "1"}, "Abbey", ())
    assert not matches(narrow, {"visits": "monthly", "rating": "1"}, "Abbey", ())
    assert not matches(narrow, {"visits": "weekly", "rating": "4"}, "Abbey", ())
    assert not matches(narrow, {"visits": "weekly", "rating": "1"}, "Castle", ())


# The message

LIGHTS_SMS = (
    "Brighter paths in Central Park. "
    "You said: the main path is too dark after 4pm in winter. "
    "We did: We fitted 12 new lights along the main path. "
    "What we couldn't change: We can't light the woodland trail, because bats roost there. "
    "More: https://example.gov.uk/parks/yswd "
    "Did this answer your concern? Reply 1 Yes, 2 Partly, 3 No, or STOP to stop."
)


def test_the_sms_says_what_was_said_done_and_not_done_then_asks_for_a_number() -> None:
    rendered = render_message(card(), channel="sms", language="en", values={})

    assert rendered.text == LIGHTS_SMS
    assert rendered.buttons == ()
    assert is_gsm(rendered.text)


def test_on_telegram_the_question_has_buttons_instead_of_numbers() -> None:
    rendered = render_message(card(), channel="telegram", language="en", values={})

    assert rendered.text == LIGHTS_SMS.removesuffix(" Reply 1 Yes, 2 Partly, 3 No, or STOP to stop.")
    assert rendered.buttons == (("Yes", "yes"), ("Partly", "partly"), ("No", "no"))
    assert rendered.choices == (Choice("Yes", "yes"), Choice("Partly", "partly"), Choice("No", "no"))
    assert tuple(value for _, value in rendered.buttons) == PULSE_CHOICES


def test_the_message_is_in_the_residents_language_when_the_card_has_it() -> None:
    sms = render_message(card(WELSH), channel="sms", language="cy", values={})
    telegram = render_message(card(WELSH), channel="telegram", language="cy", values={})

    assert sms.text == (
        "Llwybrau mwy disglair. Fe ddywedoch chi: mae'r llwybr yn rhy dywyll. "
        "Beth rydyn ni'n ei wneud: gosod 12 golau newydd. Ydy hyn yn ateb eich pryder? "
        "Atebwch 1 Ydy, 2 Yn rhannol, 3 Nac ydy, neu STOP i stopio."
    )
    assert telegram.buttons == (("Ydy", "yes"), ("Yn rhannol", "partly"), ("Nac ydy", "no"))


def test_a_language_the_card_is_not_written_in_gets_the_default_language_throughout() -> None:
    rendered = render_message(card(), channel="telegram", language="cy", values={})

    assert rendered.text.startswith("Brighter paths in Central Park. You said:")
    assert rendered.buttons[0] == ("Yes", "yes")


@pytest.mark.parametrize(
    ("status", "label"),
    [("planned", "What we'll do:"), ("in_progress", "What we're doing:"), ("done", "We did:"),
     ("not_possible", "We did:")],
)  # fmt: skip
def test_what_we_did_is_worded_for_the_status(status: str, label: str) -> None:
    text = default_template(card(edit("status: done", f"status: {status}")), channel="sms", language="en")

    assert f" {label} We fitted 12 new lights" in text


def test_placeholders_in_the_card_are_filled_from_the_values() -> None:
    text = edit("We fitted 12 new lights", "We fitted ((count)) new lights in ((park))")

    values = {"count": "12", "park": "Abbey"}
    rendered = render_message(card(text), channel="sms", language="en", values=values)

    assert "We did: We fitted 12 new lights in Abbey along the main path." in rendered.text


def test_a_missing_value_is_an_error_at_preview_naming_every_placeholder() -> None:
    text = edit("We fitted 12 new lights", "We fitted ((count)) new lights in ((park))")

    with pytest.raises(MissingPlaceholder) as caught:
        render_message(card(text), channel="sms", language="en", values={"count": "12"})

    assert caught.value.names == ("park",)
    assert str(caught.value) == "no value for ((park))"


# Editable templates


def test_an_edited_template_is_filled_in() -> None:
    template = "Hi ((first name)). You said ((you said)). We did: ((we did))."

    assert placeholders(template) == {"first name", "you said", "we did"}
    values = {"first name": "Sam", "you said": "more bins", "we did": "added 20"}
    assert render_template(template, values) == "Hi Sam. You said more bins. We did: added 20."


def test_placeholder_names_ignore_case_and_spaces_as_in_notify() -> None:
    assert render_template("Hello (( First  Name ))!", {"first name": "Sam"}) == "Hello Sam!"


def test_every_missing_placeholder_is_named_and_blank_values_count_as_missing() -> None:
    with pytest.raises(MissingPlaceholder) as caught:
        render_template("((ward)): ((date)) ((time))", {"time": "  "})

    assert caught.value.names == ("date", "time", "ward")
    assert str(caught.value) == "no value for ((date)), ((time)), ((ward))"


def test_a_value_is_inserted_as_it_is_and_never_filled_in_again() -> None:
    assert render_template("((a)) and ((b))", {"a": "((b))", "b": "two"}) == "((b)) and two"


def test_a_template_without_placeholders_needs_no_values() -> None:
    assert placeholders("Plain text (with brackets)") == set()
    assert render_template("Plain text (with brackets)", {}) == "Plain text (with brackets)"


# What an SMS costs


def test_160_plain_characters_are_one_segment_and_161_are_two() -> None:
    one = sms_preview("a" * 160, recipients=1000, price_per_segment=PRICE)
    two = sms_preview("a" * 161, recipients=1000, price_per_segment=PRICE)

    assert (one.encoding, one.length, one.segments, one.total_segments, one.cost) == (
        "GSM-7", 160, 1, 1000, Decimal("39.5000"))  # fmt: skip
    assert (two.segments, two.total_segments, two.cost) == (2, 2000, Decimal("79.0000"))
    assert one.forcing_ucs2 == ()
    assert one.gsm_safe_text is None
    assert one.saving == 0


def test_one_emoji_makes_the_message_ucs2_with_no_replacement_offered() -> None:
    preview = sms_preview("Thanks! " + EMOJI + " " + "a" * 60, recipients=10, price_per_segment=PRICE)

    assert preview.encoding == "UCS-2"
    assert preview.length == 71  # the emoji counts twice
    assert preview.segments == 2
    assert preview.forcing_ucs2 == (Replacement(EMOJI, 1, None),)
    assert preview.gsm_safe_text is None


def test_welsh_circumflexes_make_the_message_ucs2_and_are_never_replaced() -> None:
    text = "Diolch am ddweud eich barn am y dŵr a'r tŷ bach yn y parc."
    preview = sms_preview(text, recipients=1, price_per_segment=PRICE)

    assert preview.encoding == "UCS-2"
    assert preview.forcing_ucs2 == (Replacement("ŵ", 1, None), Replacement("ŷ", 1, None))
    assert gsm_safe(text) == text


def test_euro_and_caret_count_double_in_gsm() -> None:
    euros = sms_preview("€" * 80, recipients=1, price_per_segment=PRICE)
    carets = sms_preview("^" * 80 + "a", recipients=1, price_per_segment=PRICE)

    assert (euros.encoding, euros.length, euros.segments) == ("GSM-7", 160, 1)
    assert (carets.encoding, carets.length, carets.segments) == ("GSM-7", 161, 2)


def test_smart_quotes_force_ucs2_and_gsm_safe_fixes_them() -> None:
    text = "You said “the lights aren’t working”. We’ve fixed " + "them " * 14 + "at last."
    preview = sms_preview(text, recipients=500, price_per_segment=PRICE)

    assert preview.encoding == "UCS-2"
    assert preview.segments == 2
    assert preview.forcing_ucs2 == (
        Replacement("“", 1, '"'), Replacement("’", 2, "'"), Replacement("”", 1, '"'))  # fmt: skip
    assert preview.gsm_safe_text == gsm_safe(text)
    assert preview.gsm_safe_text is not None
    assert preview.gsm_safe_text.startswith("You said \"the lights aren't working\". We've fixed")
    assert is_gsm(preview.gsm_safe_text)
    assert preview.gsm_safe_segments == 1
    assert preview.saving == 500 * PRICE


def test_gsm_safe_replaces_dashes_ellipses_and_odd_spaces() -> None:
    assert gsm_safe("Open 9–5 — closed Sundays… see\u00a0you") == "Open 9-5 - closed Sundays... see you"
    assert gsm_safe("soft\u00adhyphen\u200b") == "softhyphen"
    assert is_gsm(gsm_safe("‘quoted’ “words” – dash — dash … \u00a0"))


def test_an_impossible_preview_is_refused() -> None:
    with pytest.raises(ValueError, match="recipients"):
        sms_preview("hi", recipients=-1, price_per_segment=PRICE)
    with pytest.raises(ValueError, match="price"):
        sms_preview("hi", recipients=1, price_per_segment=Decimal("-0.01"))


def test_a_rendered_card_can_be_previewed() -> None:
    preview = sms_preview(render_message(card(), channel="sms", language="en", values={}).text,
                          recipients=240, price_per_segment=PRICE)  # fmt: skip

    assert preview.encoding == "GSM-7"
    assert preview.segments == 3
    assert preview.cost == 3 * 240 * PRICE


# Telegram


def test_telegram_takes_up_to_4096_characters() -> None:
    assert TELEGRAM_LIMIT == 4096
    assert telegram_preview("a" * 4096).fits
    too_long = telegram_preview("a" * 4097)
    assert not too_long.fits
    assert too_long.problem == "the message is 4097 characters; Telegram allows 4096"


def test_telegram_counts_an_emoji_twice_and_refuses_an_empty_message() -> None:
    assert telegram_preview("a" * 4094 + EMOJI).length == 4096
    assert not telegram_preview("a" * 4095 + EMOJI).fits
    assert telegram_preview("").problem == "the message is empty"
    assert telegram_preview("ŵ" * 4096).problem is None


# Reading the pulse


@pytest.mark.parametrize(
    ("reply", "meaning"),
    [
        ("1", "yes"), ("2", "partly"), ("3", "no"), (" 2. ", "partly"),
        ("yes", "yes"), ("Yes!", "yes"), ("Y", "yes"), ("yeah", "yes"), ("YES thank you", "yes"),
        ("partly", "partly"), ("Partially.", "partly"), ("sort of", "partly"),
        ("no", "no"), ("N", "no"), ("nope", "no"), ("No thanks", "no"), ("not really", "no"),
        # typos
        ("yess", "yes"), ("parlty", "partly"), ("partley", "partly"), ("noo", "no"),
        # Welsh
        ("ie", "yes"), ("Ydy", "yes"), ("do", "yes"), ("na", "no"), ("Nac ydy", "no"), ("naddo", "no"),
        ("yn rhannol", "partly"), ("rhannol", "partly"),
        # thumbs (Telegram)
        ("\N{THUMBS UP SIGN}", "yes"), ("\N{THUMBS DOWN SIGN}", "no"),
    ],
)  # fmt: skip
def test_a_pulse_reply_is_understood(reply: str, meaning: str) -> None:
    assert read_pulse(reply) == meaning


@pytest.mark.parametrize(
    "reply", ["", "   ", "4", "0", "12", "maybe", "the lights are still broken", "STOP", "a", "?", "yet",
              "\N{THUMBS UP SIGN}\N{THUMBS DOWN SIGN}"],
)  # fmt: skip
def test_anything_else_is_not_a_pulse_answer(reply: str) -> None:
    assert read_pulse(reply) is None


EDITED_CARD = """\
title: Play areas
survey: parks-2026
you_said: Fix the swings.
we_did: Fixed in January.
status: done
lead_contact: parks@example.gov.uk
messages:
  sms:
    en: "((survey_title)): the swings are fixed. Reply 1 Yes, 2 Partly, 3 No"
"""


def test_an_edited_message_replaces_the_generated_one_with_placeholders_filled() -> None:
    card = parse_card(EDITED_CARD, "card.yaml")

    sms = render_message(card, channel="sms", language="en", values={"survey_title": "Parks"})
    telegram = render_message(card, channel="telegram", language="en", values={"survey_title": "Parks"})

    assert sms.text == "Parks: the swings are fixed. Reply 1 Yes, 2 Partly, 3 No"
    assert "Fixed in January." in telegram.text  # not edited for Telegram: generated
