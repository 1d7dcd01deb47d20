"""Re-ingesting a changed or re-parsed report embeds only chunks whose text changed.

Vectors depend only on the text the model sees, so the unchanged chunks of an edited report, and
all chunks after a parser-version bump that leaves them as they were, keep their stored vectors.
The result must equal a fresh ingest of the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import ingest.pipeline as pipeline
from ingest.pipeline import ingest
from reportqa.embed import HashEmbedder
from reportqa.settings import Settings


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts.extend(texts)
        return super().embed(texts)


def _vectors(settings: Settings, open_index) -> dict[str, np.ndarray]:
    store = open_index(settings)
    return store.vectors(sorted(store.chunk_ids()))


def _copy(corpus_dir: Path, folder: Path, names: list[str]) -> None:
    folder.mkdir()
    for n in names:
        (folder / n).write_bytes((corpus_dir / n).read_bytes())


NAMES = ["stockton-on-tees__care-provision-integration-and-continuity.txt", "wirral__about.txt"]


def test_edited_report_embeds_only_its_changed_chunks(
        tmp_path: Path, make_settings, corpus_dir: Path, index_state, assert_index_consistent,
        open_index) -> None:
    folder = tmp_path / "reports"
    _copy(corpus_dir, folder, NAMES)
    settings = make_settings()
    first = CountingEmbedder()
    ingest([folder], settings, embedder=first)
    page = folder / NAMES[0]
    page.write_text(page.read_text(encoding="utf-8").rstrip() + "\n\nA correction was published "
                    "on 3 March 2025 with updated waiting figures.\n", encoding="utf-8")

    again = CountingEmbedder()
    summary = ingest([folder], settings, embedder=again)
    assert summary.updated == ["stockton-on-tees-care-provision-integration-and-continuity"]
    assert 0 < len(again.texts) <= 2, len(again.texts)  # the last chunk (and a neighbour at most)
    assert summary.chunks_reused == summary.chunks_added - len(again.texts) > 0
    assert "unchanged chunk" in summary.line() and "reused" in summary.line()

    fresh = make_settings("fresh")
    ingest([folder], fresh, embedder=HashEmbedder())
    state, want = index_state(settings), index_state(fresh)
    assert_index_consistent(state)
    assert state.chunk_ids == want.chunk_ids and state.reports == want.reports
    got, exp = _vectors(settings, open_index), _vectors(fresh, open_index)
    assert got.keys() == exp.keys()
    for cid in exp:
        np.testing.assert_allclose(got[cid], exp[cid], atol=1e-6)


def test_parser_version_bump_reparses_without_embedding(
        tmp_path: Path, make_settings, corpus_dir: Path, index_state,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "reports"
    _copy(corpus_dir, folder, NAMES)
    settings = make_settings()
    ingest([folder], settings, embedder=HashEmbedder())
    before = index_state(settings)

    monkeypatch.setattr(pipeline, "PARSER_VERSION", pipeline.PARSER_VERSION + 1)
    counting = CountingEmbedder()
    summary = ingest([folder], settings, embedder=counting)
    assert sorted(summary.updated) == sorted(before.reports) and counting.texts == []
    after = index_state(settings)
    assert after.chunk_ids == before.chunk_ids == after.vector_ids
    assert all(m[2]["parser"] == pipeline.PARSER_VERSION for m in after.metadata.values())
