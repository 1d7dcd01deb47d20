"""Stage 4: the index. Dedupe, idempotent re-ingest, update, remove, `reports --json`, and
crash safety of IndexStore.write/remove (faults injected at every step of the protocol)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import CORPUS_DIR, page_score

import ingest.pipeline as pipeline
from ingest.index import IndexStore
from ingest.pipeline import ingest
from ingest.structure import council_key
from reportqa.errors import IndexNotReadyError


def _copy_corpus(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    for f in dest.iterdir():
        f.chmod(0o644)  # the bundled files are read-only; the copies get edited
    return dest


# --- dedupe / idempotence ------------------------------------------------------------------

def test_same_text_at_another_path_is_skipped(ingested_hash_index, corpus_dir, tmp_path,
                                               index_state) -> None:
    before = index_state(ingested_hash_index)
    dup_dir = tmp_path / "elsewhere"
    dup_dir.mkdir()
    src = corpus_dir / "stockton-on-tees__care-provision-integration-and-continuity.txt"
    (dup_dir / "copy-of-stockton.txt").write_bytes(src.read_bytes())
    # Same text with Windows line endings and a BOM normalises to the same report text.
    (dup_dir / "stockton-crlf.txt").write_bytes(
        b"\xef\xbb\xbf" + src.read_bytes().replace(b"\n", b"\r\n"))
    summary = ingest([dup_dir], ingested_hash_index)
    assert not summary.failed and not summary.added and not summary.updated
    assert summary.chunks_added == 0
    assert summary.unchanged == ["stockton-on-tees-care-provision-integration-and-continuity"] * 2
    assert index_state(ingested_hash_index) == before


def test_duplicates_within_one_run_are_indexed_once(tmp_path, corpus_dir, hash_settings,
                                                    index_state) -> None:
    d = tmp_path / "in"
    d.mkdir()
    src = (corpus_dir / "wirral__about.txt").read_bytes()
    (d / "a.txt").write_bytes(src)
    (d / "b.txt").write_bytes(src)
    summary = ingest([d], hash_settings)
    assert summary.added == ["a"] and summary.unchanged == ["a"]
    state = index_state(hash_settings)
    assert list(state.reports) == ["a"]


def test_second_ingest_of_corpus_adds_nothing(ingested_hash_index, corpus_dir, index_state,
                                              open_index) -> None:
    before = index_state(ingested_hash_index)
    gen = open_index(ingested_hash_index).generation()
    summary = ingest([corpus_dir], ingested_hash_index)
    assert summary.chunks_added == 0 and not summary.added and not summary.updated
    assert len(summary.unchanged) == 36 and not summary.failed
    assert (summary.reports_total, summary.chunks_total) == (36, len(before.chunk_ids))
    after = index_state(ingested_hash_index)
    assert after == before
    assert open_index(ingested_hash_index).generation() == gen  # nothing was written


def test_fresh_corpus_index_is_consistent(ingested_hash_index, index_state,
                                          assert_index_consistent) -> None:
    state = index_state(ingested_hash_index)
    assert_index_consistent(state)
    assert len(state.reports) == 36 and not state.pending
    assert state.vector_ids == state.chunk_ids


# --- update / remove ------------------------------------------------------------------------

def test_changed_file_replaces_its_chunks(tmp_path, corpus_dir, hash_settings, index_state,
                                          assert_index_consistent, open_index) -> None:
    corpus = _copy_corpus(corpus_dir, tmp_path / "corpus")
    ingest([corpus], hash_settings)
    before = index_state(hash_settings)
    rid = "darlington-safeguarding"
    old_ids = {c.chunk_id for c in open_index(hash_settings).chunks() if c.report_id == rid}
    assert old_ids

    f = corpus / "darlington__safeguarding.txt"
    f.write_text(f.read_text(encoding="utf-8").replace("Score: 3", "Score: 2").replace(
        "3 - Evidence shows a good standard", "2 - Evidence shows some shortfalls")
        + "\nA follow-up visit found new delays in safeguarding enquiries.\n", encoding="utf-8")
    summary = ingest([corpus], hash_settings)
    assert summary.updated == [rid] and not summary.added and len(summary.unchanged) == 35
    assert summary.chunks_added > 0

    after = index_state(hash_settings)
    assert_index_consistent(after)
    assert set(after.reports) == set(before.reports)
    assert after.reports[rid] != before.reports[rid]
    assert not old_ids & after.chunk_ids, "old chunk ids still in SQLite"
    assert not old_ids & after.vector_ids, "old chunk ids still in Chroma"
    new_chunks = [c for c in open_index(hash_settings).chunks() if c.report_id == rid]
    assert all(c.score == 2 for c in new_chunks)
    assert any("follow-up visit" in c.text for c in new_chunks)
    assert open_index(hash_settings).find_id(rid).metadata["score"] == 2
    # Every other report is untouched.
    for other, h in before.reports.items():
        if other != rid:
            assert after.reports[other] == h
    assert before.chunk_ids - old_ids <= after.chunk_ids


def test_remove_deletes_report_and_every_chunk(ingested_hash_index, index_state, run_cli,
                                               assert_index_consistent, corpus_dir) -> None:
    before = index_state(ingested_hash_index)
    rid = "stockton-on-tees-care-provision-integration-and-continuity"
    store = IndexStore(ingested_hash_index, "hash-bow", 256, create=False)
    ids = {c.chunk_id for c in store.chunks() if c.report_id == rid}
    store.close()
    proc = run_cli("remove", rid, "--json", "--index", str(ingested_hash_index.index_dir))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"removed": rid, "chunks": len(ids)}

    after = index_state(ingested_hash_index)
    assert_index_consistent(after)
    assert rid not in after.reports and len(after.reports) == 35
    assert not ids & after.chunk_ids and not ids & after.vector_ids
    assert after.chunk_ids == before.chunk_ids - ids

    again = run_cli("remove", rid, "--index", str(ingested_hash_index.index_dir))
    assert again.returncode == 1 and f"no report with id '{rid}'" in again.stderr
    assert "Traceback" not in again.stderr
    # Ingesting the corpus again brings it back, with the same chunk ids.
    summary = ingest([corpus_dir], ingested_hash_index)
    assert summary.added == [rid]
    assert index_state(ingested_hash_index).logical() == before.logical()


def test_reports_json_lists_corpus_with_council_and_score(ingested_hash_index, run_cli,
                                                          corpus_sources) -> None:
    proc = run_cli("reports", "--json", "--index", str(ingested_hash_index.index_dir))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert len(rows) == 36
    assert len({r["id"] for r in rows}) == 36
    for r in rows:
        name = Path(r["path"]).name
        text = Path(r["path"]).read_text(encoding="utf-8")
        assert r["council"] and council_key(r["council"]) == corpus_sources[name]["council"]
        assert r["score"] == page_score(text), name
        assert r["source"] == corpus_sources[name]["source_url"]
        assert r["chunks"] > 0 and len(r["content_hash"]) == 64
    scored = [r for r in rows if r["score"] is not None]
    assert len(scored) == sum(r["page_kind"] == "quality_statement" for r in rows) == 19


def test_reports_on_missing_index_is_a_clear_error(tmp_path, run_cli) -> None:
    proc = run_cli("reports", "--json", "--index", str(tmp_path / "nothing-here"))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: no index at") and "reportqa ingest" in proc.stderr
    assert not (tmp_path / "nothing-here").exists()


def test_index_built_with_another_embedder_is_refused(ingested_hash_index) -> None:
    with pytest.raises(IndexNotReadyError, match="built with embedder hash-bow/256"):
        IndexStore(ingested_hash_index, "all-MiniLM-L6-v2", 384, create=False)


# --- crash safety (in-process fault injection) ---------------------------------------------

class Crash(Exception):
    """Stands in for the process dying at an exact point of the write protocol."""


class FaultPlan:
    """Raise Crash right after ``point`` completes during the ``call``-th ``op`` call.

    Points: 'journal' (pending rows committed), 'upsert' (vectors in Chroma), 'commit' (SQLite
    transaction with the new rows committed), 'vector_delete' (obsolete vectors deleted, journal
    not yet cleared).
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, op: str, point: str, call: int = 1):
        self.op, self.point, self.call = op, point, call
        self.calls = {"write": 0, "remove": 0}
        self.current: str | None = None
        self.tx = 0
        self.fired = False
        plan = self
        orig_write, orig_remove = IndexStore.write, IndexStore.remove
        orig_tx, orig_delete = IndexStore._tx, IndexStore._delete_vectors
        orig_collection = IndexStore.collection

        def armed() -> bool:
            return (not plan.fired and plan.current == plan.op
                    and plan.calls[plan.op] == plan.call)

        def fire() -> None:
            plan.fired = True
            raise Crash(f"{plan.op} #{plan.call} after {plan.point}")

        def wrap_op(orig: Any, name: str) -> Any:
            def run(self_: IndexStore, *a: Any, **kw: Any) -> Any:
                plan.calls[name] += 1
                plan.current, plan.tx = name, 0
                try:
                    return orig(self_, *a, **kw)
                finally:
                    plan.current = None
            return run

        def tx(self_: IndexStore, fn: Any) -> None:
            orig_tx(self_, fn)
            if plan.current:
                plan.tx += 1
                if armed() and (plan.point, plan.tx) in (("journal", 1), ("commit", 2)):
                    fire()

        def delete_vectors(self_: IndexStore, ids: Any) -> None:
            orig_delete(self_, ids)
            if armed() and plan.point == "vector_delete":
                fire()

        class Collection:
            def __init__(self, inner: Any) -> None:
                self._inner = inner

            def __getattr__(self, name: str) -> Any:
                return getattr(self._inner, name)

            def upsert(self, *a: Any, **kw: Any) -> Any:
                out = self._inner.upsert(*a, **kw)
                if armed() and plan.point == "upsert":
                    fire()
                return out

        def collection(self_: IndexStore) -> Any:
            inner = orig_collection(self_)
            return inner if isinstance(inner, Collection) else Collection(inner)

        monkeypatch.setattr(IndexStore, "write", wrap_op(orig_write, "write"))
        monkeypatch.setattr(IndexStore, "remove", wrap_op(orig_remove, "remove"))
        monkeypatch.setattr(IndexStore, "_tx", tx)
        monkeypatch.setattr(IndexStore, "_delete_vectors", delete_vectors)
        monkeypatch.setattr(IndexStore, "collection", collection)


