"""The reader's training recipe (evals/train_reader.py) on the real MiniLM weights: only the
layers that ship change, and only the candidates the answerer reads (``top``) train.

Two invented questions, a few steps: this checks the recipe, not what the model learns."""

from __future__ import annotations

from typing import Any

import pytest

from evals import train_reader
from rag.reader import TRAINED_LAYERS, is_trained

pytestmark = pytest.mark.integration

ROWS = [
    {"question": "how long do kids in testshire wait for speech therapy",
     "cands": ["Testshire | Health: Children wait up to 40 weeks for speech therapy.",
               "Testshire | Leaders: Leaders are ambitious for children.",
               "Testshire | Context: Testshire has 412,000 residents."],
     "labels": [1, 0, 0]},
    {"question": "how many foster carers did testshire recruit",
     "cands": ["Testshire | Context: The council is in the north of England.",
               "Testshire | Care: The council recruited 31 new foster carers last year.",
               "Testshire | Care: Children in care live close to home."],
     "labels": [0, 1, 0]},
]


@pytest.mark.parametrize("layers", [TRAINED_LAYERS, (0, 1, 2, 3, 4, 5)])
def test_only_the_shipped_layers_and_the_top_candidates_train(
        monkeypatch: Any, layers: tuple[int, ...]) -> None:
    """Only the layers asked for move (the default, 3-5, leaves the lower ones as the wheel
    has them); the word embeddings never do."""
    import torch

    read: list[int] = []
    real = train_reader.encode_pairs

    def counting(tok: Any, question: str, candidates: list[str]) -> Any:
        read.append(len(candidates))
        return real(tok, question, candidates)

    monkeypatch.setattr(train_reader, "encode_pairs", counting)
    _, before = train_reader.load_base()
    start = {n: p.detach().clone() for n, p in before.named_parameters()}
    _, model = train_reader.train(ROWS, epochs=1, top=2, precision="auto", layers=layers)
    assert read == [2, 2]
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), start[n])
             and not n.startswith("classifier")}  # the head starts from random weights
    assert any(f"layer.{min(layers)}." in n for n in moved), "the lowest trained layer did not change"
    assert all(is_trained(n, layers) for n in moved), sorted(
        n for n in moved if not is_trained(n, layers))


@pytest.mark.parametrize(("text", "layers"), [("0-5", (0, 1, 2, 3, 4, 5)), ("3-5", (3, 4, 5)),
                                              ("5", (5,))])
def test_layers_are_given_as_a_range(text: str, layers: tuple[int, ...]) -> None:
    assert train_reader.layer_range(text) == layers


@pytest.mark.parametrize("text", ["2-9", "top", "4-2"])
def test_a_range_that_is_not_minilms_layers_is_refused(text: str) -> None:
    import argparse

    with pytest.raises(argparse.ArgumentTypeError, match="layers"):
        train_reader.layer_range(text)


def test_a_soup_is_the_mean_of_its_weights_and_names_them(tmp_path: Any) -> None:
    import json

    import torch
    from safetensors.torch import save_file

    from rag.reader import weights_sha256

    folders = []
    for name, value in (("a", 1.0), ("b", 3.0)):
        d = tmp_path / name
        d.mkdir()
        save_file({"classifier.weight": torch.full((1, 4), value).half()}, str(d / "top.safetensors"))
        (d / "meta.json").write_text(json.dumps({"sha256": weights_sha256(d), "questions": 7,
                                                 "left_out": ["trK"] if name == "a" else []}))
        folders.append(d)
    out = tmp_path / "soup"
    train_reader.main(["soup", "--from", *map(str, folders), "--out", str(out)])
    from safetensors.torch import load_file

    assert torch.equal(load_file(str(out / "top.safetensors"))["classifier.weight"],
                       torch.full((1, 4), 2.0).half())
    meta = json.loads((out / "meta.json").read_text())
    assert [m["folder"] for m in meta["soup_of"]] == ["a", "b"]
    assert meta["soup_of"][0]["left_out"] == ["trK"]
    assert meta["sha256"] == weights_sha256(out)


def test_weights_of_different_layers_are_not_averaged(tmp_path: Any) -> None:
    import torch
    from safetensors.torch import save_file

    for name, tensor in (("a", "classifier.weight"), ("b", "classifier.bias")):
        (tmp_path / name).mkdir()
        save_file({tensor: torch.zeros(1).half()}, str(tmp_path / name / "top.safetensors"))
        (tmp_path / name / "meta.json").write_text("{}")
    with pytest.raises(SystemExit, match="differ"):
        train_reader.main(["soup", "--from", str(tmp_path / "a"), str(tmp_path / "b"),
                           "--out", str(tmp_path / "soup")])


def test_left_out_rounds_the_seed_and_the_layers_are_used_and_recorded(tmp_path: Any, monkeypatch: Any) -> None:
    import json

    rows = [{"id": i, "set": "train", "file": "f.txt", "answerable": True, "question": "q",
             "cands": ["c"], "lexical": [1.0], "labels": [1]} for i in ("trA-001", "trK-001", "trQ-002")]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    trained: list[str] = []
    saved: dict[str, Any] = {}
    seeds: list[int] = []

    def fake_train(rs: list[dict[str, Any]], *a: Any, **k: Any) -> tuple[None, None]:
        trained.extend(r["id"] for r in rs)
        seeds.append(k["seed"])
        saved["trained_layers"] = k["layers"]
        return None, None

    monkeypatch.setattr(train_reader, "train", fake_train)
    monkeypatch.setattr(train_reader, "save_top",
                        lambda model, meta, *a, **k: saved.update(meta, saved_layers=k["layers"]))
    train_reader.main(["train", "--out", str(tmp_path), "--leave-out", "trK,trQ", "--seed", "7",
                       "--layers", "4-5"])
    assert trained == ["trA-001"]
    assert saved["left_out"] == ["trK", "trQ"] and saved["questions"] == 1
    assert seeds == [7] and saved["seed"] == 7
    assert saved["trained_layers"] == saved["saved_layers"] == (4, 5)


def test_a_document_cap_samples_long_documents_only() -> None:
    rows: list[dict[str, Any]] = [{"id": f"q{i}", "file": "long.txt"} for i in range(10)] + [
        {"id": "s1", "file": "short.txt"}, {"id": "reg-1", "file": None}]
    kept = train_reader.capped(rows, 3)
    assert sum(r["file"] == "long.txt" for r in kept) == 3
    assert {"s1", "reg-1"} <= {r["id"] for r in kept}
