"""Queries while an ingest runs, and two writers at once.

(a) CLI: a background `reportqa ingest` of 288 synthetic reports while this process calls
    answer() in a loop: zero errors, the engine picks up new generations, and every citation
    names a report that exists and quotes report_text(report_id)[start:end] exactly.
(b) Two "UI sessions" (threads sharing one cached Engine, as ui/app.py shares it) answer while
    a third thread ingests in-process through the UI's own upload path: zero errors, same
    consistency rules.
(c) Server mode: a real `chroma run` and two `reportqa ingest` processes on the same --index
    with different, overlapping file sets: SQLite integrity_check ok, exactly the expected
    reports, vector ids == chunk ids.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from reportqa.records import Answer

REPO = Path(__file__).resolve().parent.parent
QUESTIONS = [
    "What percentage of carers in Stockton-on-Tees said they were accessing a support group?",
    "What score did Birmingham get for safeguarding?",
    "How many people live in Wirral?",
    "What did inspectors say about waiting lists for assessments?",
    "Which councils scored 3 for safeguarding?",
    "How did the council work with partners on safeguarding?",
]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    env.update({"REPORTQA_EMBEDDER": "hash", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"})
    env.update(extra)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "ui.cli", *args]


class Checker:
    """Collects answers from any thread; checks them against the final index at the end
    (ingest only adds reports here, so a report's text never changes once committed)."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, Answer]] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def ask(self, question: str, settings: Any, engine: Any) -> None:
        from rag.answer import answer

        try:
            gen = engine.retriever.state().generation
            ans = answer(question, settings, engine=engine)
        except Exception as exc:  # any error is a failure of the test
            import traceback

            with self.lock:
                self.errors.append(f"{question!r}: {type(exc).__name__}: {exc}\n"
                                   + traceback.format_exc())
            return
        with self.lock:
            self.answers.append((gen, ans))

    def verify(self, settings: Any) -> dict[str, Any]:
        from ingest.index import IndexStore

        assert not self.errors, self.errors[:3]
        store = IndexStore(settings, "hash-bow", 256, create=False)
        try:
            ids = {r.report_id for r in store.reports()}
            n_cited = 0
            for _gen, ans in self.answers:
                for c in ans.citations:
                    assert c.report_id in ids, c.report_id
                    text = store.report_text(c.report_id)
                    assert text[c.start:c.end] == c.quote, (c.report_id, c.start, c.end)
                    assert c.passage_start <= c.start < c.end
                    n_cited += 1
        finally:
            store.close()
        gens = sorted({g for g, _ in self.answers})
        return {"answers": len(self.answers), "citations": n_cited, "generations": gens}


def _variant_question(copy: int) -> tuple[str, str]:
    from conftest import fake_council_name

    from ingest.pipeline import load_sources

    sources = load_sources(REPO / "corpus")
    slugs = sorted({r["council"] for r in sources.values()})
    place = fake_council_name(copy, slugs.index("stockton-on-tees"))
    return (f"What percentage of carers in {place} said they were accessing a support group?",
            place)


# --- (a) CLI ingest in the background, answers in this process ---------------------------------

def test_answers_stay_consistent_during_a_background_cli_ingest(
        tmp_path: Path, make_settings, corpus_dir: Path, variant_corpus) -> None:
    from ingest.pipeline import ingest
    from rag.engine import Engine

    settings = make_settings()
    assert not ingest([corpus_dir], settings).failed
    big = tmp_path / "big"
    variant_corpus(big, 8)
    eng = Engine.load(settings)
    before = eng.retriever.state().generation
    q_new, place = _variant_question(3)
    assert eng.derived() is not None

    checker = Checker()
    proc = subprocess.Popen(_cli("ingest", str(big), "--json", "--index",
                                 str(settings.index_dir)), env=_env(), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    i = 0
    deadline = time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            checker.ask(QUESTIONS[i % len(QUESTIONS)] if i % 3 else q_new, settings, eng)
            i += 1
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out)["reports_total"] == 36 + 8 * 36
    for q in (*QUESTIONS, q_new):  # after: the new reports are visible at once
        checker.ask(q, settings, eng)
    res = checker.verify(settings)
    assert res["answers"] >= 10, res
    assert res["citations"] > 0
    assert res["generations"][0] == before and res["generations"][-1] > before, res
    final = checker.answers[-1][1]
    assert not final.abstained and place in " ".join(c.council or "" for c in final.citations)


# --- (b) two UI sessions + an upload in a third thread ---------------------------------------

def test_two_ui_sessions_answer_while_a_third_uploads(
        tmp_path: Path, make_settings, corpus_dir: Path, variant_corpus) -> None:
    from ingest.pipeline import ingest
    from rag.engine import Engine
    from reportqa.embed import get_embedder
    from ui.components import save_and_ingest

    settings = make_settings()
    assert not ingest([corpus_dir], settings).failed
    files = variant_corpus(tmp_path / "uploads-src", 3)
    emb = get_embedder("hash")
    eng = Engine.load(settings, embedder=emb)  # the app's cached engine, shared by sessions
    checker = Checker()
    done = threading.Event()
    upload_results: list[Any] = []
    upload_error: list[BaseException] = []
    q_new, place = _variant_question(1)

    def uploader() -> None:
        try:
            for k in range(0, len(files), 12):  # several upload batches, as a user would
                batch = [(f.name, f.read_bytes()) for f in files[k : k + 12]]
                upload_results.extend(save_and_ingest(batch, settings, embedder=emb))
        except BaseException as exc:  # noqa: BLE001
            upload_error.append(exc)
        finally:
            done.set()

    def session(offset: int) -> None:
        i = offset
        while not done.is_set() or i < offset + 6:
            checker.ask(QUESTIONS[i % len(QUESTIONS)] if i % 4 else q_new,
                        replace(settings, answerer="extractive"), eng)
            i += 1

    threads = [threading.Thread(target=session, args=(n,)) for n in (0, 3)]
    up = threading.Thread(target=uploader)
    for t in (*threads, up):
        t.start()
    up.join(timeout=600)
    done.set()
    for t in threads:
        t.join(timeout=120)
    assert not upload_error, upload_error
    assert len(upload_results) == len(files)
    assert all(r.status == "added" for r in upload_results), [
        (r.name, r.status, r.message) for r in upload_results if r.status != "added"]
    checker.ask(q_new, settings, eng)
    res = checker.verify(settings)
    assert res["answers"] >= 10 and res["citations"] > 0, res
    assert len(res["generations"]) >= 2, res
    final = checker.answers[-1][1]
    assert not final.abstained and place in " ".join(c.council or "" for c in final.citations)


# --- (c) server mode: two writer processes at once -----------------------------------------

@pytest.mark.integration
def test_two_writers_against_one_chroma_server(tmp_path: Path, chroma_server: str,
                                               corpus_dir: Path, variant_corpus,
                                               settings_for) -> None:
    from ingest.index import IndexStore

    files = sorted(corpus_dir.glob("*.txt"))
    set_a, set_b = tmp_path / "a", tmp_path / "b"
    set_a.mkdir()
    set_b.mkdir()
    shared = tmp_path / "shared"  # the overlap: the same paths in both runs
    shared.mkdir()
    for f in files[:12]:
        shutil.copy(f, set_a / f.name)
    for f in files[12:24]:
        shutil.copy(f, shared / f.name)
    for f in files[24:]:
        shutil.copy(f, set_b / f.name)
    variants = variant_corpus(tmp_path / "variants", 2)
    for f in variants[:36]:
        shutil.copy(f, set_a / f.name)
    for f in variants[36:]:
        shutil.copy(f, set_b / f.name)
    index = tmp_path / "index"
    env = _env(REPORTQA_CHROMA_URL=chroma_server)
    procs = [subprocess.Popen(_cli("ingest", str(a), str(shared), "--json", "--index",
                                   str(index)), env=env, cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a in (set_a, set_b)]
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    summaries = [json.loads(out) for out, _ in outs]
    expected = 36 + 72
    # Both writers may plan a shared file before either commits it: both then write the same
    # report (same id, same content, same chunk ids), so it may count as "added" twice.
    assert len({rid for s in summaries for rid in s["added"]}) == expected, summaries
    assert all(not s["failed"] for s in summaries)

    con = sqlite3.connect(index / "manifest.sqlite3")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM pending").fetchone()[0] == 0
    finally:
        con.close()
    settings = settings_for(index, chroma_url=chroma_server)
    store = IndexStore(settings, "hash-bow", 256, create=False)
    try:
        reports = store.reports()
        assert len(reports) == expected
        assert len({r.content_hash for r in reports}) == expected
        assert len({r.path for r in reports}) == expected
        n_rep, n_chunks = store.counts()
        assert (n_rep, n_chunks) == (expected, sum(r.chunk_count for r in reports))
        assert store.vector_ids() == store.chunk_ids()
        for r in reports:  # each report's chunks are all there
            n = store.db.execute("SELECT COUNT(*) FROM chunks WHERE report_id=?",
                                 (r.report_id,)).fetchone()[0]
            assert n == r.chunk_count, r.report_id
    finally:
        store.close()


def _open_at(index: str, start: float, out: Any) -> None:
    from ingest.index import IndexStore
    from reportqa.settings import Settings

    settings = replace(Settings(), index_dir=Path(index))
    while time.time() < start:  # all processes reach sqlite's first open together
        pass
    try:
        IndexStore(settings, "fake-embedder", 8)
        out.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports whatever the open raised
        out.put(repr(exc))


def test_processes_creating_one_index_at_once_all_open_it(tmp_path: Path) -> None:
    """Two ingests started together on a new --index once failed in CI with sqlite's
    "database is locked" from the WAL switch (it answers BUSY without waiting). Before the
    fix this loop failed about one open in sixty."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    failures = []
    for trial in range(40):
        out = ctx.Queue()
        start = time.time() + 0.2
        procs = [ctx.Process(target=_open_at, args=(str(tmp_path / str(trial)), start, out))
                 for _ in range(4)]
        for p in procs:
            p.start()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        failures += [r for r in results if r != "ok"]
    assert failures == []
