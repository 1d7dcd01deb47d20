"""The ONNX graph cache's housekeeping (reportqa/graphs.py), without building a graph."""

from __future__ import annotations

import os
import time
from pathlib import Path

from reportqa.graphs import STALE_DAYS, cached_path, prune


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
