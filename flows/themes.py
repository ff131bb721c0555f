"""Themes: the configured list that street reports and survey answers are tagged with, and the tagger.

A council writes ``themes.yaml``::

    themes:
      - name: fly-tipping                 # short id: lower case letters, digits, hyphens
        label: Fly-tipping                # what people read
        description: Rubbish dumped on streets and land.     # optional
        keywords: [dump, mattress, fridge]                   # single words, in their plain form
        phrases: [fly tipping, black bags]                   # two or more words

``parse_themes`` turns the text into a ``ThemeList`` (or a ``ThemesFileError`` naming file, field and line),
and ``suggest_themes`` suggests themes for a piece of text, each with the words that made it match, so
that staff see why ("matched 'fly-tipping', 'matress'") and can correct it.

How text matches (all deterministic; the same text and list always give the same suggestions):

- Slack markup is removed first (``clean_slack_text``); then case, accents and punctuation are ignored,
  apostrophes are dropped ("didn't" is "didnt") and "&" reads as "and".
- A phrase matches its words in order, whatever joins them: "fly-tipping", "fly tipping" and the
  run-together "flytipping" (or "flytipped") all match the phrase "fly tipping".
- A keyword matches the word itself and its plural and -ing/-ed forms ("potholes" for "pothole", "dumped"
  and "dumping" for "dump"), and two words written apart ("pot holes" for "pothole").
- A word that is exactly a keyword of some theme is not stretched by stemming to fit another theme's
  keyword: "parking" is a parking keyword, so it never counts as "park" for parks.
- A word of 5 or more letters that matches nothing else may be a small typo of a keyword or phrase word:
  same first letter and a ``difflib`` similarity of at least 0.85 ("matress", "libary", "recyling").
- Words inside a matched phrase do not count again as keywords ("car park" is not "park").

Scores: a phrase counts 2, a keyword 1; a typo match counts 0.8 of that. Each distinct keyword or phrase
counts once, plus 0.25 for each further time it appears (at most 0.5 more). A phrase that lies inside a
longer matched phrase of the same theme ("social care" in "adult social care") does not count. Themes
scoring under 1 (a lone typo) are not suggested; the rest are sorted by score, highest first, then by name.

``suggest_kind`` guesses whether a report is a concern, myth, idea, compliment or question from cue phrases.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    field_validator,
    model_validator,
)

from flows.definition import FieldProblem
from flows.yaml_file import Problem, YamlFileError, read_yaml, validate

__all__ = [
    "KINDS",
    "MIN_SCORE",
    "Problem",
    "Suggestion",
    "Theme",
    "ThemeList",
    "ThemesFileError",
    "clean_slack_text",
    "parse_themes",
    "suggest_kind",
    "suggest_themes",
]

PHRASE_POINTS = 2.0
KEYWORD_POINTS = 1.0
TYPO_FACTOR = 0.8
REPEAT_POINTS = 0.25
MAX_REPEATS = 2
MIN_SCORE = 1.0
"""A theme needs at least this score to be suggested: one keyword, one phrase, or two typo'd keywords."""
FUZZY_MIN_LETTERS = 5
FUZZY_MIN_RATIO = 0.85

ThemeName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]


# Text: Slack markup, words


_SLACK_ANGLE = re.compile(r"<([^<>\n]*)>")
_SLACK_EMOJI = re.compile(r":((?=[a-z0-9_+'-]*[a-z])[a-z0-9_+'-]+):", re.IGNORECASE)
_SPACES = re.compile(r"\s+")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|&")
_APOSTROPHES = re.compile(r"['’]")


