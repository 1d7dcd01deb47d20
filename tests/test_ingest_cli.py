"""`reportqa ingest` on bad input (one clear line per file, good files still indexed, non-zero
exit, nothing already indexed changes) and under SIGKILL at seeded random moments."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from ingest.parse import parse_file
from ingest.pipeline import IngestSummary, ingest
from reportqa.errors import InputError

GOOD_FIRE = """Riverside Fire and Rescue Service: fire safety inspection report
Summary
The premises were inspected under the Regulatory Reform (Fire Safety) Order 2005 and the fire risk assessment was found to be out of date.
Required actions
Review the fire risk assessment and repair the self-closing devices on the first-floor fire doors.
"""
GOOD_HTML = """<html><head><link rel="canonical" href="https://example.org/reports/eastmoor"></head>
<body><nav>Menu</nav><main><h1>Eastmoor Council: local authority assessment</h1>
<h2>Key findings for this quality statement</h2>
<p>People could get advice from the local authority quickly, and unpaid carers said the carers
hub helped them find respite and support groups near where they lived.</p></main></body></html>
"""
LATIN1_TEXT = ("Café report: the résumé of the council's naïve approach to adult social care "
               "was reviewed by inspectors in Bromley.\n")


# --- bad-input builders ---------------------------------------------------------------------

def _text_pdf(path: Path, lines: list[str]) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    for ln in lines:
        pdf.cell(0, 8, ln, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def _image_only_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    pdf.rect(20, 20, 120, 60, style="F")
    pdf.output(str(path))


def _encrypted_pdf(path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-secret", user_password="user-secret")
    pdf.add_page()
    pdf.set_font("Helvetica", size=11)
    pdf.cell(0, 8, "Confidential inspection findings about the local authority and its partners.")
    pdf.output(str(path))


def _truncated_pdf(path: Path) -> None:
    full = path.with_name("full-" + path.name)
    _text_pdf(full, ["Northbridge Council: local authority assessment",
                     "The local authority worked well with its partners on safeguarding."] * 5)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    rng = random.Random(1234)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(4096)))


# name -> (builder, words the reason must contain)
BAD_FILES = {
    "empty.txt": (lambda p: p.write_bytes(b""), "empty"),
    "blank.md": (lambda p: p.write_text("   \n\t\n  \r\n\n", encoding="utf-8"), "empty"),
    "garbage.txt": (_garbage, "binary"),
    "not-really.pdf": (lambda p: p.write_text("Just some words saved with the wrong extension, "
                                              "no PDF here.\n", encoding="utf-8"), "not a PDF"),
    "plain.html": (lambda p: p.write_text("This page was saved as plain text, there is no markup "
                                          "in it at all.\n", encoding="utf-8"), "no HTML markup"),
    "latin1.txt": (lambda p: p.write_bytes(LATIN1_TEXT.encode("latin-1")), "UTF-8"),
    "scanned.pdf": (_image_only_pdf, "no text layer"),
    "locked.pdf": (_encrypted_pdf, "password"),
    "truncated.pdf": (_truncated_pdf, "not a readable PDF"),
    "huge.txt": (lambda p: p.write_text(("The local authority worked with its partners. " * 40
                                         + "\n") * 12, encoding="utf-8"), "MB limit"),
}
UNSUPPORTED = {"report.docx": b"PK\x03\x04 fake word document",
               "figures.xlsx": b"PK\x03\x04 fake spreadsheet"}
MAX_MB = 0.01  # 10 KB: "huge.txt" (~23 KB) is over it, the good files are well under it


def _build_bad(folder: Path) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (build, reason) in BAD_FILES.items():
        build(folder / name)
        out[folder / name] = reason
    return out


def _build_unsupported(folder: Path) -> dict[Path, str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, data in UNSUPPORTED.items():
        (folder / name).write_bytes(data)
        out[folder / name] = f"unsupported file type '{Path(name).suffix}'"
    return out


def _build_good(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "riverside-fire.txt").write_text(GOOD_FIRE, encoding="utf-8")
    (folder / "eastmoor.html").write_text(GOOD_HTML, encoding="utf-8")
    _text_pdf(folder / "westhaven.pdf", ["Westhaven Council: local authority assessment",
                                         "Safeguarding", "Score: 3",
                                         "Key findings for this quality statement",
                                         "Safeguarding enquiries were completed on time."])
    return sorted(folder.iterdir())


# --- one bad file at a time (in-process) -------------------------------------------------------

@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_file_fails_with_its_reason(name: str, tmp_path: Path, make_settings,
                                             index_state) -> None:
    build, reason = BAD_FILES[name]
    f = tmp_path / name
    build(f)
    settings = make_settings(max_file_mb=MAX_MB)
    with pytest.raises(InputError) as err:
        parse_file(f, MAX_MB)
    assert err.value.path == str(f) and reason in err.value.reason
    assert str(err.value).startswith(f"{f}: ") and "\n" not in str(err.value)

    summary = ingest([f], settings)
    assert summary.failed == [(str(f), err.value.reason)]
    assert not summary.added and summary.chunks_added == 0 and summary.reports_total == 0


def test_missing_path_and_unsupported_files(tmp_path: Path, hash_settings) -> None:
    unsupported = _build_unsupported(tmp_path / "office")
    missing = tmp_path / "no-such-folder"
    summary = ingest([missing, tmp_path / "office"], hash_settings)
    failed = dict(summary.failed)
    assert failed[str(missing)] == "no such file or folder; check the path"
    for f, reason in unsupported.items():
        assert failed[str(f)].startswith(reason) and "supported: .txt" in failed[str(f)]
    assert len(failed) == 3
    with pytest.raises(InputError, match="no such file"):
        parse_file(missing)
    with pytest.raises(InputError, match="unsupported file type '.docx'"):
        parse_file(tmp_path / "office" / "report.docx")


def test_sidecar_files_are_not_reported_as_failures(tmp_path: Path, corpus_dir: Path,
                                                    hash_settings) -> None:
    d = tmp_path / "c"
    d.mkdir()
    for name in ("SOURCES.tsv", "ATTRIBUTION.md", "wirral__about.txt"):
        (d / name).write_bytes((corpus_dir / name).read_bytes())
    (d / ".DS_Store").write_bytes(b"\x00\x01binary")
    # A reports folder kept in git: nothing under .git/ is a report or a failure.
    (d / ".git" / "objects").mkdir(parents=True)
    (d / ".git" / "description").write_text("Unnamed repository", encoding="utf-8")
    (d / ".git" / "notes.txt").write_text((corpus_dir / "gateshead__about.txt").read_text())
    (d / ".git" / "objects" / "ab12").write_bytes(b"x\x9c\x00binary")
    summary = ingest([d], hash_settings)
    assert summary.added == ["wirral-about"] and not summary.failed
    # Named explicitly, a hidden path is the user's choice and is indexed.
    assert ingest([d / ".git" / "notes.txt"], hash_settings).added == ["notes"]


# --- everything at once, through the CLI -------------------------------------------------------

def test_cli_combined_bad_run(tmp_path: Path, corpus_dir: Path, ingested_hash_index, run_cli,
                              index_state, assert_index_consistent) -> None:
    settings = ingested_hash_index
    # A file that was indexed fine and has since been corrupted: its report must survive.
    corrupted = tmp_path / "was-good" / "wiltshire-copy.txt"
    corrupted.parent.mkdir()
    src = (corpus_dir / "wiltshire__about.txt").read_text(encoding="utf-8")
    corrupted.write_text(src.replace("Wiltshire Council", "Wiltshyre Council"), encoding="utf-8")
    assert ingest([corrupted], settings).added == ["wiltshire-copy"]
    before = index_state(settings)
    corrupted.write_bytes(LATIN1_TEXT.encode("latin-1"))

    bad = _build_bad(tmp_path / "bad")
    unsupported = _build_unsupported(tmp_path / "office")
    good = _build_good(tmp_path / "good")
    missing = tmp_path / "missing.txt"
    expected = {**bad, **unsupported, missing: "no such file", corrupted: "UTF-8"}

    proc = run_cli("ingest", str(tmp_path / "bad"), str(tmp_path / "office"), str(missing),
                   str(corrupted), str(tmp_path / "good"), "--json",
                   "--index", str(settings.index_dir),
                   env={"REPORTQA_MAX_FILE_MB": str(MAX_MB)})
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr

    # Exactly one clear line per failed file, naming it and saying why.
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    failed_lines = [ln for ln in lines if ln.startswith("FAILED ")]
    assert failed_lines == lines, f"unexpected stderr output: {proc.stderr}"
    assert len(failed_lines) == len(expected)
    for path, reason in expected.items():
        mine = [ln for ln in failed_lines if ln.startswith(f"FAILED {path}: ")]
        assert len(mine) == 1, (path, failed_lines)
        assert reason in mine[0], mine[0]

    out = json.loads(proc.stdout)
    assert sorted(out["added"]) == ["eastmoor", "riverside-fire", "westhaven"]
    assert {f["path"] for f in out["failed"]} == {str(p) for p in expected}
    assert out["reports_total"] == len(before.reports) + len(good)

    after = index_state(settings)
    assert_index_consistent(after)
    # Nothing that was already indexed changed (the corrupted file's report included).
    for rid, h in before.reports.items():
        assert after.reports[rid] == h
        assert after.metadata[rid] == before.metadata[rid]
    old_chunks = {c for c in after.chunks if c[1] in before.reports}
    assert old_chunks == before.chunks
    assert set(after.reports) - set(before.reports) == {"eastmoor", "riverside-fire",
                                                          "westhaven"}
    assert after.metadata["eastmoor"][1] == "https://example.org/reports/eastmoor"

    # Rerunning only the good files changes nothing and exits 0.
    rerun = run_cli("ingest", str(tmp_path / "good"), "--json", "--index",
                    str(settings.index_dir), env={"REPORTQA_MAX_FILE_MB": str(MAX_MB)})
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["chunks_added"] == 0


def test_cli_human_output_and_usage_errors(tmp_path: Path, run_cli) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    proc = run_cli("ingest", str(tmp_path / "empty.txt"), "--index", str(tmp_path / "ix"))
    assert proc.returncode == 1
    assert f"FAILED {tmp_path / 'empty.txt'}: file is empty" in proc.stderr
    assert "added 0, updated 0, unchanged 0, failed 1" in proc.stdout
    usage = run_cli("ingest", "--index", str(tmp_path / "ix"))
    assert usage.returncode == 2 and "paths" in usage.stderr


# --- SIGKILL at seeded random moments --------------------------------------------------------

SNAPSHOT_SCRIPT = r"""
import json, sys
from pathlib import Path
from ingest.index import IndexStore
from reportqa.settings import Settings
out = {}
for arg in sys.argv[1:]:
    d = Path(arg)
    if not (d / "manifest.sqlite3").exists():
        out[arg] = None
        continue
    st = IndexStore(Settings(index_dir=d, embedder="hash"), "hash-bow", 256, create=False)
    rows = st.reports()
    per = {}
    for (rid,) in st.db.execute("SELECT report_id FROM chunks"):
        per[rid] = per.get(rid, 0) + 1
    out[arg] = {
        "reports": {r.report_id: r.content_hash for r in rows},
        "counts": {r.report_id: r.chunk_count for r in rows},
        "rows": per,
        "chunk_ids": sorted(st.chunk_ids()),
        "vector_ids": sorted(st.vector_ids()),
        "pending": st.has_pending(),
    }
    st.close()
