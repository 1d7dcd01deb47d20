"""Two writers that plan before either commits (deterministic interleaving).

Writer A plans its files, then, while it embeds, writer B ingests and commits. Report ids and
content dedupe are decided again under the index's write lock, so A must neither overwrite B's
report that took the same id (same file name, other folder) nor add a second copy of a text B
has just indexed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ingest.pipeline import IngestSummary, ingest
from reportqa.embed import HashEmbedder
from reportqa.settings import Settings


class _InterleavingEmbedder(HashEmbedder):
    """Embeds like HashEmbedder; on its first call runs another writer's whole ingest."""

    def __init__(self, other: list[Path], settings: Settings) -> None:
        super().__init__()
        self._other, self._settings = other, settings
        self.other_summary: IngestSummary | None = None

    def embed(self, texts: list[str]) -> np.ndarray:
        if self.other_summary is None:
            self.other_summary = ingest(self._other, self._settings, embedder=HashEmbedder())
        return super().embed(texts)


def _page(corpus_dir: Path, name: str) -> str:
    return (corpus_dir / name).read_text(encoding="utf-8")


def test_same_file_name_from_two_folders_keeps_both_reports(
        tmp_path: Path, hash_settings: Settings, corpus_dir: Path, index_state,
        assert_index_consistent) -> None:
    a, b = tmp_path / "a" / "foo.txt", tmp_path / "b" / "foo.txt"
    for f, src in ((a, "wirral__about.txt"), (b, "darlington__safeguarding.txt")):
        f.parent.mkdir()
        f.write_text(_page(corpus_dir, src), encoding="utf-8")
    emb = _InterleavingEmbedder([b], hash_settings)
    summary = ingest([a], hash_settings, embedder=emb)

    assert emb.other_summary is not None and emb.other_summary.added == ["foo"]
    assert not summary.failed and len(summary.added) == 1 and summary.added != ["foo"]
    state = index_state(hash_settings)
    assert_index_consistent(state)
    paths = {meta[0] for meta in state.metadata.values()}
    assert paths == {str(a.resolve()), str(b.resolve())}, state.metadata
    assert len(state.reports) == 2 and len(set(state.reports.values())) == 2


def test_same_text_indexed_meanwhile_is_not_added_twice(
        tmp_path: Path, hash_settings: Settings, corpus_dir: Path, index_state,
        assert_index_consistent) -> None:
    text = _page(corpus_dir, "wirral__about.txt")
    a, b = tmp_path / "one.txt", tmp_path / "two.txt"
    a.write_text(text, encoding="utf-8")
    b.write_text(text, encoding="utf-8")
    emb = _InterleavingEmbedder([b], hash_settings)
    summary = ingest([a], hash_settings, embedder=emb)

    assert emb.other_summary is not None and emb.other_summary.added == ["two"]
    assert summary.added == [] and summary.unchanged == ["two"]
    state = index_state(hash_settings)
    assert_index_consistent(state)
    assert list(state.reports) == ["two"]


def test_ids_already_taken_by_an_earlier_run_are_not_reused(
        tmp_path: Path, hash_settings: Settings, corpus_dir: Path, index_state) -> None:
    """The ordinary (sequential) case stays as it was: a second foo.txt becomes foo-2."""
    a, b = tmp_path / "a" / "foo.txt", tmp_path / "b" / "foo.txt"
    for f, src in ((a, "wirral__about.txt"), (b, "darlington__safeguarding.txt")):
        f.parent.mkdir()
        f.write_text(_page(corpus_dir, src), encoding="utf-8")
    assert ingest([a], hash_settings, embedder=HashEmbedder()).added == ["foo"]
    assert ingest([b], hash_settings, embedder=HashEmbedder()).added == ["foo-2"]
    assert set(index_state(hash_settings).reports) == {"foo", "foo-2"}
