"""Answer feedback is stored beside the index and turns into gold-question candidates."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from reportqa import feedback
from reportqa.errors import InputError
from reportqa.records import Answer, Citation
from reportqa.settings import Settings
from ui.cli import main

CITE = Citation(1, "darlington__safeguarding", "Darlington Borough Council", "quality_statement",
                "Safeguarding", None, 3, "3 - Evidence shows a good standard", "passage", 77, 111,
                "corpus/darlington__safeguarding.txt")
ANS = Answer("and Staffordshire?", "Score 3 [1].", False, (CITE,),
             read_as="What score did Staffordshire get for safeguarding?")


def test_verdicts_are_appended_as_json_lines_without_personal_fields(tmp_path: Path) -> None:
    s = Settings(index_dir=tmp_path / "index")
    feedback.record(s, ANS, "up")
    feedback.record(s, ANS, "down", "  It was   2, not 3 ")
    rows = feedback.load(s)
    assert [r["verdict"] for r in rows] == ["up", "down"]
    assert rows[1]["correction"] == "It was 2, not 3"
    assert rows[0]["read_as"] == ANS.read_as and rows[0]["citations"][0]["start"] == 77
    assert set(rows[0]) == {"time", "question", "read_as", "answer", "outcome", "citations",
                            "verdict", "correction"}


def test_a_bad_verdict_or_an_essay_is_refused_naming_the_file(tmp_path: Path) -> None:
    s = Settings(index_dir=tmp_path)
    with pytest.raises(InputError, match="feedback.jsonl"):
        feedback.record(s, ANS, "meh")
    with pytest.raises(InputError, match="under 2,000"):
        feedback.record(s, ANS, "down", "x " * 1500)
    assert feedback.load(s) == []


def test_a_torn_last_line_is_skipped_not_fatal(tmp_path: Path) -> None:
    s = Settings(index_dir=tmp_path)
    feedback.record(s, ANS, "up")
    with open(feedback.path(s), "a", encoding="utf-8") as fh:
        fh.write('{"question": "half')
    assert len(feedback.load(s)) == 1


def test_eval_from_feedback_writes_candidates_for_review(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings(index_dir=tmp_path / "index")
    other = replace(ANS, read_as="What score did Bury get for safeguarding?")
    feedback.record(s, ANS, "up")
    feedback.record(s, other, "down")  # no correction: nothing to learn from
    feedback.record(s, ANS, "down", "2 - Evidence shows some shortfalls")
    feedback.record(s, other, "up")  # changed its mind: the last verdict on an answer counts
    out = tmp_path / "out"
    assert main(["eval", "--from-feedback", "--index", str(s.index_dir), "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "feedback-candidates.jsonl").read_text().splitlines()]
    assert [(r["question"], r["verdict"]) for r in rows] == [(ANS.read_as, "down"),
                                                             (other.read_as, "up")]
    assert rows[0]["answers"] == ["2 - Evidence shows some shortfalls"]
    assert rows[1]["evidence"] == [CITE.quote]
    assert "2 candidate questions" in capsys.readouterr().out


def test_a_confirmed_abstention_is_an_unanswerable_candidate_and_no_file_is_said(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings(index_dir=tmp_path / "index")
    out = tmp_path / "out"
    assert main(["eval", "--from-feedback", "--index", str(s.index_dir), "--out", str(out)]) == 1
    assert "no feedback recorded yet" in capsys.readouterr().err
    none = Answer("What did Leeds score?", "The indexed reports don't cover Leeds.", True,
                  read_as="What did Leeds score?")
    feedback.record(s, none, "up")
    assert main(["eval", "--from-feedback", "--index", str(s.index_dir), "--out", str(out)]) == 0
    [row] = [json.loads(x) for x in (out / "feedback-candidates.jsonl").read_text().splitlines()]
    assert row["answerable"] is False and row["answers"] == [] and row["evidence"] == []
