"""Properties of the engine over any sequence of messages, waits, reminders and expiries."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from flows.commands import Command, command_in
from flows.effects import OptedIn, OptedOut, Reply, ReplyKind, ResponseEnded, ResponseStarted
from flows.engine import Catalogue, Transition, expire, handle_message, remind
from flows.state import Resident
from tests.flows.transcript import NOW, PARKS, POLICY, yesno_survey

CATALOGUE = Catalogue.of(
    [
        PARKS,
        yesno_survey(welsh=False),
        yesno_survey(welsh=True, keyword="TREES", slug="trees-2027", opens="2027-01-01", closes="2027-03-01"),
    ]
)

KEYWORDS = ["PARKS", " parks! ", "BINS", "trees"]
STOP_WORDS = ["STOP", "stop", "Cancel", "opt out", "Stop please", "QUIT", "END", "unsubscribe"]
START_WORDS = ["START", "yes", "UNSTOP", "Start!"]
OTHER_COMMANDS = ["HELP", "info", "CYMRAEG", "English", "skip"]
ANSWERS = ["0", "1", "2", "3", "4", "5", "6", "-1", "a", "b", "four", "pedwar", "every week", "evry week",
           "y", "no", "ie", "na"]  # fmt: skip
JUNK = ["STOP the fly-tipping", "hello", "please", "asdf", "x" * 600, "   ", "\N{GRINNING FACE}", ""]
WAITS = [timedelta(seconds=30), timedelta(hours=5), timedelta(days=2), timedelta(days=3, minutes=1)]

messages = st.one_of(*(st.sampled_from(words) for words in (KEYWORDS, STOP_WORDS, START_WORDS, OTHER_COMMANDS,
                                                             ANSWERS, JUNK)))  # fmt: skip
sends = messages.map(lambda text: ("send", text))
steps = st.lists(
    st.one_of(
        sends,
        sends,
        sends,
        st.sampled_from(WAITS).map(lambda delta: ("wait", delta)),
        st.sampled_from(["remind", "expire"]).map(lambda action: (action, None)),
    ),
    max_size=40,
)


def check_sessions(before: Resident, transition: Transition) -> None:
    """Responses start and end one at a time, and the state agrees with the effects."""
    in_progress = before.session.survey if before.session else None
    for effect in transition.effects:
        if isinstance(effect, ResponseEnded):
            assert effect.survey == in_progress
            in_progress = None
        elif isinstance(effect, ResponseStarted):
            assert in_progress is None
            in_progress = effect.survey
    after = transition.resident.session
    assert in_progress == (after.survey if after else None)


@settings(max_examples=300, deadline=None, database=None)
@given(steps)
def test_nothing_but_one_confirmation_reaches_an_opted_out_resident(script: list[tuple[str, object]]) -> None:
    resident = Resident()
    now = NOW
    for action, argument in script:
        before = resident
        if action == "wait":
            assert isinstance(argument, timedelta)
            now += argument
            continue
        if action == "send":
            assert isinstance(argument, str)
            transition = handle_message(before, argument, catalogue=CATALOGUE, now=now, policy=POLICY)
        elif action == "remind":
            transition = remind(before, catalogue=CATALOGUE, now=now, policy=POLICY)
        else:
            transition = expire(before, catalogue=CATALOGUE, now=now, policy=POLICY)
        resident = transition.resident
        now += timedelta(seconds=1)

        replies = [effect for effect in transition.effects if isinstance(effect, Reply)]
        confirmations = [reply for reply in replies if reply.kind is ReplyKind.OPT_OUT_CONFIRMATION]
        starting = action == "send" and command_in(str(argument)) is Command.START

        if before.opted_out and not starting:
            assert transition.effects == ()
            assert resident == before
        elif before.opted_out:  # START, YES or UNSTOP
            assert not resident.opted_out
            assert [type(effect) for effect in transition.effects] == [OptedIn, Reply, Reply]  # welcome, menu
        elif resident.opted_out:  # this message opted them out
            assert action == "send"
            assert command_in(str(argument)) is Command.STOP
            assert replies == confirmations
            assert len(confirmations) == 1
            assert sum(isinstance(effect, OptedOut) for effect in transition.effects) == 1
            assert resident.session is None
        else:
            assert confirmations == []
        if action != "remind":
            assert all(reply.kind is not ReplyKind.REMINDER for reply in replies)
        check_sessions(before, transition)
