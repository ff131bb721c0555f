"""The ``loopline`` command as the comms team uses it: load surveys, try them, read results."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from bots.cli import main
from tests.conftest import EXAMPLE_SURVEY


@pytest.fixture
def env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LOOPLINE_DATABASE_URL", database_url)
    monkeypatch.setenv("LOOPLINE_LOG_LEVEL", "WARNING")
    return database_url


@pytest.fixture
def always_open_survey(tmp_path: Path) -> Path:
    """The example survey, open whatever day the tests run."""
    text = EXAMPLE_SURVEY.read_text().replace("opens: 2026-11-01", "opens: 2020-01-01")
    path = tmp_path / "parks.yaml"
    path.write_text(text.replace("closes: 2026-12-31", "closes: 2099-12-31"))
    return path


def test_loading_the_example_survey_stores_it(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["survey", "load", str(EXAMPLE_SURVEY)]) == 0
    assert "Loaded parks-2026: 'Parks and open spaces', keyword PARKS, 3 questions" in capsys.readouterr().out

    assert main(["survey", "list"]) == 0
    assert "parks-2026               PARKS      2026-11-01  2026-12-31" in capsys.readouterr().out


def test_a_bad_survey_file_is_reported_by_file_field_and_line_and_nothing_is_stored(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bins.yaml"
    bad.write_text(EXAMPLE_SURVEY.read_text().replace("type: scale", "type: slider"))

    assert main(["survey", "load", str(EXAMPLE_SURVEY), str(bad)]) == 1
    assert f"{bad}:21: questions[1].type: Input should be 'choice', 'scale', 'yesno' or 'text'" in (
        capsys.readouterr().err
    )

    main(["survey", "list"])
    assert "(no surveys yet" in capsys.readouterr().out


def test_two_open_surveys_cannot_share_a_keyword(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "play.yaml"
    other.write_text(EXAMPLE_SURVEY.read_text().replace("slug: parks-2026", "slug: play-2026"))

    assert main(["survey", "load", str(EXAMPLE_SURVEY)]) == 0
    assert main(["survey", "load", str(other)]) == 1
    assert f"{other}:4: keyword: keyword PARKS is already used by the open survey 'parks-2026'" in (
        capsys.readouterr().err
    )


def test_a_survey_tried_in_the_simulator_shows_up_in_the_results(
    env: str, always_open_survey: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["survey", "load", str(always_open_survey)])
    monkeypatch.setattr(sys, "stdin", io.StringIO("parks\nb\ntwo\nThe swings, please\n"))

    assert main(["chat", "--as", "07700 900123"]) == 0
    chat = capsys.readouterr().out
    assert "Simulated phone +447700900123" in chat
    assert "you> b\n\nHow would you rate your nearest play area?" in chat
    assert "Thank you, your answers are saved." in chat

    assert main(["results", "parks-2026"]) == 0
    summary = capsys.readouterr().out
    assert "1 took part, 1 finished" in summary
    assert "  Every month                           1  100.0%" in summary
    assert "  - The swings, please" in summary

    assert main(["results", "parks-2026", "--csv"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header == "participant,channel,language,started_at,completed_at,outcome,visits,rating,why"
    assert row.split(",")[1:3] == ["sim", "en"]
    assert row.endswith(',completed,monthly,2,"The swings, please"')


def test_results_for_an_unknown_survey_say_so(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "nope"]) == 1
    assert "no survey 'nope'" in capsys.readouterr().err


def test_a_configuration_mistake_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", "AC123")

    assert main(["survey", "list"]) == 2
    assert "set both TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in capsys.readouterr().err
