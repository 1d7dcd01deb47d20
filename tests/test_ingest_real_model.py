"""The corpus through the real all-MiniLM-L6-v2 embedder (local weights, no network)."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.chunk import embed_text
from ingest.index import IndexStore
from ingest.pipeline import ingest
from reportqa.embed import MiniLMEmbedder, get_embedder
from reportqa.errors import IndexNotReadyError

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def minilm_index(tmp_path_factory, settings_for, corpus_dir):
    settings = settings_for(tmp_path_factory.mktemp("minilm") / "index", embedder="minilm")
    summary = ingest([corpus_dir], settings)
    assert not summary.failed and len(summary.added) == 36
    store = IndexStore(settings, MiniLMEmbedder.name, MiniLMEmbedder.dim, create=False)
    yield settings, store, summary
    store.close()


def test_vectors_are_384_d_unit_and_match_sqlite(minilm_index) -> None:
    _, store, summary = minilm_index
    got = store.collection().get(include=["embeddings"])
    vecs = np.asarray(got["embeddings"], dtype=np.float32)
    assert vecs.shape == (summary.chunks_total, 384)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-3)
    assert set(got["ids"]) == store.chunk_ids()


def test_stored_vector_is_the_embedding_of_embed_text(minilm_index) -> None:
    _, store, _ = minilm_index
    chunks = store.chunks()[::40]
    got = store.collection().get(ids=[c.chunk_id for c in chunks], include=["embeddings"])
    stored = dict(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32), strict=True))
    fresh = get_embedder("minilm").embed([embed_text(c) for c in chunks])
    for c, v in zip(chunks, fresh, strict=True):
        assert float(np.dot(stored[c.chunk_id], v)) > 0.999


def test_dense_query_finds_stockton_carers_passage(minilm_index) -> None:
    _, store, _ = minilm_index
    qvec = MiniLMEmbedder().embed(["carers support group"])[0]
    hits = store.dense_query(qvec, 5)
    assert len(hits) == 5
    by_id = {c.chunk_id: c for c in store.chunks()}
    top = [by_id[cid] for cid, _ in hits]
    assert any(c.council == "Stockton-on-Tees Borough Council" for c in top), [
        (c.council, c.text[:60]) for c in top]
    dists = [d for _, d in hits]
    assert dists == sorted(dists) and 0.0 <= dists[0] < 1.0


def test_dense_query_filter_by_council(minilm_index) -> None:
    _, store, _ = minilm_index
    qvec = MiniLMEmbedder().embed(["safeguarding enquiries"])[0]
    hits = store.dense_query(qvec, 5, where={"council_key": "darlington"})
    by_id = {c.chunk_id: c for c in store.chunks()}
    assert hits and all(by_id[cid].council == "Darlington Borough Council" for cid, _ in hits)


def test_reingest_with_real_model_embeds_nothing(minilm_index, corpus_dir) -> None:
    settings, _, summary = minilm_index
    again = ingest([corpus_dir], settings)
    assert again.chunks_added == 0 and again.embed_seconds == 0.0
    assert (again.reports_total, again.chunks_total) == (36, summary.chunks_total)


def test_minilm_index_refuses_hash_embedder(minilm_index) -> None:
    settings, _, _ = minilm_index
    with pytest.raises(IndexNotReadyError, match="all-MiniLM-L6-v2/384"):
        IndexStore(settings, "hash-bow", 256, create=False)
