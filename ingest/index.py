"""The index: a SQLite manifest (reports + chunk text/metadata + a write journal) and a Chroma
collection holding the vectors. Public: `IndexStore`.

Crash safety. SQLite is the source of truth; a report is "in the index" exactly when its row
and all its chunk rows are committed there, in one transaction. Each write is journalled:
  1. journal the report ids (``pending`` table, committed)
  2. upsert the new vectors into Chroma (ids derive from content, so a rerun is idempotent)
  3. one SQLite transaction: replace the report's rows and chunk rows, mark the journal "cleanup"
  4. delete the now-obsolete vectors from Chroma
  5. clear the journal
A kill anywhere leaves either the old or the new committed state in SQLite, plus at worst
orphan vectors that the journal names; the next writer's `recover()` deletes them. Readers
only trust vector ids that SQLite knows, so they never see half-written reports. Writers
(write/remove/recover) hold an advisory lock on ``write.lock`` in the index dir, so recovery
never runs in the middle of another process's write.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from ingest.pdftext import page_at
from reportqa.chroma_server import check_token_header
from reportqa.errors import BackendError, IndexNotReadyError
from reportqa.records import Chunk
from reportqa.settings import Settings

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY, content_hash TEXT NOT NULL, file_hash TEXT NOT NULL,
    path TEXT NOT NULL, source TEXT NOT NULL, metadata TEXT NOT NULL, text TEXT NOT NULL,
    chunk_count INTEGER NOT NULL, added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS reports_hash ON reports(content_hash);
CREATE INDEX IF NOT EXISTS reports_path ON reports(path);
CREATE TABLE IF NOT EXISTS chunks (
    chunk_id TEXT PRIMARY KEY, report_id TEXT NOT NULL, seq INTEGER NOT NULL,
    start INTEGER NOT NULL, "end" INTEGER NOT NULL, text TEXT NOT NULL, section TEXT,
    council TEXT, page_kind TEXT, quality_statement TEXT, theme TEXT, score INTEGER);
CREATE INDEX IF NOT EXISTS chunks_report ON chunks(report_id);
CREATE TABLE IF NOT EXISTS pending (report_id TEXT NOT NULL, state TEXT NOT NULL, at REAL NOT NULL);
"""


