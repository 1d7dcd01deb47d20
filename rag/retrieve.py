"""Stage 5: question -> ranked chunks. Public: `HybridRetriever.retrieve` and `rrf_fuse`.

Dense (Chroma, MiniLM) and keyword BM25 (bm25s) rankings fused by reciprocal rank fusion.

Why not llama-index's BM25Retriever / QueryFusionRetriever: we need (1) metadata filters
applied *inside* BM25 scoring (bm25s' ``weight_mask``) so a named council cannot be crowded
out, (2) a tokeniser that keeps figures like "25.19%" whole, and (3) a pure, deterministic
fusion function we can unit-test. BM25Retriever exposes neither filters nor the tokeniser and
QueryFusionRetriever's fusion is async and internal, so we call bm25s directly (the library
BM25Retriever wraps) and keep RRF as a ten-line pure function.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np

from ingest.index import IndexStore, ReportRow
from ingest.structure import council_key
from rag.lexicon import vocab
from reportqa.embed import Embedder
from reportqa.records import Chunk, Hit

RRF_K = 60
# Each ranker's own top chunks kept among the fused top k (rag/vocab/weights.toml).
RANKER_BEST = int(vocab("weights")["ranker_best"]["value"])
_TOKEN = re.compile(r"£?\d+(?:[.,]\d+)*%?|[a-z][a-z']*[a-z]|[a-z]")


@dataclass(frozen=True)
class Filters:
    councils: tuple[str, ...] = ()  # council keys
    statements: tuple[str, ...] = ()
    page_kinds: tuple[str, ...] = ()
    report_ids: tuple[str, ...] = ()
    exclude_report_ids: tuple[str, ...] = ()  # older versions and duplicate copies of a page

    def empty(self) -> bool:
        return not (self.councils or self.statements or self.page_kinds or self.report_ids
                    or self.exclude_report_ids)


class Retriever(Protocol):
    def retrieve(self, question: str, filters: Filters, k: int) -> list[Hit]: ...


def rrf_fuse(rankings: Mapping[str, Sequence[str]], k: int = RRF_K,
             weights: dict[str, float] | None = None) -> list[tuple[str, float, dict[str, int]]]:
    """Reciprocal rank fusion: score(d) = sum_r w_r / (k + rank_r(d)), ranks from 1.

    Ties break on the best single rank, then the id, so the result is deterministic.
    """
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    for name, ids in rankings.items():
        w = (weights or {}).get(name, 1.0)
        for r, doc in enumerate(ids, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (k + r)
            ranks.setdefault(doc, {})[name] = r
    order = sorted(scores, key=lambda d: (-scores[d], min(ranks[d].values()), d))
    return [(d, scores[d], ranks[d]) for d in order]


def with_each_best(fused: list[tuple[str, float, dict[str, int]]],
                   rankings: Mapping[str, Sequence[str]], k: int,
                   best: int) -> list[tuple[str, float, dict[str, int]]]:
    """The fused top ``k``, with each ranking's own top ``best`` kept in it (in place of the
    lowest fused ones), in fused order. Fusion ranks a chunk that one ranker puts first and
    the other far down below chunks both rank middling: the only chunk with the question's
    rare word ("caseloads") lost to chunks about "managers" of the same council."""
    must = {cid for ids in rankings.values() for cid in ids[:best]}
    top = fused[:k]
    missing = must - {f[0] for f in top}
    if not missing:
        return top
    found = []
    for f in fused[k:]:  # usually a few places below the top k
        if f[0] in missing:
            found.append(f)
            if len(found) == len(missing):
                break
    pool = top + found  # in fused order
    ranked = [f for f in pool if f[0] in must] + [f for f in pool if f[0] not in must]
    keep = {f[0] for f in ranked[:k]}
    return [f for f in pool if f[0] in keep]


@lru_cache(maxsize=1)
def _phrases() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    return tuple((re.compile(r["question"], re.I), tuple(tokenize(r["report"])))
                 for r in vocab("cues").get("phrase", []))


def report_words(question: str) -> list[str]:
    """The reports' own words for a phrase the question uses in its everyday form
    (rag/vocab/cues.toml [[phrase]]: "children in care" -> "looked after"), searched too."""
    return [w for rx, words in _phrases() if rx.search(question) for w in words]


def tokenize(text: str) -> list[str]:
    """Lower-case words (stemmed, stopwords dropped) and whole figures ("25.19%", "£1.2m")."""
    stem = _stemmer()
    out = []
    for t in _TOKEN.findall(text.lower().replace("’", "'")):
        if t[0].isdigit() or t[0] == "£":
            out.append(t.rstrip(".,"))
            if t.endswith("%"):
                out.append(t[:-1])  # "25.19" in a question still matches "25.19%"
        elif t not in _STOP and len(t) > 1:
            out.append(stem(t.removesuffix("'s")))
    return out


@dataclass
class _State:
    generation: int
    chunks: list[Chunk]
    by_id: dict[str, int]
    by_report: dict[str, list[int]]  # chunk indices per report, in text order
    reports: dict[str, ReportRow]
    bm25: Any
    council_of: np.ndarray  # council key per chunk (object array)
    statement_of: np.ndarray
    kind_of: np.ndarray
    report_of: np.ndarray
    df: Counter[str] = field(default_factory=Counter)  # chunks containing each text token


class HybridRetriever:
    """Loads chunk metadata + BM25 from the store once per index generation."""

    def __init__(self, store: IndexStore, embedder: Embedder, dense_k: int = 40, bm25_k: int = 40):
        self.store = store
        self.embedder = embedder
        self.dense_k = dense_k
        self.bm25_k = bm25_k
        self._state: _State | None = None
        self._lock = threading.Lock()
        self._qvec: tuple[str, np.ndarray] | None = None

    # --- public ----------------------------------------------------------------------------

    def state(self) -> _State:
        gen = self.store.generation()
        with self._lock:
            if self._state is None or self._state.generation != gen:
                self._state = _load(self.store, gen)
            return self._state

    def retrieve(self, question: str, filters: Filters, k: int,
                 boost_statements: tuple[str, ...] = ()) -> list[Hit]:
        st = self.state()
        if not st.chunks:
            return []
        mask = _mask(st, filters)
        if mask is not None and not mask.any():
            return []
        rankings = {"bm25": self._bm25(st, question, mask),
                    "dense": self._dense(st, question, filters, mask)}
        if boost_statements:
            # A statement named in the question is a strong boost, not a hard filter: the
            # answer may sit on the overview page.
            boost = [cid for cid in dict.fromkeys(rankings["bm25"] + rankings["dense"])
                     if st.chunks[st.by_id[cid]].quality_statement in boost_statements]
            rankings["statement"] = boost
        fused = rrf_fuse(rankings, weights={"bm25": 1.0, "dense": 1.0, "statement": 0.5})
        kept = with_each_best(fused, {r: rankings[r] for r in ("bm25", "dense")}, k, RANKER_BEST)
        return [Hit(st.chunks[st.by_id[cid]], score, i + 1, ranks)
                for i, (cid, score, ranks) in enumerate(kept)]

    def embed_query(self, question: str) -> np.ndarray:
        """The question's vector, computed once per question (retrieval and answering share it)."""
        cached = self._qvec
        if cached is not None and cached[0] == question:
            return cached[1]
        vec = self.embedder.embed([question])[0]
        self._qvec = (question, vec)
        return vec

    def chunk_at(self, report_id: str, offset: int) -> Chunk | None:
        """The chunk of ``report_id`` whose span contains ``offset`` (for citing a span)."""
        st = self.state()
        for i in st.by_report.get(report_id, ()):
            c = st.chunks[i]
            if c.start <= offset < c.end:
                return c
        return None

    def chunks_beside(self, report_id: str, start: int, end: int) -> tuple[Chunk | None,
                                                                          Chunk | None]:
        """The last chunk of ``report_id`` ending at or before ``start`` and the first one
        starting at or after ``end``: where a span no chunk holds (a heading line) sits."""
        st = self.state()
        cs = [st.chunks[i] for i in st.by_report.get(report_id, ())]
        before = max((c for c in cs if c.end <= start), key=lambda c: c.end, default=None)
        after = min((c for c in cs if c.start >= end), key=lambda c: c.start, default=None)
        return before, after

    def report(self, report_id: str) -> ReportRow | None:
        return self.state().reports.get(report_id)

    def report_text(self, report_id: str) -> str:
        return _report_text(self.store, report_id, self.state().generation)

    # --- rankers ---------------------------------------------------------------------------

    def _bm25(self, st: _State, question: str, mask: np.ndarray | None) -> list[str]:
        q = tokenize(question) + report_words(question)
        if not q or st.bm25 is None:
            return []
        n = len(st.chunks)
        k = min(self.bm25_k, n if mask is None else int(mask.sum()))
        if k <= 0:
            return []
        docs, scores = st.bm25.retrieve(
            # n_threads=0: score in this thread. n_threads=1 spins up a ThreadPoolExecutor
            # (a new thread) on every query: ~13 ms/query measured on a loaded 2-core box.
            [q], k=k, show_progress=False, n_threads=0,
            weight_mask=None if mask is None else mask.astype(np.float32),
        )
        return [st.chunks[int(i)].chunk_id for i, s in zip(docs[0], scores[0], strict=True) if s > 0]

    def _dense(self, st: _State, question: str, filters: Filters, mask: np.ndarray | None) -> list[str]:
        vec = self.embed_query(question)
        where = _where(filters)
        hits = self.store.dense_query(vec, self.dense_k, where)
        out = []
        for cid, _dist in hits:
            i = st.by_id.get(cid)
            # Only ids SQLite has committed count: half-written vectors are invisible.
            if i is not None and (mask is None or mask[i]):
                out.append(cid)
        return out


