"""A plain llama-index pipeline over the same reports, for comparison (`--compare-baseline`).

One ``Document`` per indexed report (text from our store), llama-index's default
``SentenceSplitter``, the same embedder as the engine, a ``VectorStoreIndex`` and dense top-10
retrieval. Its "answer" is the top passage. No LLM is ever built and llama-index's global
``Settings`` are never consulted for models: ``embed_model`` is always passed explicitly.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import PrivateAttr

from reportqa.embed import Embedder

TOP_K = 10


def _embedding_class() -> type:
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class ReportQAEmbedding(BaseEmbedding):
        """llama-index adapter for a reportqa Embedder (MiniLM or the hash fake)."""

        _embedder: Any = PrivateAttr()

        def __init__(self, embedder: Embedder, **kwargs: Any) -> None:
            super().__init__(model_name=embedder.name, embed_batch_size=32, **kwargs)
            self._embedder = embedder

        @classmethod
        def class_name(cls) -> str:
            return "ReportQAEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return [v.tolist() for v in self._embedder.embed(list(texts))]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return await asyncio.to_thread(self._get_query_embedding, query)

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return await asyncio.to_thread(self._get_text_embedding, text)

        async def _aget_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return await asyncio.to_thread(self._get_text_embeddings, texts)

    return ReportQAEmbedding


def make_embed_model(embedder: Embedder) -> Any:
    return _embedding_class()(embedder)


class LlamaIndexBaseline:
    """VectorStoreIndex over the engine's reports; ``retrieve(q)`` -> top passages (text)."""

    def __init__(self, engine: Any) -> None:
        from llama_index.core import Document, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        docs = []
        for row in engine.store.reports():
            docs.append(Document(
                text=engine.store.report_text(row.report_id), id_=row.report_id,
                metadata={"report_id": row.report_id},
                excluded_embed_metadata_keys=["report_id"],
                excluded_llm_metadata_keys=["report_id"],
            ))
        self.embed_model = make_embed_model(engine.embedder)
        self.index = VectorStoreIndex.from_documents(
            docs, embed_model=self.embed_model, transformations=[SentenceSplitter()],
            show_progress=False,
        )
        self.n_nodes = len(self.index.docstore.docs)
        self.retriever = self.index.as_retriever(similarity_top_k=TOP_K,
                                                 embed_model=self.embed_model)

    def retrieve(self, question: str) -> tuple[list[str], float]:
        """Top passages' text (best first) and the time it took in ms."""
        from llama_index.core.schema import MetadataMode

        t0 = time.perf_counter()
        nodes = self.retriever.retrieve(question)
        texts = [n.node.get_content(metadata_mode=MetadataMode.NONE) for n in nodes]
        return texts, (time.perf_counter() - t0) * 1000