def clean_slack_text(text: str) -> str:
    """Slack message text as a person reads it, without markup that names people, channels or links.

    ``<@U123>`` user mentions, ``<#C123|name>`` channel links, ``<!here>``-style broadcasts and bare links
    are removed; ``<https://x|label>`` becomes ``label``; ``:emoji:`` codes become their words (``:rat:``
    "rat", ``:police_car:`` "police car"; skin tones are dropped), since staff use them as words;
    ``&amp;`` ``&lt;`` ``&gt;`` are unescaped (after the markup, so an escaped ``&lt;`` never reads as
    markup); spaces are collapsed. Formatting characters (``*bold*``, ``_italic_``) are left: not words.
    """

    def replace(match: re.Match[str]) -> str:
        inside = match.group(1)
        if inside[:1] in {"@", "#", "!"}:
            return " "
        _, bar, label = inside.partition("|")
        return f" {label} " if bar else " "

    text = _SLACK_ANGLE.sub(replace, text)
    text = _SLACK_EMOJI.sub(_emoji_words, text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return _SPACES.sub(" ", text).strip()


def _emoji_words(match: re.Match[str]) -> str:
    name = match.group(1).casefold()
    return " " if name.startswith("skin-tone") else " " + re.sub(r"[_+-]+", " ", name) + " "


def _fold(word: str) -> str:
    """A word without case, accents or apostrophes: "Café's" -> "cafes"."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    return _APOSTROPHES.sub("", plain)


@dataclass(frozen=True, slots=True)
class _Token:
    word: str  # folded
    start: int  # span in the cleaned text
    end: int


def _tokens(text: str) -> list[_Token]:
    return [
        _Token("and" if match.group() == "&" else _fold(match.group()), match.start(), match.end())
        for match in _WORD.finditer(text)
    ]


def _words(text: str) -> tuple[str, ...]:
    return tuple(token.word for token in _tokens(text))


@functools.lru_cache(maxsize=4096)
def _plural_bases(word: str) -> frozenset[str]:
    """The word and what it may be the plural of: "bodies" body, "buses" bus, "potholes" pothole."""
    forms = {word}
    if len(word) > 4 and word.endswith("ies"):
        forms.add(word[:-3] + "y")
    if len(word) > 3 and word.endswith(("ses", "xes", "zes", "ches", "shes")):
        forms.add(word[:-2])
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        forms.add(word[:-1])
    return frozenset(forms)


@functools.lru_cache(maxsize=4096)
def _bases(word: str) -> frozenset[str]:
    """The plain forms a text word may be: plural, -ing and -ed forms undone, with and without a final e.

    "dumped" dump, "tipping" tip, "emptied" empty, "used" use. A stem left shorter than four letters
    must take the e ("caring" is care, not car; "rated" is rate, not rat), unless it lost a doubled
    consonant ("tipped" tip).
    """
    forms = set(_plural_bases(word))
    for suffix in ("ing", "ed"):
        if not word.endswith(suffix) or len(word) - len(suffix) < 3:
            continue
        stem = word[: -len(suffix)]
        forms.add(stem + "e")
        if len(stem) >= 4:
            forms.add(stem)
            if stem[-1] == stem[-2] and stem[-1] not in "aeiouylsz":
                forms.add(stem[:-1])
        if stem.endswith("i"):
            forms.add(stem[:-1] + "y")
    return frozenset(forms)


def _similar(first: str, second: str) -> bool:
    if first[0] != second[0] or abs(len(first) - len(second)) > 2:
        return False
    matcher = difflib.SequenceMatcher(None, first, second, autojunk=False)
    return (
        matcher.real_quick_ratio() >= FUZZY_MIN_RATIO
        and matcher.quick_ratio() >= FUZZY_MIN_RATIO
        and matcher.ratio() >= FUZZY_MIN_RATIO
    )


# The theme list


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Theme(_Frozen):
    """One theme: a slug-like ``name``, what people read (``label``), and the words that signal it."""

    name: ThemeName
    label: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80)]
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] = ""
    keywords: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()

    @field_validator("keywords")
    @classmethod
    def _keywords_are_single_words(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        for index, keyword in enumerate(keywords):
            if not _words(keyword):
                raise FieldProblem(f"keyword {keyword!r} has no letters or digits", index)
            if len(keyword.split()) > 1:
                raise FieldProblem(f"keyword {keyword!r} is more than one word: put it under phrases", index)
        return tuple(keyword.strip() for keyword in keywords)

    @field_validator("phrases")
    @classmethod
    def _phrases_have_several_words(cls, phrases: tuple[str, ...]) -> tuple[str, ...]:
        for index, phrase in enumerate(phrases):
            if len(_words(phrase)) < 2:
                raise FieldProblem(
                    f"phrase {phrase!r} is not two or more words: put it under keywords", index
                )
        return tuple(_SPACES.sub(" ", phrase.strip()) for phrase in phrases)

    @model_validator(mode="after")
    def _has_something_to_match(self) -> Theme:
        if not self.keywords and not self.phrases:
            raise FieldProblem("a theme needs at least one keyword or phrase", "keywords")
        return self


class ThemeList(_Frozen):
    """The configured themes, in the order the file gives them; names are unique."""

    themes: tuple[Theme, ...]

    @model_validator(mode="after")
    def _names_are_unique(self) -> ThemeList:
        if not self.themes:
            raise FieldProblem("list at least one theme", "themes")
        first: dict[str, int] = {}
        for index, theme in enumerate(self.themes):
            if theme.name in first:
                message = f"theme name {theme.name!r} is already used by themes[{first[theme.name]}]"
                raise FieldProblem(message, "themes", index, "name")
            first[theme.name] = index
        return self

    def get(self, name: str) -> Theme | None:
        """The theme called ``name``, if there is one."""
        return next((theme for theme in self.themes if theme.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(theme.name for theme in self.themes)


# Reading themes.yaml


class ThemesFileError(YamlFileError):
    """A themes file that cannot be loaded; ``str()`` gives one "file:line: field: message" per problem."""


def parse_themes(text: str, source: str) -> ThemeList:
    """Validate one themes file's text; ``source`` is the file name used in error messages."""
    document = read_yaml(text, source, error=ThemesFileError, expected="a mapping with a themes: list")
    return validate(ThemeList, document, source, error=ThemesFileError)


# Suggesting themes


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A theme for a text, how strongly it matched, and the words of the text that matched it."""

    theme: str
    score: float
    matched: tuple[str, ...]

    def explain(self) -> str:
        """ "matched 'fly-tipping', 'mattress'", for staff to see why."""
        return "matched " + ", ".join(f"'{words}'" for words in self.matched)


@dataclass(frozen=True, slots=True)
class _Term:
    theme: str
    words: tuple[str, ...]  # folded
    joined: frozenset[str]  # run-together spellings of a phrase: "flytipping", "flytip"...

    @property
    def key(self) -> tuple[str, ...]:
        """What the term means for scoring: "rat" and "rats", "play area" and "play areas" are one term."""
        return tuple(min(_plural_bases(word), key=lambda form: (len(form), form)) for word in self.words)

    @property
    def points(self) -> float:
        return PHRASE_POINTS if len(self.words) > 1 else KEYWORD_POINTS


@dataclass(frozen=True, slots=True)
class _Index:
    keywords: dict[str, tuple[_Term, ...]]  # by each plain form of the keyword
    exact: frozenset[str]  # keywords as written (folded)
    phrases: dict[str, tuple[_Term, ...]]  # by first word
    by_joined: dict[str, tuple[_Term, ...]]
    by_form: dict[str, frozenset[str]]  # plain form -> vocabulary words with it
    by_letter: dict[str, tuple[str, ...]]  # first letter -> vocabulary words of 5+ letters


@functools.lru_cache(maxsize=16)
def _index(themes: ThemeList) -> _Index:
    keywords: dict[str, list[_Term]] = {}
    phrases: list[_Term] = []
    by_joined: dict[str, list[_Term]] = {}
    for theme in themes.themes:
        for written in (*theme.keywords, *theme.phrases):
            words = _words(written)
            joined = _bases("".join(words)) if len(words) > 1 else frozenset()
            term = _Term(theme.name, words, joined)
            if len(words) == 1:
                for form in _plural_bases(words[0]):
                    keywords.setdefault(form, []).append(term)
            else:
                phrases.append(term)
                for form in joined:
                    by_joined.setdefault(form, []).append(term)
    vocabulary: dict[str, frozenset[str]] = {}
    for term in [*phrases, *(term for terms in keywords.values() for term in terms)]:
        for word in term.words:
            vocabulary[word] = _plural_bases(word)
    by_form: dict[str, set[str]] = {}
    for word, forms in vocabulary.items():
        for form in forms:
            by_form.setdefault(form, set()).add(word)
    by_letter: dict[str, list[str]] = {}
    for word in sorted(vocabulary):
        if len(word) >= FUZZY_MIN_LETTERS:
            by_letter.setdefault(word[0], []).append(word)
    return _Index(
        keywords={form: _unique(terms) for form, terms in keywords.items()},
        exact=frozenset(
            _words(k)[0] for theme in themes.themes for k in theme.keywords if len(_words(k)) == 1
        ),
        phrases={word: _unique([term for term in phrases if term.words[0] == word]) for word in vocabulary},
        by_joined={form: _unique(terms) for form, terms in by_joined.items()},
        by_form={form: frozenset(words) for form, words in by_form.items()},
        by_letter={letter: tuple(words) for letter, words in by_letter.items()},
    )


def _unique(terms: list[_Term]) -> tuple[_Term, ...]:
    return tuple(dict.fromkeys(terms))


@dataclass(frozen=True, slots=True)
class _Hit:
    term: _Term
    first: int  # token indexes, inclusive
    last: int
    typo: bool


class _Matcher:
    """Matches one text against the index; remembers each word's readings for the length of one text."""

    def __init__(self, index: _Index, tokens: list[_Token]) -> None:
        self.index = index
        self.tokens = tokens
        self._readings: dict[str, tuple[frozenset[str], frozenset[str]]] = {}

    def readings(self, word: str) -> tuple[frozenset[str], frozenset[str]]:
        """The vocabulary words this text word is (by form), and those it may be a typo of."""
        if word not in self._readings:
            same = frozenset(
                known for form in _bases(word) for known in self.index.by_form.get(form, frozenset())
            )
            typos: frozenset[str] = frozenset()
            if not same and len(word) >= FUZZY_MIN_LETTERS:
                typos = frozenset(
                    known
                    for known in self.index.by_letter.get(word[0], ())
                    if any(_similar(form, known) for form in _bases(word))
                )
            self._readings[word] = (same, typos)
        return self._readings[word]

    def phrase_hits(self) -> Iterator[_Hit]:
        tokens = self.tokens
        for position, token in enumerate(tokens):
            for term in self.index.by_joined.get(token.word, ()):
                yield _Hit(term, position, position, typo=False)
            for form in sorted(_bases(token.word) - {token.word}):
                for term in self.index.by_joined.get(form, ()):
                    yield _Hit(term, position, position, typo=False)
            same, typos = self.readings(token.word)
            for first in sorted(same | typos):
                for term in self.index.phrases.get(first, ()):
                    end = position + len(term.words)
                    if end <= len(tokens):
                        yield from self._phrase_at(term, position, end)

    def _phrase_at(self, term: _Term, position: int, end: int) -> Iterator[_Hit]:
        typo = False
        for word, text_token in zip(term.words, self.tokens[position:end], strict=True):
            same, typos = self.readings(text_token.word)
            if word in same:
                continue
            if word in typos:
                typo = True
                continue
            return
        yield _Hit(term, position, end - 1, typo)

    def keyword_hits(self, claimed: set[int]) -> Iterator[_Hit]:
        index, tokens = self.index, self.tokens
        for position, token in enumerate(tokens):
            if position in claimed:
                continue
            if token.word in index.exact:
                for term in index.keywords[token.word]:
                    if term.words[0] == token.word:
                        yield _Hit(term, position, position, typo=False)
                continue
            same, typos = self.readings(token.word)
            for known in sorted(same):
                for term in index.keywords.get(known, ()):
                    if term.words[0] == known:
                        yield _Hit(term, position, position, typo=False)
            for known in sorted(typos):
                for term in index.keywords.get(known, ()):
                    if term.words[0] == known:
                        yield _Hit(term, position, position, typo=True)
            following = position + 1
            if following < len(tokens) and following not in claimed:  # "pot holes" is "pothole"
                joined = token.word + tokens[following].word
                for form in sorted(_bases(joined)):
                    for term in index.keywords.get(form, ()):
                        yield _Hit(term, position, following, typo=False)


def suggest_themes(text: str, themes: ThemeList, *, limit: int = 3) -> list[Suggestion]:
    """Up to ``limit`` themes for ``text`` (Slack markup allowed), best first; none when nothing matches."""
    cleaned = clean_slack_text(text)
    tokens = _tokens(cleaned)
    if not tokens or limit <= 0:
        return []
    matcher = _Matcher(_index(themes), tokens)
    phrase_hits = _drop_inner_phrases(list(dict.fromkeys(matcher.phrase_hits())))
    claimed = {position for hit in phrase_hits for position in range(hit.first, hit.last + 1)}
    hits = phrase_hits + list(dict.fromkeys(matcher.keyword_hits(claimed)))

    by_theme: dict[str, dict[tuple[str, ...], list[_Hit]]] = {}
    for hit in hits:
        by_theme.setdefault(hit.term.theme, {}).setdefault(hit.term.key, []).append(hit)
    suggestions = []
    for theme, terms in by_theme.items():
        score = 0.0
        for term_hits in terms.values():
            exact = [hit for hit in term_hits if not hit.typo]
            score += term_hits[0].term.points * (1.0 if exact else TYPO_FACTOR)
            occurrences = len({hit.first for hit in term_hits})
            score += REPEAT_POINTS * min(occurrences - 1, MAX_REPEATS)
        if score < MIN_SCORE:
            continue
        spans = sorted({(hit.first, hit.last) for term_hits in terms.values() for hit in term_hits})
        matched = dict.fromkeys(
            _SPACES.sub(" ", cleaned[tokens[first].start : tokens[last].end]).casefold()
            for first, last in spans
        )
        suggestions.append(Suggestion(theme, round(score, 2), tuple(matched)))
    suggestions.sort(key=lambda suggestion: (-suggestion.score, suggestion.theme))
    return suggestions[:limit]


def _drop_inner_phrases(hits: list[_Hit]) -> list[_Hit]:
    """Keep one phrase hit per stretch of text and theme: "social care" inside "adult social care" goes,
    and of two phrases over the same words ("feel unsafe", "feels unsafe") only the first stays."""

    def rank(hit: _Hit) -> tuple[int, int, bool]:
        return (hit.last - hit.first, len(hit.term.words), not hit.typo)

    def covered(position: int, hit: _Hit) -> bool:
        return any(
            other_position != position
            and other.term.theme == hit.term.theme
            and other.first <= hit.first
            and hit.last <= other.last
            and (rank(other), -other_position) > (rank(hit), -position)
            for other_position, other in enumerate(hits)
        )

    return [hit for position, hit in enumerate(hits) if not covered(position, hit)]


# Suggesting a kind


KINDS = ("concern", "myth", "idea", "compliment", "question")

_KIND_CUES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "myth",
        (
            "myth", "myths", "rumour", "rumours", "rumor", "rumors", "people think", "ppl think",
            "residents think", "they think", "think that", "thinks that", "people believe", "believe that",
            "believes that", "heard that", "heard from", "apparently", "not true", "isn't true", "isnt true",
            "misinformation", "fake news", "going round", "people are saying", "people saying",
            "ppl saying", "everyone's saying", "convinced that",
        ),
    ),
    (
        "idea",
        (
            "suggested", "suggests", "suggestion", "why not", "could we", "can we", "should we",
            "we should", "we could", "how about", "idea", "would be good if", "would be great if",
            "would like to see", "would love to see", "proposed",
        ),
    ),
    (
        "compliment",
        (
            "thanks", "thank you", "thanked", "pleased", "great job", "well done", "good job",
            "brilliant", "happy with", "very happy", "really happy", "good feedback", "positive feedback",
            "praised", "grateful", "impressed", "love the", "loves the",
        ),
    ),
    (
        "question",
        (
            "?", "asked whether", "asked if", "asking whether", "asking if", "asked why", "asking why",
            "asked when", "asking when", "asked how", "asking how", "wants to know", "wanted to know",
            "wondering",
        ),
    ),
)  # fmt: skip
_NEGATED = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s+(?:\w+\s+)?$")