# --- loading -------------------------------------------------------------------------------

def _load(store: IndexStore, gen: int) -> _State:
    import bm25s

    chunks = store.chunks()
    reports = {r.report_id: r for r in store.reports()}
    by_report: dict[str, list[int]] = {}
    for i, c in enumerate(chunks):  # store.chunks() is ordered by report, then position
        by_report.setdefault(c.report_id, []).append(i)
    bm25 = None
    df: Counter[str] = Counter()
    if chunks:
        # Each chunk's text is tokenised once: for BM25 (after its header) and for the document
        # frequencies behind sentence confidence (text only). Headers repeat across a page.
        headers: dict[str, list[str]] = {}
        docs = []
        for c in chunks:
            words = tokenize(c.text)
            df.update(set(words))
            h = c.header()
            if h not in headers:
                headers[h] = tokenize(h)
            docs.append(headers[h] + words or ["_empty_"])
        bm25 = bm25s.BM25()
        # BM25 sees the context header too, so "Stockton" or "safeguarding" match every chunk
        # of that page, not only the sentences that happen to repeat the name.
        bm25.index(docs, show_progress=False)
    return _State(
        generation=gen, chunks=chunks, by_id={c.chunk_id: i for i, c in enumerate(chunks)},
        by_report=by_report, reports=reports, bm25=bm25,
        council_of=np.array([council_key(c.council) or "" for c in chunks], dtype=object),
        statement_of=np.array([c.quality_statement or "" for c in chunks], dtype=object),
        kind_of=np.array([c.page_kind or "" for c in chunks], dtype=object),
        report_of=np.array([c.report_id for c in chunks], dtype=object), df=df,
    )