def _exclusive(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a write-protocol method holding the index's writer lock (IndexStore.exclusive)."""

    @functools.wraps(method)
    def locked(self: IndexStore, *args: Any, **kwargs: Any) -> Any:
        with self.exclusive():
            return method(self, *args, **kwargs)

    return locked


@dataclass(frozen=True)
class ReportRow:
    report_id: str
    content_hash: str
    file_hash: str
    path: str
    source: str
    metadata: dict[str, Any]
    chunk_count: int
    added_at: float

    def pages(self, start: int, end: int) -> tuple[int | None, int | None]:
        """PDF pages of text[start:end] (first, last), or (None, None) for a web page."""
        starts = self.metadata.get("page_starts") or ()
        if not starts:
            return None, None
        first, last = page_at(starts, start), page_at(starts, max(start, end - 1))
        return first, last if last != first else None

    def to_json(self) -> dict[str, Any]:
        m = self.metadata
        return {
            "id": self.report_id, "council": m.get("council"), "page_kind": m.get("page_kind"),
            "quality_statement": m.get("quality_statement"), "theme": m.get("theme"),
            "score": m.get("score"), "score_label": m.get("score_label"),
            "overall_rating": m.get("overall_rating"),
            "overall_percentage": m.get("overall_percentage"),
            "indicative": m.get("indicative"), "published": m.get("published"),
            "chunks": self.chunk_count, "source": self.source, "path": self.path,
            "content_hash": self.content_hash,
            "family": m.get("family"), "organisation": m.get("organisation"),
            "inspection_dates": m.get("inspection_dates"), "pages": len(m.get("page_starts") or ()),
        }


@dataclass(frozen=True)
class NewReport:
    """Everything one write needs; produced by the ingest pipeline."""

    report_id: str
    content_hash: str
    file_hash: str
    path: str
    source: str
    metadata: dict[str, Any]
    text: str
    chunks: Sequence[Chunk]
    vectors: np.ndarray


class IndexStore:
    """Open (creating if needed) the index under ``settings.index_dir``."""

    def __init__(self, settings: Settings, embedder_name: str, dim: int, create: bool = True):
        self.settings = settings
        self.dir = Path(settings.index_dir)
        self.embedder_name = embedder_name
        self.dim = dim
        db = self.dir / "manifest.sqlite3"
        if not create and not db.exists():
            raise IndexNotReadyError(
                f"no index at {self.dir}; run `reportqa ingest corpus/` first "
                "(or pass --index / set REPORTQA_INDEX)"
            )
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_depth = 0
        self.db = sqlite3.connect(db, timeout=60, isolation_level=None, check_same_thread=False)
        self._use_wal()
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self._check_embedder()
        self._collection: Any = None
        self._collection_gen = -1  # index generation when the reader's collection was opened

    # --- reads ---------------------------------------------------------------------------

    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0]) if row else 0

    def reports(self) -> list[ReportRow]:
        rows = self.db.execute(
            "SELECT report_id, content_hash, file_hash, path, source, metadata, chunk_count, "
            "added_at FROM reports ORDER BY report_id"
        ).fetchall()
        return [ReportRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def report_text(self, report_id: str) -> str:
        row = self.db.execute("SELECT text FROM reports WHERE report_id=?", (report_id,)).fetchone()
        return row[0] if row else ""

    def find_id(self, report_id: str) -> ReportRow | None:
        rows = self.reports_where("report_id=?", (report_id,))
        return rows[0] if rows else None

    def find(self, *, content_hash: str | None = None, path: str | None = None) -> ReportRow | None:
        col, val = ("content_hash", content_hash) if content_hash else ("path", path)
        for r in self.reports_where(f"{col}=?", (val,)):
            return r
        return None

    def reports_where(self, where: str, args: tuple[Any, ...]) -> list[ReportRow]:
        rows = self.db.execute(
            "SELECT report_id, content_hash, file_hash, path, source, metadata, chunk_count, "
            f"added_at FROM reports WHERE {where}", args
        ).fetchall()
        return [ReportRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6], r[7]) for r in rows]

    def chunks(self, report_id: str | None = None) -> list[Chunk]:
        """Every chunk in report order, or only ``report_id``'s."""
        where, args = ("WHERE report_id=? ", (report_id,)) if report_id is not None else ("", ())
        rows = self.db.execute(
            'SELECT chunk_id, report_id, text, start, "end", section, council, page_kind, '
            f"quality_statement, theme, score FROM chunks {where}ORDER BY report_id, seq", args
        ).fetchall()
        return [Chunk(*r) for r in rows]

    def vectors(self, chunk_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored vectors of committed chunks (ids SQLite does not know are not asked for)."""
        out: dict[str, np.ndarray] = {}
        ids = list(dict.fromkeys(chunk_ids))
        for i in range(0, len(ids), 2000):
            got = self.collection().get(ids=ids[i : i + 2000], include=["embeddings"])
            for cid, vec in zip(got["ids"], got["embeddings"], strict=True):
                out[cid] = np.asarray(vec, dtype=np.float32)
        return out

    def file_states(self) -> dict[str, tuple[str, str, Any]]:
        """path -> (report_id, file hash, parser version): what an unchanged-file check needs,
        in one query and without decoding every report's metadata."""
        rows = self.db.execute("SELECT path, report_id, file_hash, "
                               "json_extract(metadata, '$.parser') FROM reports")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def report_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT report_id FROM reports")}

    def chunk_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT chunk_id FROM chunks")}

    def counts(self) -> tuple[int, int]:
        n_rep = self.db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]
        n_chk = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        return int(n_rep), int(n_chk)

    def has_pending(self) -> bool:
        return self.db.execute("SELECT 1 FROM pending LIMIT 1").fetchone() is not None

    def dense_query(
        self, vector: np.ndarray, k: int, where: dict[str, Any] | None = None
    ) -> list[tuple[str, float]]:
        """(chunk_id, cosine distance) of the ``k`` nearest vectors, optionally filtered."""
        col = self._reader_collection()
        q = np.asarray([vector], dtype=np.float32)
        try:
            # No count() first: Chroma (1.x, embedded and server) returns fewer than n_results
            # when the collection is smaller or empty, and count() costs as much as the query
            # itself (~11 ms at 10k vectors, measured): one round trip instead of two.
            res = col.query(query_embeddings=q, n_results=k, where=where or None,
                            include=["distances"])
        except Exception:
            if not self.settings.chroma_url:
                # Another process is writing: its new vectors are in the shared metadata but
                # not in this process's loaded vector index ("Error finding id"). Reload.
                col = self._reader_collection(reload=True)
            try:  # an older server that rejects n_results > count: ask with the count
                n = col.count()
                if n == 0:
                    return []
                res = col.query(query_embeddings=q, n_results=min(k, n), where=where or None,
                                include=["distances"])
            except Exception as exc:  # server gone, corrupt segment...
                raise BackendError(f"vector search failed: {exc}; is the Chroma server up?") from exc
        return list(zip(res["ids"][0], res["distances"][0], strict=True))

    def _reader_collection(self, reload: bool = False) -> Any:
        """The collection, reopened when the index generation changed since it was opened.

        An embedded Chroma (PersistentClient) loads its vector index once per process: vectors
        that another process (e.g. `reportqa ingest` while the UI runs) writes later stay
        invisible to it, and a filtered query then fails with "Error finding id" for good
        (measured with chromadb 1.5, tests/test_concurrency.py). A fresh client reloads the
        index from disk. A server (chroma_url) is shared by all processes: nothing to do."""
        if self.settings.chroma_url:
            return self.collection()
        gen = self.generation()
        if self._collection is not None and (reload or self._collection_gen != gen):
            self._collection = None
            _forget_embedded_client(self.dir)
        if self._collection is None:
            self._collection_gen = gen
        return self.collection()

    def vector_ids(self) -> set[str]:
        got = self.collection().get(include=[])
        return set(got["ids"])

    # --- writes --------------------------------------------------------------------------

    @_exclusive
    def recover(self) -> int:
        """Finish or undo interrupted writes: delete vectors SQLite does not know. Returns count."""
        pend = [r[0] for r in self.db.execute("SELECT DISTINCT report_id FROM pending")]
        if not pend:
            return 0
        col = self.collection()
        known = self.chunk_ids()
        orphans: list[str] = []
        for i in range(0, len(pend), 100):
            got = col.get(where={"report_id": {"$in": pend[i : i + 100]}}, include=[])
            orphans.extend(cid for cid in got["ids"] if cid not in known)
        for i in range(0, len(orphans), 5000):
            col.delete(ids=orphans[i : i + 5000])
        self.db.execute("DELETE FROM pending")
        return len(orphans)

    @_exclusive
    def write(self, reports: Sequence[NewReport]) -> None:
        """Add or replace reports atomically (see module doc for the protocol)."""
        if not reports:
            return
        now = time.time()
        ids = [r.report_id for r in reports]
        self._tx(lambda c: c.executemany(
            "INSERT INTO pending VALUES (?, 'write', ?)", [(i, now) for i in ids]))
        col = self.collection()
        all_chunks = [c for r in reports for c in r.chunks]
        if all_chunks:
            vecs = np.concatenate([r.vectors for r in reports if len(r.chunks)], axis=0)
            for i in range(0, len(all_chunks), 2000):
                part = all_chunks[i : i + 2000]
                col.upsert(
                    ids=[c.chunk_id for c in part], embeddings=vecs[i : i + 2000],
                    metadatas=[_vector_meta(c, r_hash) for c, r_hash in
                               ((c, _hash_of(reports, c.report_id)) for c in part)],
                )
        obsolete: list[str] = []

        def commit(c: sqlite3.Connection) -> None:
            for r in reports:
                old = {x[0] for x in c.execute(
                    "SELECT chunk_id FROM chunks WHERE report_id=?", (r.report_id,))}
                obsolete.extend(old - {ch.chunk_id for ch in r.chunks})
                c.execute("DELETE FROM chunks WHERE report_id=?", (r.report_id,))
                c.executemany(
                    "INSERT OR REPLACE INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [(ch.chunk_id, ch.report_id, seq, ch.start, ch.end, ch.text, ch.section,
                      ch.council, ch.page_kind, ch.quality_statement, ch.theme, ch.score)
                     for seq, ch in enumerate(r.chunks)],
                )
                # When it was added is when its file last changed: a re-read of the same file
                # (a parser upgrade) keeps it, so the newer of two copies of a page stays so.
                before = c.execute("SELECT file_hash, added_at FROM reports WHERE report_id=?",
                                   (r.report_id,)).fetchone()
                added = before[1] if before and before[0] == r.file_hash else now
                c.execute(
                    "INSERT OR REPLACE INTO reports VALUES (?,?,?,?,?,?,?,?,?)",
                    (r.report_id, r.content_hash, r.file_hash, r.path, r.source,
                     json.dumps(r.metadata), r.text, len(r.chunks), added),
                )
            self._bump(c)
            c.executemany("UPDATE pending SET state='cleanup' WHERE report_id=?",
                          [(i,) for i in ids])

        self._tx(commit)
        self._delete_vectors(obsolete)
        self._tx(lambda c: c.executemany("DELETE FROM pending WHERE report_id=?",
                                         [(i,) for i in ids]))

    @_exclusive
    def remove(self, report_id: str) -> int:
        """Delete a report and all its chunks. Returns the number of chunks removed."""
        now = time.time()
        self._tx(lambda c: c.execute("INSERT INTO pending VALUES (?, 'remove', ?)",
                                     (report_id, now)))
        ids: list[str] = []

        def commit(c: sqlite3.Connection) -> None:
            ids.extend(x[0] for x in c.execute(
                "SELECT chunk_id FROM chunks WHERE report_id=?", (report_id,)))
            c.execute("DELETE FROM chunks WHERE report_id=?", (report_id,))
            c.execute("DELETE FROM reports WHERE report_id=?", (report_id,))
            self._bump(c)

        self._tx(commit)
        self._delete_vectors(ids)
        self._tx(lambda c: c.execute("DELETE FROM pending WHERE report_id=?", (report_id,)))
        return len(ids)

    def collection(self) -> Any:
        if self._collection is None:
            client = _client(self.settings, self.dir)
            name = f"reportqa-{_slug(self.embedder_name)}-{self.dim}"
            if self.settings.chroma_url:
                # A server is shared: each index dir (manifest) owns its own collection.
                import hashlib

                name += "-" + hashlib.sha256(str(self.dir.resolve()).encode()).hexdigest()[:10]
            try:
                self._collection = client.get_or_create_collection(
                    name, embedding_function=None, metadata={"hnsw:space": "cosine"})
            except Exception as exc:
                raise BackendError(f"cannot open Chroma collection {name}: {exc}") from exc
        return self._collection

    def close(self) -> None:
        self.db.close()

    # --- helpers -------------------------------------------------------------------------

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One writer at a time per index dir, across processes (re-entrant within this store).

        write/remove/recover take it themselves. Without it, a second writer's recover() could
        run between another writer's upsert and commit, take that writer's journalled vectors
        for orphans and delete them. The pipeline also holds it while it re-checks report ids
        and duplicates planned before another writer committed."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: no advisory lock, run one writer at a time
            yield
            return
        with open(self.dir / "write.lock", "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # released by the OS if the process dies
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _tx(self, fn: Any) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            fn(self.db)
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _bump(self, c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) DO UPDATE "
                  "SET value = CAST(value AS INTEGER) + 1")

    def _delete_vectors(self, ids: Iterable[str]) -> None:
        ids = list(ids)
        for i in range(0, len(ids), 5000):
            self.collection().delete(ids=ids[i : i + 5000])

    def _use_wal(self) -> None:
        """Switch a new manifest to WAL once, under the writer lock.

        When two processes create one index at the same moment, SQLite answers the second
        journal switch with "database is locked" at once, without waiting out the timeout.
        WAL persists in the file, so only the very first open takes the lock."""
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        with self.exclusive():
            self.db.execute("PRAGMA journal_mode=WAL")

    def _check_embedder(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='embedder'").fetchone()
        want = f"{self.embedder_name}/{self.dim}"
        if row is None:
            self.db.execute("INSERT OR IGNORE INTO meta VALUES ('embedder', ?)", (want,))
        elif row[0] != want:
            raise IndexNotReadyError(
                f"the index at {self.dir} was built with embedder {row[0]}, not {want}; "
                "use another --index directory or set REPORTQA_EMBEDDER to match"
            )


def _hash_of(reports: Sequence[NewReport], report_id: str) -> str:
    return next(r.content_hash for r in reports if r.report_id == report_id)


def _vector_meta(c: Chunk, content_hash: str) -> dict[str, Any]:
    from ingest.structure import council_key

    meta: dict[str, Any] = {"report_id": c.report_id, "content_hash": content_hash,
                            "page_kind": c.page_kind or "other"}
    if c.council:
        meta["council_key"] = council_key(c.council) or ""
    if c.quality_statement:
        meta["quality_statement"] = c.quality_statement
    return meta


def _slug(name: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def _unauthorized(exc: BaseException) -> bool:
    """An HTTP 401/403 from a Chroma server or the token-checking proxy in front of it."""
    import re

    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status in (401, 403) or bool(re.search(
        r"\b(401|403)\b|unauthori[sz]ed|forbidden|authenticat", str(exc), re.I))


def _forget_embedded_client(index_dir: Path) -> None:
    """Make the next PersistentClient for this index load a fresh system (and so the vectors
    now on disk). Clients already open keep the system they hold."""
    try:
        from chromadb.api.shared_system_client import SharedSystemClient
    except ImportError:  # another chromadb layout: keep the cached client
        return
    with _EMBEDDED_LOCK:  # never while another thread is constructing a client for it
        getattr(SharedSystemClient, "_identifier_to_system", {}).pop(
            str(index_dir / "chroma"), None)


# Serialises PersistentClient construction with _forget_embedded_client: a client being built
# looks its system up by path several times and fails if it vanishes in between.
_EMBEDDED_LOCK = threading.Lock()


def _client(settings: Settings, index_dir: Path) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        u = urlparse(settings.chroma_url)
        if settings.chroma_token:
            check_token_header(settings.chroma_token_header)
            # Chroma's own client provider: "Authorization: Bearer <token>" or "X-Chroma-Token".
            chroma_settings = ChromaSettings(
                anonymized_telemetry=False,
                chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
                chroma_client_auth_credentials=settings.chroma_token,
                chroma_auth_token_transport_header=settings.chroma_token_header)
        try:
            return chromadb.HttpClient(
                host=u.hostname or "127.0.0.1", port=u.port or 8000, ssl=u.scheme == "https",
                settings=chroma_settings,
            )
        except Exception as exc:
            if _unauthorized(exc):
                raise BackendError(
                    f"the Chroma server at {settings.chroma_url} refused the request as "
                    f"unauthorized ({str(exc)[:120]}); "
                    + ("REPORTQA_CHROMA_TOKEN is not the token it expects" if settings.chroma_token
                       else "set REPORTQA_CHROMA_TOKEN to its token")
                ) from exc
            raise BackendError(
                f"cannot reach the Chroma server at {settings.chroma_url} ({exc}); start it with "
                "`chroma run --path DIR --host 127.0.0.1 --port N` or unset REPORTQA_CHROMA_URL"
            ) from exc
    with _EMBEDDED_LOCK:
        return chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=chroma_settings)
