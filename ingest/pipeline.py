"""Stage 4: files -> parsed, structured, chunked, embedded, indexed. Public: `ingest`.

Idempotent: unchanged files are skipped by file hash (no parsing), identical report text at
another path is skipped as a duplicate, a changed file at a known path replaces its report.
"""

from __future__ import annotations

import csv
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.chunk import chunk_report, embed_text
from ingest.index import IndexStore, NewReport
from ingest.parse import SUPPORTED, parse_file
from ingest.structure import council_key, extract_structure, full_council_names
from reportqa.embed import Embedder, embedder_for
from reportqa.errors import InputError, ReportQAError
from reportqa.records import Report, sha256
from reportqa.settings import Settings
from reportqa.text import count_wordpieces_batch

Progress = Callable[[int, int, str], None]
_SIDECARS = re.compile(r"^(SOURCES\.tsv|README(\..*)?|LICEN[CS]E(\..*)?|ATTRIBUTION(\..*)?|\..*)$", re.I)
# Bump when parsing/structure/chunking changes: known files are then re-read on next ingest.
PARSER_VERSION = 13
_GROUP_CHUNKS = 256  # embed + commit in groups: bounded memory, frequent commit points


def _count(n: int, noun: str) -> str:
    """'1 report', '2 reports': people read the summary line, and '1 reports' reads as a bug."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


@dataclass
class IngestSummary:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_added: int = 0  # chunk rows written (new or replaced reports)
    chunks_reused: int = 0  # of those, vectors taken from the report's previous version
    chunks_total: int = 0
    reports_total: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    recovered_orphans: int = 0

    def line(self) -> str:
        return (f"added {len(self.added)}, updated {len(self.updated)}, unchanged "
                f"{len(self.unchanged)}, failed {len(self.failed)}; "
                f"{_count(self.chunks_added - self.chunks_reused, 'chunk')} embedded"
                + (f" ({_count(self.chunks_reused, 'unchanged chunk')} reused)"
                   if self.chunks_reused else "")
                + f"; index now holds {_count(self.reports_total, 'report')} / "
                f"{_count(self.chunks_total, 'chunk')} ({self.seconds:.2f} s)")

    def to_json(self) -> dict[str, object]:
        return {
            "added": self.added, "updated": self.updated, "unchanged": self.unchanged,
            "failed": [{"path": p, "reason": r} for p, r in self.failed],
            "chunks_added": self.chunks_added, "chunks_reused": self.chunks_reused,
            "reports_total": self.reports_total,
            "chunks_total": self.chunks_total, "seconds": round(self.seconds, 3),
        }


@dataclass
class _Pending:
    report: Report
    file_hash: str
    replaces: bool
    chunks: list = field(default_factory=list)


def remove_reports(store: IndexStore, report_ids: Iterable[str]) -> int:
    """Delete these indexed reports and all their chunks, finishing an interrupted write
    first, as ingest does; the number of chunks removed. Ids not indexed are passed over."""
    if store.has_pending():
        store.recover()
    return sum(store.remove(rid) for rid in report_ids if store.find_id(rid))


def ingest(
    paths: Iterable[str | Path], settings: Settings, embedder: Embedder | None = None,
    progress: Progress | bool = False, sources: dict[str, dict[str, str]] | None = None,
) -> IngestSummary:
    """Index every supported file under ``paths``; per-file problems go to ``summary.failed``."""
    t0 = time.perf_counter()
    summary = IngestSummary()
    emb = embedder or embedder_for(settings)
    store = IndexStore(settings, emb.name, emb.dim)
    try:
        if store.has_pending():
            summary.recovered_orphans = store.recover()
        files = _expand(paths, summary)
        todo = _plan(files, store, settings, summary, sources or {})
        if todo:
            _resolve_councils(todo, store)
        _embed_and_write(todo, store, emb, settings, summary, progress)
        summary.reports_total, summary.chunks_total = store.counts()
    finally:
        store.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def load_sources(folder: Path) -> dict[str, dict[str, str]]:
    """SOURCES.tsv beside the files: file name -> council slug, page, source_url."""
    tsv = folder / "SOURCES.tsv"
    if not tsv.is_file():
        return {}
    with tsv.open(encoding="utf-8", newline="") as fh:
        return {r["file"]: r for r in csv.DictReader(fh, delimiter="\t") if r.get("file")}


# --- planning ----------------------------------------------------------------------------

def _expand(paths: Iterable[str | Path], summary: IngestSummary) -> list[tuple[Path, Path]]:
    """The files to read, each as (path as named or found, resolved path), once each."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            summary.failed.append((str(p), "no such file or folder; check the path"))
        elif p.is_dir():
            root = p.resolve()
            for f in sorted(x for x in p.rglob("*") if not x.is_dir()):
                rel = f.relative_to(p).parts
                # Sidecars, hidden files and anything under a hidden folder (.git/, .cache/):
                # not reports, and listing each as an unsupported type would bury real errors.
                if _SIDECARS.match(f.name) or any(part.startswith(".") for part in rel[:-1]):
                    continue
                if f.is_symlink() and not f.resolve().is_relative_to(root):
                    # Found by walking a folder, not chosen by the user: a link out of the
                    # folder (e.g. to /etc/passwd) is not followed. Name the target to index it.
                    summary.failed.append((str(f), "symbolic link to a file outside the folder; "
                                           "not followed (pass the target path to index it)"))
                    continue
                if not f.is_file():
                    summary.failed.append((str(f), "not a regular file (a pipe, device, socket "
                                           "or broken link); skipped"))
                    continue
                if f.suffix.lower() not in SUPPORTED:
                    summary.failed.append((str(f), f"unsupported file type '{f.suffix or '(none)'}';"
                                           " supported: " + " ".join(SUPPORTED)))
                    continue
                out.append(f)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:  # the same file named twice (or through a link) is read once
        real = f.resolve()
        if real not in seen:
            seen.add(real)
            unique.append((f, real))
    return unique


