"""Stage 6: question -> Answer with citations. Public: `answer`, the only router.

Routing: structured questions (scores, ratings, judgements, lists over councils) are answered
from the tables read at ingest (rag/structured.py); everything else goes through hybrid
retrieval and an answerer: extractive by default (rag/extractive.py: it only ever quotes
report sentences, so it cannot invent) or an LLM (rag/llm.py). Evidence and citations for all
of them come from rag/evidence.py. A chat message is read against the turns before it and
answered by rag/chat.py, which asks this module's steps (`understood`, `search_and_compose`, ...).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any, Protocol

from ingest.structure import council_key, inspectorate_of
from rag import structured
from rag.engine import Engine, get_engine
from rag.evidence import (
    NOT_IN_REPORTS,
    Candidate,
    abstained,
    distinct_spans,
    rank_sentences,
)
from rag.extractive import MAY_ANSWER, ExtractiveAnswerer, extractive_for
from rag.judgement_answers import findings_behind
from rag.lexicon import pattern
from rag.llm import LLMAnswerer
from rag.query import (
    Council,
    Understanding,
    asks,
    expand_shorthand,
    org_mentions,
    resolve_council,
)
from rag.retrieve import Filters
from rag.spelling import respell
from rag.verify import verify_figures
from reportqa.errors import QuestionError
from reportqa.records import Answer, Hit
from reportqa.settings import Settings
from reportqa.text import (
    answer_sentences,
    as_typed,
    surrogate_at,
    years_in,
)

# The names after "understand_and_filter" are the steps `rag.chat` answers a reading with.
__all__ = ["MAX_QUESTION_CHARS", "MAY_ANSWER", "NOT_IN_REPORTS", "Answerer", "ExtractiveAnswerer",
           "answer", "candidates_for", "check_figures", "extractive_for", "understand_and_filter",
           "answer_validated", "answerer_for", "councils_respelt", "merge_filters",
           "search_and_compose", "timed", "understood", "validate"]
MAX_QUESTION_CHARS = 1000


class Answerer(Protocol):
    name: str

    def compose(self, u: Understanding, hits: list[Hit], engine: Engine) -> Answer: ...


def answer(question: str, settings: Settings, filters: Filters | None = None, *,
           engine: Engine | None = None, answerer: Answerer | None = None,
           k: int | None = None, on_delta: Callable[[str], None] | None = None) -> Answer:
    """Answer one question from the index named by ``settings``. Deterministic."""
    return answer_validated(validate(question), settings, filters, engine=engine,
                            answerer=answerer, k=k, on_delta=on_delta)


def answer_validated(q: str, settings: Settings, filters: Filters | None = None, *,
                     engine: Engine | None = None, answerer: Answerer | None = None,
                     k: int | None = None,
                     on_delta: Callable[[str], None] | None = None) -> Answer:
    """`answer` of a question already validated (a chat message's reading may be longer
    than the message typed: "and Staffordshire?" read as the whole question before)."""
    t0 = time.perf_counter()
    eng = engine or get_engine(settings)
    eng.require_ready()
    u = understood(q, eng)
    explicit = filters or Filters()
    filters = merge_filters(explicit, u, eng)
    if explicit.councils:
        filters = _council_reports_only(filters, eng)
    if u.unknown_councils and u.unknown_first and not explicit.councils:
        ans = abstained(q, "The indexed reports don't cover "
                       + " or ".join(u.unknown_councils) + ": no report for that council is indexed.")
        return timed(ans, t0, t0)
    names = {c.key: c.name for c in eng.derived().councils}
    notes = _left_out(u, explicit, filters, names) + _reports_left_out(u, explicit, names, eng)
    by = _inspectorate_named(u.question)
    if by is not None:
        missing, filters = _by_inspectorate(by, filters, names, eng)
        if missing is None:
            return timed(abstained(q, f"The indexed reports include no {by} report: ask "
                                   f"without naming {by} to search the reports that are "
                                   "indexed."), t0, t0)
        if missing and len(missing) == len(filters.councils):
            return timed(abstained(q, f"The indexed reports include no {by} report for "
                                   f"{' or '.join(missing)}: ask without naming {by} to "
                                   "search the reports that are indexed."), t0, t0)
        if missing:
            notes += (f"The indexed reports include no {by} report for "
                      f"{' or '.join(missing)}: answered from the others.",)
    # "Why was X rated ...?" before the tables: they would give the grade, not its reasons.
    routed = _reason_for_grade(q, u, filters, eng) or structured.route(u, filters, eng)
    if routed is not None:
        ans = timed(check_figures(routed), t0, time.perf_counter())
    else:
        ans = search_and_compose(u, filters, settings, eng, answerer, k, on_delta, t0)
    # Understood with its shorthand read ("r" -> "are"), answered as typed.
    return replace(ans, question=q, notes=(*ans.notes, *notes))


# "Why was Harrow rated inadequate?": the asking words before the grade question they wrap
# (questions.toml why_graded).
_WHY_GRADED = pattern("questions", "why_graded")


def _reason_for_grade(q: str, u: Understanding, filters: Filters, eng: Engine) -> Answer | None:
    """"Why was Harrow rated inadequate?", "why did Darlington only get a 2 for equity?": the
    grade question it wraps, answered from the tables, then the report's own summary of that
    judgement, as "why?" after a grade in a chat (`findings_behind`). Searched, such a
    question found whatever shared its words ("rated" is in no Ofsted summary). None unless
    an organisation follows the asking words and its grade is in the tables."""
    m = _WHY_GRADED.match(q)
    if not (u.asks_reason and u.asks_grade and m):
        return None
    graded = q[m.end():]
    named = org_mentions(graded, eng.derived().councils)
    if not named or named[0].start != 0:
        return None
    told = structured.route(understood(graded, eng), filters, eng)
    return findings_behind(q, told.citations, eng) if told is not None else None


def _council_reports_only(filters: Filters, eng: Engine) -> Filters:
    """A council filter narrows the tables as it narrows the passages: "which councils were
    rated good?" filtered to Darlington lists Darlington's rating alone, not every council's.
    (Councils a question names are no such filter: "which scored lower than Darlington?"
    reads every council's row.)"""
    ids = [r.report_id for r in eng.retriever.state().reports.values()
           if council_key(r.metadata.get("council")) in filters.councils
           and (not filters.report_ids or r.report_id in filters.report_ids)]
    return replace(filters, report_ids=tuple(ids) or ("(none)",))


def _inspectorate_named(question: str) -> str | None:
    """The one inspectorate a question names ("What did Ofsted rate ...?"), if it names one."""
    named = [name for name, row in (("Ofsted", "names_ofsted"), ("CQC", "names_cqc"))
             if asks(row, question)]
    return named[0] if len(named) == 1 else None


def _by_inspectorate(by: str, filters: Filters, names: dict[str, str],
                     eng: Engine) -> tuple[list[str] | None, Filters]:
    """The councils searched (named, or set by the filter) that have no report by ``by``
    (a joint SEND inspection is by both), and the filters narrowed to its reports; None when
    the index holds none of them. Read from the reports the engine holds in memory."""
    reports: dict[str, str | None] = {}  # report id -> council key
    others: list[str] = []
    for r in eng.retriever.state().reports.values():
        if by in (inspectorate_of(r.metadata) or ""):
            reports[r.report_id] = council_key(r.metadata.get("council"))
        else:
            others.append(r.report_id)
    if not reports:
        return None, filters
    have = set(reports.values())
    missing = [names.get(c, c) for c in filters.councils if c not in have]
    # The shorter list of the two: a search filtered by thousands of ids is slow, and an
    # index of one inspectorate's reports needs no filter at all.
    keep = [r for r in reports if not filters.report_ids or r in filters.report_ids]
    if filters.report_ids or (others and len(keep) <= len(others)):
        filters = replace(filters, report_ids=tuple(keep) or ("(none)",))
    elif others:
        filters = replace(filters, exclude_report_ids=filters.exclude_report_ids + tuple(others))
    return missing, filters


def _reports_left_out(u: Understanding, explicit: Filters, names: dict[str, str],
                      eng: Engine) -> tuple[str, ...]:
    """The councils the question names whose every indexed report the report filter (the
    app's family and year filters) leaves out: "What score did Darlington get?" filtered to
    2024 is answered "no score stated", which is only true of the filtered reports."""
    if not explicit.report_ids:
        return ()
    kept: dict[str, bool] = {}
    for r in eng.retriever.state().reports.values():
        key = council_key(r.metadata.get("council"))
        if key in u.councils:
            kept[key] = kept.get(key, False) or r.report_id in explicit.report_ids
    out = [names.get(c, c) for c in u.councils if kept.get(c) is False]
    if not out:
        return ()
    return (f"The report filters (family, year) leave out every report of {' and '.join(out)}, "
            "which the question names: answered from the filtered reports only.",)


def _left_out(u: Understanding, explicit: Filters, merged: Filters,
              names: dict[str, str]) -> tuple[str, ...]:
    """What the question names that the filters given leave out: the filters decide what is
    searched (a council's reports may discuss its neighbours), but an answer about Bury to
    "What did Birmingham score?" must say why it is about Bury. ``merged`` holds the filter's
    councils as `merge_filters` resolved them."""
    allowed = set(merged.councils) if explicit.councils else set()
    notes = []
    councils = [names.get(c, c) for c in u.councils if allowed and c not in allowed]
    if councils:
        notes.append(f"The council filter ({', '.join(names.get(c, c) for c in sorted(allowed))}) "
                     f"leaves out {' and '.join(councils)}, which the question names: answered "
                     "from the filtered reports only.")
    statements = [s for s in u.statements if explicit.statements and s not in explicit.statements]
    if statements:
        notes.append(f"The quality statement filter ({', '.join(explicit.statements)}) leaves "
                     f"out {' and '.join(statements)}, which the question names: answered from "
                     "the filtered statements only.")
    return tuple(notes)


def search_and_compose(u: Understanding, filters: Filters, settings: Settings, eng: Engine,
                       answerer: Answerer | None, k: int | None,
                       on_delta: Callable[[str], None] | None, t0: float) -> Answer:
    hits = eng.retriever.retrieve(u.content, filters, k or settings.k,
                                  boost_statements=u.statements)
    t_ret = time.perf_counter()
    if not hits:
        return timed(abstained(u.question, NOT_IN_REPORTS + " Nothing in the index matches this "
                               "question" + (" with the filters given." if not filters.empty()
                                             else ".")), t0, t_ret)
    chosen = answerer or answerer_for(settings)
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
    ans = check_figures(ans)
    if ans.outcome != "answer" and k is not None and k < settings.k:
        # "The reports don't say" after reading fewer passages than usual may only mean the
        # passage that says it was not read.
        ans = replace(ans, notes=(*ans.notes, f"Only {k} passage{'s' if k > 1 else ''} "
                                  f"{'were' if k > 1 else 'was'} read (k={k}; the default is "
                                  f"{settings.k}): a larger k may find the answer."))
    return timed(ans, t0, t_ret)


def check_figures(ans: Answer) -> Answer:
    """Number check for every answer path: each figure in a sentence must appear, with the
    same value, in a quote that sentence cites. Unsupported sentences are dropped and the
    answer says so; if nothing is left the answer abstains."""
    # The LLM path runs the same check sentence by sentence (rag/verify.py); a page answer's
    # figures are page numbers from the page map, not claims about the quote.
    if ans.abstained or not ans.citations or ans.answerer in ("llm", "page"):
        return ans
    quotes = {c.n: c.quote for c in ans.citations}
    # A table answer says which years it was asked for ("inspected before 2023"): the
    # question's own years, not a claim about a report.
    asked = " ".join(years_in(ans.question)) if ans.answerer == "table" else ""
    kept, dropped = [], 0
    sentences = answer_sentences(ans.text)
    for i, sent in enumerate(sentences):
        # A sentence without a marker is the start of a quote whose marker comes at its end:
        # it cites what the next marked sentence cites.
        marked = next((s for s in sentences[i:] if re.search(r"\[\d+\]", s)), "")
        cited = [int(n) for n in re.findall(r"\[(\d+)\]", marked)]
        evidence = "\n".join([asked, *(quotes.get(n, "") for n in cited)])
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


def answerer_for(settings: Settings) -> Answerer:
    if settings.answerer == "llm":
        return LLMAnswerer(settings)
    return extractive_for(settings)


def validate(question: str, *, length: bool = True, words: bool = True,
             limit: int = MAX_QUESTION_CHARS) -> str:
    """The question with its spacing normalised, or QuestionError saying what is wrong with
    it: empty, longer than ``limit`` (with ``length``), no English words to search for
    (``words``), or text that is not Unicode (a lone surrogate half, which no reply could
    carry)."""
    q = " ".join((question or "").split())
    if surrogate_at(q) is None:
        q = " ".join(as_typed(q).split())
    if not q:
        raise QuestionError("the question is empty; type a question about the reports")
    if length and len(q) > limit:
        if limit != MAX_QUESTION_CHARS:
            raise QuestionError(f"the conversation's question before is too long to follow on "
                                f"from ({len(q):,} characters read); start a new conversation")
        raise QuestionError(f"the question is {len(q):,} characters; keep it under "
                            f"{MAX_QUESTION_CHARS:,} (ask one thing at a time)")
    bad = surrogate_at(q)
    if bad is not None:
        raise QuestionError(f"the question has an invalid character at position {bad + 1} "
                            f"(half of a UTF-16 pair, U+{ord(q[bad]):04X}); type or paste "
                            "it again")
    if words and not re.search(r"[A-Za-z]{2,}", q):
        raise QuestionError("the question has no English words to search for; the reports are "
                            "in English, so please ask in English")
    return q


def merge_filters(f: Filters, u: Understanding, eng: Engine) -> Filters:
    d = eng.derived()
    councils = tuple(resolve_council(c, d.councils) for c in f.councils) or u.councils
    return Filters(councils=councils, statements=f.statements, page_kinds=f.page_kinds,
                   report_ids=f.report_ids, exclude_report_ids=_version_exclusions(u, d))


def _version_exclusions(u: Understanding, d: Any) -> tuple[str, ...]:
    """Older assessments are hidden unless the question names their year; then the newer
    version of that page is hidden instead. Duplicate copies are always hidden."""
    years = set(u.years)
    hidden = set(d.hidden())
    for rid, v in d.versions.items():
        if v.status == "superseded" and v.published and v.published[:4] in years:
            hidden.discard(rid)
            if v.of:
                hidden.add(v.of)
    return tuple(sorted(hidden))


def councils_respelt(message: str, eng: Engine) -> str:
    """A chat message with a council typed one slip away read as that council ("birmingam",
    "plymoth"), as `understood` reads it: else it names no organisation, and the follow-up
    reading carries the last one over ("birmingam safeguarding score in Westminster")."""
    d = eng.derived()
    respelt = _councils_read(message, d)
    # Only for a name it did not find as typed: "redbridges front door" names Redbridge
    # already, and is read as typed.
    found = len(org_mentions(respelt, d.councils)) > len(org_mentions(message, d.councils))
    return respelt if found else message


def understood(question: str, eng: Engine) -> Understanding:
    """The question read with its misspelt words read as the index's own ("assesment"; a
    council typed one slip away, "sandwel", "stafordshire", is that council, so its filter and
    its tables apply; chat shorthand, "r", "ppl", read as the word it stands for). The
    question it carries is read so too: answer() gives the answer back the question as typed."""
    question = expand_shorthand(question)
    d = eng.derived()
    # Council names first, only where no report word is nearer: "comunity" is "community",
    # not the council word "county". Then every word, so the question-type rows read the
    # words the reports use ("... when was it publishd" asks the publication date), and the
    # content searched for, cut from that question, is respelt with it.
    typed = respell(_councils_read(question, d), d.words, counts=d.word_counts)
    return replace(structured.understand(typed, d.councils), question=question)


def _councils_read(text: str, d: Any) -> str:
    """``text`` with each word one slip away from a council's name read as it, where no
    report word is nearer ("sandwel" -> "sandwell"; "comunity" stays for "community")."""
    names, near = _council_words(tuple(d.councils), d.words)
    return respell(text, near, only=names)


@lru_cache(maxsize=4)
def _council_words(councils: tuple[Council, ...],
                   words: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The words of the indexed councils' names and aliases, as a misspelling may near them,
    and those with the index's words (which a misspelling may be nearer)."""
    names = frozenset(w for c in councils for n in (c.name, *c.aliases)
                      for w in re.findall(r"[a-z]+", n.lower()))
    return names, names | words


def timed(a: Answer, t0: float, t_ret: float) -> Answer:
    now = time.perf_counter()
    return replace(a, timings_ms={"retrieve": (t_ret - t0) * 1000,
                                  "answer": (now - t_ret) * 1000, "total": (now - t0) * 1000})


def understand_and_filter(question: str, engine: Engine) -> tuple[Understanding, Filters]:
    """The question read, and the filters answer() would search it with (named councils,
    older versions hidden)."""
    q = validate(question)
    u = understood(q, engine)
    return u, merge_filters(Filters(), u, engine)


def candidates_for(question: str, engine: Engine, n: int = 20) -> list[Candidate]:
    """The answerer's top ``n`` distinct candidate sentences for a question, retrieved with the
    same filters answer() would use (for the reader's training and the llama-index seam)."""
    u, f = understand_and_filter(question, engine)
    hits = engine.retriever.retrieve(u.content, f, engine.settings.k,
                                     boost_statements=u.statements)
    return distinct_spans(rank_sentences(u, hits, engine), n)