@lru_cache(maxsize=256)
def _report_text(store: IndexStore, report_id: str, gen: int) -> str:
    return store.report_text(report_id)


def _mask(st: _State, f: Filters) -> np.ndarray | None:
    if f.empty():
        return None
    m = np.ones(len(st.chunks), dtype=bool)
    if f.councils:
        m &= np.isin(st.council_of, list(f.councils))
    if f.statements:
        m &= np.isin(st.statement_of, list(f.statements))
    if f.page_kinds:
        m &= np.isin(st.kind_of, list(f.page_kinds))
    if f.report_ids:
        m &= np.isin(st.report_of, list(f.report_ids))
    if f.exclude_report_ids:
        m &= ~np.isin(st.report_of, list(f.exclude_report_ids))
    return m


def _where(f: Filters) -> dict[str, Any] | None:
    clauses: list[dict[str, Any]] = []
    if f.councils:
        clauses.append({"council_key": {"$in": list(f.councils)}})
    if f.statements:
        clauses.append({"quality_statement": {"$in": list(f.statements)}})
    if f.page_kinds:
        clauses.append({"page_kind": {"$in": list(f.page_kinds)}})
    if f.report_ids:
        clauses.append({"report_id": {"$in": list(f.report_ids)}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    s = Stemmer.Stemmer("english")
    cache: dict[str, str] = {}

    def stem(w: str) -> str:
        r = cache.get(w)
        if r is None:
            r = cache[w] = s.stemWord(w)
        return r

    return stem


_STOP = frozenset(  # noqa: SIM905 - a word list reads best as text
    ["a", "about", "above", "after", "again", "against", "all", "am", "an", "and", "any", "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is", "it", "its", "itself", "just", "me", "more", "most", "my", "myself", "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "ours", "ourselves", "out", "over", "own", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them", "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "tell", "say", "said", "says", "did", "does", "council", "council's", "local", "authority", "authorities", "cqc", "report", "reports", "according", "page", "pages", "mention", "mentioned", "mentions", "state", "stated", "states", "describe", "described", "quality", "statement"]
)
