"""Small BERT networks run by ONNX Runtime: exported from torch once, fused, checked against
torch, cached on disk. Public: `Graph`, `Runtime`, `RUNTIMES`, `onnx_available`,
`cached_path`, `open_cached`, `build`, `prune`, `STALE_DAYS`.

The sentence reader (rag/reader.py) and the MiniLM embedder (reportqa/embed.py) both run this
way in fp32. On this machine's 2 cores ONNX Runtime reads the reader's pairs in about 0.6x
torch's time and embeds a question or four candidate sentences in about half of it (torch pays
a fixed cost per layer that dominates such small batches; evals/README.md, thirty-first
session); outputs agree with torch's within float rounding, and every graph is checked against
torch on probe input before it is kept.

A graph is exported with eager attention, then fused by ONNX Runtime's transformer optimizer
(attention, skip layer norm and GELU each become one kernel): torch's scaled-dot-product
attention exports as a pattern the optimizer does not recognise. Graphs are cached by a key
naming what they are made from (the caller's weights and package versions, ONNX Runtime's
version and `RECIPE`), so new weights or versions never read an old graph; graphs unused for
`STALE_DAYS` go when a new one of the same kind is built (graphs cached under an older key
stay until then).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np

from reportqa.errors import ReportQAError

# How graphs are made here; changing the export or the fusion changes this, so no cache
# built the old way is read.
OPSET = 17
RECIPE = f"eager-attention, bert-fused, opset {OPSET}"
# A cached graph no process has opened for this long belongs to weights or versions no longer
# installed (each is about 90 MB): it goes when a new graph of its kind is built.
STALE_DAYS = 30
# "auto": ONNX Runtime where it is installed, torch where it is not or the graph will not
# build (with a warning); "torch" never tries; "onnx" insists and names the fix when it fails.
RUNTIMES = ("auto", "torch", "onnx")
log = logging.getLogger(__name__)
T = TypeVar("T")


def onnx_available() -> bool:
    """Are ONNX Runtime and onnx (the exporter's) installed?"""
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


class Graph:
    """One exported network and its ONNX Runtime session; `run` gives its first output."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        self.path = path
        options = ort.SessionOptions()
        # Its threads sleep when a batch is done rather than spin: the other network runs next
        # on the same two cores, and spinning threads starve it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, batch: Mapping[str, Any]) -> np.ndarray:
        feed = {k: np.asarray(batch[k], dtype=np.int64) for k in self.inputs}
        return np.asarray(self.session.run(None, feed)[0])


class Runtime(Generic[T]):
    """Where one network runs, decided on first use and then kept: the graph that ``open``
    (given to `graph`) builds or loads, or torch. The reader and the embedder each hold one,
    so both fall back, warn and fail alike.

    ``setting`` is the environment variable that chooses the runtime (named in every message),
    ``what`` the network ("the reader"). Under "auto" a graph that will not build or load runs
    torch with one warning: answers and ingest never fail for want of a faster runtime. Under
    "onnx" a failed build is not tried again: every call raises `ReportQAError` naming the fix.
    """

    def __init__(self, runtime: str, setting: str, what: str) -> None:
        if runtime not in RUNTIMES:
            raise ReportQAError(f"{setting}={runtime!r} is not a runtime; use one of "
                                f"{', '.join(RUNTIMES)}")
        self.name, self.setting, self.what = runtime, setting, what
        self.tries_onnx = runtime == "onnx" or (runtime == "auto" and onnx_available())
        self._decided = False
        self._graph: T | None = None
        self._failure: Exception | None = None
        self._lock = threading.Lock()

    @property
    def onnx(self) -> bool:
        """Does (or, before first use, will) the network run under ONNX Runtime?"""
        return self._graph is not None if self._decided else self.tries_onnx

    def graph(self, open: Callable[[], T]) -> T | None:
        """The graph ``open`` gives, opened on the first call only; None when torch runs."""
        with self._lock:
            if not self._decided:
                self._graph = self._open(open) if self.tries_onnx else None
                self._decided = True
        if self._failure is not None:
            # Installing is the fix only when they are missing; else torch is.
            fix = ("install onnxruntime and onnx, or set" if not onnx_available() else "set")
            raise ReportQAError(
                f"{self.setting}=onnx: {self.what} would not run under ONNX Runtime "
                f"({self._failure}); {fix} {self.setting}=torch") from self._failure
        return self._graph

    def _open(self, open: Callable[[], T]) -> T | None:
        try:
            return open()
        except Exception as exc:  # noqa: BLE001 - "auto" falls back to torch; "onnx" insists
            if self.name == "onnx":
                self._failure = exc
                return None
            log.warning("%s under ONNX Runtime failed (%s); running it with torch (%s=torch "
                        "says so and skips the attempt)", self.what, exc, self.setting)
            return None


def cached_path(cache: Path, kind: str, key: str) -> Path:
    """Where the graph of ``kind`` made from what ``key`` names is cached."""
    import onnxruntime

    # The module's own version: onnxruntime-gpu and other builds install under other names.
    full = f"{key} | {RECIPE} | onnxruntime {onnxruntime.__version__}"
    return cache / f"{kind}-{hashlib.sha256(full.encode()).hexdigest()[:16]}.onnx"


def open_cached(path: Path) -> Graph | None:
    """The cached graph at ``path``, or None when there is none or it does not load (an
    interrupted or damaged write is deleted, to be built again, never trusted)."""
    if not path.is_file():
        return None
    try:
        graph = Graph(path)
    except Exception:  # noqa: BLE001 - any unreadable graph is rebuilt by the caller
        path.unlink(missing_ok=True)
        return None
    # Its age is how long no process has used it; a read-only cache still reads.
    with contextlib.suppress(OSError):
        os.utime(path)
    return graph


def build(path: Path, module: Any, probe: Mapping[str, Any], check: Callable[[Graph], None],
          heads: int, hidden: int) -> Graph:
    """Export ``module`` (a torch module of the tensors named in ``probe`` to one output) to
    ``path``, fuse it, and keep it only if ``check`` accepts it (``check`` raises otherwise):
    the file is written whole or not at all."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own even for two builds of one graph in one process (or in two containers
    # sharing the cache with one pid); `prune` still finds it as "<name>.*.tmp".
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    names = list(probe)
    try:
        with warnings.catch_warnings():
            # The tracer's notes on shapes it fixes: the check is what counts.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(probe[k] for k in names), str(tmp),
                              input_names=names, output_names=["out"],
                              dynamic_axes={k: {0: "rows", 1: "tokens"} for k in names},
                              opset_version=OPSET, dynamo=False)
        module.eval()  # the exporter leaves the module in training mode
        _fuse(tmp, heads, hidden)
        graph = Graph(tmp)
        check(graph)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    # The checked session holds the whole graph in memory: it reads on under the final name.
    graph.path = path
    prune(path)
    return graph


def _fuse(path: Path, heads: int, hidden: int) -> None:
    import logging

    from onnxruntime.transformers.optimizer import optimize_model

    # The optimizer logs each fusion it makes; the check after it is what counts.
    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)
    optimize_model(str(path), model_type="bert", num_heads=heads,
                   hidden_size=hidden).save_model_to_file(str(path))


def prune(keep: Path, days: float = STALE_DAYS) -> list[Path]:
    """Delete the cached graphs of ``keep``'s kind beside it that no process has opened for
    ``days``, and any half-written build of that age (a process killed mid-export); returns
    what went."""
    kind = keep.name.split("-", 1)[0]
    cutoff = time.time() - days * 86400
    gone = []
    for old in [*keep.parent.glob(f"{kind}-*.onnx"), *keep.parent.glob(f"{kind}-*.onnx.*.tmp")]:
        try:
            if old != keep and old.stat().st_mtime < cutoff:
                old.unlink()
                gone.append(old)
        except OSError:  # another process removed or is replacing it
            continue
    return gone
