"""Uploaded files -> the index: the checks and the ingest behind the app's upload box and the
HTTP API's POST /reports. Public: `save_and_ingest` (one `FileResult` per file),
`sanitize_filename`, `upload_path`, `UPLOAD_TYPES`.

Lives below the front ends so that every way of uploading applies the same size limit, the same
sanitised names and the same messages.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reportqa.records import sha256
from reportqa.settings import Settings

UPLOAD_TYPES = ("txt", "md", "html", "htm", "pdf")
UPLOAD_DIR = "uploads"
MAX_NAME_CHARS = 120

# (fraction 0..1, message) -> None
UploadProgress = Callable[[float, str], None]

_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")


@dataclass
class FileResult:
    name: str  # as the user gave it (display only; never used as a path)
    status: str  # added | updated | unchanged | failed | removed (undone in the app)
    message: str
    saved_as: str | None = None
    report_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def sanitize_filename(name: str) -> str:
    """Basename only, characters outside [A-Za-z0-9._-] -> '_', extension kept.

    Raises ValueError for empty names (nothing left but dots or spaces)."""
    base = (name or "").replace("\\", "/").split("/")[-1].strip()
    if not base.strip(". "):
        raise ValueError("the file has no usable name; rename it (e.g. council-report.txt) "
                         "and upload it again")
    base = _UNSAFE_NAME_CHARS.sub("_", base).lstrip(".")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    if not re.search(r"[A-Za-z0-9]", stem):
        stem = "upload"  # e.g. a name written only in non-Latin letters
    ext = ext[:10]
    stem = stem[: MAX_NAME_CHARS - len(ext) - 1]
    return f"{stem}.{ext}" if ext else stem


def upload_path(settings: Settings, data: bytes, safe_name: str) -> Path:
    """index_dir/uploads/<sha256(content)[:16]>/<safe name>; checked to stay inside uploads/."""
    index = Path(settings.index_dir).resolve()
    root = (index / UPLOAD_DIR).resolve()
    dest = (root / sha256(data)[:16] / safe_name).resolve()
    # resolve() follows links: an uploads/ dir, hash dir or file that is a symbolic link out of
    # the index is refused, never written through.
    if root.parent != index or dest.parent.parent != root:
        raise ValueError("unsafe file name or upload location (a symbolic link out of the "
                         "index folder?); nothing was written")
    return dest


def save_and_ingest(files: Sequence[tuple[str, bytes]], settings: Settings,
                    progress: UploadProgress | None = None, embedder: Any = None) -> list[FileResult]:
    """Write each uploaded file under the index dir and ingest it; one FileResult per file.

    Every problem (bad name, unsupported type, too large, empty, unparseable) is reported on
    that file's result; the others still go in."""
    from ingest.pipeline import ingest
    from reportqa.errors import ReportQAError

    prog = progress or (lambda *_: None)
    limit = settings.max_file_mb * 1048576
    n = max(1, len(files))
    results: list[FileResult] = []
    for i, (name, data) in enumerate(files):
        shown = name or "(no name)"
        prog(i / n, f"{shown}: checking")
        try:
            safe = sanitize_filename(name)
        except ValueError as exc:
            results.append(FileResult(shown, "failed", str(exc)))
            continue
        ext = Path(safe).suffix.lower().lstrip(".")
        if ext not in UPLOAD_TYPES:
            kind = f".{ext}" if ext else "(none)"
            results.append(FileResult(
                shown, "failed", f"unsupported file type '{kind}'; upload one of: "
                + ", ".join("." + t for t in UPLOAD_TYPES)))
            continue
        if len(data) > limit:
            results.append(FileResult(
                shown, "failed", f"the file is {len(data) / 1048576:.1f} MB, over the "
                f"{settings.max_file_mb:g} MB upload limit; split it into smaller files"))
            continue
        if not data.strip():
            results.append(FileResult(shown, "failed", "the file is empty; nothing to index"))
            continue
        try:
            dest = upload_path(settings, data, safe)
        except ValueError as exc:
            results.append(FileResult(shown, "failed", str(exc)))
            continue
        created = not dest.exists()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if created:
            dest.write_bytes(data)

        def step(done: int, total: int, msg: str, i: int = i, shown: str = shown) -> None:
            prog((i + (done / total if total else 1.0)) / n, f"{shown}: embedding ({msg})")

        try:
            summary = ingest([dest], settings, embedder=embedder, progress=step)
        except ReportQAError as exc:
            summary = None
            results.append(FileResult(shown, "failed", str(exc)))
        if summary is not None:
            results.append(_result(shown, dest, summary))
        if created and results[-1].status in ("failed", "unchanged"):
            # Nothing indexed from this copy (a failure, or text already indexed from
            # another file): the upload folder keeps only what answers can cite.
            _discard(dest)
            results[-1] = replace(results[-1], saved_as=None)
    prog(1.0, "done")
    return results


def _result(shown: str, dest: Path, summary: Any) -> FileResult:
    if summary.failed:
        reason = "; ".join(r for _p, r in summary.failed)
        return FileResult(shown, "failed", reason)
    if summary.added:
        return FileResult(shown, "added", f"indexed as {', '.join(summary.added)}", str(dest),
                          list(summary.added))
    if summary.updated:
        return FileResult(shown, "updated", f"updated {', '.join(summary.updated)}", str(dest),
                          list(summary.updated))
    return FileResult(shown, "unchanged",
                      f"already indexed as {', '.join(summary.unchanged) or 'an existing report'}",
                      str(dest), list(summary.unchanged))


def remove_upload(result: FileResult, settings: Settings, store: Any) -> FileResult:
    """Undo an upload (a file that turned out to be no report): its reports leave the index,
    their chunks with them, and its copy under the index's uploads folder is deleted. Only a
    copy inside that folder is ever deleted. ``store`` is the index's IndexStore."""
    from ingest.pipeline import remove_reports

    chunks = remove_reports(store, result.report_ids)
    if result.saved_as:
        root = (Path(settings.index_dir).resolve() / UPLOAD_DIR).resolve()
        saved = Path(result.saved_as).resolve()
        if saved.parent.parent == root:
            _discard(saved)
    return FileResult(result.name, "removed",
                      f"removed {', '.join(result.report_ids)} from the index ({chunks} chunks)")


def _discard(dest: Path) -> None:
    try:
        dest.unlink(missing_ok=True)
        if dest.parent.exists() and not any(dest.parent.iterdir()):
            shutil.rmtree(dest.parent, ignore_errors=True)
    except OSError:
        pass
