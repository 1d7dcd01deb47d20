"""The llama-index seam: a RetrieverQueryEngine over our retriever (with a scripted LLM, passed
explicitly) answers with source nodes that carry our citations."""

from __future__ import annotations

import pytest

from rag.engine import Engine
from rag.llama import ReportQARetriever
from reportqa.settings import Settings


@pytest.fixture(scope="module")
def eng(shared_hash_index: Settings) -> Engine:
    return Engine.load(shared_hash_index)


@pytest.mark.parametrize("granularity", ["passage", "sentence"])
def test_query_engine_answers_with_our_citations(eng: Engine, granularity: str) -> None:
    from llama_index.core.llms import MockLLM
    from llama_index.core.query_engine import RetrieverQueryEngine

    qe = RetrieverQueryEngine.from_args(ReportQARetriever(eng, k=4, granularity=granularity),
                                        llm=MockLLM(max_tokens=8))
    resp = qe.query("What proportion of Stockton carers were accessing a support group?")
    assert resp.source_nodes
    for sn in resp.source_nodes:
        m = sn.node.metadata
        text = eng.retriever.report_text(m["report_id"])
        assert text[m["start"]:m["end"]] == sn.node.get_content()
        assert m["council"] and "page" in m
    # the named council is a filter, as in answer()
    assert all("stockton" in sn.node.metadata["report_id"] for sn in resp.source_nodes)
    if granularity == "sentence":
        assert any("32.98%" in sn.node.get_content() or "25.19%" in sn.node.get_content()
                   for sn in resp.source_nodes)


def test_bad_granularity_is_refused(eng: Engine) -> None:
    with pytest.raises(ValueError, match="granularity"):
        ReportQARetriever(eng, granularity="page")