def _cue_pattern(cue: str) -> re.Pattern[str]:
    if not cue[0].isalnum():
        return re.compile(re.escape(cue))
    return re.compile(r"(?<!\w)" + re.escape(cue) + r"(?!\w)")


_KIND_PATTERNS = tuple((kind, tuple(_cue_pattern(cue) for cue in cues)) for kind, cues in _KIND_CUES)


def suggest_kind(text: str) -> str | None:
    """A first guess at what a report is, for staff to confirm; ``None`` for text with no words.

    The first kind, in this order, with a cue phrase in the text wins, so a suggestion phrased as a
    question is an idea, and a myth someone asked about is a myth:

    - myth: "people think", "rumour", "heard that", "apparently", "not true", "myth"...
    - idea: "suggested", "why not", "could we", "would be good if"...
    - compliment: "thanks", "pleased", "great job", "well done"... (not after "not"/"never": "not happy")
    - question: a "?", "asked whether", "asked if", "wants to know"...
    - otherwise concern.
    """
    cleaned = clean_slack_text(text)
    if not _tokens(cleaned):
        return None
    lowered = _SPACES.sub(" ", cleaned.casefold().replace("’", "'"))
    for kind, patterns in _KIND_PATTERNS:
        for pattern in patterns:
            for match in pattern.finditer(lowered):
                if not _NEGATED.search(lowered[: match.start()]):
                    return kind
    return "concern"
