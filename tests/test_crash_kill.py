"""Crash safety under SIGKILL: `reportqa ingest` (hash embedder, stock CLI, no test hooks) of
216 report files (the corpus plus 5 renamed/shifted copies) is killed at 24 seeded random
moments spread over its measured duration (and at 24 more where commits were seen to happen,
when a busy machine's slower start-up left fewer than 3 kills between commits). After each
kill, from a fresh process:

* before recovery: every committed chunk has its vector, every vector SQLite does not know
  belongs to a report named in the write journal, every report has exactly chunk_count chunk
  rows and no chunk row lacks its report;
* the next writer's recover() leaves Chroma's vector ids == SQLite's chunk ids, an empty
  journal, and the retriever's BM25 corpus == the committed chunks;
* a rerun of the same command completes, and every index ends identical (report ids, content
  hashes, chunk ids, vectors) to an uninterrupted run.

(tests/test_ingest_cli.py has a smaller SIGKILL test on the 36-page corpus with patched group
sizes; this one uses the stock CLI on a larger input and checks the journal and BM25 too.)
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parent.parent
SEED = 20260611
KILLS = 24
COPIES = 5  # 36 corpus pages + 5 x 36 variants = 216 files

CHECK_SCRIPT = r"""
import json, sys
from pathlib import Path
from ingest.index import IndexStore
from reportqa.embed import get_embedder
from reportqa.settings import Settings

def state(st):
    reports = {r.report_id: (r.content_hash, r.chunk_count) for r in st.reports()}
    rows = {}
    for (rid,) in st.db.execute("SELECT report_id FROM chunks"):
        rows[rid] = rows.get(rid, 0) + 1
    return reports, rows, st.chunk_ids(), st.vector_ids()

