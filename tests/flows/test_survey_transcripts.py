"""The survey conversation as a resident sees it: messages in, replies out, answers stored.

Every test is a transcript played through ``flows.engine.handle_message`` (see ``transcript.py``), against
examples/parks.yaml (open 1 November to 31 December 2026) and a small yes/no survey written inline.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from flows.effects import AnswerStatus, LanguageChosen, OptedIn, OptedOut, Outcome, ReplyKind
from flows.state import Resident
from tests.flows.transcript import LONDON, NOW, PARKS, Conversation, play, yesno_survey

VISITS = "How often do you visit a park?"
VISITS_LIST = "1. Every week\n2. Every month\n3. Rarely or never"
RATING = "How would you rate your nearest play area? (1 poor, 5 excellent)"
WHY = "What should we fix first?"
CHOICE_RETRY = "Sorry, please reply with a number from 1 to 3."
SCALE_RETRY = "Sorry, please reply with a number from 1 to 5."
THANKS = "Thank you, your answers are saved."
BINS = yesno_survey(welsh=False)


# Joining


@pytest.mark.parametrize("keyword", ["PARKS", "parks", " parks! ", "Parks.", "\tPARKS?!\n"])
def test_keyword_in_any_case_with_spaces_and_punctuation_joins(keyword: str) -> None:
    chat = play([keyword])

    assert chat.started == ["parks-2026"]
    intro, question = chat.replies
    assert "Help us decide how to spend next year's play-area budget." in intro
    assert "You can influence: which play areas are renewed first; opening hours." in intro
    assert "You can't change: the total budget, set in February." in intro
    assert "Closes 31 December 2026." in intro
    assert "parks@example.gov.uk" in intro
    assert "Reply STOP to stop." in intro
    assert question.startswith(VISITS)


def test_first_question_is_a_numbered_list_on_sms() -> None:
    replies, _ = play(["PARKS"])

    assert replies[-1] == f"{VISITS}\n{VISITS_LIST}\nReply with a number."


def test_buttons_channel_gets_the_options_as_choices_not_a_numbered_list() -> None:
    chat = play(["PARKS"], buttons=True)

    assert chat.replies[-1] == VISITS
    choices = chat.last.effects[-1].choices  # type: ignore[union-attr]
    assert [(c.label, c.value) for c in choices] == [
        ("Every week", "weekly"),
        ("Every month", "monthly"),
        ("Rarely or never", "rarely"),
    ]


def test_survey_before_its_opening_date_says_when_it_opens_and_starts_nothing() -> None:
    chat = play(["PARKS"], now=datetime(2026, 10, 20, 9, 30, tzinfo=LONDON))

    assert chat.replies == ["Parks and open spaces opens on 1 November 2026. Please text PARKS again then."]
    assert chat.started == []
    assert chat.resident.session is None


def test_survey_after_its_closing_date_says_it_has_closed_and_starts_nothing() -> None:
    chat = play(["PARKS"], now=datetime(2027, 1, 2, 9, 30, tzinfo=LONDON))

    assert chat.replies == [
        "Sorry, Parks and open spaces closed on 31 December 2026. Thank you for your interest."
    ]
    assert chat.started == []
    assert chat.resident.session is None


def test_opening_and_closing_days_are_both_open() -> None:
    assert play(["PARKS"], now=datetime(2026, 11, 1, 0, 1, tzinfo=LONDON)).started == ["parks-2026"]
    assert play(["PARKS"], now=datetime(2026, 12, 31, 23, 0, tzinfo=LONDON)).started == ["parks-2026"]


# A whole survey


def test_completing_the_survey() -> None:
    chat = play(["PARKS", "1", "four"])
    replies, answers = chat

    assert answers == {"visits": "weekly", "rating": "4"}
    assert chat.statuses == {"visits": AnswerStatus.ANSWERED, "rating": AnswerStatus.ANSWERED}
    assert replies[-1].startswith(THANKS)
    assert "31 December 2026" in replies[-1]
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]
    assert chat.resident.session is None
    assert not any(WHY in reply for reply in replies)


def test_texting_the_keyword_after_completing_says_already_taken_part() -> None:
    chat = play(["PARKS", "1", "4", "PARKS"])

    assert chat.replies[-1] == "You have already taken part in Parks and open spaces. Thank you!"
    assert chat.started == ["parks-2026"]
    assert chat.resident.session is None


# Choice questions


@pytest.mark.parametrize(
    ("reply", "stored"),
    [
        ("1", "weekly"),
        ("2", "monthly"),
        (" 3 ", "rarely"),
        ("2.", "monthly"),
        ("a", "weekly"),
        ("B", "monthly"),
        ("c)", "rarely"),
        ("Every week", "weekly"),
        ("EVERY MONTH", "monthly"),
        ("  rarely   or never ", "rarely"),
        ("evry week", "weekly"),
        ("every mnth", "monthly"),
        ("Bob wythnos", "weekly"),  # the Welsh option text, in a survey that has Welsh
    ],
)
def test_choice_accepts_number_letter_text_and_small_typos(reply: str, stored: str) -> None:
    _, answers = play(["PARKS", reply])

    assert answers == {"visits": stored}


@pytest.mark.parametrize("reply", ["4", "0", "d", "sometimes", "every", "1 or 2"])
def test_choice_that_is_not_an_option_gets_a_short_reprompt(reply: str) -> None:
    chat = play(["PARKS", reply])

    assert chat.replies[-1] == CHOICE_RETRY
    assert chat.answers == {}
    assert chat.question == "visits"


# Scale questions


@pytest.mark.parametrize(
    ("reply", "stored"),
    [("4", "4"), (" 5 ", "5"), ("1", "1"), ("four", "4"), ("Three!", "3"), ("pedwar", "4"), ("un", "1")],
)
def test_scale_accepts_digits_and_number_words(reply: str, stored: str) -> None:
    _, answers = play(["PARKS", "1", reply])

    assert answers["rating"] == stored


@pytest.mark.parametrize("reply", ["6", "0", "10", "ten", "pump a chwech", "lots", "4/5"])
def test_scale_out_of_range_or_not_a_number_is_invalid(reply: str) -> None:
    chat = play(["PARKS", "1", reply])

    assert chat.replies[-1] == SCALE_RETRY
    assert "rating" not in chat.answers


def test_a_negative_number_on_a_scale_is_out_of_range() -> None:
    chat = play(["PARKS", "1", "-5"])

    assert chat.replies[-1] == SCALE_RETRY
    assert "rating" not in chat.answers


# Yes/no questions


@pytest.mark.parametrize(
    ("reply", "stored"),
    [("y", "yes"), ("YES", "yes"), ("Yeah!", "yes"), ("n", "no"), ("No", "no"), ("nope", "no")],
)
def test_yes_no_accepts_common_english(reply: str, stored: str) -> None:
    _, answers = play(["BINS", reply], BINS)

    assert answers == {"happy": stored}


@pytest.mark.parametrize(("reply", "stored"), [("ie", "yes"), ("Ie", "yes"), ("na", "no"), ("NA", "no")])
def test_yes_no_accepts_welsh_when_the_survey_has_welsh(reply: str, stored: str) -> None:
    _, answers = play(["BINS", reply], yesno_survey(welsh=True))

    assert answers == {"happy": stored}


def test_welsh_yes_is_not_an_answer_in_an_english_only_survey() -> None:
    chat = play(["BINS", "ie"], BINS)

    assert chat.answers == {}
    assert chat.replies[-1] == "Sorry, please reply YES or NO."


# regression: 'na' was in matching.NO_WORDS
def test_welsh_no_is_not_an_answer_in_an_english_only_survey() -> None:
    chat = play(["BINS", "na"], BINS)

    assert chat.answers == {}
    assert chat.replies[-1] == "Sorry, please reply YES or NO."


def test_yes_no_prompt_says_how_to_answer() -> None:
    replies, _ = play(["BINS"], BINS)

    assert replies[-1] == "Are you happy with the new day?\nReply YES or NO."


# Invalid replies and retries


def test_two_retries_then_the_question_is_recorded_unanswered_and_the_survey_moves_on() -> None:
    chat = play(["PARKS", "sometimes", "often", "dunno"])

    assert chat.replies[2:4] == [CHOICE_RETRY, CHOICE_RETRY]
    assert chat.replies[4].startswith(f"Let's move on.\n{RATING}")
    assert chat.answers == {"visits": None}
    assert chat.statuses == {"visits": AnswerStatus.UNANSWERED}
    assert chat.question == "rating"


def test_an_unanswered_last_question_still_completes_the_survey() -> None:
    chat = play(["PARKS", "2", "x", "y", "z"])

    assert chat.statuses == {"visits": AnswerStatus.ANSWERED, "rating": AnswerStatus.UNANSWERED}
    assert chat.replies[-1].startswith(THANKS)
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


def test_retries_are_counted_per_question() -> None:
    _, answers = play(["PARKS", "x", "x", "1", "x", "x", "3"])

    assert answers == {"visits": "weekly", "rating": "3"}


def test_optional_question_accepts_skip() -> None:
    chat = play(["PARKS", "1", "2", "SKIP"])

    assert chat.replies[-2] == f"{WHY}\nOr reply SKIP."
    assert chat.answers == {"visits": "weekly", "rating": "2", "why": None}
    assert chat.statuses["why"] is AnswerStatus.SKIPPED
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


def test_skip_is_not_accepted_on_a_required_question() -> None:
    chat = play(["PARKS", "skip"])

    assert chat.replies[-1] == CHOICE_RETRY
    assert chat.statuses == {}


def test_a_too_long_free_text_answer_is_refused_with_the_limit() -> None:
    chat = play(["PARKS", "1", "1", "x" * 501])

    assert chat.replies[-1] == "Sorry, that is too long. Please keep it under 500 characters. Or reply SKIP."
    assert "why" not in chat.answers


# regression: a blank text reply was told it was too long
def test_a_blank_free_text_answer_asks_for_words_not_a_shorter_answer() -> None:
    chat = play(["PARKS", "1", "1", "   "])

    assert chat.replies[-1].startswith("Sorry, please reply with your answer in words.")


# Skip logic


@pytest.mark.parametrize("rating", ["1", "2"])
def test_why_is_asked_after_a_low_rating(rating: str) -> None:
    chat = play(["PARKS", "3", rating, "The swings are broken"])

    assert chat.replies[3] == f"{WHY}\nOr reply SKIP."
    assert chat.answers == {"visits": "rarely", "rating": rating, "why": "The swings are broken"}
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


@pytest.mark.parametrize("rating", ["3", "4", "5"])
def test_why_is_not_asked_after_a_good_rating(rating: str) -> None:
    chat = play(["PARKS", "3", rating])

    assert not any(WHY in reply for reply in chat.replies)
    assert chat.answers == {"visits": "rarely", "rating": rating}
    assert chat.replies[-1].startswith(THANKS)


def test_why_is_not_asked_when_the_rating_went_unanswered() -> None:
    chat = play(["PARKS", "3", "x", "x", "x"])

    assert not any(WHY in reply for reply in chat.replies)
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


# One survey at a time


def test_texting_the_same_keyword_mid_survey_resends_the_current_question() -> None:
    chat = play(["PARKS", "1", "PARKS"])

    assert chat.replies[-1].startswith(
        f"You're part way through Parks and open spaces. Here is the next question:\n{RATING}"
    )
    assert chat.started == ["parks-2026"]
    assert chat.question == "rating"
    assert chat.resident.session is not None
    assert chat.resident.session.retries == 0


# regression: the keyword was stored as the free-text answer
def test_texting_the_same_keyword_at_a_free_text_question_resends_it() -> None:
    chat = play(["PARKS", "1", "1", "PARKS"])

    assert "why" not in chat.answers
    assert chat.replies[-1].endswith(f"{WHY}\nOr reply SKIP.")


def test_texting_another_open_surveys_keyword_abandons_the_first_and_starts_the_other() -> None:
    chat = play(["PARKS", "1", "BINS", "yes"], PARKS, BINS)

    assert chat.ended == [("parks-2026", Outcome.ABANDONED)]
    assert chat.started == ["parks-2026", "bins-2026"]
    assert any("Check the new collection days." in reply for reply in chat.replies)
    assert chat.answers == {"visits": "weekly", "happy": "yes"}
    assert chat.in_progress == "bins-2026"


def test_another_keyword_that_is_a_valid_answer_is_taken_as_the_answer() -> None:
    chat = play(["PARKS", "1", "1", "BINS"], PARKS, BINS)

    assert chat.answers["why"] == "BINS"
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


def test_keyword_of_a_survey_that_is_not_open_yet_does_not_abandon_the_current_one() -> None:
    later = yesno_survey(
        welsh=False, keyword="TREES", slug="trees-2027", opens="2027-03-01", closes="2027-04-01"
    )
    chat = play(["PARKS", "TREES"], PARKS, later)

    assert chat.ended == []
    assert chat.replies[-1] == CHOICE_RETRY
    assert chat.in_progress == "parks-2026"


# regression: the current survey was abandoned first
def test_keyword_of_a_survey_already_taken_does_not_abandon_the_current_one() -> None:
    chat = play(["BINS", "yes", "skip", "PARKS", "1", "BINS"], PARKS, BINS)

    assert chat.ended == [("bins-2026", Outcome.COMPLETED)]
    assert chat.in_progress == "parks-2026"


# Reminders and expiry


def test_one_reminder_after_two_days_and_no_second() -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.send("1")
    chat.wait(days=1, hours=23)
    assert chat.remind() == []

    chat.wait(hours=1)
    (reminder,) = chat.remind()
    assert reminder.startswith(
        f"Reminder: you haven't finished Parks and open spaces. Reply to carry on:\n{RATING}"
    )
    assert chat.reply_kinds[-1] is ReplyKind.REMINDER

    chat.wait(hours=6)
    assert chat.remind() == []


def test_the_survey_expires_three_days_after_the_last_activity_and_keeps_its_answers() -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.wait(days=2)
    chat.send("1")  # activity: the three days start again
    chat.wait(days=2, hours=23)
    assert chat.expire() == []
    assert chat.resident.session is not None

    chat.wait(hours=1)
    assert chat.expire() == []
    assert chat.ended == [("parks-2026", Outcome.EXPIRED)]
    assert chat.resident.session is None
    assert chat.answers == {"visits": "weekly"}  # nothing withdrawn


def test_a_message_after_expiry_is_a_fresh_message() -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.send("1")
    chat.wait(days=3)

    replies = chat.send("4")

    assert chat.ended == [("parks-2026", Outcome.EXPIRED)]
    assert chat.answers == {"visits": "weekly"}
    assert replies == ["Text PARKS for Parks and open spaces to take part."]


def test_the_keyword_after_expiry_starts_again_from_the_first_question() -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.send("1")
    chat.wait(days=4)

    replies = chat.send("PARKS")

    assert chat.ended == [("parks-2026", Outcome.EXPIRED)]
    assert chat.started == ["parks-2026", "parks-2026"]
    assert replies[-1].startswith(VISITS)


# regression: re-sends and HELP did not count as activity
@pytest.mark.parametrize("again", ["PARKS", "HELP"])
def test_asking_for_the_question_again_counts_as_activity(again: str) -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.wait(days=2, hours=23)
    chat.send(again)  # "where was I?"
    chat.wait(hours=2)

    replies = chat.send("1")

    assert chat.ended == []
    assert replies[-1].startswith(RATING)


# regression: remind ignored the closing date
def test_no_reminder_for_a_survey_that_has_closed() -> None:
    chat = Conversation(now=datetime(2026, 12, 30, 12, 0, tzinfo=LONDON))
    chat.send("PARKS")
    chat.wait(days=2)  # 1 January 2027: reminder due, survey closed the day before

    assert chat.remind() == []
    assert chat.ended == [("parks-2026", Outcome.EXPIRED)]


# Stopping and starting again


STOPS = ["STOP", "stop", " Stop! ", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "REVOKE", "optout",
         "opt out", "Stop please"]  # fmt: skip


@pytest.mark.parametrize("stop", STOPS)
def test_stop_mid_survey_confirms_once_then_silence_until_start(stop: str) -> None:
    chat = Conversation()
    chat.send("PARKS")
    chat.send("1")

    confirmation = chat.send(stop)

    assert confirmation == [
        "You won't get any more messages from Exampleshire Council. Reply START to join again."
    ]
    assert chat.last.effects[-1].kind is ReplyKind.OPT_OUT_CONFIRMATION  # type: ignore[union-attr]
    assert any(isinstance(effect, OptedOut) for effect in chat.last.effects)
    assert chat.ended == [("parks-2026", Outcome.STOPPED)]
    assert chat.resident.opted_out

    for message in ["PARKS", "4", "HELP", "STOP", stop, "hello", "CYMRAEG", "", "please start"]:
        assert chat.send(message) == []
        assert chat.last.effects == ()
    chat.wait(days=5)
    assert chat.remind() == []
    assert chat.expire() == []


def test_stop_with_no_survey_in_progress() -> None:
    chat = play(["hello", "STOP"])

    assert chat.reply_kinds == [ReplyKind.REPLY, ReplyKind.OPT_OUT_CONFIRMATION]
    assert chat.ended == []
    assert chat.resident.opted_out


@pytest.mark.parametrize("start", ["START", "start", "Yes", "UNSTOP", " yes! "])
def test_start_yes_or_unstop_resubscribe(start: str) -> None:
    chat = play(["PARKS", "STOP", "PARKS", start, "PARKS"])

    assert not chat.resident.opted_out
    assert chat.replies[-4] == (
        "Welcome back. You'll get messages from Exampleshire Council again. Reply STOP to stop."
    )
    assert chat.replies[-3] == "Text PARKS for Parks and open spaces to take part."
    assert chat.started == ["parks-2026", "parks-2026"]  # a stopped survey can be taken again
    assert chat.replies[-1].startswith(VISITS)
    assert sum(isinstance(effect, OptedIn) for effect in chat.effects) == 1


def test_stop_inside_a_sentence_is_not_a_stop_at_a_choice_question() -> None:
    chat = play(["PARKS", "STOP the fly-tipping"])

    assert not chat.resident.opted_out
    assert chat.replies[-1] == CHOICE_RETRY


def test_stop_inside_a_sentence_is_an_answer_at_a_free_text_question() -> None:
    chat = play(["PARKS", "1", "1", "STOP the fly-tipping"])

    assert not chat.resident.opted_out
    assert chat.answers["why"] == "STOP the fly-tipping"
    assert chat.ended == [("parks-2026", Outcome.COMPLETED)]


# Help


@pytest.mark.parametrize("word", ["HELP", "info", " Help? "])
def test_help_with_no_survey_names_the_council_how_to_stop_and_the_surveys(word: str) -> None:
    replies, _ = play([word])

    assert replies == [
        "This is Exampleshire Council. Reply STOP to stop messages.",
        "Text PARKS for Parks and open spaces to take part.",
    ]


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_mid_survey_gives_the_leads_contact_and_reasks_the_question(word: str) -> None:
    chat = play(["PARKS", "1", word])

    help_text, question = chat.replies[-2:]
    assert help_text == (
        "Parks and open spaces is run by Parks team: parks@example.gov.uk. Reply STOP to stop messages."
    )
    assert question.startswith(RATING)


def test_help_mid_survey_does_not_use_a_retry() -> None:
    chat = play(["PARKS", "x", "HELP", "help", "info", "x", "2"])

    assert chat.replies.count(CHOICE_RETRY) == 2
    assert chat.statuses == {"visits": AnswerStatus.ANSWERED}
    assert chat.answers == {"visits": "monthly"}


# Messages that are neither keywords nor answers


def test_a_message_that_is_not_a_keyword_gets_one_reply_listing_the_open_surveys() -> None:
    chat = play(["hello, is this the council?"], PARKS, BINS)

    assert chat.replies == ["Text BINS for Bins or PARKS for Parks and open spaces to take part."]
    assert chat.started == []


def test_the_list_leaves_out_surveys_that_are_not_open_or_already_taken() -> None:
    closed = yesno_survey(
        welsh=False, keyword="OLD", slug="old-2025", opens="2025-01-01", closes="2025-02-01"
    )
    chat = play(["BINS", "no", "skip", "what now"], PARKS, BINS, closed)

    assert chat.replies[-1] == "Text PARKS for Parks and open spaces to take part."


# Language


def test_cymraeg_mid_survey_switches_the_questions_to_welsh() -> None:
    chat = play(["PARKS", "cymraeg", "bob mis", "3"])

    assert LanguageChosen("cy") in chat.effects
    assert chat.replies[2] == (
        "Pa mor aml ydych chi'n ymweld â pharc?\n"
        "1. Bob wythnos\n2. Bob mis\n3. Anaml neu byth\n"
        "Atebwch gyda rhif."
    )
    assert chat.replies[3] == f"{RATING}\nAtebwch 1 i 5."  # no Welsh text for this question: English words
    assert chat.answers == {"visits": "monthly", "rating": "3"}
    assert chat.replies[-1].startswith("Diolch, mae eich atebion wedi'u cadw.")
    assert chat.resident.language == "cy"


def test_a_welsh_speaking_resident_joins_in_welsh() -> None:
    chat = play(["PARKS"], resident=Resident(language="cy"))

    intro, question = chat.replies
    assert intro.startswith("Parks and open spaces (Parks team).")  # no Welsh title: the default language
    assert "Gallwch ddylanwadu ar:" in intro
    assert "Yn cau 31 Rhagfyr 2026." in intro
    assert "Atebwch STOP i stopio." in intro
    assert intro.endswith("Reply ENGLISH for English.")
    assert question.startswith("Pa mor aml ydych chi'n ymweld â pharc?")
    assert chat.resident.session is not None
    assert chat.resident.session.language == "cy"


def test_choosing_welsh_before_joining_then_back_to_english() -> None:
    chat = play(["CYMRAEG", "PARKS", "ENGLISH"])

    menu, intro, welsh_question, english_question = chat.replies
    assert menu == "Tecstiwch PARKS ar gyfer Parks and open spaces i gymryd rhan."
    assert "Gallwch ddylanwadu ar:" in intro
    assert welsh_question.startswith("Pa mor aml ydych chi'n ymweld â pharc?")
    assert english_question == f"{VISITS}\n{VISITS_LIST}\nReply with a number."
    assert chat.started == ["parks-2026"]


def test_english_intro_offers_welsh() -> None:
    replies, _ = play(["PARKS"])

    assert replies[0].endswith("Reply STOP to stop. Reply CYMRAEG for Welsh.")


def test_a_welsh_speaker_joining_an_english_only_survey_gets_english() -> None:
    chat = play(["BINS"], BINS, resident=Resident(language="cy"))

    assert chat.replies[-1] == "Are you happy with the new day?\nReply YES or NO."
    assert "CYMRAEG" not in chat.replies[0]


def test_now_is_within_the_parks_survey() -> None:
    """Guard for every test above: the fixed clock really is inside the example survey's dates."""
    assert PARKS.is_open_on(NOW.date())
    assert NOW.utcoffset() == timedelta(0)  # London in November is GMT
