"""The blind question sets keep their shape and their split.

The reader is trained on evals/blind/train.jsonl (and the regression set), evaluated on
open.jsonl by document folds and, once a session, on locked.jsonl. These checks keep that
honest: no training or open question on a locked document, no id twice, every answerable
question with gold strings and evidence. (The locked file is only counted, never printed.)
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BLIND = Path(__file__).resolve().parent.parent / "evals" / "blind"
KEYS = {"id", "question", "answers", "evidence", "council", "answerable", "type", "file", "page",
        "split"}
TYPES = {"paraphrase", "informal", "why", "yes_no", "one_figure", "list", "judgement",
         "unanswerable"}


def _rows(name: str) -> list[dict]:
    return [json.loads(ln) for ln in (BLIND / name).read_text(encoding="utf-8").splitlines()
            if ln.strip()]


def _split_of() -> dict[str, str]:
    rows = [ln.split("\t") for ln in (BLIND / "split.tsv").read_text(encoding="utf-8").splitlines()]
    return {r[0]: r[2].strip() for r in rows[1:] if len(r) > 2}


@pytest.mark.parametrize(("name", "split"), [("open.jsonl", "open"), ("train.jsonl", "train"),
                                           ("unread-5.jsonl", "unread")])
def test_set_shape_and_documents(name: str, split: str) -> None:
    rows, where = _rows(name), _split_of()
    assert len({r["id"] for r in rows}) == len(rows), f"{name}: duplicate ids"
    for r in rows:
        assert set(r) == KEYS, (r["id"], set(r) ^ KEYS)
        assert r["type"] in TYPES and r["split"] == split, r["id"]
        if r["answerable"]:
            assert r["answers"] and r["evidence"] and r["file"], r["id"]
            assert where.get(r["file"]) == "open", f"{r['id']}: {r['file']} is not an open document"
        else:
            assert not r["answers"] and not r["evidence"], r["id"]
    share = sum(not r["answerable"] for r in rows) / len(rows)
    assert share >= 0.15, f"{name}: only {share:.0%} unanswerable"


def test_training_questions_are_not_open_questions() -> None:
    """The open split measures the reader by document folds; a training question worded
    exactly as an open one would measure memory."""
    def norm(q: str) -> str:
        return " ".join(q.lower().split())

    open_q = {norm(r["question"]) for r in _rows("open.jsonl")}
    assert not [r["id"] for r in _rows("train.jsonl") if norm(r["question"]) in open_q]


def test_locked_split_is_documents_apart() -> None:
    where = _split_of()
    locked_files = {f for f, s in where.items() if s == "locked"}
    assert len(locked_files) >= 0.3 * len(where)
    assert all(r["file"] in locked_files or r["file"] is None for r in _rows("locked.jsonl"))


def test_second_locked_set_keeps_its_shape_on_locked_documents() -> None:
    """locked-2.jsonl (written by other helpers, from the locked documents' text alone) is a
    second locked split: the same shape as the others, every question on a locked document,
    no id shared with locked.jsonl. Only counted, never printed: failures name ids alone."""
    rows, where = _rows("locked-2.jsonl"), _split_of()
    ids = [r["id"] for r in rows]
    assert len(set(ids)) == len(ids) and not set(ids) & {r["id"] for r in _rows("locked.jsonl")}
    for r in rows:
        assert set(r) == KEYS and r["type"] in TYPES and r["split"] == "locked", r["id"]
        assert r["file"] is None or where.get(r["file"]) == "locked", r["id"]
        if r["answerable"]:
            assert r["answers"] and r["evidence"] and r["file"], r["id"]
        else:
            assert not r["answers"] and not r["evidence"], r["id"]
    assert sum(not r["answerable"] for r in rows) / len(rows) >= 0.15


@pytest.mark.parametrize("name", ["conversations-open.jsonl", "conversations-dev.jsonl",
                                  "conversations-fresh.jsonl", "conversations-fresh-2.jsonl",
                                  "conversations-fresh-3.jsonl", "conversations-fresh-4.jsonl",
                                  "conversations-fresh-5.jsonl"])
def test_open_conversations_stay_on_open_documents(name: str) -> None:
    """Conversations worked on (open, dev) never touch a locked document."""
    from evals.conversations import load_conversations

    where = _split_of()
    convs = load_conversations(BLIND / name)
    assert len({c.id for c in convs}) == len(convs), f"{name}: duplicate ids"
    files = {t["file"] for c in _rows(name) for t in c["turns"] if t["file"]}
    assert all(where.get(f) == "open" for f in files), sorted(f for f in files if where.get(f) != "open")
    kinds = {t.kind for c in convs for t in c.turns[1:]}
    assert {"why", "pronoun", "page", "unanswerable"} <= kinds


def test_locked_conversations_stay_on_locked_documents() -> None:
    """The locked conversations (aggregates only, once per session) are on locked documents
    only, with unique ids and every kind of follow-up the brief asks for. Checked here so
    that nobody needs to open the file."""
    from evals.conversations import load_conversations

    where = _split_of()
    convs = load_conversations(BLIND / "conversations-locked.jsonl")
    assert len({c.id for c in convs}) == len(convs), "duplicate ids"
    assert all(c.split == "locked" for c in convs)
    files = {t["file"] for c in _rows("conversations-locked.jsonl") for t in c["turns"] if t["file"]}
    assert files and all(where.get(f) == "locked" for f in files)
    kinds = {t.kind for c in convs for t in c.turns[1:]}
    assert {"why", "pronoun", "page", "unanswerable", "more", "other_org"} <= kinds


def test_the_inspected_when_set_asks_only_that_with_evidence_for_every_list() -> None:
    """The sixth cross-council helper wrote only "which were inspected when" questions (and
    four where no council fits), each list backed by the dates its reports print."""
    rows = _rows("cross-inspected.jsonl")
    assert len(rows) >= 30 and len({r["id"] for r in rows}) == len(rows)
    assert {r["kind"] for r in rows} == {"inspected", "none"}
    for r in rows:
        assert bool(r["expected_councils"]) == (r["kind"] == "inspected"), r["id"]
        assert r["evidence"], r["id"]


@pytest.mark.parametrize("name", ["cross-dev.jsonl", "cross-locked.jsonl", "cross-fresh.jsonl"])
def test_cross_council_sets_keep_their_shape(name: str) -> None:
    """The analyst-style sets (evals/cross_councils.py scores them): unique ids, every kind
    of CROSS_BRIEF.md, a list or words to expect on every turn, evidence for every answer.
    (The locked file is only counted, never printed.)"""
    rows = _rows(name)
    assert len(rows) >= 50 and len({r["id"] for r in rows}) == len(rows)
    kinds = {r["kind"] for r in rows}
    brief = {"grade_list", "judgement_list", "score_extreme", "inspected", "compare", "how_did",
             "none", "followup"}
    # The fresh set was asked for no comparisons (its brief reweighted the kinds).
    assert kinds == brief - ({"compare"} if name == "cross-fresh.jsonl" else set())
    for r in rows:
        turns = [r] + ([r["followup"]] if r["kind"] == "followup" else [])
        for t in turns:
            assert isinstance(t["expected_councils"], list) and isinstance(t["expected_text"], list)
        if r["kind"] == "none":  # no council fits: nothing to expect
            assert not r["expected_councils"] and not r["expected_text"]