print(json.dumps(out))
"""


def _snapshots(index_dirs: list[Path], cli_env) -> list[Any]:
    """Read indexes from a fresh process (no client state shared with the killed writers)."""
    proc = subprocess.run([sys.executable, "-c", SNAPSHOT_SCRIPT, *map(str, index_dirs)],
                          capture_output=True, text=True, env=cli_env(), timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    return [got[str(d)] for d in index_dirs]


def _check_partial(snap: dict | None) -> None:
    """Invariants that hold at any instant, killed or not."""
    if snap is None:
        return
    for rid, n in snap["counts"].items():
        assert snap["rows"].get(rid, 0) == n, f"{rid}: {n} chunks recorded, rows disagree"
    assert not set(snap["rows"]) - set(snap["counts"]), "chunk rows without their report"
    missing = set(snap["chunk_ids"]) - set(snap["vector_ids"])
    assert not missing, f"{len(missing)} committed chunks have no vector"


def _committed_reports(index: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{index / 'manifest.sqlite3'}?mode=ro", uri=True, timeout=1)
        try:
            return int(con.execute("SELECT COUNT(*) FROM reports").fetchone()[0])
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def _run_and_kill(cmd: list[str], env: dict, delay: float | None, index: Path) -> bool:
    """Start the CLI and SIGKILL it after ``delay`` seconds, or (delay None) as soon as its
    first write group is committed. True if it was still running when killed."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parent.parent)
    try:
        if delay is None:
            deadline = time.monotonic() + 120
            while proc.poll() is None and not _committed_reports(index):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.005)
        else:
            proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        pass
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return True


