"""Shared fixtures for the reportqa test suite.

Generic on purpose (other suites use them too):

* ``repo_root`` / ``corpus_dir`` / ``corpus_files`` / ``corpus_sources``: the bundled corpus.
* ``make_settings``: factory for Settings that use the deterministic HashEmbedder and an index
  under ``tmp_path`` (never the user's real index); ``hash_settings`` is one such Settings.
* ``ingested_hash_index``: the whole corpus ingested into a fresh tmp index (returns Settings);
  ``shared_hash_index`` is the same but built once per session: treat it as read-only.
* ``free_port``: a factory returning a free loopback TCP port (session-scoped).
* ``chroma_server``: a real `chroma run` server for the session (yields its http URL).
* ``run_cli``: run ``python -m ui.cli ...`` in a subprocess with a clean environment
  (no REPORTQA_* from the caller's shell, REPORTQA_EMBEDDER=hash unless overridden).
* ``index_state`` / ``assert_index_consistent``: snapshot of an index (reports, content hashes,
  chunk ids, vector ids) for before/after comparisons, and the no-orphans invariant check.
* ``open_index``: open an IndexStore on existing Settings (closed at teardown).
* ``cli_env`` / ``cli_cmd``: environment and argv for your own CLI subprocesses.
* ``make_variant_corpus``: copies of corpus files with other council names and figures (distinct
  content hashes), for bulk/volume tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from reportqa.chroma_server import find_chroma
from reportqa.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
BUNDLED = REPO_ROOT / "corpus"


def _cqc_pages() -> Path:
    """The 36 CQC pages (+ SOURCES.tsv) alone: most tests are about them, and corpus/ofsted/
    (30 PDFs, tested in test_profiles.py and test_pdf_answers.py) would only slow them."""
    import atexit
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="reportqa-cqc-"))
    atexit.register(shutil.rmtree, d, True)
    for f in BUNDLED.iterdir():
        if f.is_file():
            shutil.copy2(f, d / f.name)
    return d


CORPUS_DIR = _cqc_pages()


# --- corpus ----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    return CORPUS_DIR


@pytest.fixture(scope="session")
def corpus_files() -> list[Path]:
    files = sorted(CORPUS_DIR.glob("*.txt"))
    assert len(files) == 36, f"expected 36 corpus pages, found {len(files)}"
    return files


@pytest.fixture(scope="session")
def corpus_sources() -> dict[str, dict[str, str]]:
    """SOURCES.tsv rows keyed by file name (columns: file, council, page, source_url)."""
    from ingest.pipeline import load_sources

    return load_sources(CORPUS_DIR)


# --- settings / indexes ----------------------------------------------------------------------

def hash_settings_for(index_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: hash embedder, index in ``index_dir``, no Chroma server, no env."""
    base = Settings(index_dir=Path(index_dir), embedder="hash", corpus_dir=CORPUS_DIR,
                    chroma_url=None, chroma_token=None)
    return replace(base, **overrides)


def one_page_engine(tmp_path: Path, text: str, name: str = "fenwick__about.txt") -> Any:
    """An engine over an index of one made-up page ``name`` holding ``text`` (the hash
    embedder: no model); the index lives in ``tmp_path``/index."""
    from ingest.pipeline import ingest
    from rag.engine import Engine

    page = tmp_path / name
    page.write_text(text, encoding="utf-8")
    settings = Settings(index_dir=tmp_path / "index", embedder="hash")
    ingest([page], settings)
    return Engine.load(settings)


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """``make_settings(name="index", **overrides)`` -> hash Settings with index under tmp_path."""

    def make(name: str = "index", **overrides: Any) -> Settings:
        return hash_settings_for(tmp_path / name, **overrides)

    return make


@pytest.fixture
def hash_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def ingested_hash_index(hash_settings: Settings) -> Settings:
    """The bundled corpus ingested (hash embedder) into a fresh tmp index; returns its Settings."""
    from ingest.pipeline import ingest

    summary = ingest([CORPUS_DIR], hash_settings)
    assert not summary.failed, summary.failed
    assert summary.reports_total == 36
    return hash_settings


