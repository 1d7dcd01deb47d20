"""Server mode: the index's vectors live in a real `chroma run` server (REPORTQA_CHROMA_URL)."""

from __future__ import annotations

import json
import shutil

import pytest

from ingest.index import IndexStore
from ingest.pipeline import ingest

pytestmark = pytest.mark.integration


@pytest.fixture
def server_settings(chroma_server: str, make_settings):
    return make_settings("server-index", chroma_url=chroma_server)


def _server_collections(url: str) -> dict[str, int]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port),
                                 settings=ChromaSettings(anonymized_telemetry=False))
    return {c.name: c.count() for c in client.list_collections()}


def test_ingest_dedupe_and_remove_against_server(server_settings, chroma_server, corpus_dir,
                                                 tmp_path, index_state,
                                                 assert_index_consistent) -> None:
    summary = ingest([corpus_dir], server_settings)
    assert not summary.failed and len(summary.added) == 36
    state = index_state(server_settings)
    assert_index_consistent(state)
    assert state.vector_ids == state.chunk_ids and len(state.chunk_ids) == summary.chunks_total
    # Vectors went to the server, not to a local Chroma directory.
    assert not (server_settings.index_dir / "chroma").exists()
    store = IndexStore(server_settings, "hash-bow", 256, create=False)
    name = store.collection().name
    store.close()
    assert _server_collections(chroma_server)[name] == len(state.chunk_ids)

    # Idempotent, and duplicates elsewhere are skipped.
    again = ingest([corpus_dir], server_settings)
    assert again.chunks_added == 0 and len(again.unchanged) == 36
    dup = tmp_path / "dup"
    dup.mkdir()
    shutil.copy(corpus_dir / "ealing__overview.txt", dup / "ealing-copy.txt")
    assert ingest([dup], server_settings).chunks_added == 0
    assert index_state(server_settings) == state

    # Remove: gone from SQLite and from the server collection.
    store = IndexStore(server_settings, "hash-bow", 256, create=False)
    gone = {c.chunk_id for c in store.chunks() if c.report_id == "ealing-overview"}
    assert store.remove("ealing-overview") == len(gone) > 0
    store.close()
    after = index_state(server_settings)
    assert_index_consistent(after)
    assert not gone & after.vector_ids and after.chunk_ids == state.chunk_ids - gone
    assert _server_collections(chroma_server)[name] == len(after.chunk_ids)


def test_two_indexes_share_a_server_without_interference(chroma_server, corpus_dir,
                                                         make_settings, index_state) -> None:
    a = make_settings("a", chroma_url=chroma_server)
    b = make_settings("b", chroma_url=chroma_server)
    ingest([corpus_dir / "wirral__about.txt", corpus_dir / "ealing__about.txt"], a)
    ingest([corpus_dir / "wirral__about.txt"], b)
    sa, sb = index_state(a), index_state(b)
    assert set(sa.reports) == {"wirral-about", "ealing-about"} and set(sb.reports) == {
        "wirral-about"}
    assert sa.vector_ids == sa.chunk_ids and sb.vector_ids == sb.chunk_ids
    store = IndexStore(b, "hash-bow", 256, create=False)
    store.remove("wirral-about")
    store.close()
    assert index_state(a).vector_ids == sa.vector_ids  # a's copy of the same chunks survives
    assert not index_state(b).vector_ids


def test_cli_against_server_and_unreachable_server(chroma_server, corpus_dir, tmp_path,
                                                   run_cli, free_port) -> None:
    index = tmp_path / "cli-index"
    proc = run_cli("ingest", str(corpus_dir / "westminster__overview.txt"), "--json",
                   "--index", str(index), env={"REPORTQA_CHROMA_URL": chroma_server})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["added"] == ["westminster-overview"]

    dead = f"http://127.0.0.1:{free_port()}"
    bad = run_cli("ingest", str(corpus_dir / "wirral__about.txt"), "--json",
                  "--index", str(tmp_path / "dead-index"), env={"REPORTQA_CHROMA_URL": dead},
                  timeout=180)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert bad.stderr.startswith("error: ") and dead in bad.stderr
    assert "chroma run" in bad.stderr  # says how to fix it