WRITE_POINTS = ["journal", "upsert", "commit", "vector_delete"]
REMOVE_POINTS = ["journal", "commit", "vector_delete"]


@pytest.fixture
def small_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several IndexStore.write calls per corpus ingest (about 40 chunks each)."""
    monkeypatch.setattr(pipeline, "_GROUP_CHUNKS", 40)


@pytest.fixture(scope="module")
def reference_state(tmp_path_factory, settings_for, index_state) -> Any:
    """The corpus ingested without interruption (small groups too), for comparisons."""
    mp = pytest.MonkeyPatch()
    mp.setattr(pipeline, "_GROUP_CHUNKS", 40)
    try:
        settings = settings_for(tmp_path_factory.mktemp("reference") / "index")
        summary = ingest([CORPUS_DIR], settings)
        assert not summary.failed
        return index_state(settings)
    finally:
        mp.undo()


def _check_after_crash(state) -> None:
    """What must hold even before recovery: every committed report has all its chunks, and
    every chunk SQLite knows has its vector (orphan vectors may exist until the next writer)."""
    for rid, n in state.chunk_counts.items():
        assert state.chunk_rows.get(rid, 0) == n, rid
    assert not set(state.chunk_rows) - set(state.chunk_counts)
    assert state.chunk_ids <= state.vector_ids, "SQLite names chunks that have no vector"


@pytest.mark.parametrize("call", [1, 3])
@pytest.mark.parametrize("point", WRITE_POINTS)
def test_crash_during_fresh_ingest_then_rerun(point, call, monkeypatch, small_groups,
                                              hash_settings, corpus_dir, index_state,
                                              assert_index_consistent, reference_state) -> None:
    plan = FaultPlan(monkeypatch, "write", point, call)
    with pytest.raises(Crash):
        ingest([corpus_dir], hash_settings)
    assert plan.fired
    crashed = index_state(hash_settings)
    _check_after_crash(crashed)
    assert crashed.pending  # the journal names the interrupted write
    if call == 1 and point in ("journal", "upsert"):
        assert not crashed.reports  # nothing committed yet
    if call == 3:
        assert crashed.reports  # the first two groups are committed and stay

    monkeypatch.undo()
    monkeypatch.setattr(pipeline, "_GROUP_CHUNKS", 40)
    summary = ingest([corpus_dir], hash_settings)
    assert not summary.failed
    final = index_state(hash_settings)
    assert_index_consistent(final)
    assert not final.pending
    assert final.logical() == reference_state.logical()
    assert final.vector_ids == reference_state.vector_ids


@pytest.mark.parametrize("point", WRITE_POINTS)
def test_crash_during_update_then_rerun(point, monkeypatch, tmp_path, corpus_dir, make_settings,
                                        index_state, assert_index_consistent) -> None:
    corpus = _copy_corpus(corpus_dir, tmp_path / "corpus")
    crashed_settings, clean_settings = make_settings("crashed"), make_settings("clean")
    ingest([corpus], crashed_settings)
    ingest([corpus], clean_settings)
    original = index_state(crashed_settings)
    for name in ("westminster__overview.txt", "ealing__about.txt"):
        f = corpus / name
        f.write_text(f.read_text(encoding="utf-8").replace("local authority", "council", 3)
                     + "\nAn addendum paragraph was published after the assessment.\n",
                     encoding="utf-8")

    FaultPlan(monkeypatch, "write", point)
    with pytest.raises(Crash):
        ingest([corpus], crashed_settings)
    crashed = index_state(crashed_settings)
    _check_after_crash(crashed)
    if point in ("journal", "upsert"):
        # Nothing committed yet: SQLite still has exactly the old state.
        assert crashed.logical() == original.logical()
    else:
        assert crashed.reports["westminster-overview"] != original.reports["westminster-overview"]
        if point == "commit":
            # Old vectors of the replaced reports are orphans until recovery.
            assert crashed.vector_ids - crashed.chunk_ids

    monkeypatch.undo()
    summary = ingest([corpus], crashed_settings)
    assert not summary.failed
    reference = ingest([corpus], clean_settings)
    assert sorted(reference.updated) == ["ealing-about", "westminster-overview"]
    final, expected = index_state(crashed_settings), index_state(clean_settings)
    assert_index_consistent(final)
    assert not final.pending
    assert final.logical() == expected.logical()
    assert final.vector_ids == expected.vector_ids
    assert not (original.chunk_ids - expected.chunk_ids) & final.vector_ids


@pytest.mark.parametrize("point", REMOVE_POINTS)
def test_crash_during_remove_then_rerun(point, monkeypatch, corpus_dir, make_settings,
                                        index_state, assert_index_consistent) -> None:
    rid = "birmingham-overview"
    crashed_settings, clean_settings = make_settings("crashed"), make_settings("clean")
    for s in (crashed_settings, clean_settings):
        ingest([corpus_dir], s)
    store = IndexStore(clean_settings, "hash-bow", 256, create=False)
    store.remove(rid)
    store.close()

    n_chunks = index_state(crashed_settings).chunk_rows[rid]
    FaultPlan(monkeypatch, "remove", point)
    store = IndexStore(crashed_settings, "hash-bow", 256, create=False)
    with pytest.raises(Crash):
        store.remove(rid)
    store.close()
    monkeypatch.undo()
    crashed = index_state(crashed_settings)
    _check_after_crash(crashed)
    assert (rid in crashed.reports) == (point == "journal")
    assert crashed.pending

    # A fresh ingest run (nothing new to add) recovers the interrupted write...
    summary = ingest([], crashed_settings)
    orphans = {"journal": 0, "commit": n_chunks, "vector_delete": 0}[point]
    assert summary.recovered_orphans == orphans
    recovered = index_state(crashed_settings)
    assert_index_consistent(recovered)
    assert not recovered.pending
    # ...and finishing the removal gives exactly the uninterrupted result.
    store = IndexStore(crashed_settings, "hash-bow", 256, create=False)
    if store.find_id(rid):
        store.remove(rid)
    store.close()
    final, expected = index_state(crashed_settings), index_state(clean_settings)
    assert_index_consistent(final)
    assert final.logical() == expected.logical()
    assert final.vector_ids == expected.vector_ids


# --- two writers on one index -----------------------------------------------------------------

def test_recovery_never_deletes_another_writers_uncommitted_vectors(
        monkeypatch, corpus_dir, hash_settings, index_state, assert_index_consistent) -> None:
    """Writer A has upserted its vectors but not yet committed; writer B starts (e.g. a second
    `reportqa ingest`) and sees A's journal rows. B's recover() must not treat A's in-flight
    vectors as orphans, or A commits chunks whose vectors are gone."""
    import threading

    from reportqa.embed import HashEmbedder

    ingest([corpus_dir / "wirral__about.txt"], hash_settings)
    upserted, go = threading.Event(), threading.Event()
    orig_collection = IndexStore.collection

    class Paused:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def upsert(self, *a: Any, **kw: Any) -> Any:
            out = self._inner.upsert(*a, **kw)
            if threading.current_thread().name == "writer-a":
                upserted.set()
                go.wait(10)
            return out

    monkeypatch.setattr(IndexStore, "collection", lambda self: Paused(orig_collection(self)))
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            fn()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    a = threading.Thread(name="writer-a", target=run, args=(
        lambda: ingest([corpus_dir / "ealing__overview.txt"], hash_settings,
                       embedder=HashEmbedder()),))
    a.start()
    assert upserted.wait(30), "writer A never reached its upsert"
    b = threading.Thread(name="writer-b", target=run, args=(
        lambda: ingest([corpus_dir / "gateshead__about.txt"], hash_settings,
                       embedder=HashEmbedder()),))
    b.start()
    b.join(1.0)  # give B the chance to run its recovery while A is paused
    go.set()
    a.join(30)
    b.join(30)
    assert not a.is_alive() and not b.is_alive() and not errors, errors
    state = index_state(hash_settings)
    assert set(state.reports) == {"wirral-about", "ealing-overview", "gateshead-about"}
    assert_index_consistent(state)
    assert not state.pending
