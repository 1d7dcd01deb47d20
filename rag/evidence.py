"""Evidence: candidate sentences from retrieved passages, their ranking, and citations.
Public: `Candidate`, `rank_sentences`, `rerank_dense`, `cite`, `cite_span`, `abstained`.

The bottom of rag's answering stack: the router (rag/answer.py) and every answerer
(rag/extractive.py, rag/structured.py, rag/llm.py) build on it, and it imports none of them.
Every citation of the system is made here, by `cite_span` (a span of a report) or `cite` (a
candidate sentence).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from ingest.index import ReportRow
from ingest.profiles import all_grades, profile_named
from rag.engine import Engine
from rag.lexicon import pattern, vocab, words
from rag.query import Understanding, asks, asks_count, asks_percentage
from rag.retrieve import tokenize
from rag.tables import label_start
from rag.verify import looks_like_instruction
from reportqa.records import Answer, Chunk, Citation, Hit, Span, overlap
from reportqa.text import quotable_spans, sentence_key, sentence_spans, unnumbered_spans

NOT_IN_REPORTS = "The indexed reports don't say."


def abstained(q: str, text: str, see_also: tuple[Citation, ...] = (),
              hits: tuple[Hit, ...] = ()) -> Answer:
    """A "not in the reports" answer, with the closest passages as see-also citations."""
    if see_also:
        text += " Closest passages (see also): " + " ".join(f"[{c.n}]" for c in see_also)
    return Answer(q, text, True, see_also, hits)


FIGURE_WITH_UNIT = re.compile(r"£?\d+(?:[.,]\d+)*(?:%| per ?cent| days?| weeks?| months?| years?| hours?)?")
COMPARISON = pattern("cues", "comparison")


@dataclass(frozen=True)
class Candidate:
    """A sentence (or an antecedent + sentence pair) of a retrieved chunk, scored."""

    hit: Hit
    start: int
    end: int
    text: str
    score: float
    coverage: float
    confidence: float = 0.0
    core_start: int = -1  # where the sentence itself starts when paired with its antecedent
    read_p: float = -1.0  # the reader's probability that it answers; -1 when unread

    @property
    def span(self) -> Span:
        return (self.hit.chunk.report_id, self.start, self.end)


@dataclass(frozen=True)
class Weights:
    """The ranker's and the table answers' numbers, read from rag/vocab/weights.toml (each
    row says why)."""

    coverage: float
    rank: float
    rank_decay: float
    length_penalty: float
    figure_bonus: float
    no_figure_penalty: float
    no_figure_coverage_factor: float
    percent_bonus: float
    percent_missing_coverage_factor: float
    count_bonus: float
    ordinal_bonus: float
    frequency_bonus: float
    difference_bonus: float
    reason_bonus: float
    lean_bonus: float
    cut_coverage_factor: float
    boilerplate_penalty: float
    min_words: int
    min_words_sentence: int
    short_unpunctuated_words: int
    dense_offset: float
    dense_scale: float
    dense_rank_weight: float
    dense_weight: float
    dense_coverage_gate: float
    dense_coverage_floor: float
    reader_rank_weight: float
    rerank_top: int
    reader_top: int
    reader_doubt: float
    reader_top_doubt: int
    judgement_cover: float
    judgement_match: float
    judgement_row_words: int
    row_label_lines: int
    list_words: int
    list_topic_idf: float
    judgement_answer_words: int
    reason_words: int
    ranked_shown: int
    measure_cover: float
    measure_context_weight: float
    measure_skip_chars: int
    england_cover: float
    england_shown: int
    which_councils_shown: int
    which_councils_passages: int
    compare_passages: int
    compare_confidence_factor: float
    compare_words: int
    compare_score_words: int
    compare_min_words: int
    neighbour_p: float
    neighbour_join_margin: float
    second_sentence_ratio: float
    second_sentence_pool: int
    second_read_p: float
    second_read_gap: float
    unsure_pick_p: float
    weak_pair_p: float
    weak_pair_confidence: float
    why_hits: int
    restated_similarity: float
    requote_sure: float
    # Read by rag/retrieve.py itself (it sits below this module): here so every row is a field.
    ranker_best: int

    @classmethod
    def load(cls) -> Weights:
        rows = vocab("weights")
        return cls(**{f: rows[f]["value"] for f in cls.__dataclass_fields__})


W = Weights.load()


def rerank_dense(u: Understanding, cands: list[Candidate], engine: Engine) -> list[Candidate]:
    """Blend lexical scores with the embedder's question-sentence similarity for the top
    sentences; this catches paraphrase ("how rural" ~ "fourth most rural county")."""
    top = distinct_spans(cands, W.rerank_top)
    if not top:
        return []
    qv = engine.retriever.embed_query(u.content or u.question)
    sv = engine.sentences().embed([c.text for c in top])
    sims = sv @ qv
    out = []
    for c, sim in zip(top, sims, strict=True):
        meaning = (float(sim) - W.dense_offset) / W.dense_scale
        sem = min(1.0, max(0.0, meaning))
        gate = min(1.0, W.dense_coverage_gate * c.coverage + W.dense_coverage_floor)
        # Unclipped in the ranking score so near-ties still order by meaning.
        out.append(replace(c, score=c.score + W.dense_rank_weight * meaning,
                           confidence=(1 - W.dense_weight) * c.coverage + W.dense_weight * sem * gate))
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


def distinct_spans(cands: list[Candidate], n: int) -> list[Candidate]:
    seen, out = set(), []
    for c in cands:
        key = c.span
        if key in seen:
            continue
        seen.add(key)
        out.append(c)
        if len(out) == n:
            break
    return out


def _too_short(text: str, s: int, sent: str, n_words: int) -> bool:
    """A title or label, not an answer: under ``min_words`` words, unless a whole sentence
    of at least ``min_words_sentence`` ("Morale is high.", "Safety planning is weak."):
    capitalised, ending in a full stop, no label's colon, and after a sentence's end (a
    PDF line break inside a sentence leaves "Heartlands and Frimley ICBs." alone)."""
    if n_words >= W.min_words:
        return False
    before = text[:s].rstrip()
    return not (n_words >= W.min_words_sentence and sent[:1].isupper()
                and sent.rstrip().endswith(".") and ":" not in sent
                and (not before or before.endswith((".", "!", "?"))))


def _score_sentence(u: Understanding, h: Hit, text: str, s: int, core: int, e: int,
                    weights: dict[str, float], q_figs: set[str], pct: bool,
                    count: bool = False) -> Candidate | None:
    sent = text[s:e]
    if looks_like_instruction(sent):
        return None  # report text is data: an instruction-like sentence is never an answer
    toks = set(tokenize(sent))
    cov = term_coverage(weights, toks, _SYN)
    n_words = len(sent.split())
    unpunctuated = not re.search(r"[.!?]$", sent) and not re.search(r"\d", sent)
    # Short enough to be a title or label, unless a label line naming what is asked
    # ("Lead inspector: Gary Lamb" for "who was the lead inspector?").
    label_like = _too_short(text, s, sent, n_words) or (
        n_words < W.short_unpunctuated_words and unpunctuated)
    if (label_like and not _names_what_is_asked(u, sent, weights)) or _HEADING.match(sent) \
            or _FRAME.match(sent) or (sent.rstrip().endswith("?") and heading_line(text, s, e)):
        # Titles, headings ("What is it like to be a child or young person with SEND in this
        # area?", quoted as its own answer) and "Score: 3" lines are not answers to read out.
        return None
    score = (W.coverage * cov + W.rank / (1 + W.rank_decay * (h.rank - 1))
             - W.length_penalty * n_words)
    if u.wants_figure:
        # The answer to a figure question states a figure the question did not.
        if new_figures(sent, q_figs):
            score += W.figure_bonus
            if pct and "%" in sent:
                score += W.percent_bonus
            elif pct:
                cov *= W.percent_missing_coverage_factor
            elif count and _COUNT.search(sent):
                score += W.count_bonus
        else:
            cov *= W.no_figure_coverage_factor
            score -= W.no_figure_penalty
    if u.asks_rank and re.search(r"\b\d+(st|nd|rd|th)\b", sent):
        score += W.ordinal_bonus
    if u.asks_frequency and _FREQUENCY.search(sent):
        score += W.frequency_bonus
    if u.asks_difference and _DIFFERENCE.search(sent):
        score += W.difference_bonus
    if u.asks_reason and _CAUSAL.search(sent):
        score += W.reason_bonus
    if u.reason_for and _CUE[u.reason_for].search(sent):
        score += W.lean_bonus
    if re.search(r",\s*$", sent):  # a page cut mid-sentence
        cov *= W.cut_coverage_factor
    if h.chunk.section in BOILERPLATE:
        score -= W.boilerplate_penalty
    return Candidate(h, s, e, sent, score, cov, core_start=core)


def leaning(text: str) -> str:
    """"shortfall" or "strength": which of the two cues (rag/vocab/cues.toml) ``text`` matches
    more often; "" when neither does more."""
    low, high = (len(_CUE[name].findall(text)) for name in ("shortfall", "strength"))
    return "shortfall" if low > high else "strength" if high > low else ""


def ends_in_label(text: str) -> bool:
    """Does ``text`` end in a line with a colon and no full stop: a label and its value
    ("Inspection date: 12/09/2016 to 06/10/2016") or a lead-in whose list follows ("This
    should include:", alone or after the sentence it points back to)? Neither is a finding,
    nor the reason for one."""
    last = re.split(r"(?<=[.!?])\s+", text.strip())[-1]
    return bool(_LABEL_LINE.match(last))


def ends_in_lead_in(text: str) -> bool:
    """Does ``text`` end opening a list ("This should include:")? Without its items it says
    nothing. (A label with its value, "Inspection dates: 12 to 23 February 2024", does
    say something: when the inspection was.)"""
    return text.rstrip().endswith(":")


def is_finding(sent: str, templates: frozenset[str]) -> bool:
    """Could this sentence be an inspector's finding? Not a label line ("Inspection dates:
    15 to 19 July 2024", a judgement row) and not standard text that other organisations'
    reports print word for word (``templates``: CQC's commitments, a letter's closing lines)."""
    return not _LABEL_LINE.match(sent) and sentence_key(sent) not in templates


def rank_terms(u: Understanding, engine: Engine) -> list[str]:
    """Question terms that carry meaning: the council's own name is a filter, not a term."""
    council_words = set()
    for c in engine.derived().councils:
        if c.key in u.councils:
            for a in c.aliases:
                council_words.update(tokenize(a))
    q_terms = [t for t in dict.fromkeys(tokenize(u.content or u.question)) if t not in council_words]
    return q_terms or list(dict.fromkeys(tokenize(u.content or u.question)))


def _names_what_is_asked(u: Understanding, sent: str, weights: dict[str, float]) -> bool:
    """A label line naming someone ("Lead inspector: Rachel Griffiths, His Majesty's
    Inspector") is short and unpunctuated like a heading, but answers "who led ...?" when its
    label is what the question asks about (not "who is the director ...?")."""
    return (u.asks_name and bool(_LABEL_LINE.match(sent))
            and term_coverage(weights, set(tokenize(sent.split(":")[0])), _SYN) > 0)


def term_coverage(weights: dict[str, float], words: set[str],
                  syn: Mapping[str, set[str]] | None = None) -> float:
    """Share of the question terms' weight (idf) found in ``words``; a term also counts as
    found when one of its ``syn`` words is there."""
    syn = syn or {}
    total = sum(weights.values()) or 1.0
    return sum(w for t, w in weights.items() if t in words or syn.get(t, set()) & words) / total


def rank_sentences(u: Understanding, hits: list[Hit], engine: Engine) -> list[Candidate]:
    """Score every sentence of the retrieved chunks against the question (deterministic)."""
    q_terms = rank_terms(u, engine)
    weights = {t: engine.idf(t) for t in q_terms}
    q_figs = set(_FIG.findall(u.question))
    pct = asks_percentage(u.question)
    count = asks_count(u.question)
    # Read once here, not per sentence: each derived() call asks the index for its generation.
    templates = engine.derived().templates if u.reason_for is not None else frozenset()
    out: list[Candidate] = []
    for h in hits:
        text = engine.retriever.report_text(h.chunk.report_id)
        prev: tuple[int, int] | None = None
        for s0, e in unnumbered_spans(text, h.chunk.start, h.chunk.end):
            starts = [s0]
            if prev and _ANAPHOR.match(text[s0:e]) and _next_to(prev[1], s0):
                # "Its actual spend was ..." / "This is 24.37% ...": the subject may be in the
                # previous sentence, so the pair is a candidate too (judged and quoted together).
                starts.append(prev[0])
            prev = (s0, e)
            for s in starts:
                if any(overlap((h.chunk.report_id, s, e), a) for a in u.avoid):
                    continue
                if u.reason_for is not None and not is_finding(text[s:e], templates):
                    continue
                if u.wants_action and not ACTION.search(text, s, e):
                    continue
                cand = _score_sentence(u, h, text, s, s0, e, weights, q_figs, pct, count)
                if cand is not None:
                    out.append(cand)
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


def _cues() -> dict[str, Any]:
    """rag/vocab/cues.toml: synonyms (question stem -> report stems) and sentence cues."""
    return vocab("cues")


def _synonyms(rows: list[dict[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for row in rows:
        for q in tokenize(row["question"]):
            out.setdefault(q, set()).update(tokenize(row["report"]))
    return out


# Report wording for question words, and sentence cues per kind of question: data with
# provenance in rag/vocab/cues.toml (read once, at import).
_CUE_DATA = _cues()
_SYN = _synonyms(_CUE_DATA["synonym"])
_CUE = {c["name"]: re.compile(c["pattern"], re.I) for c in _CUE_DATA["cue"]}
_CAUSAL, _FREQUENCY, _DIFFERENCE = _CUE["causal"], _CUE["frequency"], _CUE["difference"]
# A sentence saying what someone is doing or has done about a problem.
ACTION = pattern("cues", "action_taken")
_NUMBER_WORD = pattern("cues", "number_word")
_QUANTITY_PHRASE = pattern("cues", "quantity_phrase")
_SHARE_FIGURE, _MONEY_FIGURE = pattern("cues", "share_figure"), pattern("cues", "money_figure")
_DURATION_FIGURE = pattern("cues", "duration_figure")
_AGE_FIGURE, _ORDINAL_FIGURE = pattern("cues", "age_figure"), pattern("cues", "ordinal_figure")
# A sum of money, an age, a length of time or an ordinal is no count of anything ("how many
# children ...?" is not answered by "£2m", "aged 16", "in the last 12 months" or "their 25th
# birthday").
_NOT_A_COUNT = re.compile("|".join(p.pattern for p in (_MONEY_FIGURE, _AGE_FIGURE,
                                                        _DURATION_FIGURE, _ORDINAL_FIGURE)), re.I)
_GRADE_STATED = pattern("cues", "grade_stated")
# "Good" alone is in too many sentences to tell; the longer grades name themselves.
_FAMILY_GRADES = tuple(g.lower() for g in all_grades() if len(g.split()) > 1)
# Sentence shapes (pointing back, page headers) and CQC's standard sections: data with
# provenance in rag/vocab/sentences.toml; case-sensitive.
_SHAPES = vocab("sentences")
_ANAPHOR, _HEADING = pattern("sentences", "anaphor"), pattern("sentences", "heading")
_FRAME = pattern("sentences", "report_frame")
_CONSEQUENCE = pattern("sentences", "consequence")
# What something is for ("The aim was to ...", "set up to tackle ..."): a reason for it.
PURPOSE = pattern("cues", "purpose")
_LABEL_LINE = pattern("sentences", "label_line")
_LIST_NUMBER = pattern("sentences", "list_number")
_EXAMPLES = pattern("sentences", "examples_follow")
BOILERPLATE = frozenset(next(r for r in _SHAPES["section"] if r["name"] == "boilerplate")["sections"])
_FIG = re.compile(r"\d+(?:[.,]\d+)*")
_COUNT = re.compile(r"\b\d{1,3}(?:,\d{3})+\b(?!%)|\b\d+(?:\.\d+)? (?:million|thousand)\b")


# A figure with its unit: "the 12 months before the inspection".
_FIG_WITH_UNIT = re.compile(r"\b(\d+(?:[.,]\d+)*)(\s*(?:%|per ?cent\b|(?:day|week|month|year|hour)s?\b))",
                            re.I)


def _asked_figures(question: str, text: str) -> tuple[set[str], str]:
    """The figures the question states, and ``text`` without the ones it states in their unit.
    A figure the question gives with a unit is that measure, not any use of the number: asked
    "how many children ... in the 12 months before?", "12 children" is a new figure, "12
    months" is not."""
    bare = set(_FIG.findall(_FIG_WITH_UNIT.sub(" ", question)))
    for fig, unit in _FIG_WITH_UNIT.findall(question):
        word = unit.strip().lower()
        form = (r"\s*(?:%|per ?cent\b)" if word[:1] in ("%", "p")
                else rf"\s*{re.escape(word.removesuffix('s'))}s?\b")
        text = re.sub(rf"\b{re.escape(fig)}{form}", " ", text, flags=re.I)
    return bare, text


def states_asked_figure(u: Understanding, text: str) -> bool:
    """Does ``text`` state a figure the question did not, in the unit it asks for (a share
    as a share, a length as a length, a count as other than money, money in pounds)? Only
    asked of questions that want a count, share, rate or length ("how many", "what
    percentage", "how long")."""
    asked, text = _asked_figures(u.question, text)
    # A share or a length is often stated without a digit ("half of", "a few weeks"); a
    # count is not ("a handful of hours" is no number of children).
    if u.unit == "%" or asks("asks_length", u.question):
        unit = _SHARE_FIGURE if u.unit == "%" else _DURATION_FIGURE
        return (bool(new_figures(text, asked)) or _QUANTITY_PHRASE.search(text) is not None) \
            and unit.search(text) is not None
    if not new_figures(text, asked):
        # "How much teaching do they get?" is answered by "a handful of hours"; a count or
        # a sum of money is not, but "how many referrals are declined?" is by "approximately
        # half of referrals ...": the share of them.
        if asks_count(u.question):
            return _SHARE_FIGURE.search(text) is not None
        return u.unit != "£" and _QUANTITY_PHRASE.search(text) is not None
    if asks_count(u.question):
        return bool(new_figures(_NOT_A_COUNT.sub(" ", text), asked))
    if u.unit == "£":
        return _MONEY_FIGURE.search(text) is not None
    return True


_NOT_A_NAME = words("sentences", "not_a_name") | words("sentences", "role_initials")
_WORD = re.compile(r"[A-Za-z][\w’'&-]*")
_SMALL = frozenset({"of", "the", "and", "for", "in", "to", "a", "an", "on", "at"})
_QUOTED_NAME = re.compile(r"\s*[‘“'\"][A-Z][^‘’“”'\"\s]*(?: [^‘’“”'\"\s]+){0,3}[’”'\"]")


_COUNTED = pattern("questions", "counted_noun")


def _is_year(figure: str) -> bool:
    """A bare year ("2024"): a date, not a count or a figure asked for."""
    return re.fullmatch(r"(?:19|20)\d\d", figure) is not None


def counts_what_is_asked(question: str, text: str) -> bool | None:
    """Does ``text`` count what a "how many X ...?" question asks about: a number followed,
    within three words, by X or a report word for it ("742 children and young people", "27
    adoptions")? None when the question names nothing counted ("how many are there?")."""
    m = _COUNTED.search(question)
    if m is None:
        return None
    noun = tokenize(m.group(1))
    if not noun:
        return None
    wanted = {noun[0]} | _SYN.get(noun[0], set())
    for fig in _FIG.finditer(text):
        if _is_year(fig.group(0)):
            continue
        after = tokenize(" ".join(text[fig.end():fig.end() + 60].split()[:3]))
        if wanted & set(after):
            return True
    return False


_SHARE = re.compile(r"\d+(?:\.\d+)?\s*(?:%|per ?cent\b)", re.I)


def counts_anything(text: str) -> bool:
    """Does ``text`` count anything: a figure that is no share ("71%"), sum of money, age,
    length of time, ordinal or year?"""
    rest = _SHARE.sub(" ", _NOT_A_COUNT.sub(" ", text))
    return any(not _is_year(f) for f in _FIG.findall(rest))


def states_a_name(u: Understanding, text: str) -> bool:
    """Does ``text`` name something the question does not: a capitalised word that does not
    open its sentence, is not a month or a clause opener, is not one of the question's words
    and is not an acronym of them ("DCS" for "director of children's services")?"""
    typed = [w.lower().replace("’", "'").removesuffix("'s") for w in _WORD.findall(u.question)]
    # A hyphenated word of the question is its parts too: "Southend" in the sentence is
    # named by "Southend-on-Sea's" in the question (and "Stockton-on-Tees" in the sentence
    # by "stockton on tees", ``_is_asked``).
    asked = set(typed) | {p for w in typed for p in w.split("-") if p}
    # Initials of the question's words in order, small words skipped: "director of
    # children's services" -> "dcs".
    initials = "".join(w[0] for w in typed if w not in _SMALL)
    for s, e in sentence_spans(text, 0, len(text)):
        # The opening word is capitalised anyway, unless the report quotes it as a name
        # ("‘Bury2gether’, the local parent carer forum, ...", "‘Families Together’ works
        # with ..."), not a whole quoted sentence ("“I feel safe ...”").
        sentence = text[s:e]
        for w in _WORD.findall(sentence)[0 if _QUOTED_NAME.match(sentence) else 1:]:
            bare = w.replace("’", "'").removesuffix("'s")
            if (w[0].isupper() and w not in _NOT_A_NAME and not _is_asked(bare.lower(), asked)
                    and not (bare.isupper() and bare.lower() in initials)):
                return True
    return False


_ORGANISATION_WORDS = words("sentences", "organisation_words") | _NOT_A_NAME
_CAPITALISED_PAIR = re.compile(r"(?=\b([A-Z][\w’'-]+) ([A-Z][\w’'-]+)\b)")
_TITLED = re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Professor|Councillor|Cllr)\.? [A-Z][\w’'-]+")


def names_a_person(text: str) -> bool:
    """Does ``text`` name a person: a title and a name ("Ms Hammond"), or two capitalised
    words side by side, neither a word of an organisation, place or post ("Catherine Heron",
    not "NHS Northwest London" or "Children’s Improvement Board")?"""
    if _TITLED.search(text):
        return True
    return any(a not in _ORGANISATION_WORDS and b not in _ORGANISATION_WORDS
               for a, b in (m.groups() for m in _CAPITALISED_PAIR.finditer(text)))


def _is_asked(word: str, asked: set[str]) -> bool:
    """Is ``word`` (lower case) the question's own: one of its words, or hyphenated from them
    and small words ("stockton-on-tees")?"""
    return word in asked or all(p in asked or p in _SMALL for p in word.split("-") if p)


def states_a_grade(text: str) -> bool:
    """Does ``text`` state a grade: a word that gives one ("judged", "rated") or a grade of
    any report family's scale ("requires improvement to be good", "typically positive ...")?"""
    low = text.lower()
    return bool(_GRADE_STATED.search(text)) or any(g in low for g in _FAMILY_GRADES)


def new_figures(sent: str, q_figs: set[str]) -> list[str]:
    """Figures in the sentence that the question did not state; bare years don't count.
    Counts written as words ("nine areas", "six weeks") are figures too; "one" only before
    a unit ("one day a week"): elsewhere it is mostly a pronoun."""
    out = []
    sent = _LIST_NUMBER.sub("", sent, count=1)
    for f in _FIG.findall(sent) + [w.lower() for w in _NUMBER_WORD.findall(sent)]:
        if f in q_figs or _is_year(f):
            continue
        out.append(f)
    return out


def distinct_chunks(cands: list[Candidate], n: int) -> list[Candidate]:
    seen, out = set(), []
    for c in cands:
        if c.hit.chunk.chunk_id in seen:
            continue
        seen.add(c.hit.chunk.chunk_id)
        out.append(c)
        if len(out) == n:
            break
    return out


def overlaps(c: Candidate, picked: list[Candidate]) -> bool:
    return any(overlap(c.span, p.span) for p in picked)


def next_sentence(c: Candidate, engine: Engine) -> Candidate | None:
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    for s, e in quotable_spans(text, c.end, min(len(text), c.end + 600)):
        if s >= c.end:
            return Candidate(c.hit, s, e, text[s:e], c.score, c.coverage)
    return None


def neighbours(c: Candidate, engine: Engine) -> tuple[Candidate | None, Candidate | None]:
    """The sentences right before and right after the candidate in the same paragraph
    (None where the paragraph begins or ends, or a heading line stands there). A finding and
    the heading line after it are no neighbours either way round (Plymouth's care leavers
    heading was quoted with the last finding on children in care): the finding ends the
    section before. A label line next to a label line is the next row of its block
    ("Inspection dates: ..." then "Dates of previous inspection: ...")."""
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    before = sentence_before(text, c.start)
    said = text[before[0]:before[1]] if before else ""
    ends = bool(said) and heading_line(text, c.start, c.end) \
        and ENDS_AS_SENTENCE.search(said) is not None
    prev = Candidate(c.hit, *before, said, c.score, c.coverage) \
        if before and not heading_line(text, *before) and not ends else None
    nxt = next_sentence(c, engine)
    heads = nxt is not None and ENDS_AS_SENTENCE.search(c.text) is not None \
        and heading_line(text, nxt.start, nxt.end)
    return prev, nxt if nxt is not None and _next_to(c.end, nxt.start) and not heads else None


def own_line(text: str, start: int, end: int) -> bool:
    """Does text[start:end] stand on a line of its own (nothing but spaces after it)?"""
    return (start == 0 or text[start - 1] == "\n") and _LINE_ENDS.match(text, end) is not None


_LINE_ENDS = re.compile(r"[ \t]*(?:\n|\Z)")  # nothing but spaces to the line's end


def heading_line(text: str, start: int, end: int) -> bool:
    """Is text[start:end] a line of its own that heads what follows ("What needs to
    improve?", "Areas for improvement"): short, and a question or no sentence? Quoted on after
    a finding it read as part of it ("... begun to address this. What needs to improve [1]?")."""
    line, n = text[start:end], len(text[start:end].split())
    # A question heading may run long ("What is it like to be a child or young person with
    # SEND in this area?"); a label line is short.
    return own_line(text, start, end) and (line.rstrip().endswith("?") and n <= 20
                                           or n <= 12 and not ENDS_AS_SENTENCE.search(line))


def joined(c: Candidate, neighbour: Candidate, engine: Engine) -> Candidate:
    """The candidate quoted together with a sentence next to it, before or after, as one
    exact passage of its report."""
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    start, end = min(c.start, neighbour.start), max(c.end, neighbour.end)
    return replace(c, start=start, end=end, text=text[start:end])


def self_contained(c: Candidate, engine: Engine, max_words: int) -> Candidate:
    """A quote that opens by pointing back ("This is known as 'waiting well'.", "It is aware
    of the need to ...") with the sentence it points back to, when that one is in the same
    paragraph, is no heading, and both fit in ``max_words`` (with the full stop after the
    marker): alone it names nothing. The pick is the reader's; only what is quoted grows."""
    if c.core_start > c.start or not _ANAPHOR.match(c.text.lstrip("◼•● ")):
        return c
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    before = sentence_before(text, c.start, line_break=False)
    if before is None or heading_line(text, *before) \
            or not _fits(len(text[before[0]:c.end].split()), max_words):
        return c
    return with_antecedent(c, engine)


def sentence_before(text: str, start: int, line_break: bool = True) -> tuple[int, int] | None:
    """The sentence right before ``start`` in the same paragraph, if there is one: a space
    between, or a line break unless ``line_break`` is False (a new line of a PDF's text is
    often a new paragraph or a heading)."""
    before = [(s, e) for s, e in quotable_spans(text, max(0, start - 600), start)
              if _next_to(e, start) and (line_break or "\n" not in text[e:start])]
    return before[-1] if before else None


def _next_to(end: int, start: int) -> bool:
    """Does a sentence starting at ``start`` follow one ending at ``end`` in the same
    paragraph (a space or a line break between)?"""
    return 0 <= start - end <= 2


def points_back(c: Candidate) -> bool:
    """Does the sentence lean on the one before it ("As a result, ...", "This means ...")?"""
    return bool(_CONSEQUENCE.match(c.text) or _ANAPHOR.match(c.text))


def may_explain_the_one_before(sentence: str, purpose: bool = True) -> bool:
    """Can a sentence say why the one before it is so? It points back to it ("This meant
    ...", "These places are intended to ...") or gives a cause ("... due to ...") or, where
    ``purpose`` allows (what was done, not a shortfall), a purpose ("The aim was to ..."); and
    it does not open with what followed from it ("As a result, ...": a consequence). It does
    not end in a label line (``ends_in_label``): a label with its value ("Inspection dates:
    ...") explains nothing, nor does a lead-in ("This should include:") without its list."""
    return not _CONSEQUENCE.match(sentence) and not ends_in_label(sentence) and bool(
        _ANAPHOR.match(sentence) or _CAUSAL.search(sentence)
        or (purpose and PURPOSE.search(sentence)))


def with_antecedent(c: Candidate, engine: Engine) -> Candidate:
    """The sentence with the one right before it in the same paragraph, as one candidate
    (``core_start`` marks the sentence itself); unchanged when there is none."""
    if c.core_start > c.start:  # already paired with its antecedent
        return c
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    before = sentence_before(text, c.start)
    if before is None:
        return c
    return replace(c, start=before[0], text=text[before[0]:c.end], core_start=c.start)


def gives_cause(c: Candidate) -> bool:
    """Does the sentence state a cause or a consequence itself ("because", "as a result")?"""
    return bool(_CAUSAL.search(c.text) or _CONSEQUENCE.match(c.text))


def with_sequel(c: Candidate, engine: Engine, max_words: int, *, any_next: bool = False) -> Candidate:
    """The sentence with the next one in the same paragraph when that one points back to it
    ("This is because ...", "As a result, ...") or ``any_next``, as one candidate, if both fit
    in ``max_words``; unchanged otherwise."""
    nxt = next_sentence(c, engine)
    if (nxt is None or not _next_to(c.end, nxt.start) or not (any_next or points_back(nxt))
            or not _fits(len(c.text.split()) + len(nxt.text.split()), max_words)
            or heading_line(engine.retriever.report_text(c.hit.chunk.report_id), nxt.start,
                            nxt.end)):
        return c
    return _through(c, nxt.end, engine)


def quoted_words(cands: Iterable[Candidate]) -> int:
    """Words these quotes take in an answer: each one's words and the full stop after its
    marker ("... drift [1]."), which reads as a word too (`_fits`)."""
    return sum(len(c.text.split()) + 1 for c in cands)


def _fits(words: int, max_words: int) -> bool:
    """Do ``words`` words of quote fit an answer of ``max_words``? The full stop after the
    citation marker ("... drift [1].") reads as a word too."""
    return words <= max_words - 1


def _through(c: Candidate, end: int, engine: Engine) -> Candidate:
    """The candidate quoted on to ``end`` of its report (offsets stay exact)."""
    text = engine.retriever.report_text(c.hit.chunk.report_id)
    return replace(c, end=end, text=text[c.start:end])


# A list item opens with a bullet (older PDFs' symbol-font bullets are private-use
# characters, \uf02d, \uf06e) or runs on in lower case.
LIST_ITEM = re.compile(r"^\s*(?:[◼•●▪*–\-\ue000-\uf8ff]|[a-z])")
# Text that ends as a sentence does (a heading or label line does not).
ENDS_AS_SENTENCE = re.compile(r"[.!?][\"”’')]*\s*$")


def with_elaboration(c: Candidate, engine: Engine, max_words: int, *,
                     examples: bool) -> Candidate:
    """A sentence that opens a list ("... with a particular focus on the:") with the items
    after it, as one candidate, as many as fit in ``max_words`` (the sentence alone answers
    nothing). With ``examples``, a sentence with the next one when that one gives its
    examples ("For example, ...", "Examples include ...") and both fit."""
    nxt = next_sentence(c, engine)
    if nxt is None or not _next_to(c.end, nxt.start):
        return c
    if ends_in_lead_in(c.text):
        end, words = c.end, len(c.text.split())
        while (nxt is not None and _next_to(end, nxt.start) and LIST_ITEM.match(nxt.text)
               and _fits(words + len(nxt.text.split()), max_words)):
            end, words = nxt.end, words + len(nxt.text.split())
            nxt = next_sentence(replace(c, end=end), engine)
    elif examples and _EXAMPLES.match(nxt.text) \
            and _fits(len(c.text.split()) + len(nxt.text.split()), max_words):
        end = nxt.end
    else:
        return c
    return _through(c, end, engine)


def trim_to(c: Candidate, max_words: int) -> Candidate:
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


def section_heading(row: ReportRow | None, text: str, start: int, chunk: Chunk | None,
                    eng: Engine) -> str | None:
    """The heading a quote sits under as its report prints it, for a report of a family with a
    profile: the last line above the quote that is one of the profile's headings (its
    `sections`, `findings` and list headings, on a line of their own: "What does the area
    partnership need to do better?") or opens with one of its judgement names after the
    judgement table ("The experiences and progress of care leavers: requires improvement to be
    good"). The chunker takes any short line as a heading, so quotes were labelled with a table
    cell ("Manchester ICB"), a signature or the judgement section before theirs (a chat review:
    five reports). Display only: chunks keep their section, which the embedder and the reader
    read (filing chunks under these headings instead read worse: evals/README.md). The chunk's
    section stands when it is itself such a heading and comes later. None for reports without
    a profile, or with no such heading above the quote."""
    prof = profile_named(row.metadata.get("family")) if row else None
    if row is None or prof is None:
        return None
    table_end = max((j.end for j in eng.derived().judgements if j.report_id == row.report_id),
                    default=0)
    at = _heading_lines(row.content_hash, text, prof.judgements, prof.headings)
    found = [(s, h) for s, h, judged in at if s < start and (s >= table_end or not judged)]
    if not found:
        return None
    s, heading = found[-1]
    if chunk and chunk.section:
        filed, title = text.rfind(chunk.section, 0, start), " ".join(chunk.section.split())
        if filed > s and any(h == title for _, h, _ in at):
            return None
    return heading


@lru_cache(maxsize=64)
def _heading_lines(content_hash: str, text: str, judgements: tuple[str, ...],
                   headings: tuple[str, ...]) -> tuple[tuple[int, str, bool], ...]:
    """(line start, line, whether it names a judgement) of every line of ``text`` that opens
    with one of the ``judgements`` (a report's judgement table and its section headings) or is
    one of the ``headings`` (a closing "?" or ":" may be left off or added). Keyed by the
    report's content (a str caches its own hash, so the text costs nothing to key by)."""
    found: list[tuple[int, str, bool]] = []
    if judgements:
        opening = re.compile(r"^(?:" + "|".join(re.escape(n) for n in judgements) + r")\b.*$",
                             re.I | re.M)
        found += [(m.start(), " ".join(m.group(0).split()), True) for m in opening.finditer(text)]
    if headings:
        whole = re.compile(r"^[ \t]*(?:" + "|".join(re.escape(h.rstrip("?:")) for h in headings)
                           + r")[ \t]*[?:]?[ \t]*$", re.I | re.M)
        found += [(m.start(), " ".join(m.group(0).split()), False) for m in whole.finditer(text)]
    return tuple(sorted(found))


def cite_span(n: int, report_id: str, eng: Engine, start: int, end: int, *,
              chunk: Chunk | None = None, council: str | None = None,
              statement: str | None = None, score: int | None = None,
              see_also: bool = False) -> Citation:
    """The one citation builder: report_id[start:end], its page, and the chunk that holds it
    as the passage (``chunk``, else the chunk at ``start``). A CQC table cell is quoted
    with the label lines above it (rag/tables.py `label_start`)."""
    text = eng.retriever.report_text(report_id)
    cells = eng.derived().cells.get(report_id)
    if cells and (start, end) in cells:
        start = label_start(text, start, end, cells, W.row_label_lines)
    ch = chunk or eng.retriever.chunk_at(report_id, start)
    row: ReportRow | None = eng.retriever.report(report_id)
    page, page_end = row.pages(start, end) if row else (None, None)
    p0, p1 = (ch.start, ch.end) if ch else block_around(
        text, start, end, *eng.retriever.chunks_beside(report_id, start, end))
    return Citation(
        n=n, report_id=report_id, council=council,
        page_kind=chunk.page_kind if chunk else (row.metadata.get("page_kind") if row else None),
        quality_statement=statement or (ch.quality_statement if ch else None),
        section=section_heading(row, text, start, ch, eng) or (ch.section if ch else None),
        score=score,
        quote=text[start:end], passage=ch.text if ch else text[p0:p1],
        start=start, end=end, source=row.source if row else "",
        passage_start=p0, see_also=see_also, page=page, page_end=page_end,
    )


def block_around(text: str, start: int, end: int, before: Chunk | None,
                 after: Chunk | None) -> tuple[int, int]:
    """The passage of a quote no chunk holds: a line the chunker took for a heading, such as
    the last row of an Ofsted judgement table ("Overall effectiveness Inadequate", filed as
    the heading of the summary below it). Shown alone, the row lost its table; so the passage
    runs from the chunk it closes to the end of the chunk it opens, each only when nothing
    but white space lies between (another heading between means another block)."""
    s = before.start if before and not text[before.end:start].strip() else start
    e = after.end if after and not text[end:after.start].strip() else end
    return s, e


def cite(n: int, c: Candidate, engine: Engine, see_also: bool = False) -> Citation:
    """A citation of a candidate sentence, with its own chunk as the passage."""
    ch = c.hit.chunk
    return cite_span(n, ch.report_id, engine, c.start, c.end, chunk=ch, council=ch.council,
                     statement=ch.quality_statement, score=ch.score, see_also=see_also)