@pytest.fixture(scope="session")
def shared_hash_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Like ``ingested_hash_index`` but built once per session. Do not modify it."""
    from ingest.pipeline import ingest

    settings = hash_settings_for(tmp_path_factory.mktemp("shared-hash") / "index")
    summary = ingest([CORPUS_DIR], settings)
    assert not summary.failed, summary.failed
    return settings


def open_store(settings: Settings):  # type: ignore[no-untyped-def]
    from ingest.index import IndexStore
    from reportqa.embed import embedder_for

    emb = embedder_for(settings)
    return IndexStore(settings, emb.name, emb.dim, create=False)


@dataclass(frozen=True)
class IndexState:
    reports: dict[str, str]  # report_id -> content_hash
    chunk_ids: frozenset[str]
    vector_ids: frozenset[str]
    chunk_counts: dict[str, int]  # report_id -> chunk_count column
    chunk_rows: dict[str, int]  # report_id -> number of chunk rows
    pending: bool
    metadata: dict[str, Any]  # report_id -> (path, source, metadata dict)
    chunks: frozenset[tuple[Any, ...]]  # every chunk row's fields

    def logical(self) -> tuple[Any, ...]:
        """What must match between an interrupted-then-rerun index and an uninterrupted one."""
        return (self.reports, self.chunk_ids, self.metadata, self.chunks)


def snapshot(settings: Settings) -> IndexState:
    store = open_store(settings)
    try:
        rows = store.reports()
        per_report: dict[str, int] = {}
        for (rid,) in store.db.execute("SELECT report_id FROM chunks"):
            per_report[rid] = per_report.get(rid, 0) + 1
        return IndexState(
            reports={r.report_id: r.content_hash for r in rows},
            chunk_ids=frozenset(store.chunk_ids()),
            vector_ids=frozenset(store.vector_ids()),
            chunk_counts={r.report_id: r.chunk_count for r in rows},
            chunk_rows=per_report,
            pending=store.has_pending(),
            metadata={r.report_id: (r.path, r.source, r.metadata) for r in rows},
            chunks=frozenset(
                (c.chunk_id, c.report_id, c.start, c.end, c.text, c.section, c.council,
                 c.page_kind, c.quality_statement, c.theme, c.score) for c in store.chunks()),
        )
    finally:
        store.close()


def assert_consistent(state: IndexState) -> None:
    """No orphan or missing vectors, and every report has exactly its chunks."""
    orphans = state.vector_ids - state.chunk_ids
    missing = state.chunk_ids - state.vector_ids
    assert not orphans, f"{len(orphans)} orphan vectors (in Chroma, not in SQLite)"
    assert not missing, f"{len(missing)} chunks without a vector"
    for rid, n in state.chunk_counts.items():
        assert state.chunk_rows.get(rid, 0) == n, f"{rid}: chunk_count {n} != rows"
    stray = set(state.chunk_rows) - set(state.chunk_counts)
    assert not stray, f"chunk rows for reports that are not indexed: {sorted(stray)}"


@pytest.fixture(scope="session")
def index_state() -> Callable[[Settings], IndexState]:
    """``index_state(settings)`` -> IndexState snapshot (opens and closes the store)."""
    return snapshot


@pytest.fixture(scope="session")
def assert_index_consistent() -> Callable[[IndexState], None]:
    """``assert_index_consistent(state)``: no orphan/missing vectors, chunk counts match rows."""
    return assert_consistent


@pytest.fixture
def open_index() -> Iterator[Callable[[Settings], Any]]:
    """``open_index(settings)`` -> IndexStore on an existing index; closed at teardown."""
    opened: list[Any] = []

    def open_(settings: Settings) -> Any:
        store = open_store(settings)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        with contextlib.suppress(Exception):
            store.close()


@pytest.fixture(scope="session")
def settings_for() -> Callable[..., Settings]:
    """``settings_for(index_dir, **overrides)`` -> hash Settings for that index dir."""
    return hash_settings_for


# --- ports / subprocesses --------------------------------------------------------------------

@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Factory: a currently free TCP port on 127.0.0.1 (never the same one twice per session)."""
    handed_out: set[int] = set()

    def get() -> int:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            if port not in handed_out:
                handed_out.add(port)
                return port
        raise RuntimeError("no free port found")

    return get


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory,
                  free_port: Callable[[], int]) -> Iterator[str]:
    """A real `chroma run` server on a free loopback port for the session; yields its URL.

    Data lives in a tmp dir; the server is stopped (SIGTERM, then SIGKILL) at teardown.
    """
    exe = find_chroma()
    if exe is None:
        pytest.skip("the `chroma` executable is not installed")
    port = free_port()
    data = tmp_path_factory.mktemp("chroma-server")
    url = f"http://127.0.0.1:{port}"
    with open(data / "server.log", "wb") as log:
        proc = subprocess.Popen(
            [exe, "run", "--path", str(data / "db"), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        wait_for_heartbeat(proc, url, data / "server.log", timeout=60)
        yield url
    finally:
        stop_process(proc)


def wait_for_heartbeat(proc: subprocess.Popen[Any], url: str, log: Path,
                       timeout: float = 90) -> None:
    """Wait until the Chroma server ``proc`` answers at ``url``; raise with the end of its
    ``log`` if it exits first, or if it does not answer within ``timeout`` seconds."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"chroma server exited ({proc.returncode}): "
                               + log.read_text(errors="replace")[-2000:])
        try:
            with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"chroma server at {url} did not answer within {timeout:g} s")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 15) -> None:
    """Stop a server the test started: terminate, then kill if it does not exit in time."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def page_score(text: str) -> int | None:
    """A page's own score, read independently of ingest: "Score: N" or "N - Evidence shows"
    in its top lines."""
    for line in [ln for ln in text.split("\n") if ln.strip()][:8]:
        m = re.match(r"^\s*(?:Score: ?)?([1-4])\s*[-–]\s*Evidence shows\b", line) or re.match(
            r"^\s*Score: ?([1-4])\s*$", line)
        if m:
            return int(m.group(1))
    return None


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without REPORTQA_* (so the caller's shell cannot leak in), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    env["PYTHONUNBUFFERED"] = "1"
    env["REPORTQA_EMBEDDER"] = "hash"
    env.update(extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ui.cli", *args]


@pytest.fixture(scope="session")
def cli_env() -> Callable[..., dict[str, str]]:
    """``cli_env(**extra)`` -> clean environment for a CLI subprocess (REPORTQA_EMBEDDER=hash)."""
    return clean_env


@pytest.fixture(scope="session")
def cli_cmd() -> Callable[..., list[str]]:
    """``cli_cmd(*args)`` -> argv running the reportqa CLI with this interpreter."""
    return cli_command


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """``run_cli(*args, env=None, timeout=120)``: run the CLI, return CompletedProcess (text).

    ``env`` entries are added to a clean environment that has REPORTQA_EMBEDDER=hash.
    Pass ``--index`` yourself (e.g. ``str(hash_settings.index_dir)``).
    """

    def run(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli_command(*args), cwd=REPO_ROOT, env=clean_env(**(env or {})),
                              capture_output=True, text=True, timeout=timeout)

    return run


# --- bulk data -------------------------------------------------------------------------------

_PREFIXES = ("North", "East", "West", "South", "Ash", "Bram", "Col", "Dun", "Elm", "Fern", "Gar",
             "Holm", "Ivy", "Kest", "Lyn", "Mar")
_SUFFIXES = ("bridge", "moor", "haven", "fold", "combe", "well", "bury", "mere", "stead", "leigh",
             "wick", "brook", "ford", "low", "dale", "by")


def fake_council_name(copy: int, council: int) -> str:
    """A distinct invented place name per (copy, council), letters only."""
    extra = "" if copy < len(_PREFIXES) else "ton" * (copy // len(_PREFIXES))
    return (_PREFIXES[copy % len(_PREFIXES)] + _SUFFIXES[council % len(_SUFFIXES)] + extra)


def _shift(by: int) -> Callable[[re.Match[str]], str]:
    """re.sub replacement adding ``by`` to a number."""
    return lambda m: str(int(m.group(0)) + by)


def make_variant_corpus(dest: Path, copies: int, files: list[Path] | None = None) -> list[Path]:
    """Write ``copies`` variants of every corpus page into ``dest``: council names swapped for
    invented ones and multi-digit figures shifted, so each copy has its own content hash."""
    from ingest.pipeline import load_sources

    dest.mkdir(parents=True, exist_ok=True)
    sources = load_sources(CORPUS_DIR)
    files = files or sorted(CORPUS_DIR.glob("*.txt"))
    slugs = sorted({sources.get(f.name, {}).get("council", f.name.split("__")[0]) for f in files})
    out: list[Path] = []
    for i in range(copies):
        for f in files:
            slug = sources.get(f.name, {}).get("council", f.name.split("__")[0])
            place = fake_council_name(i, slugs.index(slug))
            text = f.read_text(encoding="utf-8")
            name_re = r"[\s-]+".join(re.escape(w) for w in re.split(r"[-\s]+", slug) if w)
            if not re.search(name_re, text, flags=re.I):
                text = f"{place} Council assessment\n{text}"  # keep every copy distinct
            text = re.sub(name_re, place, text, flags=re.I)
            # Shift figures (not years) so each copy also differs in its numbers.
            text = re.sub(r"\b(?!(?:19|20)\d\d\b)\d{3,}\b", _shift(7 * (i + 1)), text)
            target = dest / f"{place.lower()}__{f.name.split('__', 1)[-1]}"
            target.write_text(text, encoding="utf-8")
            out.append(target)
    return out


@pytest.fixture(scope="session")
def variant_corpus() -> Callable[[Path, int], list[Path]]:
    return make_variant_corpus


@pytest.fixture
def no_reportqa_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Remove REPORTQA_* variables from this process's environment for the test."""
    for k in list(os.environ):
        if k.startswith("REPORTQA_"):
            monkeypatch.delenv(k)
    yield


@pytest.fixture(scope="session")
def doncaster_pdf_index(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One real Ofsted PDF (Doncaster ILACS 2025: judgement table and dates on page 1),
    indexed with the hashing embedder."""
    from ingest.pipeline import ingest

    settings = Settings(index_dir=tmp_path_factory.mktemp("doncaster-pdf"), embedder="hash")
    ingest([BUNDLED / "ofsted" / "ofsted-ilacs-doncaster-2025.pdf"], settings)
    return settings
