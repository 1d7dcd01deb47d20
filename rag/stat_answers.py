"""Answers that rank or compare one figure across councils, from the statistics read at
ingest (rag/stats.py): "Which council has the largest population?", "Which councils are
below the England average for carers' satisfaction?". Public: `superlative` and
`versus_england`, the handlers rag/structured.py's question table calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.structure import council_key
from rag.engine import Engine
from rag.evidence import W, cite_span, rank_terms, term_coverage
from rag.lexicon import words
from rag.query import CHANGE, PROJECTION, Understanding
from rag.retrieve import tokenize
from rag.stats import Stat
from reportqa.records import Answer, Citation
from reportqa.text import clean_quote

# Question words that frame a superlative rather than name the measure, and (for a
# percentage) the words that name its unit; reports state a population share as "of the
# population", "of people", "of residents" (rag/vocab/questions.toml).
_FRAME = words("questions", "superlative_frame")
_PCT_WORDS = words("questions", "percent_unit")
_SAME = words("questions", "population_stems")


def superlative(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """"Which council has the highest/lowest X": one figure per council from the statistics
    table, ranked; all ranked figures share one unit."""
    d = eng.derived()
    unit = u.unit
    measure = _Measure.of(u, eng, unit)
    if measure is None:
        return None
    pool = set(councils or (c.key for c in d.councils))
    best: dict[tuple[str, str], tuple[float, Stat]] = {}  # (unit, council) -> best figure
    for st in d.stats:
        key = council_key(st.council) or ""
        match = measure.match(st, eng.retriever.report_text(st.report_id)) if key in pool else None
        if match is not None and match > best.get((st.unit, key), (-1.0, st))[0]:
            best[(st.unit, key)] = (match, st)
    by_unit: dict[str, list[tuple[float, Stat]]] = {}
    for (un, _), row in best.items():
        by_unit.setdefault(un, []).append(row)
    if not by_unit:
        return None  # nothing comparable: ordinary retrieval answers or abstains
    # The unit the question asks for ("proportion" -> %), else the one most councils state.
    rows = by_unit.get(unit or "") or max(by_unit.values(),
                                         key=lambda rs: (len(rs), sum(m for m, _ in rs)))
    if len(rows) < 2 and len(pool) > 1:
        return None
    low = u.direction == "min"
    ranked = sorted((st for _, st in rows), key=lambda st: (st.value if low else -st.value,
                                                             st.council or ""))
    return _ranked_answer(u, ranked, councils, low, eng)


@dataclass(frozen=True)
class _Measure:
    """What a superlative question measures, and how well a stated figure matches it."""

    weight: dict[str, float]  # measure terms -> idf
    same: dict[str, set[str]]  # term -> terms that count as it
    figures: tuple[str, ...]  # "aged 65+": the 65 must be in the figure's own words
    skip: tuple[re.Pattern[str], ...]  # projection / change, unless the question asks for it

    @classmethod
    def of(cls, u: Understanding, eng: Engine, unit: str | None) -> _Measure | None:
        frame = set(tokenize(" ".join(_FRAME | (_PCT_WORDS if unit == "%" else frozenset()))))
        terms = [t for t in rank_terms(u, eng) if t not in frame and t in eng.derived().idf]
        if not terms:
            return None
        # "% of residents" and "% of the population" are the same share; "10,495 people" and
        # "a population of 755,833" are not the same count.
        same = {t: set(_SAME) for t in _SAME} if unit == "%" else {}
        return cls({t: eng.idf(t) for t in terms}, same,
                   tuple(t for t in terms if t[0].isdigit()),
                   tuple(rx for rx, asked in ((PROJECTION, u.projection), (CHANGE, u.change))
                         if not asked))

    def cover(self, text: str) -> float:
        return term_coverage(self.weight, set(tokenize(text)), self.same)

    def match(self, st: Stat, text: str) -> float | None:
        """How well ``st`` measures this, from the stretch of its sentence it owns (up to
        the neighbouring figures); None when it does not."""
        # "projected to reach 344,300 by 2027", "an increase of 15.5% in ...": the words that
        # make a figure a projection or a change come before it or right after it.
        if any(rx.search(text[st.context_start : st.figure_end + W.measure_skip_chars]) for rx in self.skip):
            return None
        own = text[st.context_start : st.context_end]
        local = self.cover(own)
        if local < W.measure_cover or not set(self.figures) <= set(tokenize(own)):
            return None
        return local + W.measure_context_weight * self.cover(text[st.start : st.end])


def _ranked_answer(u: Understanding, ranked: list[Stat], named: tuple[str, ...], low: bool,
                   eng: Engine) -> Answer:
    """The top figure (ties included) and the next few, each cited; short enough to read."""
    shown = ranked[: max(W.ranked_shown, sum(1 for st in ranked if st.value == ranked[0].value))]
    cites = [cite_span(i + 1, st.report_id, eng, st.start, st.end, council=st.council,
                        statement=st.quality_statement) for i, st in enumerate(shown)]
    top = [st for st in shown if st.value == ranked[0].value]
    word = "lowest" if low else "highest"
    lead = " and ".join(f"{st.council} ({st.raw}) [{i + 1}]" for i, st in enumerate(top))
    # No figure of our own (a count of councils) in the text: the number check would drop it.
    text = (f"Among the councils whose indexed reports state this figure, {lead} "
            f"{'have' if len(top) > 1 else 'has'} the {word}.")
    rest = [f"{st.council} {st.raw} [{i + 1}]" for i, st in enumerate(shown) if st not in top]
    if rest:
        text += " Next: " + "; ".join(rest) + "."
    if len(ranked) > len(shown):
        text += " Further councils are not listed."
    found = {council_key(st.council) for st in ranked}
    missing = sorted(eng.derived().council_names(tuple(k for k in named if k not in found)))
    if missing:
        text += " No comparable figure is indexed for " + ", ".join(missing) + "."
    return Answer(u.question, text, False, tuple(cites), answerer="table")


def versus_england(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """Every extracted statistic compared with an England average in the asked direction,
    restricted to the topic words of the question."""
    generic = set(tokenize("England national average below above worse better higher lower where"))
    terms = [t for t in rank_terms(u, eng) if t not in generic]
    rows = [s for s in eng.derived().stats if s.comparator and "england" in s.comparator.lower()
            and s.direction == u.direction
            and (not councils or council_key(s.council) in councils)]
    scored = []
    weights = {t: eng.idf(t) for t in terms}
    for s in rows:
        sent_terms = set(tokenize(eng.retriever.report_text(s.report_id)[s.start : s.end]))
        cov = term_coverage(weights, sent_terms)
        if cov >= W.england_cover:
            scored.append((cov, s))
    if not scored:
        return None  # fall back to retrieval, which can still answer or abstain
    scored.sort(key=lambda x: (-x[0], x[1].council or "", x[1].start))
    cites: list[Citation] = []
    parts: list[str] = []
    for _, s in scored[:W.england_shown]:
        n = len(cites) + 1
        cites.append(cite_span(n, s.report_id, eng, s.start, s.end, council=s.council,
                                statement=s.quality_statement))
        cmp_val = f" {s.comparator_value:g}%" if s.comparator_value is not None else ""
        parts.append(f"{s.council}: {s.raw} {clean_quote(s.subject[:60])} ({u.direction} the "
                     f"{s.comparator}{cmp_val}) [{n}].")
    head = f"Statistics {u.direction} the England average on this topic:"
    return Answer(u.question, head + " " + " ".join(parts), False, tuple(cites), answerer="table")
