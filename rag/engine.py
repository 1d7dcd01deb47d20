"""Loaded resources for answering: store, embedder, retriever, council catalogue.
Public: `Engine` (and `get_engine`, a per-process cache keyed by settings)."""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

from ingest.index import IndexStore, ReportRow
from ingest.profiles import Profile, profile_named
from ingest.structure import council_key
from rag.query import Council, council_catalogue
from rag.reader import use_bf16
from rag.retrieve import HybridRetriever
from rag.stats import Stat, extract_stats
from rag.tables import (
    JudgementRow,
    RatingRow,
    ScoreRow,
    cqc_row_spans,
    judgement_table,
    rating_table,
    score_table,
)
from rag.versions import Version, resolve_versions
from reportqa.embed import Embedder, embedder_for, get_embedder
from reportqa.errors import IndexNotReadyError
from reportqa.settings import Settings
from reportqa.text import sentence_key, sentence_spans


@dataclass
class _Derived:
    generation: int
    councils: list[Council]
    scores: list[ScoreRow]
    ratings: list[RatingRow]
    judgements: list[JudgementRow]
    idf: dict[str, float]
    n_docs: int
    versions: dict[str, Version]
    _stats_of: Callable[[], list[Stat]]
    _words_of: Callable[[], Counter[str]]
    _templates_of: Callable[[], frozenset[str]]
    # Each report's CQC table cells, (start, end): their citations quote the labels above.
    cells: dict[str, set[tuple[int, int]]] = field(default_factory=dict)
    _stats: list[Stat] | None = None
    _words: frozenset[str] | None = None
    _word_counts: Counter[str] | None = None
    _templates: frozenset[str] | None = None
    only: frozenset[str] | None = None  # a scoped view's reports (Engine.scoped)

    def in_scope(self, report_id: str) -> bool:
        return self.only is None or report_id in self.only

    def council_names(self, keys: tuple[str, ...]) -> list[str]:
        """These councils' names as the reports give them, in order (an unknown key as is)."""
        names = {c.key: c.name for c in self.councils}
        return [names.get(k, k) for k in keys]

    @property
    def stats(self) -> list[Stat]:
        """Figures from every current report, read on first use: only statistics questions
        and `reportqa stats` need them (~10 % of a cold start at 50k chunks)."""
        if self._stats is None:
            self._stats = self._stats_of()
        return self._stats

    @property
    def words(self) -> frozenset[str]:
        """Every word the reports use, lower-case, as written (read on first use: the
        question words a user misspelt are looked up here, rag/spelling.py)."""
        if self._words is None:
            self._words = frozenset(self.word_counts)
        return self._words

    @property
    def word_counts(self) -> Counter[str]:
        """How often the reports use each word: of two misspelt-word readings equally near,
        the far more common one is meant ("wating": "waiting", not "wanting")."""
        if self._word_counts is None:
            self._word_counts = self._words_of()
        return self._word_counts

    @property
    def templates(self) -> frozenset[str]:
        """Sentences (`sentence_key`) that reports of two or more organisations print word for
        word: standard text (CQC's commitments, a letter's closing lines), not a finding about
        any one of them. Read on first use."""
        if self._templates is None:
            self._templates = self._templates_of()
        return self._templates

    def hidden(self) -> tuple[str, ...]:
        """Reports not shown by default: superseded assessments and duplicate copies."""
        return tuple(sorted(r for r, v in self.versions.items() if v.status != "current"))


