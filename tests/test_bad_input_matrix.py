"""The bad-input matrix (benchmarks/bad_input_matrix.py): 40+ distinct bad inputs, each through
the CLI (`reportqa ingest` subprocess, hash embedder) and the UI upload path
(`ui.components.save_and_ingest`). Every input ends in one clear line naming the file and the
reason, or in a correct ingest; never a crash. Afterwards each index holds exactly the expected
reports (content hashes of the expected texts) and the chunks a clean ingest of only the good
files makes. The script prints the same data as a table."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.parse import normalise_text
from reportqa.records import sha256

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "benchmarks" / "bad_input_matrix.py"


def _load():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bad_input_matrix", SCRIPT)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bad_input_matrix"] = mod
    spec.loader.exec_module(mod)
    return mod


bim = _load()


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    m = bim.run_matrix(tmp_path_factory.mktemp("bad-input-matrix"))
    print("\n" + m.table())  # shown with -s, and in the failure report below
    return m


def _row(matrix, key: str):  # type: ignore[no-untyped-def]
    return next(r for r in matrix.rows if r.case.key == key)


def test_at_least_40_distinct_inputs_through_both_paths(matrix) -> None:
    keys = [r.case.key for r in matrix.rows]
    assert len(keys) == len(set(keys))
    both = [r for r in matrix.rows if r.cli != "n/a" and r.ui != "n/a"]
    assert len(both) >= 40, f"only {len(both)} inputs reach both the CLI and the UI"
    assert len({r.case.label for r in matrix.rows}) == len(matrix.rows)


def test_every_input_meets_its_expectation_and_indexes_are_exact(matrix) -> None:
    assert not matrix.problems, matrix.table() + "\n" + "\n".join(matrix.problems)


def test_no_crash_and_cli_prints_exactly_one_line_per_failed_file(matrix) -> None:
    assert "Traceback" not in matrix.cli_stderr
    lines = [ln for ln in matrix.cli_stderr.splitlines() if ln.strip()]
    assert lines and all(ln.startswith("FAILED ") for ln in lines), lines
    n_failed_paths = sum(len(matrix.cli_state["paths"][r.case.key])
                         for r in matrix.rows if r.cli == "failed")
    assert len(lines) == n_failed_paths
    # A newline or escape sequence in a file name cannot split or colour the line.
    assert any("line\\nbreak.txt: file is empty" in ln for ln in lines)
    for r in matrix.rows:
        for where, outcome, msg in (("CLI", r.cli, r.cli_msg), ("UI", r.ui, r.ui_msg)):
            assert outcome in ("indexed", "duplicate", "failed", "n/a"), (where, r.case.key)
            if outcome == "failed":
                assert msg and "\n" not in msg and "Traceback" not in msg, (where, r.case.key)


def test_good_files_in_the_same_run_are_indexed_with_exact_text(matrix) -> None:
    for state in (matrix.cli_state, matrix.ui_state):
        hashes = {r.content_hash for r in state["reports"].values()}
        for name in ("wirral__about.txt", "darlington__about.txt"):
            text = normalise_text((REPO / "corpus" / name).read_text(encoding="utf-8"))
            assert sha256(text) in hashes, name
        assert state["vector_ids"] == state["chunk_ids"] and not state["pending"]
        n_rep, n_chk = state["counts"]
        assert n_rep == len(state["reports"]) and n_chk == sum(
            r.chunk_count for r in state["reports"].values())


def test_zero_width_and_control_characters_are_removed(matrix) -> None:
    want = normalise_text(bim.good_text("Zeroshire"))
    for state in (matrix.cli_state, matrix.ui_state):
        texts = [t for t in state["text"].values() if "Zeroshire" in t]
        assert texts == [want]
        assert not any(ch in texts[0] for ch in "\u200b\u200d\u2060\u00ad\ufeff\x07\x1b\x0b")


def test_html_scripts_and_huge_attributes_do_not_reach_the_index(matrix) -> None:
    for state in (matrix.cli_state, matrix.ui_state):
        for t in state["text"].values():
            assert "INJECTED" not in t and "alert('head')" not in t and "AAAAAAAA" not in t


def test_shell_characters_in_names_run_nothing(matrix) -> None:
    assert _row(matrix, "shell-subst").cli == "indexed"
    assert _row(matrix, "shell-rm").cli == "indexed"
    assert not any(p.name == "pwned" for p in REPO.iterdir())


def test_symlinks(matrix) -> None:
    """Folder walk: a link out of the folder is refused. Named on the command line: the user
    chose it, it is followed. UI: an upload never writes or reads through a planted link."""
    out = _row(matrix, "symlink-out")
    assert out.cli == "failed" and "outside the folder" in out.cli_msg
    assert out.ui == "failed" and "symbolic link" in out.ui_msg
    assert not any("root:" in t for t in matrix.cli_state["text"].values())
    assert not any("root:" in t for t in matrix.ui_state["text"].values())
    chosen = _row(matrix, "symlink-explicit")
    assert chosen.cli == "indexed"


def test_duplicates_in_one_batch_are_indexed_once(matrix) -> None:
    for state in (matrix.cli_state, matrix.ui_state):
        assert sum("Dupford" in t for t in state["text"].values()) == 1


def test_upload_names_never_escape_the_uploads_folder(matrix) -> None:
    uploads = None
    for name, _data in matrix.ui_state["files"]:
        assert name  # every upload had a name
    for r in matrix.ui_state["reports"].values():
        p = Path(r.path)
        uploads = uploads or next(a for a in p.parents if a.name == "uploads")
        assert p.is_relative_to(uploads) and p.parent.parent == uploads, r.path


def test_file_rewritten_between_hashing_and_parsing_stays_consistent(
        tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline hashes and parses the same bytes: the stored file hash always names the
    version whose text is stored, so a later ingest of either version does the right thing."""
    import ingest.pipeline as pipeline
    from ingest.index import IndexStore

    settings = make_settings()
    f = tmp_path / "changing.txt"
    a, b = bim.good_text("Versiona"), bim.good_text("Versionb")
    f.write_text(a, encoding="utf-8")
    real = pipeline.parse_file

    def racing(path: Path, max_mb: float = 20.0, data: bytes | None = None):  # type: ignore[no-untyped-def]
        path.write_text(b, encoding="utf-8")  # replaced after hashing, before parsing
        return real(path, max_mb, data)

    monkeypatch.setattr(pipeline, "parse_file", racing)
    assert pipeline.ingest([f], settings).added == ["changing"]
    monkeypatch.setattr(pipeline, "parse_file", real)

    def stored() -> tuple[str, str]:
        st = IndexStore(settings, "hash-bow", 256, create=False)
        try:
            row = st.find_id("changing")
            assert row is not None
            return row.file_hash, st.report_text("changing")
        finally:
            st.close()

    fh, text = stored()
    assert (fh, text) == (sha256(a.encode()), normalise_text(a))
    # The file on disk is now version b: the next ingest sees a changed file and updates.
    assert pipeline.ingest([f], settings).updated == ["changing"]
    assert stored() == (sha256(b.encode()), normalise_text(b))
    # Changed back to a: updated again (a stale file hash would have skipped it as unchanged).
    f.write_text(a, encoding="utf-8")
    assert pipeline.ingest([f], settings).updated == ["changing"]
    assert stored() == (sha256(a.encode()), normalise_text(a))


def test_script_runs_standalone_help() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True,
                          text=True, timeout=120, cwd="/")
    assert proc.returncode == 0 and "--keep" in proc.stdout


def test_table_has_a_row_per_input(matrix) -> None:
    table = matrix.table().splitlines()
    assert table[0].split()[:3] == ["input", "CLI", "UI"]
    assert len(table) == len(matrix.rows) + 3
