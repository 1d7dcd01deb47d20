"""The reader's training recipe (evals/train_reader.py) on the real MiniLM weights: only the
layers that ship change, and only the candidates the answerer reads (``top``) train.

Two invented questions, a few steps: this checks the recipe, not what the model learns."""

from __future__ import annotations

from typing import Any

import pytest

from evals import train_reader
from rag.reader import is_trained

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


def test_only_the_shipped_layers_and_the_top_candidates_train(monkeypatch: Any) -> None:
    import torch

    read: list[int] = []
    real = train_reader.encode_pairs

    def counting(tok: Any, question: str, candidates: list[str]) -> Any:
        read.append(len(candidates))
        return real(tok, question, candidates)

    monkeypatch.setattr(train_reader, "encode_pairs", counting)
    _, before = train_reader.load_base()
    start = {n: p.detach().clone() for n, p in before.named_parameters()}
    _, model = train_reader.train(ROWS, epochs=1, top=2, precision="auto")
    assert read == [2, 2]
    moved = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), start[n])
             and not n.startswith("classifier")}  # the head starts from random weights
    assert moved, "no shipped layer changed"
    assert all(is_trained(n) for n in moved), sorted(n for n in moved if not is_trained(n))