def _plan(files: list[tuple[Path, Path]], store: IndexStore, settings: Settings, summary: IngestSummary,
          sources: dict[str, dict[str, str]]) -> list[_Pending]:
    todo: list[_Pending] = []
    batch_hashes: dict[str, str] = {}
    used_ids = store.report_ids()
    indexed = store.file_states()
    side_cache: dict[Path, dict[str, dict[str, str]]] = {}
    for f, real in files:
        path = str(real)
        if not f.is_file():  # a named pipe or device would block or never end on read
            summary.failed.append((str(f), "not a regular file" if f.exists() else
                                   "no such file or folder; check the path"))
            continue
        try:
            # Hash and parse the same bytes: a file rewritten in between must not pair one
            # version's file hash with another version's text.
            data = f.read_bytes() if f.stat().st_size <= settings.max_file_mb * 1048576 else None
            data_hash = sha256(data) if data is not None else ""
        except OSError as exc:
            summary.failed.append((str(f), f"cannot read: {exc.strerror}; check permissions"))
            continue
        state = indexed.get(path)
        if state and data_hash and state[1:] == (data_hash, PARSER_VERSION):
            summary.unchanged.append(state[0])
            continue
        known = store.find(path=path) if state else None
        try:
            parsed = parse_file(f, settings.max_file_mb, data)
        except InputError as exc:
            summary.failed.append((str(f), exc.reason))
            continue
        except ReportQAError as exc:
            summary.failed.append((str(f), str(exc)))
            continue
        if f.parent not in side_cache:
            side_cache[f.parent] = load_sources(f.parent)
        side = sources.get(f.name) or side_cache[f.parent].get(f.name) or {}
        text_hash = sha256(parsed.text)
        dup = store.find(content_hash=text_hash)
        if dup and known and dup.report_id == known.report_id:
            dup = None  # same file, same text, older parser: re-read its structure
        if dup or text_hash in batch_hashes:
            summary.unchanged.append(dup.report_id if dup else batch_hashes[text_hash])
            continue
        rid = known.report_id if known else _new_id(f, used_ids)
        used_ids.add(rid)
        batch_hashes[text_hash] = rid
        st = extract_structure(parsed.text, parsed.headings, side.get("council"), side.get("page"),
                               parsed.page_starts)
        report = Report.of(st, report_id=rid, text=parsed.text, path=path,
                           source=side.get("source_url") or parsed.url or path)
        todo.append(_Pending(report, data_hash, known is not None))
    return todo


