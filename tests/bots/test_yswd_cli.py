"""The comms team's You Said, We Did commands, as typed at a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from bots.cli import main
from tests.conftest import EXAMPLE_SURVEY

CARD = """\
title: Play areas
survey: parks-2026
you_said: "Play areas need repairs: the swings at Elm Park are broken."
we_did: We will renew the Elm Park swings in January.
cannot_change: We can’t increase the total budget, set in February.
status: planned
lead_contact: parks@example.gov.uk
"""


@pytest.fixture
def card_file(tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOOPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOOPLINE_LOG_LEVEL", "WARNING")
    assert main(["survey", "load", str(EXAMPLE_SURVEY)]) == 0
    path = tmp_path / "play-areas.yaml"
    path.write_text(CARD)
    return path


def test_a_card_is_drafted_checked_by_a_colleague_and_previewed(
    card_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["yswd", "create", str(card_file), "--as", "priya.comms"]) == 0
    assert "Card 1 drafted" in capsys.readouterr().out

    assert main(["yswd", "approve", "1", "--as", "priya.comms"]) == 1
    assert "the author cannot approve their own card" in capsys.readouterr().err
    assert main(["yswd", "approve", "1", "--as", "tom.comms"]) == 0

    assert main(["yswd", "preview", "1"]) == 0
    preview = capsys.readouterr().out
    assert "--- sms, en ---" in preview
    assert "'’' forces UCS-2 (use \"'\")" in preview
    assert "with GSM-safe characters" in preview
    assert "--- telegram, en ---" in preview
    assert "counts from the results you can quote" in preview

    assert main(["yswd", "schedule", "1", "--at", "2026-12-24 22:00", "--as", "tom.comms"]) == 0
    assert "moved out of quiet hours" in capsys.readouterr().out
    assert main(["yswd", "list"]) == 0
    assert "scheduled  priya.comms    tom.comms" in capsys.readouterr().out


def test_a_card_file_with_a_mistake_names_file_field_and_line(
    card_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card_file.write_text(
        CARD.replace("status: planned", "status: not_possible").replace(
            "cannot_change: We can’t increase the total budget, set in February.\n", ""
        )
    )

    assert main(["yswd", "create", str(card_file), "--as", "priya.comms"]) == 1
    assert f"{card_file}:5: cannot_change:" in capsys.readouterr().err


def test_loops_shows_who_has_been_told(card_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["loops"]) == 0
    out = capsys.readouterr().out
    assert "parks-2026" in out
    assert "took part" in out


def test_the_calendar_lists_surveys_and_sends_and_flags_overlaps(
    card_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["yswd", "create", str(card_file), "--as", "priya.comms"])
    main(["yswd", "approve", "1", "--as", "tom.comms"])
    main(["yswd", "schedule", "1", "--at", "2099-01-15 10:00", "--as", "tom.comms"])
    capsys.readouterr()

    assert main(["calendar"]) == 0

    out = capsys.readouterr().out
    assert "2099-01-15 10:00  You Said, We Did 'Play areas' (card 1, parks-2026), scheduled" in out


def test_a_placeholder_without_a_value_is_an_error_at_preview(
    card_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card_file.write_text(CARD.replace("We will renew", "((ward_name)) - we will renew"))
    main(["yswd", "create", str(card_file), "--as", "priya.comms"])

    assert main(["yswd", "preview", "1"]) == 1
    assert "ward_name" in capsys.readouterr().err
