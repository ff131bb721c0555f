"""Reading survey files: a good file becomes a Survey, a bad one an error naming the file, field and line."""

from __future__ import annotations

import pytest

from flows.definition import Survey
from flows.survey_file import Problem, SurveyFileError, parse_survey
from tests.flows.transcript import EXAMPLE_FILE, PARKS

SOURCE = "trees.yaml"

TREES = """\
slug: trees-2026
title: Street trees
keyword: trees
lead: {name: Tree team, contact: trees@example.gov.uk}
purpose: Choose where new street trees go.
can_influence: which streets get trees first
cannot_influence: the number of trees
opens: 2026-11-01
closes: 2026-12-31
questions:
  - id: street
    type: choice
    text: Which kind of street should come first?
    options:
      - {id: busy, text: Busy roads}
      - {id: quiet, text: Quiet roads}
  - id: rating
    type: scale
    text: How green is your street? (1 bare, 5 leafy)
  - id: water
    type: yesno
    text: Would you water a new tree?
  - id: why
    type: text
    optional: true
    when: {rating: [1, 2]}
    text: What would help?
"""


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of ``text`` where ``fragment`` first appears."""
    for number, line in enumerate(text.splitlines(), 1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} is not in the file")


def edit(old: str, new: str, text: str = TREES) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def problems_in(text: str, *, others: tuple[Survey, ...] = ()) -> tuple[SurveyFileError, list[Problem]]:
    with pytest.raises(SurveyFileError) as caught:
        parse_survey(text, SOURCE, others=others)
    return caught.value, list(caught.value.problems)


def survey(text: str = TREES, **changes: str) -> Survey:
    for key, value in changes.items():
        text = "\n".join(
            f"{key}: {value}" if line.startswith(f"{key}:") else line for line in text.splitlines()
        )
    return parse_survey(text, "other.yaml")


# Good files


def test_the_example_survey_parses() -> None:
    parks = parse_survey(EXAMPLE_FILE.read_text(encoding="utf-8"), "parks.yaml")

    assert parks == PARKS
    assert parks.slug == "parks-2026"
    assert parks.keyword == "PARKS"
    assert parks.languages == ("en", "cy")
    assert [q.id for q in parks.questions] == ["visits", "rating", "why"]
    assert parks.question("why").when == {"rating": ("1", "2")}
    assert parks.question("why").text == {"en": "What should we fix first?"}  # plain string: default language


def test_keyword_is_stored_in_capitals_and_yaml_yes_stays_text() -> None:
    text = edit("    when: {rating: [1, 2]}", "    when: {water: [yes]}")

    trees = parse_survey(text, SOURCE)

    assert trees.keyword == "TREES"
    assert trees.question("why").when == {"water": ("yes",)}


# Bad files: each problem names the field and the line, and str(error) reads "file:line: field: message"


def test_missing_keyword() -> None:
    text = edit("keyword: trees\n", "")

    error, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("keyword", 1)]  # missing: the nearest line, the top
    assert "Field required" in problems[0].message
    assert str(error) == "trees.yaml:1: keyword: Field required"
    assert error.source == SOURCE


def test_missing_question_text_points_at_the_question() -> None:
    text = edit("    text: Would you water a new tree?\n", "")

    error, problems = problems_in(text)

    line = line_of(text, "- id: water")
    assert [(p.field, p.line) for p in problems] == [("questions[2].text", line)]
    assert f"trees.yaml:{line}: questions[2].text:" in str(error)


def test_every_problem_is_reported_at_once() -> None:
    text = edit("title: Street trees\n", "")
    text = edit("    type: yesno\n", "    type: thumbs\n", text)

    _, problems = problems_in(text)

    assert {(p.field, p.line) for p in problems} == {
        ("title", 1),
        ("questions[2].type", line_of(text, "thumbs")),
    }


def test_unknown_question_type() -> None:
    text = edit("    type: scale\n", "    type: slider\n")

    error, problems = problems_in(text)

    line = line_of(text, "type: slider")
    assert [(p.field, p.line) for p in problems] == [("questions[1].type", line)]
    assert "'choice', 'scale', 'yesno' or 'text'" in problems[0].message
    assert f"trees.yaml:{line}: questions[1].type:" in str(error)


def test_when_naming_a_later_question() -> None:
    text = edit("    type: scale\n", "    type: scale\n    when: {water: [yes]}\n")

    error, problems = problems_in(text)

    line = line_of(text, "when: {water")
    assert [(p.field, p.line) for p in problems] == [("questions[1].when.water", line)]
    assert "not an earlier question" in problems[0].message
    assert f"trees.yaml:{line}: questions[1].when.water:" in str(error)


def test_when_naming_no_question_at_all() -> None:
    text = edit("    when: {rating: [1, 2]}", "    when: {ratting: [1, 2]}")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("questions[3].when.ratting", line_of(text, "ratting"))]


@pytest.mark.parametrize(
    ("when", "field"),
    [
        ("{rating: [1, 7]}", "questions[3].when.rating"),  # the scale is 1 to 5
        ("{street: [motorway]}", "questions[3].when.street"),  # not an option id
        ("{water: [maybe]}", "questions[3].when.water"),  # yes/no
    ],
)
def test_when_value_that_is_not_a_possible_answer(when: str, field: str) -> None:
    text = edit("    when: {rating: [1, 2]}", f"    when: {when}")

    error, problems = problems_in(text)

    line = line_of(text, "    when:")
    assert [(p.field, p.line) for p in problems] == [(field, line)]
    assert "not possible answers" in problems[0].message
    assert f"trees.yaml:{line}: {field}:" in str(error)


def test_when_value_in_block_style_points_at_its_own_line() -> None:
    text = edit("    when: {rating: [1, 2]}", "    when:\n      rating:\n        - 1\n        - 9")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("questions[3].when.rating", line_of(text, "- 1"))]


def test_when_cannot_depend_on_free_text() -> None:
    text = TREES + "  - id: more\n    type: yesno\n    when: {why: [trees]}\n    text: Anything else?\n"

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("questions[4].when.why", line_of(text, "{why:"))]
    assert "free-text" in problems[0].message


def test_duplicate_question_ids() -> None:
    text = edit("  - id: water\n", "  - id: rating\n")

    error, problems = problems_in(text)

    line = line_of(text, "type: yesno") - 1
    assert [(p.field, p.line) for p in problems] == [("questions[2].id", line)]
    assert "'rating' is used twice" in problems[0].message
    assert f"trees.yaml:{line}: questions[2].id:" in str(error)


def test_yaml_syntax_error() -> None:
    text = edit("      - {id: quiet, text: Quiet roads}", "      - {id: quiet, text: [Quiet roads}")

    error, problems = problems_in(text)

    line = line_of(text, "[Quiet roads}")
    assert [(p.field, p.line) for p in problems] == [("(file)", line)]
    assert problems[0].message.startswith("not valid YAML")
    assert f"trees.yaml:{line}: (file): not valid YAML" in str(error)


def test_a_file_that_is_not_a_mapping() -> None:
    error, problems = problems_in("- slug: trees\n- keyword: TREES\n")

    assert [(p.field, p.line) for p in problems] == [("(file)", 1)]
    assert str(error).startswith("trees.yaml:1: (file):")


def test_an_empty_file() -> None:
    _, problems = problems_in("# nothing yet\n")

    assert [(p.field, p.line) for p in problems] == [("(file)", 1)]


def test_a_choice_needs_two_options() -> None:
    text = edit("      - {id: quiet, text: Quiet roads}\n", "")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("questions[0].options", line_of(text, "- {id: busy"))]


def test_closes_before_opens() -> None:
    text = edit("closes: 2026-12-31", "closes: 2026-10-31")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("closes", line_of(text, "closes:"))]


@pytest.mark.parametrize("keyword", ["street trees", "T", "TREES!", "averyveryverylongkeyword"])
def test_keyword_must_be_one_short_word(keyword: str) -> None:
    text = edit("keyword: trees", f"keyword: '{keyword}'")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("keyword", line_of(text, "keyword:"))]


@pytest.mark.parametrize("keyword", ["STOP", "HELP", "START", "YES", "CYMRAEG"])
def test_keyword_must_not_be_a_command_word(keyword: str) -> None:
    text = edit("keyword: trees", f"keyword: {keyword}")

    _, problems = problems_in(text)

    assert [(p.field, p.line) for p in problems] == [("keyword", line_of(text, "keyword:"))]


def test_text_missing_in_the_default_language() -> None:
    text = edit("closes: 2026-12-31\n", "closes: 2026-12-31\nlanguages: [cy, en]\n")
    text = edit("    text: Would you water a new tree?", "    text: {en: Would you water a new tree?}", text)

    _, problems = problems_in(text)

    line = line_of(text, "{en: Would you water")
    assert [(p.field, p.line) for p in problems] == [("questions[2].text", line)]
    assert "'cy'" in problems[0].message


# The keyword rule: unique among surveys whose dates overlap


def test_keyword_already_used_by_an_overlapping_survey() -> None:
    other = survey(slug="old-trees", opens="2026-10-01", closes="2026-11-01")  # last day overlaps

    error, problems = problems_in(TREES, others=(PARKS, other))

    line = line_of(TREES, "keyword:")
    assert [(p.field, p.line) for p in problems] == [("keyword", line)]
    assert "'old-trees'" in problems[0].message
    assert str(error).startswith(f"trees.yaml:{line}: keyword: keyword TREES is already used")


def test_keyword_matching_ignores_case() -> None:
    other = survey(slug="old-trees", keyword="Trees")

    _, problems = problems_in(TREES, others=(other,))

    assert [p.field for p in problems] == ["keyword"]


@pytest.mark.parametrize(("opens", "closes"), [("2026-01-01", "2026-10-31"), ("2027-01-01", "2027-02-01")])
def test_keyword_may_be_reused_when_the_dates_do_not_overlap(opens: str, closes: str) -> None:
    other = survey(slug="other-trees", opens=opens, closes=closes)

    assert parse_survey(TREES, SOURCE, others=(other, PARKS)).keyword == "TREES"


def test_reloading_the_same_survey_is_not_a_clash() -> None:
    same = survey()

    assert parse_survey(TREES, SOURCE, others=(same,)) == same
