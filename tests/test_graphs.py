"""The ONNX graph cache's housekeeping and the choice of runtime (reportqa/graphs.py),
without building a graph."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

import reportqa.graphs as graphs
from reportqa.errors import ReportQAError
from reportqa.graphs import STALE_DAYS, Runtime, cached_path, prune


def test_a_graphs_name_changes_with_anything_it_depends_on(tmp_path: Path) -> None:
    a = cached_path(tmp_path, "minilm", "wheel 0.1 torch 2.13.0")
    assert a.parent == tmp_path and a.name.startswith("minilm-") and a.suffix == ".onnx"
    assert cached_path(tmp_path, "minilm", "wheel 0.1 torch 2.13.0") == a
    assert cached_path(tmp_path, "minilm", "wheel 0.2 torch 2.13.0") != a
    assert cached_path(tmp_path, "reader", "wheel 0.1 torch 2.13.0") != a


def test_pruning_a_kind_leaves_other_kinds_and_recent_graphs(tmp_path: Path) -> None:
    """Building a MiniLM graph prunes month-old MiniLM graphs and half-written builds beside
    it, never a reader's graph (the reader prunes its own) nor one read recently."""
    keep = tmp_path / "minilm-new.onnx"
    stale, half = tmp_path / "minilm-old.onnx", tmp_path / "minilm-old.onnx.77.tmp"
    recent, reader = tmp_path / "minilm-used.onnx", tmp_path / "reader-old.onnx"
    for f in (keep, stale, half, recent, reader):
        f.write_bytes(b"x")
    month_ago = time.time() - (STALE_DAYS + 1) * 86400
    for f in (keep, stale, half, reader):
        os.utime(f, (month_ago, month_ago))
    assert sorted(p.name for p in prune(keep)) == sorted([stale.name, half.name])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [keep.name, recent.name, reader.name])


def _failing() -> object:
    raise RuntimeError("no graph today")


def test_the_runtime_is_decided_once_and_falls_back_or_names_the_fix_alike(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule for every network (the reader and the embedder hold a `Runtime` each): "torch"
    never opens a graph; "auto" falls back to torch with one warning naming the setting;
    "onnx" refuses on every call, naming the fix, without trying again; a graph that opens
    is opened once and kept; an unknown runtime is refused."""
    monkeypatch.setattr(graphs, "onnx_available", lambda: True)
    opened = []

    def opener() -> str:
        opened.append(1)
        return "graph"

    torch: Runtime[str] = Runtime("torch", "REPORTQA_X_RUNTIME", "X")
    assert torch.graph(opener) is None and not opened
    kept: Runtime[str] = Runtime("onnx", "REPORTQA_X_RUNTIME", "X")
    assert kept.graph(opener) == kept.graph(opener) == "graph" and len(opened) == 1 and kept.onnx
    auto: Runtime[object] = Runtime("auto", "REPORTQA_X_RUNTIME", "X")
    with caplog.at_level(logging.WARNING, logger="reportqa.graphs"):
        assert auto.graph(_failing) is None and auto.graph(opener) is None
    [warning] = caplog.records
    assert "REPORTQA_X_RUNTIME=torch" in warning.getMessage() and not auto.onnx
    insists: Runtime[object] = Runtime("onnx", "REPORTQA_X_RUNTIME", "X")
    calls = []

    def failing_counted() -> object:
        calls.append(1)
        return _failing()

    for _ in range(2):
        with pytest.raises(ReportQAError, match=r"no graph today\); set REPORTQA_X_RUNTIME=torch"):
            insists.graph(failing_counted)
    assert len(calls) == 1
    # Installing them is named as a fix only where they are missing.
    monkeypatch.setattr(graphs, "onnx_available", lambda: False)
    with pytest.raises(ReportQAError, match="install onnxruntime and onnx, or set"):
        insists.graph(failing_counted)
    with pytest.raises(ReportQAError, match="REPORTQA_X_RUNTIME='tensorrt'"):
        Runtime("tensorrt", "REPORTQA_X_RUNTIME", "X")



@pytest.mark.parametrize("fails", [False, True])
def test_threads_asking_at_once_open_the_graph_once(monkeypatch: pytest.MonkeyPatch,
                                                    fails: bool) -> None:
    """The answer server's threads may all ask for the network on the first request: one
    opens it, the rest wait and get the same graph (or, under "onnx", the same refusal)."""
    import threading
    import time as clock

    monkeypatch.setattr(graphs, "onnx_available", lambda: True)
    runtime: Runtime[str] = Runtime("onnx", "REPORTQA_X_RUNTIME", "X")
    opened: list[int] = []
    results: list[str | None] = []

    def opener() -> str:
        opened.append(1)
        clock.sleep(0.05)  # long enough for every thread to arrive while it opens
        if fails:
            raise RuntimeError("no graph today")
        return "graph"

    def ask() -> None:
        try:
            results.append(runtime.graph(opener))
        except ReportQAError as exc:
            results.append(type(exc).__name__)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1
    assert results == ["ReportQAError" if fails else "graph"] * 8
