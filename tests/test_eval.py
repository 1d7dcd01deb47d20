"""Batch evaluation: metric functions, question loader, and a small end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evals import metrics as M
from reportqa.errors import InputError, ReportQAError

# --- metric functions (pure) -----------------------------------------------------------------


def test_normalise_lowercases_drops_markers_and_collapses_space():
    assert M.normalise("The  Score is 3 [1].\n Good [12] ") == "the score is 3 . good"
    assert M.normalise("See [1, 2] and [3-4]") == "see and"
    assert M.normalise(None) == ""
    assert M.word_count("Two words [1].") == 3  # "two", "words", "." (marker removed)


def test_contains_gold_and_answer_correct():
    assert M.contains_gold("There are 3,670 older people [1].", ["3670", "3,670"])
    assert not M.contains_gold("There are 3 670 people", ["3,670"])
    assert M.answer_correct("It is  Three Conversations [2].", False, ["three conversations"])
    assert not M.answer_correct("three conversations", True, ["three conversations"])
    long = "three conversations " + "word " * 80
    assert M.contains_gold(long, ["three conversations"])
    assert not M.answer_correct(long, False, ["three conversations"])  # over 75 words
    at_limit = "three conversations" + " w" * 73  # exactly 75 words
    assert M.answer_correct(at_limit, False, ["three conversations"])
    assert not M.answer_correct("", False, [""])  # an empty gold never matches


def test_longest_common_run_and_40_char_overlap():
    a = "x" * 5 + "the local authority worked with partners well" + "y" * 5
    b = "zz the local authority worked with partners well zz"
    assert M.longest_common_run(a, b) == len("the local authority worked with partners well")
    assert M.shares_run(a, b, 40)
    assert not M.shares_run("abc" * 20, "xyz" * 20, 40)
    run39 = "q" * 39
    assert M.longest_common_run("a" + run39 + "b", "c" + run39 + "d") == 39
    assert not M.shares_run("a" + run39 + "b", "c" + run39 + "d", 40)
    assert M.shares_run("a" + run39 + "Q", "c" + run39 + "Q", 39)


def test_supports_contains_or_overlap_after_normalising():
    ev = ["In 2030, it is projected there will be 3,670 older people (65+) with dementia."]
    assert M.supports("Intro. IN 2030, it is projected there  will be 3,670 older people (65+) "
                      "with dementia. More.", ev)
    # the passage holds only the second half of the evidence (chunk boundary): >= 40 chars shared
    assert M.supports("there will be 3,670 older people (65+) with dementia. Next chunk.", ev)
    assert not M.supports("3,670 older people", ev)  # too short a shared run
    assert M.supports("short evidence here", ["Short  evidence"])  # short evidence, contained
    assert not M.supports("", ev)
    assert not M.supports("anything", [])


def test_rank_recall_and_mrr():
    ev = ["the evidence sentence that we are looking for in these passages"]
    passages = ["nothing", "still nothing", "x the evidence sentence that we are looking for in "
                "these passages y", "the evidence sentence that we are looking for again"]
    assert M.first_supporting_rank(passages, ev) == 3
    assert M.first_supporting_rank(passages[:2], ev) is None
    ranks = [1, 3, None, 6]
    assert M.recall_at(ranks, 1) == 0.25
    assert M.recall_at(ranks, 5) == 0.5
    assert M.mrr(ranks) == pytest.approx((1 + 1 / 3 + 0 + 1 / 6) / 4)
    assert M.recall_at([], 5) is None and M.mrr([]) is None


def test_summarise_abstention_and_false_abstention():
    rows: list[dict[str, Any]] = [
        {"answerable": True, "abstained": False, "correct": True, "contains_gold": True,
         "supported": True, "rank": 1, "latency_ms": 10.0, "answer": "a b c", "error": None},
        {"answerable": True, "abstained": True, "correct": False, "contains_gold": False,
         "supported": None, "rank": None, "latency_ms": 30.0, "answer": "no", "error": None},
        {"answerable": False, "abstained": True, "correct": True, "rank": None,
         "latency_ms": 20.0, "answer": "don't say", "error": None},
        {"answerable": False, "abstained": False, "correct": False, "rank": None,
         "latency_ms": None, "answer": None, "error": "answer: RuntimeError: boom"},
    ]
    s = M.summarise(rows)
    assert s["n"] == 4 and s["errors"] == 1
    assert s["answer_accuracy"] == 0.5
    assert s["abstention_accuracy"] == 0.5  # the error row counts as a miss
    assert s["false_abstention_rate"] == 0.5
    assert s["citation_support"] == 1.0 and s["unsupported_by_answerer"] == {}
    assert s["recall_at_1"] == 0.5 and s["mrr"] == 0.5
    assert s["latency_p50_ms"] == 20.0
    assert s["mean_answer_words"] == 3.0
    assert M.failure_reason(rows[1]) == "false abstention"
    assert M.failure_reason(rows[3]) == "error"
    assert M.failure_reason(rows[0]) is None
    assert M.percentile([1, 2, 3, 4], 50) == 2.5


def test_unsupported_correct_answers_are_counted_by_answerer():
    """Citation support's misses, split by the answerer that gave them: a correct table
    answer whose row does not match the evidence string is told apart from a quote that
    cites the wrong passage. Wrong answers and unmeasured support are not counted."""
    def row(answerer: str, correct: bool, supported: bool | None) -> dict[str, Any]:
        return {"answerable": True, "abstained": False, "correct": correct,
                "contains_gold": correct, "supported": supported, "rank": 1,
                "latency_ms": 1.0, "answer": "a", "error": None, "answerer": answerer}

    s = M.summarise([row("table", True, False), row("table", True, False),
                     row("extractive", True, False), row("extractive", True, True),
                     row("extractive", False, False), row("table", True, None)])
    assert s["unsupported_by_answerer"] == {"extractive": 1, "table": 2}
    assert s["citation_support"] == 0.2


def test_gate_messages():
    overall = {"answer_accuracy": 0.7, "recall_at_5": 0.95, "citation_support": None}
    msgs = M.gate(overall, {"answer_accuracy": 0.75, "recall_at_5": 0.9, "citation_support": 0.5})
    assert len(msgs) == 2
    assert any("answer_accuracy" in m and "below" in m for m in msgs)
    assert any("citation_support" in m and "not measured" in m for m in msgs)


# --- loader ----------------------------------------------------------------------------------

def _q(**kw):
    base = {"id": "t-01", "question": "How many?", "answers": ["3"], "evidence": ["e"],
            "council": None, "answerable": True}
    base.update(kw)
    return base


def _write(path: Path, objs: list) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs),
                    encoding="utf-8")
    return path


def test_loader_reads_and_ignores_unknown_fields(tmp_path):
    from evals.run import load_questions

    p = _write(tmp_path / "q.jsonl", [_q(extra="ignored", type="number", split="dev"), "",
                                      _q(id="t-02", split="held")])
    qs = load_questions(p)
    assert [q.id for q in qs] == ["t-01", "t-02"] and qs[0].type == "number"
    assert [q.id for q in load_questions(p, split="held")] == ["t-02"]
    with pytest.raises(InputError, match="no questions with split"):
        load_questions(_write(tmp_path / "d.jsonl", [_q(split="dev")]), split="held")


def test_loader_malformed_line_names_the_line(tmp_path):
    from evals.run import load_questions

    p = _write(tmp_path / "q.jsonl", [_q(), _q(id="t-02"), '{"id": "t-03", "question": '])
    with pytest.raises(InputError, match=r"line 3: not valid JSON"):
        load_questions(p)
    with pytest.raises(InputError, match=r"line 1: expected a JSON object"):
        load_questions(_write(tmp_path / "l.jsonl", ["[1, 2]"]))


def test_loader_missing_required_field_and_wrong_type(tmp_path):
    from evals.run import load_questions

    bad = _q(id="t-02")
    del bad["answerable"]
    with pytest.raises(InputError, match=r"line 2: missing required field\(s\) 'answerable'"):
        load_questions(_write(tmp_path / "q.jsonl", [_q(), bad]))
    with pytest.raises(InputError, match=r"line 1: field 'answers' must be list"):
        load_questions(_write(tmp_path / "t.jsonl", [_q(answers="3")]))
    with pytest.raises(InputError, match=r"line 2: duplicate id 't-01'"):
        load_questions(_write(tmp_path / "d.jsonl", [_q(), _q()]))


def test_loader_empty_and_missing_file(tmp_path):
    from evals.run import load_questions

    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty"):
        load_questions(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="not found"):
        load_questions(tmp_path / "nope.jsonl")


def test_thresholds_loader(tmp_path):
    from evals.run import load_thresholds

    p = tmp_path / "t.json"
    p.write_text(json.dumps({"minimum": {"bogus": 0.5}}), encoding="utf-8")
    with pytest.raises(InputError, match="unknown metric 'bogus'"):
        load_thresholds(p)
    real = load_thresholds(Path(__file__).resolve().parent.parent / "evals" / "thresholds.json")
    assert set(real) == set(M.GATED)


# --- end to end on a tiny question set (hash embedder) ---------------------------------------

TINY: list[dict[str, Any]] = [
    {"id": "ban-03", "question": "How many older people with dementia are projected to be "
     "living in B&NES by 2030?", "answers": ["3,670", "3670"],
     "evidence": ["In 2030, it is projected there will be 3,670 older people (65+) with dementia "
                  "in B&NES which is an increase of 36% since 2019."],
     "council": "Bath and North East Somerset Council", "answerable": True, "type": "number",
     "split": "dev"},
    {"id": "un-01", "question": "What overall rating did CQC give Gateshead for adult social "
     "care?", "answers": [], "evidence": [], "council": "Gateshead Borough Council",
     "answerable": False, "type": "unanswerable", "split": "dev"},
    {"id": "zz-01", "question": "How many dragons live in Bath and North East Somerset?",
     "answers": ["42 dragons"], "evidence": ["There are exactly forty-two dragons living in the "
                                             "caves under the Roman baths of the city."],
     "council": "Bath and North East Somerset Council", "answerable": True, "type": "fact",
     "split": "held"},
    {"id": "boom-01", "question": "What model of strengths-based assessment do Birmingham's "
     "community teams use?", "answers": ["3 conversations"],
     "evidence": ["The 3 conversations, strengths-based approach"], "council": None,
     "answerable": True, "type": "fact", "split": "held"},
]


@pytest.fixture
def tiny_questions(tmp_path) -> Path:
    return _write(tmp_path / "tiny.jsonl", TINY)


@pytest.fixture
def exploding_answer(monkeypatch):
    import evals.run

    real = evals.run.answer

    def answer(question, settings, *a, **kw):
        if "Birmingham" in question:
            raise RuntimeError("pipeline exploded")
        return real(question, settings, *a, **kw)

    monkeypatch.setattr(evals.run, "answer", answer)


def test_eval_run_writes_outputs_and_records_errors(shared_hash_index, tiny_questions, tmp_path,
                                                    exploding_answer):
    from evals.run import evaluate

    out = tmp_path / "out"
    res = evaluate(tiny_questions, shared_hash_index, out_dir=out, progress=False)
    assert {p.name for p in out.iterdir()} == {"results.jsonl", "summary.json", "report.html"}

    rows = {r["id"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(rows) == {"ban-03", "un-01", "zz-01", "boom-01"}
    for r in rows.values():
        assert {"id", "question", "type", "split", "answer", "abstained", "citations", "correct",
                "supported", "rank", "latency_ms", "error"} <= set(r)
    boom = rows["boom-01"]
    assert "pipeline exploded" in boom["error"] and boom["answer"] is None
    assert boom["correct"] is False and boom["failure"] == "error"
    assert rows["zz-01"]["rank"] is None and rows["zz-01"]["correct"] is False
    assert rows["un-01"]["abstained"] is True and rows["un-01"]["correct"] is True
    assert rows["ban-03"]["rank"] is not None and rows["ban-03"]["latency_ms"] > 0
    for c in rows["ban-03"]["citations"]:
        assert {"n", "report_id", "quote", "start", "end"} <= set(c)

    summary = json.loads((out / "summary.json").read_text())
    assert summary == json.loads(json.dumps(res.summary))
    o = summary["overall"]
    for key in ("answer_accuracy", "abstention_accuracy", "false_abstention_rate",
                "citation_support", "recall_at_1", "recall_at_5", "mrr", "latency_p50_ms",
                "latency_p95_ms", "mean_answer_words", "errors", "n"):
        assert key in o
    assert o["n"] == 4 and o["errors"] == 1 and summary["error_ids"] == ["boom-01"]
    assert o["abstention_accuracy"] == 1.0
    assert set(summary["by_type"]) == {"number", "unanswerable", "fact"}
    assert set(summary["by_split"]) == {"dev", "held"}

    html = (out / "report.html").read_text()
    assert html.count('<img src="data:image/png;base64,') == 3
    assert "How many dragons live in Bath" in html  # a failure row
    assert "pipeline exploded" in html


def test_eval_previous_baseline_and_html_escaping(shared_hash_index, tmp_path):
    from evals.run import evaluate

    qs = [dict(TINY[0]), dict(TINY[1], question="<script>alert(1)</script> What rating did "
                              "Gateshead get?")]
    p = _write(tmp_path / "q.jsonl", qs)
    first = tmp_path / "first"
    evaluate(p, shared_hash_index, out_dir=first, progress=False)
    # Pretend the previous run got everything right: anything wrong now is a regression.
    rows = [json.loads(ln) for ln in (first / "results.jsonl").read_text().splitlines()]
    (first / "results.jsonl").write_text("".join(json.dumps(dict(r, correct=True)) + "\n"
                                                 for r in rows))
    res = evaluate(p, shared_hash_index, out_dir=tmp_path / "second", previous=first,
                   progress=False)
    prev = res.summary["previous"]
    assert prev["overall"]["n"] == 2 and "delta" in prev
    wrong_now = [r["id"] for r in res.rows if not r["correct"]]
    assert prev["right_to_wrong"] == wrong_now
    html = (tmp_path / "second" / "report.html").read_text()
    assert "previous" in html
    assert "<script>alert(1)</script>" not in html
    with pytest.raises(InputError, match="summary.json"):
        evaluate(p, shared_hash_index, out_dir=tmp_path / "x", previous=tmp_path / "nothing",
                 progress=False)


def test_compare_baseline_llama_index(shared_hash_index, tiny_questions, tmp_path):
    from evals.run import evaluate

    res = evaluate(tiny_questions, shared_hash_index, out_dir=tmp_path / "o",
                   compare_baseline=True, progress=False)
    b = res.summary["baseline"]
    assert b["nodes"] > 0
    for key in ("recall_at_1", "recall_at_5", "mrr", "answer_accuracy", "contains_gold"):
        assert key in b["overall"]
    assert b["overall"]["abstention_accuracy"] == 0.0  # the top passage never abstains
    seam = b["llama_index_seam"]["overall"]  # our retriever behind llama-index's query engine
    assert seam["n"] == b["overall"]["n"] and seam["errors"] == 0
    assert 0.0 <= seam["answer_accuracy"] <= 1.0


def test_eval_missing_index_says_run_ingest(tiny_questions, make_settings, tmp_path):
    from evals.run import evaluate

    with pytest.raises(ReportQAError, match=r"reportqa ingest corpus/"):
        evaluate(tiny_questions, make_settings("no-index"), out_dir=tmp_path / "o",
                 progress=False)


def test_cli_eval_json_and_gate(shared_hash_index, tiny_questions, tmp_path, capsys,
                                monkeypatch):
    from ui.cli import main

    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    gate = tmp_path / "gate.json"
    gate.write_text(json.dumps({"minimum": {"abstention_accuracy": 0.5,
                                            "answer_accuracy": 1.01}}))
    rc = main(["eval", str(tiny_questions), "--index", str(shared_hash_index.index_dir),
               "--out", str(tmp_path / "o"), "--json", "--gate", str(gate)])
    cap = capsys.readouterr()
    summary = json.loads(cap.out)  # stdout is exactly the summary
    assert summary["n"] == 4 and summary["gate"]["passed"] is False
    assert rc != 0
    assert "GATE FAILED: answer_accuracy" in cap.err
    assert "abstention_accuracy" not in cap.err.split("GATE FAILED")[-1]

    rc = main(["eval", str(tmp_path / "missing.jsonl"), "--index",
               str(shared_hash_index.index_dir), "--out", str(tmp_path / "o2")])
    cap = capsys.readouterr()
    assert rc == 1 and "missing.jsonl: question file not found" in cap.err
    assert "Traceback" not in cap.err


def test_heldout_plot_reads_several_folders_as_one_run_by_round(tmp_path: Path) -> None:
    from evals.plot_heldout import figures

    def run(folder: Path, rows: list[dict[str, object]]) -> Path:
        folder.mkdir()
        (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return folder

    row = {"answerable": True, "correct": True, "outcome": "answer"}
    a = run(tmp_path / "a", [{**row, "id": "op-1"}, {**row, "id": "trK-1", "correct": False}])
    b = run(tmp_path / "b", [{**row, "id": "trR-1"}, {"id": "trR-2", "answerable": False,
                                                      "correct": True, "outcome": "not_found"}])
    figs = figures([a, b])
    assert figs["training,\nround 4\n(2)"]["answer accuracy"] == 1.0
    assert figs["training,\nround 3\n(1)"]["answer accuracy"] == 0.0
    assert figs["open split\n(1)"]["strict abstention"] == 0.0