@dataclass
class Engine:
    settings: Settings
    store: IndexStore
    embedder: Embedder
    retriever: HybridRetriever
    _derived: _Derived | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when the embedder was passed in (a test's fake): it then compares sentences too.
    _injected: bool = False
    _sentences: Embedder | None = None

    @classmethod
    def load(cls, settings: Settings, embedder: Embedder | None = None) -> Engine:
        emb = embedder or embedder_for(settings)
        store = IndexStore(settings, emb.name, emb.dim, create=False)
        return cls(settings, store, emb, HybridRetriever(store, emb),
                   _injected=embedder is not None)

    def sentences(self) -> Embedder:
        """The embedder that compares a question with candidate sentences at answer time
        (never indexes): a bf16 copy of MiniLM where the reader reads in bf16
        (rag/reader.py), else the embedder itself. Decided on first use, so loading an
        engine for tables or listings does not import torch."""
        if self._sentences is None:
            s = self.settings
            fast = (not self._injected and s.embedder == "minilm"
                    and use_bf16(s.reader_precision))
            self._sentences = get_embedder(s.embedder, s.batch_size, "bf16") if fast else self.embedder
        return self._sentences

    def derived(self) -> _Derived:
        st = self.retriever.state()
        with self._lock:
            if self._derived is None or self._derived.generation != st.generation:
                all_reports = list(st.reports.values())
                versions = resolve_versions(all_reports, self.retriever.report_text)
                # Tables count each page once: the newest assessment, the most complete copy.
                reports = [r for r in all_reports if versions[r.report_id].status == "current"]
                n = max(1, len(st.chunks))
                text_of = self.retriever.report_text
                scores, ratings = score_table(reports), rating_table(reports)
                self._derived = _Derived(
                    generation=st.generation,
                    councils=council_catalogue([r.metadata.get("council") for r in all_reports]),
                    scores=scores, ratings=ratings,
                    judgements=judgement_table(reports, scores, ratings),
                    cells=cqc_row_spans(scores, ratings),
                    idf={t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in st.df.items()},
                    n_docs=n,
                    versions=versions,
                    _stats_of=lambda: [x for r in reports for x in extract_stats(
                        r.report_id, text_of(r.report_id), r.metadata.get("council"),
                        r.metadata.get("quality_statement"))],
                    _words_of=lambda: Counter(w for r in reports for w in re.findall(
                        r"[a-z]+", text_of(r.report_id).lower())),
                    _templates_of=lambda: shared_sentences(reports, text_of),
                )
            return self._derived

    def scoped(self, report_ids: Collection[str]) -> Engine:
        """A view of this engine whose tables (scores, ratings, judgements, figures) hold only
        these reports' rows: the app's report-family and year filters, applied to the table
        answers as retrieval applies them to passages."""
        d = self.derived()
        keep = frozenset(report_ids)
        view = replace(d, scores=[r for r in d.scores if r.report_id in keep],
                       ratings=[r for r in d.ratings if r.report_id in keep],
                       judgements=[r for r in d.judgements if r.report_id in keep],
                       _stats_of=lambda: [x for x in d.stats if x.report_id in keep],
                       _stats=None, only=keep)
        return replace(self, _derived=view, _lock=threading.Lock())

    def current_reports(self) -> list[ReportRow]:
        """The index's reports shown by default (not superseded, not duplicate copies) that
        the question's filters allow (`scoped`), in report-id order."""
        d = self.derived()
        hidden = set(d.hidden())
        return [r for r in sorted(self.retriever.state().reports.values(), key=lambda r: r.report_id)
                if r.report_id not in hidden and d.in_scope(r.report_id)]

    def profiled_reports(self, councils: Collection[str]) -> Iterator[tuple[ReportRow, Profile, str]]:
        """The shown reports of these councils (gazetteer keys) that a family profile reads,
        each with its profile and text: where a letter's addressee or a team is printed."""
        for row in self.current_reports():
            prof = profile_named(row.metadata.get("family"))
            if prof is not None and council_key(row.metadata.get("council")) in councils:
                yield row, prof, self.retriever.report_text(row.report_id)

    def idf(self, term: str) -> float:
        d = self.derived()
        return d.idf.get(term, math.log(1 + (d.n_docs + 0.5) / 0.5))

    def require_ready(self) -> None:
        if self.store.counts()[1] == 0:
            raise IndexNotReadyError(
                f"the index at {self.settings.index_dir} is empty; run `reportqa ingest corpus/` first"
            )


TEMPLATE_MIN_WORDS = 5  # shorter lines ("Score: 3", "Good") repeat without being standard text


def shared_sentences(reports: list[ReportRow], text_of: Callable[[str], str]) -> frozenset[str]:
    """Sentence keys printed in the reports of two or more organisations."""
    seen: dict[str, str] = {}
    shared = set()
    for r in reports:
        org = r.metadata.get("council") or r.report_id
        text = text_of(r.report_id)
        for s, e in sentence_spans(text):
            key = sentence_key(text[s:e])
            if len(key.split()) < TEMPLATE_MIN_WORDS:
                continue
            if seen.setdefault(key, org) != org:
                shared.add(key)
    return frozenset(shared)


@lru_cache(maxsize=4)
def get_engine(settings: Settings) -> Engine:
    """One engine per settings per process: the model and BM25 load once."""
    return Engine.load(settings)
