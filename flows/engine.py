"""The survey conversation: one resident message in, the resident's new state and effects out.

Pure: the clock (``now``, timezone-aware and in the council's local zone) and every survey are passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime

from flows.commands import SKIP_WORDS, Command, command_in, language_in
from flows.definition import AnswerValue, Question, Survey, text_in
from flows.effects import (
    AnswerRecorded,
    AnswerStatus,
    Choice,
    Effect,
    LanguageChosen,
    OptedIn,
    OptedOut,
    Outcome,
    Reply,
    ReplyKind,
    ResponseEnded,
    ResponseStarted,
)
from flows.matching import match_choice, match_scale, match_yes_no, normalise
from flows.phrases import say, say_date
from flows.state import Policy, Resident, Session


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every stored survey, by slug."""

    surveys: Mapping[str, Survey]

    @classmethod
    def of(cls, surveys: Iterable[Survey]) -> Catalogue:
        return cls({survey.slug: survey for survey in surveys})

    def by_keyword(self, text: str, day: date) -> Survey | None:
        """The survey a message names by keyword: the open one if several share it, else the latest."""
        keyword = normalise(text).upper()
        named = [survey for survey in self.surveys.values() if survey.keyword == keyword]
        named.sort(key=lambda survey: (survey.is_open_on(day), survey.closes))
        return named[-1] if named else None

    def open_on(self, day: date) -> list[Survey]:
        return sorted((s for s in self.surveys.values() if s.is_open_on(day)), key=lambda s: s.keyword)


@dataclass(frozen=True, slots=True)
class Transition:
    resident: Resident
    effects: tuple[Effect, ...]


@dataclass(frozen=True, slots=True)
class _Context:
    catalogue: Catalogue
    now: datetime
    policy: Policy
    buttons: bool  # the channel shows choices as buttons, so the text need not number them


def handle_message(
    resident: Resident,
    text: str,
    *,
    catalogue: Catalogue,
    now: datetime,
    policy: Policy,
    buttons: bool = False,
    language_hint: str | None = None,
) -> Transition:
    """Everything that happens when a resident sends ``text``.

    ``buttons``: the channel shows choices as buttons. ``language_hint``: the language the resident's
    app uses (Telegram), taken as their language until they choose one.
    """
    ctx = _Context(catalogue, now, policy, buttons)
    if resident.language is None and language_hint:
        resident = replace(resident, language=language_hint)
    command = command_in(text)
    if resident.opted_out:
        if command is Command.START:
            back = replace(resident, opted_out=False)
            welcome = Reply(say("restarted", _lang(back), council=policy.council))
            return Transition(back, (OptedIn(now), welcome, _menu(back, ctx)))
        return Transition(resident, ())  # nothing more until they opt back in

    resident, ended = _end_if_expired(resident, ctx)
    if resident.session is not None:  # any message counts as activity: the expiry clock restarts
        resident = replace(resident, session=replace(resident.session, last_activity_at=now, reminded=False))
    if command is Command.STOP:
        return _stop(resident, ended, ctx)
    if command is Command.HELP:
        return Transition(resident, (*ended, *_help(resident, ctx)))
    if command is Command.LANGUAGE:
        languages = (Choice("Cymraeg", "cymraeg"), Choice("English", "english"))
        return Transition(resident, (*ended, Reply(say("choose_language", _lang(resident)), languages)))

    session = resident.session
    language = language_in(text)
    if language is not None:
        return _switch_language(resident, language, ended, ctx)
    if session is None:
        survey = catalogue.by_keyword(text, now.date())
        if survey is None or command is Command.START:
            return Transition(resident, (*ended, _menu(resident, ctx)))
        return _join(resident, survey, ended, ctx)

    survey = catalogue.surveys[session.survey]
    question = survey.question(session.question)
    understood, value = _understand(text, question, survey)
    same_keyword = normalise(text).upper() == survey.keyword
    if not understood or same_keyword:
        other = catalogue.by_keyword(text, now.date())
        if other is not None and other.slug == survey.slug:
            prompt = say("resume", session.language, title=_title(survey, session.language))
            return Transition(resident, (*ended, *_ask(survey, question, session.language, ctx, prompt)))
        if other is not None and other.is_open_on(now.date()) and other.slug not in resident.completed:
            quitting = ResponseEnded(survey.slug, Outcome.ABANDONED, now)
            return _join(replace(resident, session=None), other, (*ended, quitting), ctx)
        return _retry_or_move_on(resident, survey, question, text, ended, ctx)
    status = AnswerStatus.SKIPPED if value is None else AnswerStatus.ANSWERED
    return _advance(resident, survey, question, value, status, ended, ctx, prefix="")