def _new_id(f: Path, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", f.stem.lower()).strip("-")[:80] or "report"
    rid, n = base, 2
    while rid in used:
        rid, n = f"{base}-{n}", n + 1
    return rid


def _resolve_councils(todo: list[_Pending], store: IndexStore) -> None:
    """A page whose council only came from a file name ("Birmingham") takes the full name
    ("Birmingham City Council") that other pages of the same council state in their titles."""
    best = full_council_names([r.metadata.get("council") for r in store.reports()]
                              + [p.report.council for p in todo])
    for p in todo:
        k = council_key(p.report.council)
        if k and best.get(k) and best[k] != p.report.council:
            from dataclasses import replace

            p.report = replace(p.report, council=best[k])


# --- embedding + writing -----------------------------------------------------------------

def _embed_and_write(todo: list[_Pending], store: IndexStore, emb: Embedder, settings: Settings,
                     summary: IngestSummary, progress: Progress | bool) -> None:
    if todo:
        store.collection()  # a refused or unreachable Chroma server fails before any embedding
    for p in todo:
        p.chunks = chunk_report(p.report, settings.chunk_tokens)
    total = sum(len(p.chunks) for p in todo)
    bar = _bar(total, progress)
    done = 0
    group: list[_Pending] = []
    for i, p in enumerate(todo):
        group.append(p)
        if sum(len(g.chunks) for g in group) >= _GROUP_CHUNKS or i == len(todo) - 1:
            texts = [embed_text(c) for g in group for c in g.chunks]
            vecs, reused = _previous_vectors(group, texts, store, emb.dim)
            summary.chunks_reused += len(reused)
            t = time.perf_counter()
            _embed_rest(texts, vecs, reused, emb, settings.batch_size, bar, (done, total))
            summary.embed_seconds += time.perf_counter() - t
            offsets = np.cumsum([0] + [len(g.chunks) for g in group])
            with store.exclusive():  # ids and duplicates were planned before other writers' commits
                kept = [(g, vecs[offsets[k] : offsets[k + 1]])
                        for k, g in enumerate(group) if _claim(g, store, summary)]
                store.write([_new_report(g, v) for g, v in kept])
            for g, _v in kept:
                (summary.updated if g.replaces else summary.added).append(g.report.report_id)
            summary.chunks_added += sum(len(g.chunks) for g, _v in kept)
            done += len(texts)
            bar(done, total, f"{len(summary.added) + len(summary.updated)} reports")
            group = []


def _embed_rest(texts: list[str], vecs: np.ndarray, reused: set[int], emb: Embedder,
                batch_size: int, bar: Progress, at: tuple[int, int]) -> None:
    """Embed the rows of ``texts`` not in ``reused`` into ``vecs``, moving ``bar`` on from
    ``at`` = (chunks done before this group, chunks in all)."""
    todo = [k for k in range(len(texts)) if k not in reused]
    # Batches of similar length: a batch is padded to its longest text, and document order
    # mixes short heading chunks with full ones (~1.8x the model work unsorted).
    sizes = count_wordpieces_batch([texts[k] for k in todo]) if todo else []
    order = [todo[j] for j in sorted(range(len(todo)), key=lambda j: -sizes[j])]
    step = max(1, batch_size)
    for b in range(0, len(order), step):  # batch by batch so progress moves smoothly
        vecs[order[b : b + step]] = emb.embed([texts[k] for k in order[b : b + step]])
        bar(at[0] + len(reused) + min(b + step, len(order)), at[1], "embedding")


def _previous_vectors(group: list[_Pending], texts: list[str], store: IndexStore,
                      dim: int) -> tuple[np.ndarray, set[int]]:
    """Vectors for ``texts`` that the same file's indexed version already has.

    A vector depends only on the text the model sees, so an unchanged chunk of an edited or
    re-parsed report (a new parser version) keeps its vector instead of being embedded again.
    Returns the vector matrix (reused rows filled) and the indexes of the reused rows."""
    vecs = np.zeros((len(texts), dim), np.float32)
    wanted: dict[str, list[int]] = {}  # old chunk id -> rows of texts
    k = 0
    for g in group:
        old = store.find(path=g.report.path)
        previous = {embed_text(c): c.chunk_id for c in store.chunks(old.report_id)} if old else {}
        for _ in g.chunks:
            if texts[k] in previous:
                wanted.setdefault(previous[texts[k]], []).append(k)
            k += 1
    if not wanted:
        return vecs, set()
    found = store.vectors(list(wanted))
    reused: set[int] = set()
    for cid, vec in found.items():
        if vec.shape == (dim,):
            vecs[wanted[cid]] = vec
            reused.update(wanted[cid])
    return vecs, reused


def _claim(p: _Pending, store: IndexStore, summary: IngestSummary) -> bool:
    """Re-decide, under the write lock, what _plan decided from an older state of the index.

    Another writer may have committed since: the same text (then this copy is not added), or
    another file under the report id planned here (then this report takes a free id instead of
    replacing that one). Chunk ids derive from the text, so only the report id field changes.
    """
    r = p.report
    dup = store.find(content_hash=r.content_hash)
    if dup and (dup.report_id != r.report_id
                or (dup.path == r.path and dup.metadata.get("parser") == PARSER_VERSION)):
        summary.unchanged.append(dup.report_id)
        return False
    same_path = store.find(path=r.path)
    rid = same_path.report_id if same_path else r.report_id
    holder = store.find_id(rid)
    if holder and holder.path != r.path:
        rid = _new_id(Path(r.path), store.report_ids())
    if rid != r.report_id:
        from dataclasses import replace

        p.report = replace(r, report_id=rid)
        p.chunks = [replace(c, report_id=rid) for c in p.chunks]
    p.replaces = same_path is not None  # the only row this write can replace is its own
    return True


def _new_report(p: _Pending, vectors: np.ndarray) -> NewReport:
    r = p.report
    meta = {**r.metadata(), "parser": PARSER_VERSION}
    return NewReport(r.report_id, r.content_hash, p.file_hash, r.path, r.source, meta, r.text,
                     p.chunks, vectors)


def _bar(total: int, progress: Progress | bool) -> Progress:
    if callable(progress):
        return progress
    if not progress or total == 0:
        return lambda *_: None
    from tqdm import tqdm

    tq = tqdm(total=total, unit="chunk", desc="embedding", dynamic_ncols=True)

    def update(done: int, _total: int, msg: str) -> None:
        tq.update(done - tq.n)
        tq.set_postfix_str(msg)
        if done >= _total:
            tq.close()

    return update
