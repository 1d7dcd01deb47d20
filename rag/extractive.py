"""The extractive answerer: quote the report sentences that best answer the question, mark a
weak match as uncertain, or say the reports don't say. Public: `ExtractiveAnswerer`,
`extractive_for`.

Sentences come from rag/evidence.py (lexical ranking over the retrieved passages); they are
re-ranked by the trained reader (rag/reader.py) when its weights ship, else by MiniLM
similarity over the top few. It only ever quotes report text, so it cannot invent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ingest.structure import STATEMENTS
from rag.engine import Engine
from rag.evidence import (
    COMPARISON,
    ENDS_AS_SENTENCE,
    FIGURE_WITH_UNIT,
    NOT_IN_REPORTS,
    Candidate,
    W,
    abstained,
    cite,
    counts_anything,
    counts_what_is_asked,
    distinct_chunks,
    distinct_spans,
    ends_in_lead_in,
    gives_cause,
    joined,
    names_a_person,
    neighbours,
    next_sentence,
    overlaps,
    points_back,
    quoted_words,
    rank_sentences,
    rerank_dense,
    self_contained,
    states_a_grade,
    states_a_name,
    states_asked_figure,
    trim_to,
    with_antecedent,
    with_elaboration,
    with_marker,
    with_sequel,
)
from rag.judgement_answers import inspected_in, report_metadata
from rag.lexicon import words
from rag.query import Understanding, asks
from rag.reader import MODEL_DIR, SentenceReader, order_score, pair_text, shared_reader
from rag.reader import available as reader_available
from rag.retrieve import tokenize
from reportqa.errors import ReportQAError
from reportqa.records import Answer, Hit
from reportqa.settings import Settings
from reportqa.text import clean_quote

MAY_ANSWER = "Not certain, but the closest passage may answer this: "
MAY_ANSWER_TWO = "Not certain, but the closest passages may answer this: "


READERS = ("auto", "cross", "lexical")


def read_candidates(u: Understanding, lexical: list[Candidate], reader: SentenceReader,
                    engine: Engine, lift: Callable[[float, float], float]) -> list[Candidate]:
    """Re-rank the lexical ranker's top distinct sentences by the reader's probability that
    each answers the question (less a little per lexical rank step, so near-ties keep the
    lexical order).

    Confidence stays the lexical ranker's, for the question as a whole (word overlap and
    meaning of its best sentence): on held-out documents the reader chooses the sentence far
    better, but its probabilities alone separate answerable from unanswerable questions
    worse (evals/README.md). ``lift`` raises it where the reader is sure of a sentence, or
    fairly sure of it while the words overlap some (given the question's confidence)."""
    top = distinct_spans(lexical, W.reader_top)
    if not top:
        return []
    base = rerank_dense(u, lexical, engine)[0].confidence
    probs = _read(u, top, reader)
    if max(probs) < W.reader_doubt:  # none looks right: the answer may rank lower by words
        more = distinct_spans(lexical, W.reader_top_doubt)[len(top):]
        top, probs = top + more, probs + _read(u, more, reader)
    out = [replace(c, score=order_score(p, i, W.reader_rank_weight),
                   confidence=max(base, lift(p, base)), read_p=p)
           for i, (c, p) in enumerate(zip(top, probs, strict=True))]
    out.sort(key=lambda c: (-c.score, c.hit.rank, c.start))
    return out


def _read(u: Understanding, cands: list[Candidate], reader: SentenceReader) -> list[float]:
    """The reader's probability that each candidate answers, read as it was trained: with
    the passage's council and section before the sentence."""
    if not cands:
        return []
    return list(reader.score(u.for_reader, [pair_text(c.hit.chunk.council, c.hit.chunk.section,
                                                      c.text) for c in cands]))


def needs_figure(u: Understanding) -> bool:
    """Only a figure answers it: a count, share, rate or length, asked neither yes or no, nor
    as a comparison, nor why ("why are a small number of meetings late?" asks a reason)."""
    return u.asks_quantity and not (u.yes_no or u.compares or u.asks_reason)


def _another_inspection(u: Understanding, c: Candidate, engine: Engine) -> bool:
    """Does the question ask about an inspection other than the one this report is of (the
    previous one, or a year the report is not from)?"""
    return u.other_inspection or not inspected_in(u, report_metadata(c.hit.chunk.report_id, engine))


def fitting(first: Candidate, rest: list[Candidate], max_words: int) -> list[Candidate]:
    """``first``, then those of ``rest`` that neither overlap it nor take the quote past
    ``max_words``."""
    out, words = [first], len(first.text.split())
    for c in rest:
        if not overlaps(c, out) and words + len(c.text.split()) <= max_words:
            out.append(c)
            words += len(c.text.split())
    return out


def within(picked: list[Candidate], max_words: int) -> list[Candidate]:
    """The picks an answer of ``max_words`` words has room for, as a reader counts them: each
    quote's words and the full stop after its marker ("... drift [1]."). The steps that pick
    count a quote's words alone, so two quotes could come to 76 or 77 words: the last quotes
    go first, and a first quote too long alone is cut (its offsets stay exact)."""
    while len(picked) > 1 and quoted_words(picked) > max_words:
        picked = picked[:-1]
    if quoted_words(picked) > max_words:
        return [trim_to(picked[0], max_words - 1)]
    return picked


# Words that ask for a grade (questions.toml `grade_asking`) and CQC's word for it: what is
# left of a grade question without them and its council's name is what it asks the grade of.
_GRADE_WORDS = {t for w in (*words("questions", "grade_asking"), "score scores scored")
                for t in tokenize(w)}


def _another_statements_score(u: Understanding, c: Candidate, engine: Engine) -> bool:
    """Is ``c`` a CQC score cell ("Score: 3 / 3 - Evidence shows a good standard") of a
    quality statement the grade question does not ask about? A cell says nothing but its
    score: "What grade did Staffordshire get for children in care?" is not answered by its
    Safeguarding page's, nor "What score did Darlington get for care leavers?" by its Care
    provision page's. A question naming no topic ("what score did it get?") may be."""
    rid, start, end = c.span
    d = engine.derived()
    if rid not in d.cells:  # no CQC table cell in its report: nothing to look up
        return False
    row = next((r for r in d.scores
                if r.report_id == rid and r.start < end and start < r.end), None)
    if row is None or row.statement in u.statements:
        return False
    topic = set(u.terms) - _GRADE_WORDS - set(tokenize(" ".join(u.councils)))
    # Most of what is asked must be the statement's words, or its theme's ("working with
    # people"): "care leavers" shares only "care" with "Care provision, integration and
    # continuity".
    named = set(tokenize(f"{row.statement} {STATEMENTS.get(row.statement, '')}"))
    return bool(topic) and len(topic & named) * 2 <= len(topic)


class ExtractiveAnswerer:
    """Quote the report sentences that best answer the question; abstain when none does."""

    name = "extractive"

    def __init__(self, threshold: float = 0.34, max_words: int = 75,
                 uncertain_threshold: float = 1.0, reader: SentenceReader | None = None,
                 reader_thresholds: tuple[float, float] = (1.0, 1.0)) -> None:
        self.threshold = threshold
        self.max_words = max_words
        self.uncertain_threshold = uncertain_threshold
        self.reader = reader
        # The reader's probabilities at which its pick is answered / quoted as uncertain
        # even when word overlap alone would say less.
        self.reader_thresholds = reader_thresholds

    def _lift(self, p: float, base: float) -> float:
        sure, maybe = self.reader_thresholds
        if p >= sure:
            return self.threshold
        # Two weak signals that agree, some word overlap and some reader belief, are worth
        # quoting as "may answer this" (weights.toml: weak_pair_p, weak_pair_confidence).
        weak_pair = p >= W.weak_pair_p and base >= W.weak_pair_confidence
        return self.uncertain_threshold if p >= maybe or weak_pair else 0.0

    def compose(self, u: Understanding, hits: list[Hit], engine: Engine) -> Answer:
        lexical = rank_sentences(u, hits, engine)
        cands = (read_candidates(u, lexical, self.reader, engine, self._lift)
                 if self.reader is not None else rerank_dense(u, lexical, engine))
        if u.asks_grade or asks("asks_score", u.question):
            cands = [c for c in cands if not _another_statements_score(u, c, engine)]
        figureless = bool(cands) and needs_figure(u) and not states_asked_figure(u, cands[0].text)
        if cands and self.uncertain_threshold <= cands[0].confidence < self.threshold \
                and not figureless:
            return self._uncertain(u, cands, hits, engine)
        if cands and u.reason_for is not None and u.avoid and cands[0].confidence < self.threshold:
            # "Why?" after a quoted answer (``avoid`` holds its quotes) is asked of that report,
            # which does discuss it: the closest finding is worth quoting as uncertain, never
            # "the reports don't say".
            return self._uncertain(u, cands, hits, engine)
        if not cands or cands[0].confidence < self.threshold:
            return self._not_found(u, cands, hits, engine)
        picked = self._pick(self._elaborated(u, self._reasoned(u, cands, engine), engine), engine)
        if u.asks_quantity and not u.asks_reason \
                and not any(states_asked_figure(u, c.text) for c in picked):
            # "How many ...?" answered by the best sentence with no figure in it: the
            # reports don't state the figure. Asked yes or no or to compare ("is the number
            # ... higher?", "how does it compare to national?"), words can answer: quote the
            # passage as one that may.
            if not needs_figure(u):
                return self._uncertain(u, cands, hits, engine)
            return self._not_found(u, cands, hits, engine)
        if u.asks_grade and not (u.asks_reason or u.asks_effect) \
                and _another_inspection(u, picked[0], engine) \
                and not any(states_a_grade(c.text) for c in picked):
            # "What grade did X get at its previous inspection?" answered by a sentence that
            # mentions that inspection but states no grade: the reports don't say.
            return self._not_found(u, cands, hits, engine)
        if asks("asks_person_in_post", u.normalised) \
                and not any(names_a_person(c.text) for c in picked):
            # "Who is Westminster's director of adult social care?" answered by a sentence
            # naming only organisations: the reports don't name the post holder.
            return self._not_found(u, cands, hits, engine)
        if u.asks_name and not any(states_a_name(u, c.text) for c in picked):
            # "What is the app called?" answered by a sentence that names nothing ("they
            # produced a care leaver app"): the reports don't say.
            return self._not_found(u, cands, hits, engine)
        if needs_figure(u) and not states_asked_figure(u, picked[0].text):
            # The second pick states the figure asked and the first does not: it leads, so
            # the neighbour joined to the first cannot crowd it out ("what share of stockton
            # carers used a support group" quoted an online platform's 165 carers alone).
            picked = sorted(picked, key=lambda c: not states_asked_figure(u, c.text))
        picked = self._counting_first(u, picked, cands)
        # Only now: the neighbour and a runner-up change what is quoted, never whether the
        # question is answered. The runner-up of an unsure pick needs no bar of its own: the
        # pick passed it, and an unsure reader scores the runner-up low too.
        if len(picked) == 1 and 0 <= picked[0].read_p < W.unsure_pick_p:
            picked = self._runner_up(picked, cands, self.max_words, 0.0)
        picked = within(self._with_neighbour(u, picked, cands, engine), self.max_words)
        room = self.max_words - quoted_words(picked[1:])  # left by the other quotes
        picked = [self_contained(picked[0], engine, room), *picked[1:]]
        cites = tuple(cite(i + 1, c, engine) for i, c in enumerate(picked))
        text = " ".join(with_marker(clean_quote(c.text), i + 1) for i, c in enumerate(picked))
        return Answer(u.question, text, False, cites, tuple(hits), answerer=self.name,
                      confidence=cands[0].confidence)

    @staticmethod
    def _not_found(u: Understanding, cands: list[Candidate], hits: list[Hit],
                   engine: Engine) -> Answer:
        """"Not in the reports", with the closest passages as see-also citations."""
        see = tuple(cite(i + 1, c, engine, see_also=True) for i, c in
                    enumerate(distinct_chunks(cands, 3)))
        ans = abstained(u.question, NOT_IN_REPORTS + " No passage in the indexed reports "
                        "answers this question.", see, tuple(hits))
        return replace(ans, confidence=cands[0].confidence if cands else 0.0)

    def _uncertain(self, u: Understanding, cands: list[Candidate], hits: list[Hit],
                   engine: Engine) -> Answer:
        """Too weak a match to state as the answer, too close to say "not in the reports":
        quote the best sentence, marked as possibly answering, and the next best of the same
        report when it fits (unsure, the reader's second choice holds the answer about one time
        in four that its first does)."""
        best = self._pick(self._elaborated(u, self._reasoned(u, cands[:1], engine), engine),
                          engine)[0]
        # The marking words count towards the answer's length too.
        words = self.max_words - len(MAY_ANSWER.split())
        # Quoted as it would be as an answer: with a neighbour the reader reads it better with.
        best = self._with_neighbour(u, [best], [best], engine, words)[0]
        room = words - 1  # and the full stop after "[1]"
        if len(best.text.split()) > room:
            best = trim_to(best, room)
        # The runner-up's "[2]." full stop counts too.
        picked = self._runner_up([best], cands, room - 1, 0.0)
        quoted = " ".join(with_marker(clean_quote(c.text), i + 1) for i, c in enumerate(picked))
        text = (MAY_ANSWER if len(picked) == 1 else MAY_ANSWER_TWO) + quoted
        return Answer(u.question, text, False, tuple(cite(i + 1, c, engine)
                                                    for i, c in enumerate(picked)),
                      tuple(hits), answerer=self.name, confidence=best.confidence, uncertain=True)

    @staticmethod
    def _runner_up(picked: list[Candidate], cands: list[Candidate], limit: int, bar: float,
                   good: Callable[[Candidate], bool] = lambda c: True) -> list[Candidate]:
        """The pick followed by the first of the next-best candidates (weights.toml:
        second_sentence_pool) that is ``good``, from the same report, not overlapping it, with
        confidence at least ``bar``, when the texts fit in ``limit`` words; else the pick
        alone. Not a list lead-in ("This should include:"): without its items it says
        nothing. ``_pick``'s second sentence and the unsure pick's runner-up both come here."""
        words = sum(len(c.text.split()) for c in picked)
        for c in cands[1 : 1 + W.second_sentence_pool]:
            if (good(c) and c.confidence >= bar and not ends_in_lead_in(c.text)
                    and c.hit.chunk.report_id == picked[0].hit.chunk.report_id
                    and not overlaps(c, picked) and words + len(c.text.split()) <= limit):
                return [*picked, c]
        return picked

    def _reasoned(self, u: Understanding, cands: list[Candidate],
                  engine: Engine) -> list[Candidate]:
        """Asked why, the chosen sentence often restates the question and the reason is next
        to it: the sentence before when the chosen one leans on it ("As a result, trust has
        been lost"), the sentence after when that one points back ("This is because ...",
        "This was designed to ..."). Quote them together. Asked what followed ("what happens
        to children who wait?"), the consequence is the next sentence the same way."""
        if not ((u.asks_reason or u.asks_effect) and cands):
            return cands
        best = cands[0]
        if u.asks_reason and points_back(best):
            best = with_antecedent(best, engine)
        return [with_sequel(best, engine, self.max_words, any_next=not gives_cause(best)),
                *cands[1:]]

    def _elaborated(self, u: Understanding, cands: list[Candidate],
                    engine: Engine) -> list[Candidate]:
        """A sentence opening a list is quoted with its items; one followed by its examples
        with them, unless a figure or a yes or no is asked (the sentence itself answers)."""
        if not cands:
            return cands
        examples = not (u.asks_quantity or u.yes_no)
        return [with_elaboration(cands[0], engine, self.max_words, examples=examples),
                *cands[1:]]

    def _with_neighbour(self, u: Understanding, picked: list[Candidate],
                        read: list[Candidate], engine: Engine,
                        max_words: int | None = None) -> list[Candidate]:
        """The reader's pick often names the topic while the sentence before or after it in
        the paragraph holds the answer ("... have experienced drift and delay." then the
        reason). A neighbour the reader is sure answers alone is quoted with the pick
        (weights.toml: neighbour_p); else the pick with the neighbouring sentence (not a
        heading) the reader reads as the better pair, when that pair reads better than the
        pick alone ("... they were able to negotiate reduced costs" answers only after "...
        trained to be Young Commissioners"; neighbour_join_margin). Only when the pair fits;
        a second sentence already picked follows it when it still fits (``fitting``).
        At most one reader call: the neighbours it has not ``read`` yet and the two pairs."""
        best, rest = picked[0], picked[1:]
        if self.reader is None:
            return picked
        limit = max_words or self.max_words
        room = limit - 1 - len(best.text.split())  # the "[1]" full stop
        sides = [c for c in neighbours(best, engine) if c is not None and len(c.text.split()) <= room]
        if not sides:
            return picked
        known = {c.span: c.read_p for c in read if c.read_p >= 0}
        unread = [c for c in sides if c.span not in known]
        pairs: list[Candidate] = []
        probs: list[float] = []
        if not any(known.get(c.span, 0.0) >= W.neighbour_p for c in sides):
            # A heading or label line beside the pick is not quoted as its context.
            pairs = [joined(best, c, engine) for c in sides
                     if ENDS_AS_SENTENCE.search(c.text)] if best.read_p >= 0 else []
            texts = [pair_text(c.hit.chunk.council, c.hit.chunk.section, c.text)
                     for c in unread + pairs]
            probs = self.reader.score(u.for_reader, texts) if texts else []
            known.update((c.span, p) for c, p in zip(unread, probs[:len(unread)], strict=True))
        sure = [c for c in sides if known.get(c.span, 0.0) >= W.neighbour_p]
        if sure:
            return fitting(joined(best, max(sure, key=lambda c: known[c.span]), engine), rest, limit)
        read_pairs = list(zip(probs[len(unread):], pairs, strict=True))
        if read_pairs:
            p, pair = max(read_pairs, key=lambda x: x[0])
            if p > best.read_p + W.neighbour_join_margin:
                return fitting(pair, rest, limit)
        return picked

    @staticmethod
    def _counting_first(u: Understanding, picked: list[Candidate],
                        cands: list[Candidate]) -> list[Candidate]:
        """Asked "how many children ...?" and answered by a sentence whose figures count
        nothing (a share, a rise: "risen by 71%"), the first of the next candidates the
        reader also reads as answering (weights.toml: second_read_p, second_sentence_pool)
        that counts what is asked ("742 children ...") leads, the pick after it. A pick that
        counts something else is left alone: "173 care leavers" answers "how many young
        people who have left care", in other words. The question is answered either way:
        only which figure leads changes."""
        if not needs_figure(u) or counts_anything(picked[0].text) \
                or counts_what_is_asked(u.question, picked[0].text) is not False:
            return picked
        better = next((c for c in cands[1:1 + W.second_sentence_pool]
                       if c.read_p >= W.second_read_p and not overlaps(c, picked[:1])
                       and counts_what_is_asked(u.question, c.text)), None)
        return picked if better is None else [better, picked[0]]

    @staticmethod
    def _nearly_as_good(c: Candidate, best: Candidate) -> bool:
        """Does ``c`` answer nearly as well as the pick? Where the reader read both: it reads
        ``c`` as answering too and orders it close behind (weights.toml: second_read_p,
        second_read_gap); else by the ratio of their lexical scores."""
        if c.read_p >= 0 and best.read_p >= 0:
            return c.read_p >= W.second_read_p and best.score - c.score <= W.second_read_gap
        return c.score >= W.second_sentence_ratio * best.score

    def _pick(self, cands: list[Candidate], engine: Engine) -> list[Candidate]:
        best = cands[0]
        picked = [best]
        words = len(best.text.split())
        if words > self.max_words and best.core_start > best.start:
            # A pair too long to read out: the anaphoric sentence alone carries the figure.
            text = engine.retriever.report_text(best.hit.chunk.report_id)
            best = replace(best, start=best.core_start, text=text[best.core_start : best.end])
            picked, words = [best], len(best.text.split())
        if words > self.max_words:
            return [trim_to(best, self.max_words)]
        # Keep the comparison that goes with a figure when it is in the next sentence.
        if FIGURE_WITH_UNIT.search(best.text) and not COMPARISON.search(best.text):
            nxt = next_sentence(best, engine)
            if nxt and COMPARISON.search(nxt.text) and words + len(nxt.text.split()) <= self.max_words:
                return [best, nxt]
        # A second sentence from the same report joins the answer when it scores nearly as
        # well (weights.toml: second_sentence_*).
        return self._runner_up(picked, cands, self.max_words, self.threshold,
                               lambda c: self._nearly_as_good(c, best))


def extractive_for(settings: Settings) -> ExtractiveAnswerer:
    """The extractive answerer as the settings configure it (also the LLM path's fallback):
    with the trained reader when ``settings.reader`` asks for it and its weights are there
    ("auto": with the real embedder only, so the tests' hash-embedder fakes stay lexical)."""
    if settings.reader not in READERS:
        raise ReportQAError(f"REPORTQA_READER={settings.reader!r} is not a reader; use one of "
                            f"{', '.join(READERS)}")
    folder = Path(settings.reader_dir) if settings.reader_dir else MODEL_DIR
    wanted = settings.reader == "cross" or (settings.reader == "auto"
                                            and settings.embedder == "minilm")
    if wanted and reader_available(folder):
        return ExtractiveAnswerer(settings.abstain_threshold, settings.max_answer_words,
                                  settings.uncertain_threshold,
                                  shared_reader(folder, settings.reader_precision,
                                                settings.reader_runtime),
                                  (settings.reader_threshold, settings.reader_uncertain_threshold))
    return ExtractiveAnswerer(settings.abstain_threshold, settings.max_answer_words,
                              settings.uncertain_threshold)


def warm_reader(settings: Settings) -> None:
    """Load the trained reader now (when the settings use it), so the first question does not
    pay its model load."""
    reader = extractive_for(settings).reader
    if reader is not None:
        reader.score("warm up", ["warm up"])