# The real CLI entry point, with commits every ~16 chunks instead of 256 so that the write
# phase is long and a random kill lands between many different steps of the write protocol.
SMALL_GROUPS_CLI = ("import sys, ingest.pipeline as p; p._GROUP_CHUNKS = 16; "
                    "from ui.cli import main; sys.exit(main())")


def test_sigkill_at_random_moments_then_rerun(tmp_path: Path, corpus_dir: Path, cli_env,
                                              cli_cmd) -> None:
    env = cli_env()

    def cmd(index: Path) -> list[str]:
        return [sys.executable, "-c", SMALL_GROUPS_CLI, "ingest", str(corpus_dir), "--json",
                "--index", str(index)]

    # References: the stock CLI and the small-group CLI, uninterrupted (timed).
    stock_dir, ref_dir = tmp_path / "stock", tmp_path / "reference"
    stock = subprocess.run(cli_cmd("ingest", str(corpus_dir), "--json", "--index",
                                   str(stock_dir)),
                           env=env, capture_output=True, text=True, timeout=300)
    assert stock.returncode == 0, stock.stderr
    t0 = time.perf_counter()
    ref = subprocess.run(cmd(ref_dir), env=env, capture_output=True, text=True, timeout=300)
    full_time = time.perf_counter() - t0
    assert ref.returncode == 0, ref.stderr

    rng = random.Random(20250611)
    # Seeded kill moments over the run (mostly the embed/write phase); one plan kills the rerun
    # as well before the final clean run; the last kills right after the first commit (None).
    plans: list[list[float | None]] = [[rng.uniform(0.4, 0.9) * full_time] for _ in range(3)]
    plans.append([rng.uniform(0.5, 0.85) * full_time, rng.uniform(0.4, 0.85) * full_time])
    plans.append([None])
    indexes = [tmp_path / f"killed-{i}" for i in range(len(plans))]
    killed, partial = 0, 0
    trail: list[str] = [f"uninterrupted run: {full_time:.2f} s"]  # shown if an assert fails
    for step in range(max(len(p) for p in plans)):
        todo = [(i, p[step]) for i, p in enumerate(plans) if len(p) > step]
        for i, delay in todo:
            for _attempt in range(4):
                was_running = _run_and_kill(cmd(indexes[i]), env, delay, indexes[i])
                trail.append(f"plan {i} step {step}: delay {delay} killed={was_running}")
                if was_running or delay is None or step > 0:
                    break
                # Finished before the kill (the machine got faster than the timed run):
                # start over with an earlier kill, so every plan really is interrupted.
                shutil.rmtree(indexes[i])
                delay *= 0.7
            killed += was_running
        for (i, _), snap in zip(todo, _snapshots([indexes[i] for i, _ in todo], cli_env),
                                strict=True):
            if snap:
                trail.append(f"plan {i}: {len(snap['reports'])} reports, "
                             f"{len(snap['chunk_ids'])} chunks, {len(snap['vector_ids'])} "
                             f"vectors, pending={snap['pending']}")
            try:
                _check_partial(snap)
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n" + "\n".join(trail)) from None
            partial += bool(snap and 0 < len(snap["reports"]) < 36)

    for index in indexes:
        rerun = subprocess.run(cmd(index), env=env, capture_output=True, text=True, timeout=300)
        assert rerun.returncode == 0, (rerun.stderr, trail)
    stock_snap, reference, *finals = _snapshots([stock_dir, ref_dir, *indexes], cli_env)
    assert len(reference["reports"]) == 36
    assert reference["chunk_ids"] == reference["vector_ids"]
    assert (stock_snap["reports"], stock_snap["chunk_ids"]) == (
        reference["reports"], reference["chunk_ids"])  # group size changes nothing
    for final, delays in zip(finals, plans, strict=True):
        trail.append(f"final {delays}: {len(final['reports'])} reports, "
                     f"{len(final['chunk_ids'])} chunks, {len(final['vector_ids'])} vectors")
        _check_partial(final)
        assert final["vector_ids"] == final["chunk_ids"], trail
        assert not final["pending"]
        assert final["reports"] == reference["reports"], trail
        assert final["chunk_ids"] == reference["chunk_ids"], trail
    assert killed >= 4, ("most kills should land while the ingest is still running", trail)
    assert partial >= 1, ("one kill should land between two committed write groups", trail)


def test_the_summary_line_counts_one_report_in_the_singular() -> None:
    one = IngestSummary(added=["a"], chunks_added=1, chunks_total=1, reports_total=1)
    assert "1 chunk embedded" in one.line() and "holds 1 report / 1 chunk (" in one.line()
    two = IngestSummary(chunks_added=3, chunks_reused=1, chunks_total=9, reports_total=2)
    assert "2 chunks embedded (1 unchanged chunk reused)" in two.line()
    assert "holds 2 reports / 9 chunks" in two.line()
