"""End to end with the real MiniLM model on the bundled corpus: a handful of questions of each
kind (figure, fact, score, unanswerable), written from the report pages for this test."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.answer import answer
from rag.chat import answer_in_chat
from rag.engine import Engine
from reportqa.records import Turn
from reportqa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    settings = Settings(index_dir=tmp_path_factory.mktemp("real-ask"), embedder="minilm")
    assert ingest(sorted((ROOT / "corpus").glob("*.txt")), settings).reports_total == 36
    return Engine.load(settings)


@pytest.mark.parametrize("question, expect, report", [
    # figures
    ("What share of Stockton's residential care homes were rated Good by CQC?", "80.65%",
     "stockton-on-tees-care-provision-integration-and-continuity"),
    ("What proportion of Stockton carers were accessing a support group, compared with England?",
     "32.98%", "stockton-on-tees-care-provision-integration-and-continuity"),
    # The reader's first pick (an online platform's "165 carers") states no share: the second,
    # which does, leads and is not crowded out by the first's neighbour (browser review).
    ("what share of stockton carers used a support group", "25.19%",
     "stockton-on-tees-care-provision-integration-and-continuity"),
    ("What is the population of Bradford?", "560,194", "bradford-about"),
    # facts
    ("What is the name of Staffordshire's advice and guidance hub?", "Staffordshire Cares",
     "staffordshire-assessing-needs"),
    # scores and ratings (structured path)
    ("What did Staffordshire score for partnerships and communities?",
     "3 - Evidence shows a good standard", "staffordshire-partnerships-and-communities"),
    ("What was the London Borough of Ealing's overall rating?", "Requires improvement",
     "ealing-overview"),
])
def test_answers_with_exact_citations(real: Engine, question: str, expect: str, report: str) -> None:
    a = answer(question, real.settings, engine=real)
    assert not a.abstained, a.text
    assert expect.lower() in a.text.lower(), a.text
    assert len(re.sub(r"\[\d+\]", "", a.text).split()) <= 75
    assert any(c.report_id == report for c in a.citations), [c.report_id for c in a.citations]
    for c in a.citations:
        assert real.retriever.report_text(c.report_id)[c.start : c.end] == c.quote


@pytest.mark.parametrize("question", [
    "What did Leeds score for safeguarding?",  # council not indexed
    "How many social workers does Wiltshire Council employ?",  # figure not stated
    "What score did Gateshead get for safeguarding?",  # page not in the corpus
])
def test_unanswerable_questions_abstain(real: Engine, question: str) -> None:
    a = answer(question, real.settings, engine=real)
    assert a.abstained, a.text
    assert "don't" in a.text


def test_cli_ask_json_must_show(real: Engine) -> None:
    env_index = str(real.settings.index_dir)
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "ask", "--json", "--index", env_index,
         "What score did Darlington get for safeguarding?"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "REPORTQA_EMBEDDER": "minilm"},
    )
    assert out.returncode == 0, out.stderr
    obj = json.loads(out.stdout)
    assert set(obj) == {"question", "read_as", "answer", "outcome", "abstained", "citations", "notes",
                        "timings_ms"}
    assert obj["outcome"] in ("answer", "uncertain", "not_found")
    assert "3" in obj["answer"] and not obj["abstained"]
    cite = obj["citations"][0]
    assert cite["report_id"] == "darlington-safeguarding"
    assert set(cite) == {"n", "report_id", "council", "page_kind", "quality_statement", "section",
                         "score", "quote", "passage", "passage_start", "start", "end", "source",
                         "page", "page_end", "see_also"}
    assert cite["page"] is None  # a web page has no PDF page
    at = cite["start"] - cite["passage_start"]  # the quote, placed inside its passage
    assert cite["passage"][at:at + len(cite["quote"])] == cite["quote"]
    assert cite["see_also"] is False  # quoted as the answer
    text = real.retriever.report_text(cite["report_id"])
    assert text[cite["start"] : cite["end"]] == cite["quote"]


def _open_cqc_questions() -> list[dict[str, object]]:
    rows = [json.loads(ln) for ln in (ROOT / "evals" / "blind" / "open.jsonl").read_text(
        encoding="utf-8").splitlines() if ln.strip()]
    return [q for q in rows if q["answerable"] and str(q.get("file") or "").endswith(".txt")]


@pytest.mark.parametrize("frame", [", according to its inspection report?",
                                   ", according to the latest CQC assessment?"])
def test_a_source_frame_changes_neither_outcome_nor_cited_sentence(real: Engine, frame: str) -> None:
    """Open blind split questions (written by people who never saw the code) asked as written
    and with a source frame added get the same outcome and the same first cited sentence."""
    qs = _open_cqc_questions()
    assert len(qs) >= 20
    for q in qs:
        text = str(q["question"])
        a = answer(text, real.settings, engine=real)
        b = answer(text.rstrip(" ?.") + frame, real.settings, engine=real)
        key_a = (a.outcome, [(c.report_id, c.start, c.end) for c in a.citations[:1]])
        key_b = (b.outcome, [(c.report_id, c.start, c.end) for c in b.citations[:1]])
        assert key_a == key_b, (q["id"], text, key_a, key_b)


def test_sentences_are_compared_in_bf16_only_where_the_reader_reads_in_bf16(real: Engine) -> None:
    """The question-sentence similarity uses a bf16 copy of MiniLM when the reader does
    (never the indexing embedder, whose stored vectors stay fp32); its similarities are the
    fp32 ones to within 0.01."""
    import numpy as np

    from rag.reader import use_bf16

    if not use_bf16("auto"):
        pytest.skip("this CPU has no native bf16: both compare in fp32")
    fast = real.sentences()
    assert fast is not real.embedder and getattr(fast, "precision", "") == "bf16"
    same = Engine.load(Settings(index_dir=real.settings.index_dir, embedder="minilm",
                                reader_precision="fp32"))
    assert same.sentences() is same.embedder
    q = real.embedder.embed(["How long do people in Bradford wait for an assessment?"])[0]
    sents = ["People in Bradford waited on average 42 days for a Care Act assessment.",
             "Bradford has a population of 560,194."]
    assert np.abs(fast.embed(sents) @ q - real.embedder.embed(sents) @ q).max() < 0.01


def test_loading_an_engine_imports_no_model(real: Engine) -> None:
    """Tables and listings load an engine without answering: choosing the sentence
    embedder's precision (which asks torch about the CPU) waits for the first answer."""
    code = ("import sys; from reportqa.settings import Settings; from rag.engine import Engine; "
            f"Engine.load(Settings(index_dir={str(real.settings.index_dir)!r}, embedder='minilm')); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.parametrize("messages", [
    ("Is there a shortage of care homes in Westminster?", "why?", "what are they doing about it?"),
    ("What score did Darlington get for equity in experience and outcomes?", "why?",
     "what are they doing about it?"),
])
def test_a_history_of_offsets_alone_is_answered_as_the_full_history(
        real: Engine, messages: tuple[str, ...]) -> None:
    """The API's history carries report ids and offsets, not quotes. Which way a quoted
    finding leans (a shortfall or a strength) decides what "why?" looks for, and it is read
    from the quote: every turn must be answered as in the terminal, where quotes travel."""
    full: list[Turn] = []
    bare: list[Turn] = []
    for m in messages:
        a = answer_in_chat(m, full, real.settings, engine=real)
        b = answer_in_chat(m, bare, real.settings, engine=real)
        assert (b.text, b.read_as) == (a.text, a.read_as), m
        full.append(Turn.of(a))
        bare.append(Turn.from_json({**a.to_json(), "citations": [
            {**c.to_json(), "quote": "", "passage": ""} for c in a.citations]}))


def test_a_grade_asked_of_a_topic_is_not_another_statements_score(real: Engine) -> None:
    """A CQC score cell says nothing but its score: "children in care" asked of Staffordshire
    (CQC pages only, none grading children's services) is not answered by its Safeguarding
    page's "Score: 3 / 3 - Evidence shows a good standard" (a browser review got exactly
    that, as a first question and as "and Staffordshire?" after Hull's Ofsted grade)."""
    a = answer("What grade did Staffordshire get for children in care?", real.settings,
               engine=real)
    assert not any("Score:" in c.quote for c in a.citations if not c.see_also), a.text
    # Asked as a score, and of a topic sharing a word with a statement ("care" with "Care
    # provision, integration and continuity"): no score either.
    for q in ("What score did Darlington get for care leavers?",
              "What score did Birmingham get for care leavers?"):
        a = answer(q, real.settings, engine=real)
        assert not any("core:" in c.quote for c in a.citations if not c.see_also), (q, a.text)
    # Naming the statement, or no topic at all, still gets the score.
    named = answer("What grade did Staffordshire get for safeguarding?", real.settings,
                   engine=real)
    assert "Safeguarding is 3" in named.text
