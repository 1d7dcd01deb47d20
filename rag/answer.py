"""Stage 6: question -> Answer with citations. Public: `answer`.

Routing: structured questions (scores, ratings, lists over councils) are answered from the
tables read at ingest; everything else goes through hybrid retrieval and an answerer (the
extractive one by default: it only ever quotes report sentences, so it cannot invent).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from rag.engine import Engine, get_engine
from rag.query import Understanding, asks_count, asks_percentage, understand
from rag.reader import Reader, pair_text, shared_reader
from rag.reader import available as reader_available
from rag.retrieve import Filters, tokenize
from rag.verify import looks_like_instruction
from reportqa.errors import QuestionError
from reportqa.records import Answer, Citation, Hit
from reportqa.settings import Settings
from reportqa.text import answer_sentences, sentence_spans

MAX_QUESTION_CHARS = 1000
NOT_IN_REPORTS = "The indexed reports don't say."
MAY_ANSWER = "Not certain, but the closest passage may answer this: "


class Answerer(Protocol):
    name: str

    def compose(self, u: Understanding, hits: list[Hit], engine: Engine) -> Answer: ...


def answer(question: str, settings: Settings, filters: Filters | None = None, *,
           engine: Engine | None = None, answerer: Answerer | None = None,
           k: int | None = None, on_delta: Callable[[str], None] | None = None) -> Answer:
    """Answer one question from the index named by ``settings``. Deterministic."""
    t0 = time.perf_counter()
    q = _validate(question)
    eng = engine or get_engine(settings)
    eng.require_ready()
    u = understand(q, eng.derived().councils)
    explicit = filters or Filters()
    filters = _merge_filters(explicit, u, eng)
    from rag import structured

    if u.unknown_councils and u.unknown_first and not explicit.councils:
        ans = _abstain(q, "The indexed reports don't cover "
                       + " or ".join(u.unknown_councils) + ": no report for that council is indexed.")
        return _timed(ans, t0, t0)
    t_ret = time.perf_counter()
    routed = structured.route(u, filters, eng)
    if routed is not None:
        return _timed(check_figures(routed), t0, t_ret)
    hits = eng.retriever.retrieve(q, filters, k or settings.k, boost_statements=u.statements)
    t_ret = time.perf_counter()
    if not hits:
        return _timed(_abstain(q, NOT_IN_REPORTS + " Nothing in the index matches this question"
                               + (" with the filters given." if not filters.empty() else ".")),
                      t0, t_ret)
    chosen = answerer or _answerer_for(settings)
    stream = getattr(chosen, "stream", None)
    if on_delta is not None and stream is not None:
        # Generative answerers stream a draft; what is returned is the verified answer.
        gen = stream(u, hits, eng)
        while True:
            try:
                on_delta(next(gen))
            except StopIteration as stop:
                ans = stop.value
                break
    else:
        ans = chosen.compose(u, hits, eng)
    return _timed(check_figures(ans), t0, t_ret)


def check_figures(ans: Answer) -> Answer:
    """Number check for every answer path: each figure in a sentence must appear, with the
    same value, in a quote that sentence cites. Unsupported sentences are dropped and the
    answer says so; if nothing is left the answer abstains."""
    from rag.verify import verify_figures

    if ans.abstained or not ans.citations or ans.answerer == "llm":
        return ans  # the LLM path runs the same check sentence by sentence (rag/verify.py)
    quotes = {c.n: c.quote for c in ans.citations}
    kept, dropped = [], 0
    for sent in answer_sentences(ans.text):
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", sent)]
        evidence = "\n".join(quotes.get(n, "") for n in cited)
        body = re.sub(r"\s*\[\d+\]", "", sent)
        if verify_figures(body, evidence):
            dropped += 1
            continue
        kept.append(sent)
    if not dropped:
        return ans
    note = f"{dropped} sentence(s) removed: a figure in them is not in the passage they cite."
    if not kept:
        return replace(ans, text=NOT_IN_REPORTS + " " + note, abstained=True, notes=(*ans.notes, note))
    return replace(ans, text=" ".join(kept), notes=(*ans.notes, note))


def _answerer_for(settings: Settings) -> Answerer:
    if settings.answerer == "llm":
        from rag.llm import LLMAnswerer

        return LLMAnswerer(settings)
    return extractive_for(settings)


def extractive_for(settings: Settings) -> ExtractiveAnswerer:
    """The extractive answerer as the settings configure it (also the LLM path's fallback):
    with the trained reader when ``settings.reader`` is "cross" and its weights are there."""
    if settings.reader == "cross" and reader_available():
        return ExtractiveAnswerer(settings.reader_threshold, settings.max_answer_words,
                                  settings.reader_uncertain_threshold, shared_reader())
    return ExtractiveAnswerer(settings.abstain_threshold, settings.max_answer_words,
                              settings.uncertain_threshold)


def _validate(question: str) -> str:
    q = " ".join((question or "").split())
    if not q:
        raise QuestionError("the question is empty; type a question about the reports")
    if len(q) > MAX_QUESTION_CHARS:
        raise QuestionError(f"the question is {len(q):,} characters; keep it under "
                            f"{MAX_QUESTION_CHARS:,} (ask one thing at a time)")
    if not re.search(r"[A-Za-z]{2,}", q):
        raise QuestionError("the question has no English words to search for; the reports are "
                            "in English, so please ask in English")
    return q


def _merge_filters(f: Filters, u: Understanding, eng: Engine) -> Filters:
    from rag.query import resolve_council

    d = eng.derived()
    councils = tuple(resolve_council(c, d.councils) for c in f.councils) or u.councils
    return Filters(councils=councils, statements=f.statements, page_kinds=f.page_kinds,
                   report_ids=f.report_ids, exclude_report_ids=_version_exclusions(u, d))


def _version_exclusions(u: Understanding, d: Any) -> tuple[str, ...]:
    """Older assessments are hidden unless the question names their year; then the newer
    version of that page is hidden instead. Duplicate copies are always hidden."""
    years = set(re.findall(r"\b(20\d\d)\b", u.question))
    hidden = set(d.hidden())
    for rid, v in d.versions.items():
        if v.status == "superseded" and v.published and v.published[:4] in years:
            hidden.discard(rid)
            if v.of:
                hidden.add(v.of)
    return tuple(sorted(hidden))


def _timed(a: Answer, t0: float, t_ret: float) -> Answer:
    now = time.perf_counter()
    return replace(a, timings_ms={"retrieve": (t_ret - t0) * 1000,
                                  "answer": (now - t_ret) * 1000, "total": (now - t0) * 1000})


def _abstain(q: str, text: str, see_also: tuple[Citation, ...] = (), hits: tuple[Hit, ...] = ()) -> Answer:
    if see_also:
        text += " Closest passages (see also): " + " ".join(f"[{c.n}]" for c in see_also)
    return Answer(q, text, True, see_also, hits)


# --- extractive answerer -------------------------------------------------------------------

_NUM = re.compile(r"£?\d+(?:[.,]\d+)*(?:%| per ?cent| days?| weeks?| months?| years?| hours?)?")
_COMPARE = re.compile(r"\b(England|national|regional|comparator)\b.{0,40}\baverage\b|\bcompared\b|"
                      r"\bsimilar to\b|\b(higher|lower|better|worse) than\b", re.I)


@dataclass(frozen=True)
class _Cand:
    hit: Hit
    start: int
    end: int
    text: str
    score: float
    coverage: float
    confidence: float = 0.0
    core_start: int = -1  # where the sentence itself starts when paired with its antecedent


RERANK_TOP = 4  # sentences re-ranked by meaning (MiniLM); 4 = same dev accuracy as 8, 1/3 less latency


def rerank_dense(u: Understanding, cands: list[_Cand], engine: Engine) -> list[_Cand]:
    """Blend lexical scores with the embedder's question-sentence similarity for the top
    sentences; this catches paraphrase ("how rural" ~ "fourth most rural county")."""
    top = _distinct_spans(cands, RERANK_TOP)
    if not top:
        return []
    qv = engine.retriever.embed_query(u.question)
    sv = engine.embedder.embed([c.text for c in top])
    sims = sv @ qv
    out = []
    for c, sim in zip(top, sims, strict=True):
        sem = min(1.0, max(0.0, (float(sim) - 0.15) / 0.5))
        # Unclipped in the ranking score so near-ties still order by meaning.
        out.append(replace(c, score=c.score + 0.5 * (float(sim) - 0.15) / 0.5,
                           confidence=0.5 * c.coverage + 0.5 * sem * min(1.0, 2 * c.coverage + 0.3)))
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


READER_TOP = 20  # lexical candidates the reader reads: the answer is among them for ~91%


def read_candidates(u: Understanding, lexical: list[_Cand], reader: Reader) -> list[_Cand]:
    """Re-rank the lexical ranker's top distinct sentences by the reader's probability that
    each answers the question; that probability is also the confidence."""
    top = _distinct_spans(lexical, READER_TOP)
    probs = reader.score(u.question, [pair_text(c.hit.chunk.council, c.hit.chunk.section, c.text)
                                      for c in top])
    out = [replace(c, score=p, confidence=p) for c, p in zip(top, probs, strict=True)]
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


def candidates_for(question: str, engine: Engine, n: int = 20) -> list[_Cand]:
    """The answerer's top ``n`` distinct candidate sentences for a question, retrieved with the
    same filters answer() would use (for training and measuring the reader)."""
    q = _validate(question)
    u = understand(q, engine.derived().councils)
    f = _merge_filters(Filters(), u, engine)
    hits = engine.retriever.retrieve(q, f, engine.settings.k, boost_statements=u.statements)
    return _distinct_spans(rank_sentences(u, hits, engine), n)


def _distinct_spans(cands: list[_Cand], n: int) -> list[_Cand]:
    seen, out = set(), []
    for c in cands:
        key = (c.hit.chunk.report_id, c.start, c.end)
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
        if len(out) == n:
            break
    return out


class ExtractiveAnswerer:
    """Quote the report sentences that best answer the question; abstain when none does."""

    name = "extractive"

    def __init__(self, threshold: float = 0.34, max_words: int = 75,
                 uncertain_threshold: float = 1.0, reader: Reader | None = None) -> None:
        self.threshold = threshold
        self.max_words = max_words
        self.uncertain_threshold = uncertain_threshold
        self.reader = reader

    def compose(self, u: Understanding, hits: list[Hit], engine: Engine) -> Answer:
        lexical = rank_sentences(u, hits, engine)
        cands = (read_candidates(u, lexical, self.reader) if self.reader is not None
                 else rerank_dense(u, lexical, engine))
        if cands and self.uncertain_threshold <= cands[0].confidence < self.threshold:
            return self._uncertain(u, cands[0], hits, engine)
        if not cands or cands[0].confidence < self.threshold:
            see = tuple(_citation(i + 1, c, engine, see_also=True) for i, c in
                        enumerate(_distinct(cands, 3)))
            ans = _abstain(u.question, NOT_IN_REPORTS + " No passage in the indexed reports "
                           "answers this question.", see, tuple(hits))
            return replace(ans, confidence=cands[0].confidence if cands else 0.0)
        picked = self._pick(cands, engine)
        cites = tuple(_citation(i + 1, c, engine) for i, c in enumerate(picked))
        text = " ".join(with_marker(_clean(c.text), i + 1) for i, c in enumerate(picked))
        return Answer(u.question, text, False, cites, tuple(hits), answerer=self.name,
                      confidence=cands[0].confidence)

    def _uncertain(self, u: Understanding, best: _Cand, hits: list[Hit],
                   engine: Engine) -> Answer:
        """Too weak a match to state as the answer, too close to say "not in the reports":
        quote the best sentence, marked as possibly answering."""
        best = self._pick([best], engine)[0]
        text = MAY_ANSWER + with_marker(_clean(best.text), 1)
        return Answer(u.question, text, False, (_citation(1, best, engine),), tuple(hits),
                      answerer=self.name, confidence=best.confidence, uncertain=True)

    def _pick(self, cands: list[_Cand], engine: Engine) -> list[_Cand]:
        best = cands[0]
        picked = [best]
        words = len(best.text.split())
        if words > self.max_words and best.core_start > best.start:
            # A pair too long to read out: the anaphoric sentence alone carries the figure.
            text = engine.retriever.report_text(best.hit.chunk.report_id)
            best = replace(best, start=best.core_start, text=text[best.core_start : best.end])
            picked, words = [best], len(best.text.split())
        if words > self.max_words:
            return [_trim_to(best, self.max_words)]
        # Keep the comparison that goes with a figure when it is in the next sentence.
        if _NUM.search(best.text) and not _COMPARE.search(best.text):
            nxt = _next_sentence(best, engine)
            if nxt and _COMPARE.search(nxt.text) and words + len(nxt.text.split()) <= self.max_words:
                return [best, nxt]
        for c in cands[1:3]:
            if (c.score >= 0.85 * best.score and c.confidence >= self.threshold
                    and c.hit.chunk.report_id == best.hit.chunk.report_id
                    and not _overlaps(c, picked)
                    and words + len(c.text.split()) <= self.max_words):
                picked.append(c)
                words += len(c.text.split())
                break
        return picked


def _score_sentence(u: Understanding, h: Hit, text: str, s: int, core: int, e: int,
                    weights: dict[str, float], q_figs: set[str], pct: bool,
                    count: bool = False) -> _Cand | None:
    sent = text[s:e]
    if looks_like_instruction(sent):
        return None  # report text is data: an instruction-like sentence is never an answer
    toks = set(tokenize(sent))
    cov = term_coverage(weights, toks, _SYN)
    n_words = len(sent.split())
    unpunctuated = not re.search(r"[.!?]$", sent) and not re.search(r"\d", sent)
    if n_words < 5 or _HEADING.match(sent) or (n_words < 9 and unpunctuated):
        return None  # titles, headings and "Score: 3" lines are not answers to read out
    score = 0.7 * cov + 0.3 / (1 + 0.25 * (h.rank - 1)) - 0.003 * n_words
    if u.wants_figure:
        # The answer to a figure question states a figure the question did not.
        if _new_figures(sent, q_figs):
            score += 0.15
            if pct and "%" in sent:
                score += 0.1
            elif pct:
                cov *= 0.5
            elif count and _COUNT.search(sent):
                score += 0.1  # the same preference for a count ("510,430 people")
        else:
            cov *= 0.5
            score -= 0.15
    if u.asks_rank and re.search(r"\b\d+(st|nd|rd|th)\b", sent):
        score += 0.15  # "how does X rank" is answered by an ordinal ("43rd")
    if u.asks_frequency and _FREQUENCY.search(sent):
        score += 0.15
    if u.asks_difference and _DIFFERENCE.search(sent):
        score += 0.15  # "by how much ... exceed" is answered by "£8,502,000 more than estimated"
    if u.asks_reason and _CAUSAL.search(sent):
        score += 0.1  # "why ..." is answered by the sentence that gives the cause
    if re.search(r",\s*$", sent):  # a page cut mid-sentence
        cov *= 0.5
    if h.chunk.section in _BOILERPLATE:  # CQC's standard wording, same for every council
        score -= 0.1
    return _Cand(h, s, e, sent, score, cov, core_start=core)


def rank_terms(u: Understanding, engine: Engine) -> list[str]:
    """Question terms that carry meaning: the council's own name is a filter, not a term."""
    council_words = set()
    for c in engine.derived().councils:
        if c.key in u.councils:
            for a in c.aliases:
                council_words.update(tokenize(a))
    q_terms = [t for t in dict.fromkeys(tokenize(u.question)) if t not in council_words]
    return q_terms or list(dict.fromkeys(tokenize(u.question)))


def term_coverage(weights: dict[str, float], words: set[str],
                  syn: Mapping[str, set[str]] | None = None) -> float:
    """Share of the question terms' weight (idf) found in ``words``; a term also counts as
    found when one of its ``syn`` words is there."""
    syn = syn or {}
    total = sum(weights.values()) or 1.0
    return sum(w for t, w in weights.items() if t in words or syn.get(t, set()) & words) / total


def rank_sentences(u: Understanding, hits: list[Hit], engine: Engine) -> list[_Cand]:
    """Score every sentence of the retrieved chunks against the question (deterministic)."""
    q_terms = rank_terms(u, engine)
    weights = {t: engine.idf(t) for t in q_terms}
    q_figs = set(_FIG.findall(u.question))
    pct = asks_percentage(u.question)
    count = asks_count(u.question)
    out: list[_Cand] = []
    for h in hits:
        text = engine.retriever.report_text(h.chunk.report_id)
        prev: tuple[int, int] | None = None
        for s0, e in sentence_spans(text, h.chunk.start, h.chunk.end):
            starts = [s0]
            if prev and _ANAPHOR.match(text[s0:e]) and prev[1] <= s0 and s0 - prev[1] <= 2:
                # "Its actual spend was ..." / "This is 24.37% ...": the subject may be in the
                # previous sentence, so the pair is a candidate too (judged and quoted together).
                starts.append(prev[0])
            prev = (s0, e)
            for s in starts:
                cand = _score_sentence(u, h, text, s, s0, e, weights, q_figs, pct, count)
                if cand is not None:
                    out.append(cand)
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


# Report wording for common question words (stems): a question term also counts as matched
# when the sentence uses one of these. Kept small and general, not tuned per question.
_SYN: dict[str, set[str]] = {k: set(tokenize(v)) for k, v in {
    "resid": "population", "inhabit": "population", "live": "population",
    "overspend": "more than estimated actual", "underspend": "less than estimated actual",
    "exceed": "more than", "faith": "religious Jewish Muslim Christian Hindu Sikh",
    "parti": "Labour Conservative Liberal Democrats", "politic": "Labour Conservative Liberal",
    "wait": "waiting waited", "staff": "workforce", "workforc": "staff",
    "older": "65 aged", "elder": "65 aged", "carer": "carers caring",
}.items()}
_CAUSAL = re.compile(r"\b(because|due to|as a result|brought down by|driven by|caused by|owing to|"
                     r"reflect(?:s|ed)?|the reason|this was (?:because|due))\b", re.I)
_FREQUENCY = re.compile(r"\b(daily|weekly|fortnightly|monthly|quarterly|annually|yearly|every "
                        r"(day|week|month|year|\d+)|once a|twice a|times a)\b", re.I)
_NUMBER_WORD = re.compile(r"\b(two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
                          r"twenty|thirty|forty|fifty|hundred|thousand|dozen)\b", re.I)
_DIFFERENCE = re.compile(r"\b(more|less|fewer|higher|lower|greater|smaller) than\b|\bdifference\b|"
                         r"\bgap\b|\bexceed|\b(over|under)spen[dt]", re.I)
_ANAPHOR = re.compile(r"^(This|It|Its|These|That|Which|They|Their|Of these|Of those)\b")
_BOILERPLATE = {"What people expect", "The local authority commitment", "How we assess local authorities"}
_HEADING = re.compile(r"^(.{0,80}: local authority assessment|.{0,60} assessment|Published:.*|"
                      r"Assessment (published|start date):.*|Score:.*|Indicative score.*)$")
_FIG = re.compile(r"\d+(?:[.,]\d+)*")
_COUNT = re.compile(r"\b\d{1,3}(?:,\d{3})+\b(?!%)|\b\d+(?:\.\d+)? (?:million|thousand)\b")


def _new_figures(sent: str, q_figs: set[str]) -> list[str]:
    """Figures in the sentence that the question did not state; bare years don't count.
    Counts written as words ("nine areas", "six weeks") are figures too ("one" is not: it
    is mostly a pronoun)."""
    out = []
    for f in _FIG.findall(sent) + [w.lower() for w in _NUMBER_WORD.findall(sent)]:
        if f in q_figs or re.fullmatch(r"(19|20)\d\d", f):
            continue
        out.append(f)
    return out


def _distinct(cands: list[_Cand], n: int) -> list[_Cand]:
    seen, out = set(), []
    for c in cands:
        if c.hit.chunk.chunk_id in seen:
            continue
        seen.add(c.hit.chunk.chunk_id)
        out.append(c)
        if len(out) == n:
            break
    return out


def _overlaps(c: _Cand, picked: list[_Cand]) -> bool:
    return any(c.hit.chunk.report_id == p.hit.chunk.report_id and c.start < p.end and p.start < c.end
               for p in picked)


def _next_sentence(c: _Cand, engine: Engine) -> _Cand | None:
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    for s, e in sentence_spans(text, c.end, min(len(text), c.end + 600)):
        if s >= c.end:
            return _Cand(c.hit, s, e, text[s:e], c.score, c.coverage)
    return None


def _trim_to(c: _Cand, max_words: int) -> _Cand:
    # Quote stays exact: we keep a prefix of the sentence (offsets still index the report).
    words = list(re.finditer(r"\S+", c.text))
    cut = words[max_words - 1].end() if len(words) > max_words else len(c.text)
    return replace(c, end=c.start + cut, text=c.text[:cut])


def with_marker(sentence: str, n: int) -> str:
    """Put the marker inside the sentence's full stop: "... 32.98% [2]." """
    m = re.search(r"([.!?]+[\"”’')]*)$", sentence)
    if m:
        return f"{sentence[: m.start()]} [{n}]{m.group(1)}"
    return f"{sentence} [{n}]."


def _clean(s: str) -> str:
    return " ".join(s.split())


def _citation(n: int, c: _Cand, engine: Engine, see_also: bool = False) -> Citation:
    ch = c.hit.chunk
    row = engine.retriever.report(ch.report_id)
    page, page_end = row.pages(c.start, c.end) if row else (None, None)
    return Citation(
        n=n, report_id=ch.report_id, council=ch.council, page_kind=ch.page_kind,
        quality_statement=ch.quality_statement, section=ch.section, score=ch.score,
        quote=c.text, passage=ch.text, start=c.start, end=c.end,
        source=row.source if row else "", passage_start=ch.start, see_also=see_also,
        page=page, page_end=page_end,
    )
