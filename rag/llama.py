"""A llama-index seam: our hybrid retriever as a llama-index `BaseRetriever`. Public:
`ReportQARetriever`.

Anything built on llama-index (a `RetrieverQueryEngine`, a chat engine, an agent tool) can
search the reportqa index and get our citations with every node: report id, organisation,
section, PDF page and the character offsets of the text in the stored report, so a quote can
be checked against the report exactly. Two granularities:

* ``"passage"``: the retrieved chunks (BM25 + MiniLM, fused), as `answer()` retrieves them;
* ``"sentence"``: the answerer's best candidate sentences within them (rag/evidence.py).

Why ours stays behind the seam rather than llama-index's own parts: its `SentenceSplitter`
does not keep our section boundaries or the embedder's 256-piece limit (ingest/chunk.py does),
its fusion retriever would need a second copy of the BM25 corpus, and its response synthesis
has no figure check. Pass ``llm=`` explicitly to any engine built on it; nothing here touches
llama-index's global ``Settings``.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from rag.answer import candidates_for, understand_and_filter
from rag.engine import Engine
from reportqa.records import Chunk


class ReportQARetriever(BaseRetriever):
    """llama-index retriever over a reportqa `Engine` (see the module docstring)."""

    def __init__(self, engine: Engine, k: int | None = None, granularity: str = "passage",
                 **kwargs: Any) -> None:
        if granularity not in ("passage", "sentence"):
            raise ValueError("granularity is 'passage' or 'sentence'")
        super().__init__(**kwargs)
        self.engine = engine
        self.k = k or engine.settings.k
        self.granularity = granularity

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        question = query_bundle.query_str
        if self.granularity == "sentence":
            return [self._node(c.hit.chunk, c.start, c.end, c.text, c.score)
                    for c in candidates_for(question, self.engine, self.k)]
        u, filters = understand_and_filter(question, self.engine)
        hits = self.engine.retriever.retrieve(u.content, filters, self.k,
                                              boost_statements=u.statements)
        return [self._node(h.chunk, h.chunk.start, h.chunk.end, h.chunk.text, h.score)
                for h in hits]

    def _node(self, chunk: Chunk, start: int, end: int, text: str, score: float) -> NodeWithScore:
        row = self.engine.retriever.report(chunk.report_id)
        page, page_end = row.pages(start, end) if row else (None, None)
        meta = {"report_id": chunk.report_id, "council": chunk.council,
                "section": chunk.section, "quality_statement": chunk.quality_statement,
                "page": page, "page_end": page_end, "start": start, "end": end,
                "source": row.source if row else ""}
        node = TextNode(text=text, id_=f"{chunk.chunk_id}:{start}-{end}", metadata=meta,
                        excluded_embed_metadata_keys=list(meta),
                        excluded_llm_metadata_keys=["start", "end", "report_id"])
        return NodeWithScore(node=node, score=float(score))