def remind(
    resident: Resident, *, catalogue: Catalogue, now: datetime, policy: Policy, buttons: bool = False
) -> Transition:
    """The one reminder an unfinished survey gets before it expires (the caller avoids quiet hours);
    a survey past its expiry or closing date is expired instead."""
    session = resident.session
    if session is None:
        return Transition(resident, ())
    survey = catalogue.surveys.get(session.survey)
    if survey is None or now >= policy.expires_at(session) or now.date() > survey.closes:
        return expire(resident, catalogue=catalogue, now=now, policy=policy)
    if resident.opted_out or session.reminded or now < policy.reminder_due(session):
        return Transition(resident, ())
    ctx = _Context(catalogue, now, policy, buttons)
    prompt = say("reminder", session.language, title=_title(survey, session.language))
    asked = _ask(
        survey, survey.question(session.question), session.language, ctx, prompt, kind=ReplyKind.REMINDER
    )
    return Transition(replace(resident, session=replace(session, reminded=True)), asked)


def expire(resident: Resident, *, catalogue: Catalogue, now: datetime, policy: Policy) -> Transition:
    """End a survey left unanswered for longer than the policy allows. Answers given so far are kept."""
    resident, ended = _end_if_expired(resident, _Context(catalogue, now, policy, False))
    return Transition(resident, ended)


def _understand(text: str, question: Question, survey: Survey) -> tuple[bool, AnswerValue | None]:
    """Whether a reply answers the question, and the value to store (None for a skip)."""
    if question.optional and normalise(text) in SKIP_WORDS:
        return True, None
    value: AnswerValue | None = None
    if question.type == "choice":
        value = match_choice(text, question, survey.languages)
    elif question.type == "scale":
        number = match_scale(text, question.min, question.max)
        value = None if number is None else str(number)
    elif question.type == "yesno":
        yes = match_yes_no(text, welsh="cy" in survey.languages)
        value = None if yes is None else ("yes" if yes else "no")
    else:
        answer = text.strip()
        value = answer if 0 < len(answer) <= question.max_length else None
    return value is not None, value


def _advance(
    resident: Resident,
    survey: Survey,
    question: Question,
    value: AnswerValue | None,
    status: AnswerStatus,
    ended: tuple[Effect, ...],
    ctx: _Context,
    *,
    prefix: str,
) -> Transition:
    session = resident.session
    assert session is not None
    session = session.with_answer(question.id, value)
    recorded = AnswerRecorded(survey.slug, question.id, value, status)
    following = _next_question(survey, question, session.answers)
    if following is None:
        done = replace(resident, session=None, completed=resident.completed | {survey.slug})
        thanks = say(
            "thanks",
            session.language,
            title=_title(survey, session.language),
            closes=say_date(survey.closes, session.language),
        )
        effects = (*ended, recorded, ResponseEnded(survey.slug, Outcome.COMPLETED, ctx.now), Reply(thanks))
        return Transition(done, effects)
    session = replace(session, question=following.id, retries=0, last_activity_at=ctx.now)
    asked = _ask(survey, following, session.language, ctx, prefix)
    return Transition(replace(resident, session=session), (*ended, recorded, *asked))