mode, dirs = sys.argv[1], sys.argv[2:]
emb = get_embedder("hash")
out = {}
for d in dirs:
    d = Path(d)
    if not (d / "manifest.sqlite3").exists():
        out[str(d)] = None
        continue
    st = IndexStore(Settings(index_dir=d, embedder="hash", chroma_url=None), emb.name, emb.dim,
                    create=False)
    reports, rows, chunks, vectors = state(st)
    pending = sorted({r[0] for r in st.db.execute("SELECT report_id FROM pending")})
    res = {"reports": {k: v[0] for k, v in reports.items()}, "chunk_ids": sorted(chunks),
           "vector_ids": sorted(vectors), "pending": pending,
           "bad_counts": sorted(k for k, (_h, n) in reports.items() if rows.get(k, 0) != n),
           "stray_rows": sorted(set(rows) - set(reports)),
           "missing_vectors": len(chunks - vectors)}
    orphans = sorted(vectors - chunks)
    res["orphans"] = len(orphans)
    if orphans:
        got = st.collection().get(ids=orphans, include=["metadatas"])
        res["unjournalled_orphans"] = sorted(
            i for i, m in zip(got["ids"], got["metadatas"]) if m["report_id"] not in pending)
    else:
        res["unjournalled_orphans"] = []
    if mode == "recover":
        res["recovered"] = st.recover()  # what the next writer does first
        _r, rows2, chunks2, vectors2 = state(st)
        res["after_recover"] = {"vectors_eq_chunks": chunks2 == vectors2,
                                "pending": st.has_pending(), "chunks": len(chunks2)}
        from rag.retrieve import HybridRetriever
        s = HybridRetriever(st, emb).state()
        res["bm25"] = {"chunk_ids_eq": {c.chunk_id for c in s.chunks} == chunks2,
                       "num_docs": (s.bm25.scores["num_docs"] if s.bm25 is not None else 0),
                       "n_chunks": len(s.chunks)}
    st.close()
    out[str(d)] = res
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    env.update({"REPORTQA_EMBEDDER": "hash", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"})
    return env


def _cmd(corpus: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "ui.cli", "ingest", str(corpus), "--json",
            "--index", str(index)]


def _check(mode: str, dirs: list[Path]) -> list[dict[str, Any] | None]:
    proc = subprocess.run([sys.executable, "-c", CHECK_SCRIPT, mode, *map(str, dirs)],
                          capture_output=True, text=True, env=_env(), cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    return [got[str(d)] for d in dirs]


def _kill_after(cmd: list[str], delay: float) -> tuple[bool, float]:
    """Start the CLI, SIGKILL it after ``delay`` s. (killed?, seconds it ran)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        return True, time.perf_counter() - t0
    return False, time.perf_counter() - t0


def _kill_each(corpus: Path, planned: dict[Path, float], trail: list[str]) -> int:
    """Start an ingest into each index and SIGKILL it at its planned moment; how many were
    killed (a run that finishes first is started over with an earlier kill, so that every
    point really interrupts an ingest)."""
    killed = 0
    for index, delay in planned.items():
        for _attempt in range(4):
            was_killed, ran = _kill_after(_cmd(corpus, index), delay)
            if was_killed:
                break
            shutil.rmtree(index, ignore_errors=True)
            delay *= 0.8
        killed += was_killed
        trail.append(f"{index.name}: planned {planned[index]:.2f} s, killed at {ran:.2f} s "
                     f"({was_killed=})")
    return killed


def _recover_and_check(planned: dict[Path, float], all_ids: set[str],
                       trail: list[str]) -> dict[Path, int]:
    """Check each killed index before and after the next writer's recovery (in one fresh
    process); how many reports each had committed (0 where no index was made yet)."""
    committed = {}
    for index, pre in zip(planned, _check("recover", list(planned)), strict=True):
        if pre is None:  # killed before the index was created: nothing to check
            trail.append(f"{index.name}: no index yet")
            committed[index] = 0
            continue
        trail.append(f"{index.name}: {len(pre['reports'])} reports, {len(pre['chunk_ids'])} "
                     f"chunks, {pre['orphans']} orphan vectors, journal {len(pre['pending'])}, "
                     f"recovered {pre['recovered']}")
        msg = f"index {index.name}\n" + "\n".join(trail)
        # Before recovery: nothing half-visible, every stray vector is named by the journal.
        assert not pre["bad_counts"], (pre["bad_counts"], msg)
        assert not pre["stray_rows"], (pre["stray_rows"], msg)
        assert pre["missing_vectors"] == 0, msg
        assert not pre["unjournalled_orphans"], (pre["unjournalled_orphans"][:5], msg)
        assert set(pre["reports"]) <= all_ids, msg
        # After the next writer's recovery: exact agreement, BM25 included.
        after = pre["after_recover"]
        assert after["vectors_eq_chunks"] and not after["pending"], msg
        assert pre["recovered"] == pre["orphans"], msg
        bm = pre["bm25"]
        assert bm["chunk_ids_eq"] and bm["num_docs"] == bm["n_chunks"] == after["chunks"], msg
        committed[index] = len(pre["reports"])
    return committed


def test_sigkill_at_24_points_then_recover_and_rerun(tmp_path: Path, corpus_dir: Path,
                                                     variant_corpus) -> None:
    corpus = tmp_path / "reports"
    variant_corpus(corpus, COPIES)
    for f in corpus_dir.glob("*.txt"):
        shutil.copy(f, corpus / f.name)
    n_files = len(list(corpus.glob("*.txt")))
    assert n_files == 36 * (COPIES + 1)

    # Uninterrupted reference run, timed (twice: the faster run sets the kill window, so
    # kills rarely come after a run has already finished).
    durations = []
    for name in ("warm-up", "reference"):
        t0 = time.perf_counter()
        ref = subprocess.run(_cmd(corpus, tmp_path / name), env=_env(), cwd=REPO,
                             capture_output=True, text=True, timeout=600)
        durations.append(time.perf_counter() - t0)
        assert ref.returncode == 0, ref.stderr
    ref_dir = tmp_path / "reference"
    duration = min(durations)
    all_ids = set(json.loads(ref.stdout)["added"])
    assert len(all_ids) == n_files

    # Seeded kill moments, one in each of KILLS equal slices of the run (after interpreter
    # start-up, ~10%), so they spread over parsing, embedding, upserts and commits. Each kill
    # interrupts a fresh ingest into its own index; the indexes are then checked in one
    # fresh process (independent indexes: same result as checking after each kill, faster).
    rng = random.Random(SEED)
    lo, hi = 0.1 * duration, 0.97 * duration
    trail = [f"uninterrupted: {', '.join(f'{d:.2f}' for d in durations)} s for {n_files} files"]
    t_start = time.perf_counter()
    planned = {tmp_path / f"killed-{i:02d}": lo + (hi - lo) * (i + rng.random()) / KILLS
               for i in range(KILLS)}
    killed = _kill_each(corpus, planned, trail)
    committed = _recover_and_check(planned, all_ids, trail)
    if sum(0 < n < n_files for n in committed.values()) < 3:
        # These runs started up slower than the timed one (a busy machine), so most kills
        # came before the first commit. Kill as often again, between the latest kill that
        # found nothing committed and the earliest that found everything: every assertion
        # below still holds for every index, old and new.
        start = max((d for ix, d in planned.items() if not committed[ix]), default=lo)
        end = min((d for ix, d in planned.items() if committed[ix] == n_files),
                  default=1.5 * duration)
        end = max(end, start + 0.5 * duration)  # runs out of order on a noisy machine
        later = {tmp_path / f"killed-late-{i:02d}": start + (end - start) * (i + rng.random())
                 / KILLS for i in range(KILLS)}
        trail.append(f"too few kills between commits: {KILLS} more in {start:.2f}-{end:.2f} s")
        killed += _kill_each(corpus, later, trail)
        committed.update(_recover_and_check(later, all_ids, trail))
        planned.update(later)
    indexes = list(planned)
    partial = sum(0 < n < n_files for n in committed.values())

    for index in indexes:
        rerun = subprocess.run(_cmd(corpus, index), env=_env(), cwd=REPO, capture_output=True,
                               text=True, timeout=600)
        assert rerun.returncode == 0, (index.name, rerun.stderr, "\n".join(trail))
    elapsed = time.perf_counter() - t_start
    trail.append(f"{killed} kills, {partial} partial; {elapsed:.0f} s")
    print("\n".join(trail))

    reference, *finals = _check("read", [ref_dir, *indexes])
    assert reference is not None and len(reference["reports"]) == n_files
    assert reference["chunk_ids"] == reference["vector_ids"]
    for index, final in zip(indexes, finals, strict=True):
        assert final is not None
        assert final["reports"] == reference["reports"], (index.name, "\n".join(trail))
        assert final["chunk_ids"] == reference["chunk_ids"], (index.name, "\n".join(trail))
        assert final["vector_ids"] == reference["chunk_ids"], (index.name, "\n".join(trail))
        assert not final["pending"] and not final["bad_counts"] and not final["stray_rows"]
    assert killed >= 20, "\n".join(trail)
    assert partial >= 3, ("kills should land between commits", "\n".join(trail))
