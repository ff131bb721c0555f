"""Words that act on a conversation whatever question is open: stop, start, help, language."""

from __future__ import annotations

from enum import StrEnum

from flows.matching import normalise


class Command(StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    LANGUAGE = "language"


STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"})
START_WORDS = frozenset({"start", "yes", "unstop"})
HELP_WORDS = frozenset({"help", "info"})
LANGUAGE_MENU_WORDS = frozenset({"language", "iaith"})
SKIP_WORDS = frozenset({"skip", "hepgor"})  # for optional questions

LANGUAGE_WORDS = {"english": "en", "saesneg": "en", "cymraeg": "cy", "welsh": "cy"}


def command_in(text: str) -> Command | None:
    """The command a whole message is, if any.

    The whole message must be the keyword, in any case, with surrounding spaces and punctuation ignored;
    "please" beside STOP is also accepted ("Stop please") because a resident asking to stop must be stopped.
    "STOP the fly-tipping" is not a command.
    """
    words = normalise(text).replace("opt out", "optout").replace("opt-out", "optout").split()
    if len(words) == 2 and "please" in words:
        words = [word for word in words if word != "please"]
        if words and words[0] not in STOP_WORDS:
            return None
    if len(words) != 1:
        return None
    word = words[0]
    if word in STOP_WORDS:
        return Command.STOP
    if word in START_WORDS:
        return Command.START
    if word in HELP_WORDS:
        return Command.HELP
    if word in LANGUAGE_MENU_WORDS:
        return Command.LANGUAGE
    return None


def language_in(text: str) -> str | None:
    """The language code a message asks to switch to ("CYMRAEG", "English"), if any."""
    return LANGUAGE_WORDS.get(normalise(text))