def _retry_or_move_on(
    resident: Resident,
    survey: Survey,
    question: Question,
    text: str,
    ended: tuple[Effect, ...],
    ctx: _Context,
) -> Transition:
    session = resident.session
    assert session is not None
    if session.retries >= ctx.policy.max_retries:
        moving_on = say("moving_on", session.language)
        return _advance(
            resident, survey, question, None, AnswerStatus.UNANSWERED, ended, ctx, prefix=moving_on
        )
    session = replace(session, retries=session.retries + 1, last_activity_at=ctx.now)
    expected = _what_we_expect(question, session.language, blank=not text.strip())
    reply = Reply(expected, _choices(question, session.language, survey), question=question.id)
    return Transition(replace(resident, session=session), (*ended, reply))


def _next_question(
    survey: Survey, current: Question, answers: Mapping[str, AnswerValue | None]
) -> Question | None:
    later = survey.questions[survey.questions.index(current) + 1 :]
    for question in later:
        conditions = question.when or {}
        if all(answers.get(asked) in allowed for asked, allowed in conditions.items()):
            return question
    return None


def _join(resident: Resident, survey: Survey, ended: tuple[Effect, ...], ctx: _Context) -> Transition:
    today = ctx.now.date()
    language = resident.language if resident.language in survey.languages else survey.default_language
    title = _title(survey, language)
    if survey.slug in resident.completed:
        return Transition(resident, (*ended, Reply(say("already_done", language, title=title))))
    if today < survey.opens:
        opens = say_date(survey.opens, language)
        return Transition(
            resident,
            (*ended, Reply(say("not_open_yet", language, title=title, opens=opens, keyword=survey.keyword))),
        )
    if today > survey.closes:
        closes = say_date(survey.closes, language)
        return Transition(resident, (*ended, Reply(say("closed", language, title=title, closes=closes))))
    first = survey.questions[0]
    session = Session(survey.slug, first.id, language, started_at=ctx.now, last_activity_at=ctx.now)
    intro = say(
        "intro",
        language,
        title=title,
        lead=survey.lead.name,
        purpose=text_in(survey.purpose, language, survey.default_language),
        can=text_in(survey.can_influence, language, survey.default_language),
        cannot=text_in(survey.cannot_influence, language, survey.default_language),
        closes=say_date(survey.closes, language),
        contact=survey.lead.contact,
    )
    if len(survey.languages) > 1 and {"en", "cy"} <= set(survey.languages):
        intro += say("other_language", language)
    effects = (
        *ended,
        ResponseStarted(survey.slug, language, ctx.now),
        Reply(intro),
        *_ask(survey, first, language, ctx, ""),
    )
    return Transition(replace(resident, session=session), effects)


def _stop(resident: Resident, ended: tuple[Effect, ...], ctx: _Context) -> Transition:
    effects: list[Effect] = list(ended)
    if resident.session is not None:
        effects.append(ResponseEnded(resident.session.survey, Outcome.STOPPED, ctx.now))
    confirmation = say("stopped", _lang(resident), council=ctx.policy.council)
    effects += [OptedOut(ctx.now), Reply(confirmation, kind=ReplyKind.OPT_OUT_CONFIRMATION)]
    return Transition(replace(resident, opted_out=True, session=None), tuple(effects))


def _help(resident: Resident, ctx: _Context) -> tuple[Effect, ...]:
    session = resident.session
    if session is None:
        contact = f" Contact: {ctx.policy.help_contact}." if ctx.policy.help_contact else ""
        general = say("help_general", _lang(resident), council=ctx.policy.council, contact=contact)
        return (Reply(general), _menu(resident, ctx))
    survey = ctx.catalogue.surveys[session.survey]
    text = say(
        "help_survey",
        session.language,
        title=_title(survey, session.language),
        lead=survey.lead.name,
        contact=survey.lead.contact,
    )
    return (Reply(text), *_ask(survey, survey.question(session.question), session.language, ctx, ""))


def _switch_language(
    resident: Resident, language: str, ended: tuple[Effect, ...], ctx: _Context
) -> Transition:
    resident = replace(resident, language=language)
    session = resident.session
    if session is None:
        return Transition(resident, (*ended, LanguageChosen(language), _menu(resident, ctx)))
    survey = ctx.catalogue.surveys[session.survey]
    if language in survey.languages:
        session = replace(session, language=language)
        resident = replace(resident, session=session)
    asked = _ask(survey, survey.question(session.question), session.language, ctx, "")
    return Transition(resident, (*ended, LanguageChosen(language), *asked))


def _end_if_expired(resident: Resident, ctx: _Context) -> tuple[Resident, tuple[Effect, ...]]:
    session = resident.session
    if session is None:
        return resident, ()
    survey = ctx.catalogue.surveys.get(session.survey)
    gone = survey is None or ctx.now.date() > survey.closes
    if gone or ctx.now >= ctx.policy.expires_at(session):
        return replace(resident, session=None), (ResponseEnded(session.survey, Outcome.EXPIRED, ctx.now),)
    return resident, ()


def _menu(resident: Resident, ctx: _Context) -> Reply:
    language = _lang(resident)
    surveys = [s for s in ctx.catalogue.open_on(ctx.now.date()) if s.slug not in resident.completed]
    if not surveys:
        return Reply(say("no_surveys", language))
    items = [say("menu_item", language, keyword=s.keyword, title=_title(s, language)) for s in surveys]
    return Reply(say("menu", language, offers=say("or", language).join(items)))


def _ask(
    survey: Survey,
    question: Question,
    language: str,
    ctx: _Context,
    prefix: str,
    kind: ReplyKind = ReplyKind.REPLY,
) -> tuple[Reply]:
    lines = [prefix] if prefix else []
    lines.append(text_in(question.text, language, survey.default_language))
    if question.type == "choice" and not ctx.buttons:
        lines += [
            f"{n}. {text_in(o.text, language, survey.default_language)}"
            for n, o in enumerate(question.options, 1)
        ]
    if not ctx.buttons or question.type == "text":
        lines.append(_how_to_answer(question, language))
    return (Reply("\n".join(lines), _choices(question, language, survey), kind, question.id),)


def _how_to_answer(question: Question, language: str) -> str:
    how = {
        "choice": say("reply_number", language),
        "scale": say("reply_scale", language, low=question.min, high=question.max),
        "yesno": say("reply_yesno", language),
        "text": "",
    }[question.type]
    if question.optional:
        how += say("reply_skip", language)
    return how.strip()


def _what_we_expect(question: Question, language: str, *, blank: bool) -> str:
    if question.type == "choice":
        text = say("retry_choice", language, count=len(question.options))
    elif question.type == "scale":
        text = say("retry_scale", language, low=question.min, high=question.max)
    elif question.type == "yesno":
        text = say("retry_yesno", language)
    elif blank:
        text = say("retry_text_empty", language)
    else:
        text = say("retry_text_long", language, limit=question.max_length)
    return text + (say("reply_skip", language) if question.optional else "")


def _choices(question: Question, language: str, survey: Survey) -> tuple[Choice, ...]:
    if question.type == "choice":
        return tuple(
            Choice(text_in(o.text, language, survey.default_language), o.id) for o in question.options
        )
    if question.type == "scale":
        return tuple(Choice(str(n), str(n)) for n in range(question.min, question.max + 1))
    if question.type == "yesno":
        yes, no = ("Ie", "Na") if language == "cy" else ("Yes", "No")
        return (Choice(yes, "yes"), Choice(no, "no"))
    return ()


def _title(survey: Survey, language: str) -> str:
    return text_in(survey.title, language, survey.default_language)


def _lang(resident: Resident) -> str:
    if resident.session is not None:
        return resident.session.language
    return resident.language or "en"
