"""Answers from an inspection report's own facts, read at ingest: the dates it states, the
judgements of its judgement table, and the items it lists under a heading ("What needs to
improve?"). Public: `inspection_dates`, `dates_or_publication`, `publication_dates`,
`judgements`, `family_not_indexed`, `kinds_without_cqc`,
`judgement_extreme`, `report_list`, `report_summary`,
`visit_findings` (the handlers rag/structured.py's question table calls), `inspected_in`,
`report_metadata`, and `findings_behind` ("why?" after a grade: the report's own summary of
what it judged).

Every answer cites the row or item it states, one citation each; a handler returns None
when no row fits, so the question goes to search.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from itertools import islice
from typing import Any

from ingest.index import ReportRow
from ingest.profiles import Profile, all_grades, listed_under, profile_named, profiles, scopes
from ingest.structure import CQC_FAMILY, STATEMENT_KEYS, STATEMENTS, council_key
from rag.cite_rows import in_its_words
from rag.engine import Engine
from rag.evidence import (
    BOILERPLATE,
    ENDS_AS_SENTENCE,
    LIST_ITEM,
    W,
    abstained,
    cite_span,
    is_finding,
    leaning,
    with_marker,
)
from rag.lexicon import pattern, words
from rag.query import Understanding, asks, list_cue_words
from rag.retrieve import tokenize
from rag.tables import JudgementRow, RatingRow, ScoreRow
from reportqa.records import Answer, Citation, overlap
from reportqa.text import MONTH_WORDS, clean_quote, quotable_spans, sentence_spans, years_in


def inspected_in(u: Understanding, metadata: Mapping[str, Any]) -> bool:
    """Is this report the inspection a question with a year asks about? Its years are those
    of its inspection dates and publication, and the year after the inspection (a November
    inspection is published in January)."""
    if not u.years:
        return True
    stated = " ".join(str(metadata.get(k) or "") for k in ("inspection_dates", "published"))
    years = {int(y) for y in years_in(stated)}
    if metadata.get("inspection_dates"):
        years |= {y + 1 for y in years}
    if not years:  # nothing stated to compare with
        return True
    return any(int(y) in years for y in u.years)


# The judgement each report family names as its overall one (ingest/profiles/*.toml).
_OVERALL = frozenset(p.overall for p in profiles() if p.overall)


def _org_name(m: Mapping[str, Any]) -> str:
    """The organisation a report is of, as the report names it, else its council."""
    return str(m.get("organisation") or m.get("council"))


def report_metadata(report_id: str, eng: Engine) -> Mapping[str, Any]:
    row = eng.retriever.state().reports.get(report_id)
    return row.metadata if row is not None else {}


def _council_reports(councils: Collection[str], eng: Engine) -> list[ReportRow]:
    """The current reports of these councils that the question's filters allow, by id."""
    return [row for row in eng.current_reports()
            if council_key(row.metadata.get("council")) in councils]


def inspection_dates(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """The inspection dates stated by each named council's reports (families whose profile
    reads dates), one citation per report; None when no report states them."""
    cites: list[Citation] = []
    parts: list[str] = []
    for row in _council_reports(councils, eng):
        m = row.metadata
        dates = m.get("inspection_dates")
        if not dates or not inspected_in(u, m):
            continue
        text = eng.retriever.report_text(row.report_id)
        at = text.find(dates)
        if at < 0:
            continue
        prof = profile_named(m.get("family"))
        what = prof.title if prof else "inspection"
        n = len(cites) + 1
        cites.append(cite_span(n, row.report_id, eng, at, at + len(dates), council=m.get("council")))
        parts.append(f"{_org_name(m)}, {what} by "
                     f"{m.get('inspectorate') or 'the inspectorate'}: {dates} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


_PUBLISHED = pattern("sentences", "published_line")
_DATED = pattern("sentences", "dated_line")


def publication_dates(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """When each named council's report says it was published ("Assessment published: 30 May
    2025"), or a letter's own date at its top, one citation per council and date (a council's
    pages share one); None when no report states it."""
    cites: list[Citation] = []
    parts: list[str] = []
    seen: set[tuple[str, str]] = set()
    for row in _council_reports(councils, eng):
        m = row.metadata
        text = eng.retriever.report_text(row.report_id)
        found = _PUBLISHED.search(text)
        dated = found is None  # a letter says when it was written, not published
        if dated:
            found = _DATED.search(text)
        key = (str(m.get("council")), found.group(1) if found else "")
        if found is None or key in seen or not inspected_in(u, m):
            continue
        seen.add(key)
        prof = profile_named(m.get("family"))
        n = len(cites) + 1
        cites.append(cite_span(n, row.report_id, eng, found.start(1), found.end(1),
                               council=m.get("council")))
        when = "is dated" if dated else "was published on"
        parts.append(f"{_org_name(m)}'s "
                     f"{prof.title if prof else 'report'} {when} {found.group(1)} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def dates_or_publication(u: Understanding, councils: tuple[str, ...],
                         eng: Engine) -> Answer | None:
    """"When was Westminster inspected?": the inspection dates the named councils' reports
    state, else, when they state none (a CQC local authority assessment page says only when it
    was published), when they were published, said to be that and not the assessment's dates."""
    found = inspection_dates(u, councils, eng) or _assessment_start(u, councils, eng)
    if found is not None:
        return found
    published = publication_dates(u, councils, eng)
    if published is None:
        return None
    return replace(published, text="The indexed reports don't state when the inspection or "
                   "assessment took place, only when the report was published: " + published.text)


_STARTED = pattern("sentences", "assessment_start_line")


def _assessment_start(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """When each named council's CQC assessment began, where its pages say ("Assessment start
    date: 11 May 2023"), one citation per council; None when none says."""
    cites: list[Citation] = []
    parts: list[str] = []
    done: set[str] = set()
    for row in _council_reports(councils, eng):
        m = row.metadata
        found = _STARTED.search(eng.retriever.report_text(row.report_id))
        if found is None or str(m.get("council")) in done:
            continue
        done.add(str(m.get("council")))
        n = len(cites) + 1
        cites.append(cite_span(n, row.report_id, eng, found.start(1), found.end(1),
                               council=m.get("council")))
        parts.append(f"{_org_name(m)}'s assessment started on {found.group(1)} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _named_first(u: Understanding, headings: tuple[str, ...],
                 urgent: tuple[str, ...] = ()) -> tuple[str, ...]:
    """A family's list headings, those the question names most first: by the share of a
    heading's words it uses ("priority actions" asks for "Areas for priority action", "needs
    to improve" for "Areas for improvement" before "What does the area partnership need to
    do better?"), ties in the profile's order. A question that names no list by its noun
    ("what does Bury need to improve?", not "... areas for improvement", "... do better")
    gets the ``urgent`` lists first, where the report has them: two reviews saw the README's
    example leave out Bury's six priority actions."""
    asked = set(u.terms)
    ordered = sorted(headings, key=lambda h: _share(asked, set(tokenize(h))), reverse=True)
    if urgent and not _NAMES_A_LIST.search(u.question):
        ordered = [h for h in ordered if h in urgent] + [h for h in ordered if h not in urgent]
    return tuple(ordered)


_NAMES_A_LIST = re.compile(r"\b(?:improvements?|better|strengths?|recommendations?|areas?)\b",
                           re.I)


STATED_STRENGTHS = "Named as a strength"
_STRENGTH = pattern("cues", "stated_strength")
_POINTS_BACK = pattern("sentences", "anaphor")


def _stated_strengths(text: str) -> list[tuple[int, int]]:
    """The sentences in which a report with no list of strengths names one ("Children's
    participation is a strength in Cumberland."), in order; not "This is a strength", which
    needs the sentence before it to say what. ("... is not a strength" never matches: the
    pattern wants the strength right after the verb.)"""
    return [(s, e) for s, e in quotable_spans(text)
            if _STRENGTH.search(text, s, e) and not _POINTS_BACK.match(text[s:e])]


def _asked_first(u: Understanding, text: str, spans: list[tuple[int, int]],
                 skip: set[str], eng: Engine) -> list[tuple[int, int]]:
    """A list's items, those sharing the question's own distinctive words first ("what did
    Ofsted recommend Sandwell do about its adoption panel?" asks for the item on the adoption
    panel, wherever the report lists it), by the weight of the words shared; the report's
    order among the rest. ``skip``: words that ask for the list or name whose it is."""
    topic = {t for t in set(u.terms) - skip if eng.idf(t) >= W.list_topic_idf}
    if not topic:
        return spans
    return sorted(spans, key=lambda sp: -sum(eng.idf(t) for t in topic
                                             & set(tokenize(text[sp[0]:sp[1]]))))


def report_list(u: Understanding, council: str, kind: str, eng: Engine) -> Answer | None:
    """The items a council's report lists under its family's heading for ``kind`` ("What
    needs to improve?"), one citation per item, as many as fit in ~70 words; None when no
    report of that council has such a list."""
    for row in _council_reports((council,), eng):
        m = row.metadata
        prof = profile_named(m.get("family"))
        if prof is None:
            continue
        text = eng.retriever.report_text(row.report_id)
        headings = prof.lists.get(kind, ())
        heading, spans = listed_under(text, _named_first(u, headings,
                                                         prof.lists.get("urgent", ())))
        if not spans and kind == "strengths":
            heading, spans = STATED_STRENGTHS, _stated_strengths(text)
        if not spans:
            continue
        # Words that ask for the list, name whose it is or name the report family ("send
        # inspection", "Ofsted") say nothing about which item is asked for.
        skip = list_cue_words(u.question) | _ITEM_ASKING | set(tokenize(" ".join(
            (council, _org_name(m), prof.title, *prof.asked_by, *headings))))
        spans = _asked_first(u, text, spans, skip, eng)
        cites, cut = _items_quoted(row.report_id, m.get("council"), spans,
                                   _asked_count(u.question), eng)
        # The heading as the report prints it: "What needs to improve?", "Recommendations:".
        shown = heading if (heading or "").endswith("?") else f"{heading}:"
        # An item cut short says so ("... to better meet the needs of … [1].").
        body = " ".join(with_marker(clean_quote(c.quote) + (" …" if c.n in cut else ""),
                                    c.n) for c in cites)
        # No figure of our own in the text: every figure in an answer must be in what it cites.
        tail = " The report lists more." if len(spans) > len(cites) else ""
        return Answer(u.question, f"{m.get('council')}: {shown} {body}{tail}", False,
                      tuple(cites), answerer="table")
    return None


_ITEM_ASKING = {t for w in words("lists", "item_asking") for t in tokenize(w)}
_ASKED_COUNT = pattern("lists", "asked_count")
_COUNTS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}


def _asked_count(question: str) -> int | None:
    """How many items a list question asks for ("name two ..."), if it says more than one:
    asked for one, as many as fit are quoted as before, for the asker to choose from."""
    m = _ASKED_COUNT.search(question)
    n = None if m is None else _COUNTS.get(m.group(1).lower()) or int(m.group(1))
    return n if n and n > 1 else None


def _items_quoted(report_id: str, council: str | None, spans: list[tuple[int, int]],
                  asked: int | None, eng: Engine) -> tuple[list[Citation], set[int]]:
    """The items of a report's list quoted, in order, within ``W.list_words`` words, and the
    numbers of those cut short. Asked for a number of items, that many, each cut to its
    share of the words when long; else as many whole items as fit (one long first item: its
    opening words)."""
    text = eng.retriever.report_text(report_id)
    share = W.list_words // asked if asked else W.list_words
    cites: list[Citation] = []
    cut: set[int] = set()
    words = 0
    for s, e in spans[:asked] if asked else spans:
        n_words = len(text[s:e].split())
        if cites and words + min(n_words, share) > W.list_words:
            break
        if n_words > share:
            e, mid = _cut_item(text, s, e, share)
            if mid:
                cut.add(len(cites) + 1)
        cites.append(cite_span(len(cites) + 1, report_id, eng, s, e, council=council))
        words += len(text[s:e].split())
    return cites, cut


def _cut_item(text: str, start: int, end: int, budget: int) -> tuple[int, bool]:
    """Where a list item too long to quote whole is cut, and whether mid-sentence: after its
    last whole sentence within ``budget`` words when that keeps most of them (three fifths),
    else at ``budget`` words."""
    within = [e for _, e in quotable_spans(text, start, end)
              if len(text[start:e].split()) <= budget]
    if within and 5 * len(text[start:within[-1]].split()) >= 3 * budget:
        return within[-1], False
    return start + len(" ".join(text[start:end].split(" ")[:budget])), True


# Words every judgement name shares: they cannot tell one judgement from another.
_JUDGEMENT_FRAME_STEMS = {t for w in words("questions", "judgement_frame") for t in tokenize(w)}


def _judgement_words(text: str) -> set[str]:
    """Distinctive words, stemmed as the retriever stems them ("outcomes" matches "Inspection
    outcome"), without stop words ("in") or words every judgement name shares."""
    return {t for t in tokenize(text) if t not in _JUDGEMENT_FRAME_STEMS}


def _share(question_words: set[str], judgement_words: set[str]) -> float:
    """How much of a judgement's name the question uses."""
    return len(question_words & judgement_words) / max(1, len(judgement_words))


def _covers(topic: set[str], judgement_words: set[str]) -> bool:
    """Does a judgement's name cover enough of what the question asks about?"""
    return len(topic & judgement_words) / max(1, len(topic)) >= W.judgement_cover


def _named_share(q: set[str], topic: set[str], j: JudgementRow) -> float:
    """How much of a judgement's name, or of a name its family profile says people ask it
    by ("leadership"), the question uses; 0 when none covers what is asked."""
    prof = profile_named(j.family)
    names = (j.judgement, *(prof.asked_as.get(j.judgement, ()) if prof else ()))
    return max((_share(q, jw) for jw in map(_judgement_words, names) if _covers(topic, jw)),
               default=0.0)


def _family_title(family: str) -> str:
    prof = profile_named(family)
    return prof.title if prof else ""


_GRADE_ASKING = {t for w in words("questions", "grade_asking") for t in tokenize(w)}
_GRADE_NAMES = {t for g in all_grades() for t in tokenize(g)}
# Words a list across councils asks with ("which councils", "what areas"): not a topic.
_ACROSS_WORDS = set(tokenize("council councils local authority authorities area areas better "
                              "worse below above least higher lower done carried during"))
# Every family's grade and outcome words ("widespread", "systemic"): not a topic.
_ALL_GRADE_WORDS = {t for s in scopes() for g in s.grades for t in tokenize(g)}


# Month names and their short forms ("dec 2024", "the march inspection"): when, not what.
# "may" is a verb too ("what grade may ...").
_MONTH_WORDS = {t for w in MONTH_WORDS if w != "may" for t in tokenize(w)}


def _topic(question_words: set[str], names: str) -> set[str]:
    """What a grade question asks about: its words less ``names`` (the council's name, the
    report family's title: "area SEND inspection"), the grades, the words that ask for a
    grade, and dates (years, months)."""
    return {t for t in question_words - set(tokenize(names)) - _GRADE_NAMES - _GRADE_ASKING
            - _MONTH_WORDS if not t[0].isdigit()}


def _grade_in(terms: tuple[str, ...], rows: list[JudgementRow]) -> str | None:
    """The longest of these judgements' grades that the question's words name ("requires
    improvement" names "Requires improvement to be good")."""
    # Stemmed, as whole words: "requiring improvement" names "Requires improvement".
    q = f" {' '.join(terms)} "
    named = [g for g in {j.grade for j in rows}
             if f" {' '.join(tokenize(g))} " in q
             or (len(g.split()) > 2 and f" {' '.join(tokenize(g)[:2])} " in q)]
    return max(named, key=len) if named else None


def judgements(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """The judgement of a named council whose distinctive words the question uses ("care
    leavers" -> "The experiences and progress of care leavers: Good"), one citation each;
    None (search instead) when no judgement's words are in the question."""
    q = {t for t in u.topic_terms if t not in _JUDGEMENT_FRAME_STEMS}
    named = _graded(u, councils, eng)
    topic = _topic(q, " ".join(f"{j.council} {j.organisation} {_family_title(j.family)}"
                               for j in named))
    picked = []
    for key in councils:
        rows = [j for j in named if j.council_key == key]
        # A judgement answers when the question uses its words and it covers what is asked
        # ("the front door for help and protection" is more than "help and protection");
        # a question about nothing narrower than the council gets the overall judgement.
        if topic:
            scored = [(_named_share(q, topic, j), j) for j in rows]
        else:
            scored = [(1.0 if j.judgement in _OVERALL else 0.0, j) for j in rows]
        if u.asks_overall:  # "overall" names the overall judgement
            scored = [(s + 1.0 if j.judgement in _OVERALL else s, j) for s, j in scored]
        asked = _grade_in(u.terms, rows)
        if asked and u.asks_which:
            # "Which area was graded requires improvement?": the judgements with that grade;
            # "which area was not judged outstanding?": those with another.
            scored = [(1.0 if (j.grade == asked) != u.negated and j.judgement not in _OVERALL
                       else 0.0, j) for j in rows]
        best = max((s for s, _ in scored), default=0.0)
        if best >= W.judgement_match:
            picked += [j for s, j in scored if s == best]
    if not picked:
        return None
    cites = [cite_span(i + 1, j.report_id, eng, j.start, j.end, council=j.council)
             for i, j in enumerate(picked)]
    parts = [_judged(j, c.quote, c.n, worded=True) for j, c in zip(picked, cites, strict=True)]
    if sum(len(p.split()) for p in parts) > W.judgement_answer_words:
        parts = [_judged(j, c.quote, c.n) for j, c in zip(picked, cites, strict=True)]
    if len(picked) == 1:
        headline = _headline(picked[0], eng, W.judgement_answer_words - len(parts[0].split()))
        if headline is not None:
            cites.append(headline)
            parts.append(with_marker(clean_quote(headline.quote), headline.n))
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _graded_names() -> Iterator[tuple[str, str, tuple[str, ...]]]:
    """(family, judgement, the words it is asked by) for every judgement a family grades short
    of the whole report: the profiles' judgements, and CQC's quality statements and themes
    (a "leadership" question may be about CQC's theme as much as Ofsted's leaders)."""
    for prof in profiles():
        for name in prof.judgements:
            if name != prof.overall:
                yield prof.name, name, prof.asked_as.get(name, ())
    for name, theme in STATEMENTS.items():
        yield CQC_FAMILY, name, STATEMENT_KEYS[name]
        yield CQC_FAMILY, theme, ()


def _asked_services(q: set[str], council: str) -> dict[str, str]:
    """The kinds of report (their services: "children's services (Ofsted)") one of whose
    judgements is what the question asks about, each with that judgement: those whose name
    (or the words it is asked by) covers most of what is asked ("care leavers" is a whole
    Ofsted judgement, and only the "care" of CQC's "Is the service caring?")."""
    found: list[tuple[float, str, str]] = []  # (share of the topic covered, service, judgement)
    for family, name, asked_as in _graded_names():
        topic = _topic(q, f"{council} {_family_title(family)}")
        for jw in map(_judgement_words, (name, *asked_as)):
            if topic and _covers(topic, jw) and _share(q, jw) >= W.judgement_match:
                found.append((len(topic & jw) / len(topic), _SERVICE.get(family, family), name))
    most = max((c for c, _, _ in found), default=0.0)
    out: dict[str, str] = {}
    for c, label, name in found:
        if c == most:
            out.setdefault(label, name)
    return out


def family_not_indexed(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """"What grade did Staffordshire get for care leavers?" when only one kind of report grades
    that (an Ofsted inspection of children's services, ILACS or SIF) and none of the council's
    indexed reports is of that kind: say which report would answer, rather than "the reports
    don't say" with unrelated passages. None when such a report is indexed, when the question
    names a CQC quality statement, or when no one kind of report grades what it asks about."""
    reports = _council_reports(councils, eng)
    if len(councils) != 1 or u.asks_overall or u.statements or not reports:
        return None
    council = str(reports[0].metadata.get("council"))
    asked = _asked_services({t for t in u.topic_terms if t not in _JUDGEMENT_FRAME_STEMS},
                            council)
    have = set(_kinds(reports))
    if len(asked) != 1 or set(asked) & have:
        return None
    (label, name), = asked.items()
    return abstained(u.question, f"The indexed reports include no {label} report for {council}, "
                     f"the kind of report that grades '{name}'; its indexed reports: "
                     f"{'; '.join(sorted(have))}.")


# Report family -> the kind of report it is, as lists across councils label it.
_SERVICE = {s.family: s.service for s in scopes()}


def _kinds(reports: list[ReportRow]) -> list[str]:
    """The kinds of these reports ("adult social care (CQC)", "SEND (Ofsted and CQC)"),
    sorted; a CQC local authority page has no report family of its own."""
    return sorted({_SERVICE[r.metadata.get("family") or CQC_FAMILY] for r in reports})


def kinds_without_cqc(councils: tuple[str, ...], eng: Engine) -> list[str]:
    """The kinds of report indexed for these councils when none is a CQC local authority
    assessment (whose quality statements a score question asks about); [] otherwise."""
    reports = _council_reports(councils, eng)
    if not reports or any(not r.metadata.get("family") for r in reports):
        return []
    return _kinds(reports)


def _headline(j: JudgementRow, eng: Engine, room: int, n: int = 2) -> Citation | None:
    """The report's own first word on one judgement: the opening sentence of its summary for
    the overall grade ("The experiences and progress of children and young people in
    Oxfordshire are good across all aspects of the inspection framework."), the summary's
    sentence that names any other ("Help and protection services overall are good, with a
    'front door' service that is outstanding."). A grade alone leaves out what inspectors
    said it means. None when no sentence that reads alone fits in ``room`` words."""
    text = eng.retriever.report_text(j.report_id)
    grade_words = set(tokenize(f"{j.judgement} {j.grade} {j.council} children services"))
    first = next((sp for sp in _reason_spans(j, text, eng, "")
                  if _reads_alone(text[sp[0]:sp[1]], grade_words)), None)
    if first is None or len(text[first[0]:first[1]].split()) + 1 > room:
        return None
    return cite_span(n, j.report_id, eng, first[0], first[1], council=j.council)


def _reads_alone(sentence: str, grade_words: set[str]) -> bool:
    """Can ``sentence`` be quoted on its own after a grade (``grade_words``: the words of its
    judgement, grade and council)? It ends as a sentence does, and is not a list item ("◼ The
    quality of ... case records.", "- Adoption performance: Requires improvement."), one
    pointing back ("This leads to delays ...") or the grade again in other words
    ("Leadership, management and governance: Inadequate.", a 2018 summary's "Children's
    services in Sandwell are inadequate.")."""
    return (ENDS_AS_SENTENCE.search(sentence) is not None and not LIST_ITEM.match(sentence)
            and not _POINTS_BACK.match(sentence)
            and not set(tokenize(sentence)) <= grade_words)


_POINTS_BACK = pattern("sentences", "anaphor")


def judgements_named_across(u: Understanding, eng: Engine) -> list[JudgementRow] | None:
    """Across every council: the judgement the question's topic names ("which councils got
    good for care leavers?" -> each council's care leavers judgement). None when the question
    names no topic besides grades and councils (the overall grades answer it; the families
    it names are out of ``u.topic_terms`` already);
    empty when it names one that no judgement covers."""
    q = {t for t in u.topic_terms if t not in _JUDGEMENT_FRAME_STEMS}
    hidden = set(eng.derived().hidden())
    rows = [j for j in eng.derived().judgements if j.family != CQC_FAMILY
            and eng.derived().in_scope(j.report_id) and j.report_id not in hidden]
    # Not `_topic`: across councils, the families' titles ("children's services") would take
    # "children" and "care" from "children in care".
    topic = {w for w in q - _ALL_GRADE_WORDS - _GRADE_ASKING - _ACROSS_WORDS
             if not w[0].isdigit()}
    if not topic:
        return None
    picked = []
    for key in dict.fromkeys(j.council_key for j in rows):
        scored = [(_named_share(q, topic, j), j) for j in rows if j.council_key == key]
        best = max((s for s, _ in scored), default=0.0)
        if best >= W.judgement_match:
            picked += [j for s, j in scored if s == best]
    return picked


def _judged(j: JudgementRow, quote: str, n: int, worded: bool = False) -> str:
    """A judgement in the report's own words when its row is a table row ("Overall
    effectiveness Requires improvement to be good", "2.2 Experiences and progress of care
    leavers Requires improvement"), so the grade reads as printed; an outcome stated as a
    sentence (area SEND) is named by its grade, then, ``worded``, quoted as that sentence."""
    row = clean_quote(quote)
    if len(row.split()) <= W.judgement_row_words and j.grade.lower() in row.lower():
        return f"{j.inspectorate} judged {j.council}: \u201c{row}\u201d [{n}]."
    words = in_its_words(quote) if worded else ""
    return f"{j.inspectorate} judged {j.council}'s \"{j.judgement}\": {j.grade}{words} [{n}]."


def _graded(u: Understanding, councils: tuple[str, ...], eng: Engine) -> list[JudgementRow]:
    """The inspection judgements of these councils from the inspection the question's year
    points to. CQC local authority scores have their own table and rows (score, rating)."""
    return [j for j in eng.derived().judgements if j.council_key in councils
            and j.family != CQC_FAMILY and inspected_in(u, report_metadata(j.report_id, eng))]


def _grade_scale(family: str) -> tuple[str, ...]:
    """A report family's grades, best first (ingest/profiles/*.toml)."""
    prof = profile_named(family)
    return prof.grades if prof else ()


def judgement_extreme(u: Understanding, council: str, eng: Engine) -> Answer | None:
    """A council's judgements with the lowest (or highest) grade on its report family's scale,
    the overall judgement aside, every tie, one citation each; None when it has none."""
    rows = [j for j in _graded(u, (council,), eng) if j.judgement not in _OVERALL]
    ranked = [(scale.index(j.grade), j) for j in rows for scale in [_grade_scale(j.family)]
              if j.grade in scale]
    if not ranked:
        return None
    # A family's grades run from best to worst: the lowest grade has the largest index.
    pick = max if u.direction == "min" else min
    end = pick(i for i, _ in ranked)
    picked = [j for i, j in ranked if i == end]
    which = "lowest" if u.direction == "min" else "highest"
    cites = [cite_span(n + 1, j.report_id, eng, j.start, j.end, council=j.council)
             for n, j in enumerate(picked)]
    j0 = picked[0]
    parts = [f"{j0.inspectorate} graded every judgement of {j0.council} besides the overall one "
             f"{j0.grade}:" if len(picked) == len(ranked) else
             f"{j0.inspectorate}'s {which} grade for {j0.council}, besides the overall judgement, "
             f"is {j0.grade}:"]
    parts += [f"\"{j.judgement}\" [{n + 1}]." for n, j in enumerate(picked)]
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


# --- "why?" after a grade: the report's own summary of what it judged ---------------------

def findings_behind(question: str, cited: tuple[Citation, ...], eng: Engine) -> Answer | None:
    """"Why?" after a grade (a judgement, score or rating row the last answer cited): the
    sentences that open the report's summary of what it judged, in order, as many as fit in
    ``W.reason_words``. Inspectors give their reasons there: below the judgement table (ILACS,
    SIF), under the family's findings heading (area SEND) or below a CQC page's score, and for
    one judgement of several, in its own section with the headline sentence that names it.
    None when the last answer cited no grade or the report has no such sentences."""
    row = _graded_row(cited, eng)
    if row is None:
        return None
    text = eng.retriever.report_text(row.report_id)
    spans = _fit(text, _reason_spans(row, text, eng, leaning(text[row.start:row.end])))
    if not spans:
        return None
    cites = tuple(cite_span(i + 1, row.report_id, eng, s, e, council=row.council)
                  for i, (s, e) in enumerate(spans))
    body = " ".join(with_marker(clean_quote(c.quote), c.n) for c in cites)
    return Answer(question, f"The report's findings: {body}", False, cites, answerer="table")


Graded = JudgementRow | ScoreRow | RatingRow


def visit_findings(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """A grade asked, with no topic of its own, of councils whose only reports from the
    inspection the question's year points to are ungraded visits (a focused visit letter:
    its family's profile has a findings heading and no grades): there is no grade to give,
    so the answer says so and quotes the opening of the visit's findings, as "why?" after a
    grade reads a summary. None when a named council has a graded report, or no such visit."""
    d = eng.derived()
    rows: list[JudgementRow | RatingRow] = [*d.judgements, *d.ratings]
    graded = {r.report_id for r in rows}
    reports = [r for r in _council_reports(councils, eng) if inspected_in(u, r.metadata)]
    visits = [(r, p) for r in reports if (p := profile_named(r.metadata.get("family")))
              and p.findings and not p.grades]
    if not visits or any(r.report_id in graded for r in reports) or _asks_a_topic(u, reports) \
            or _asks_of_a_grade(u):
        return None
    cites: list[Citation] = []
    parts: list[str] = []
    for row, prof in visits:
        said = _visit_opening(row, prof, eng, cites)
        if said:
            parts.append(said)
    if not cites:
        return None
    if asks("grade_itself", u.question):
        # "What overall grade did Blackpool get after its focused visit?": there is none.
        see = tuple(replace(c, see_also=True) for c in cites)
        names = " or ".join(dict.fromkeys(_org_name(r.metadata) for r, _ in visits))
        return replace(abstained(u.question, f"The indexed reports give no grade for {names}: "
                                 f"{visits[0][1].inspectorate} does not grade such a visit.",
                                 see),
                       answerer="table")
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _visit_opening(row: ReportRow, prof: Profile, eng: Engine, cites: list[Citation]) -> str:
    """An ungraded visit said to be one, then the sentences its findings open with, cited
    (appended to ``cites``, numbered on from them); "" when it has no findings heading."""
    m = row.metadata
    # No dates here: every figure an answer states is in a passage it cites (verify.py).
    opening = f"{prof.inspectorate}'s visit to {_org_name(m)} was not graded; its findings open:"
    text = eng.retriever.report_text(row.report_id)
    start = _summary_start(text, 0, prof)
    spans = _fit(text, _summary_opening(text, start, eng.derived().templates, ""),
                 W.reason_words - len(opening.split())) if start else []
    new = [cite_span(len(cites) + i + 1, row.report_id, eng, s, e, council=m.get("council"))
           for i, (s, e) in enumerate(spans)]
    cites += new
    return " ".join([opening, *(with_marker(clean_quote(c.quote), c.n) for c in new)]) if new \
        else ""


def _asks_of_a_grade(u: Understanding) -> bool:
    """Does the question ask about a grade given some time ("when was Worcestershire judged
    inadequate?", "what was it rated at its previous inspection?", "was it good?") rather
    than for the grade of the visit? Then a visit's findings do not answer it."""
    asked = set(tokenize(u.question))
    return u.other_inspection or u.yes_no or asks("asks_when", u.question) \
        or bool(asked & (_GRADE_NAMES - _GRADE_ASKING))


def _asks_a_topic(u: Understanding, reports: list[ReportRow]) -> bool:
    """Does a grade question name something narrower than the council's service ("how did
    Ofsted rate Kent's front door?"), besides the council, its reports' family (by title,
    service and the words it is asked by) and the words that ask for a grade?"""
    names = " ".join(f"{r.metadata.get('council') or ''} {r.metadata.get('organisation') or ''}"
                     for r in reports)
    families = " ".join(f"{p.title} {p.service} {' '.join(p.asked_by)}" for p in
                        filter(None, (profile_named(r.metadata.get("family")) for r in reports)))
    q = {t for t in u.topic_terms if t not in _JUDGEMENT_FRAME_STEMS}
    return bool(_topic(q, f"{names} {families}"))


def report_summary(u: Understanding, council: str, eng: Engine) -> Answer | None:
    """"Summarise Plymouth's report": each current report's overall grade, then the sentences
    that open its summary of findings (as "why?" after that grade reads them), within
    ``W.reason_words`` each; None when no report of the council has an overall grade."""
    d = eng.derived()
    hidden = set(d.hidden())
    overall: list[Graded] = [
        *(j for j in d.judgements if j.judgement in _OVERALL or j.family == "ofsted-area-send"),
        *d.ratings]
    seen: set[str] = set()
    cites: list[Citation] = []
    parts: list[str] = []
    for row in overall:
        if (row.council_key != council or row.report_id in seen or row.report_id in hidden
                or not d.in_scope(row.report_id)):
            continue
        seen.add(row.report_id)
        text = eng.retriever.report_text(row.report_id)
        cites.append(cite_span(len(cites) + 1, row.report_id, eng, row.start, row.end,
                               council=row.council))
        said = [with_marker(clean_quote(cites[-1].quote), len(cites))]
        for s, e in _fit(text, _reason_spans(row, text, eng, "")):
            cites.append(cite_span(len(cites) + 1, row.report_id, eng, s, e, council=row.council))
            said.append(with_marker(clean_quote(cites[-1].quote), len(cites)))
        parts.append(f"{row.council}: " + " ".join(said))
    # A council's ungraded visits (a focused visit letter) are summarised by their findings.
    for report in _council_reports((council,), eng):
        prof = profile_named(report.metadata.get("family"))
        if prof is None or not prof.findings or prof.grades or report.report_id in seen \
                or report.report_id in hidden or not d.in_scope(report.report_id):
            continue
        seen.add(report.report_id)
        said_visit = _visit_opening(report, prof, eng, cites)
        if said_visit:
            parts.append(said_visit)
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def _graded_row(cited: tuple[Citation, ...], eng: Engine) -> Graded | None:
    d = eng.derived()
    rows: list[Graded] = [*d.judgements, *d.scores, *d.ratings]
    return next((r for c in cited for r in rows
                 if overlap(c.span, (r.report_id, r.start, r.end))), None)


def _reason_spans(row: Graded, text: str, eng: Engine, lean: str) -> list[tuple[int, int]]:
    d = eng.derived()
    rows: list[Graded] = [*d.judgements, *d.scores, *d.ratings]
    table_end = max(r.end for r in rows if r.report_id == row.report_id)
    prof = profile_named(row.family) if isinstance(row, JudgementRow) else None
    start = _summary_start(text, table_end, prof)
    several = sum(1 for r in d.judgements if r.report_id == row.report_id) > 1
    if not (isinstance(row, JudgementRow) and several) or row.judgement in _OVERALL:
        return _summary_opening(text, start, d.templates, lean)
    # One judgement of several: the first sentence after the grades that names it (the
    # headline's word on it) and the next one of its paragraph, then the opening of the
    # judgement's own section.
    named = _judgement_words(row.judgement)
    # The headline's word on the judgement is its verdict, whichever way it leans.
    mention = next((sp for sp in _findings(text, start, d.templates)
                    if _about(text[sp[0]:sp[1]], named)), None)
    said = [mention, *paragraph_after(text, mention[1], d.templates, lean)[:1]] \
        if mention else []
    at = _section_start(text, named, table_end)
    # Its own section from its opening, in order: with shortfalls put first, a long one did
    # not fit beside the headline's sentences and the section went unquoted.
    own = list(islice(_findings(text, at, d.templates, lean), _READ)) if at is not None else []
    return said + [sp for sp in own if sp not in said]


_READ = 4  # sentences read at an opening: more never fit in the answer
_SUBJECT_WORDS = 10


def _summary_opening(text: str, start: int, templates: frozenset[str],
                     lean: str) -> list[tuple[int, int]]:
    """The first ``_READ`` findings of a summary from ``start``; below a low grade, those of
    its first ``2 * _READ`` that state a shortfall come first (``_shortfalls_first``)."""
    return _shortfalls_first(text, list(islice(_findings(text, start, templates, lean),
                                               2 * _READ)), lean)[:_READ]


def _shortfalls_first(text: str, spans: list[tuple[int, int]],
                      lean: str) -> list[tuple[int, int]]:
    """Below a low grade (``lean`` "shortfall"), the spans that state a shortfall first, each
    group in order; otherwise the spans as they are. A low-graded summary or paragraph opens
    with what works ("The local authority is in touch with the vast majority of care
    leavers") as often as with what does not, and what does not is why it is low."""
    if lean != "shortfall":
        return spans
    return sorted(spans, key=lambda sp: leaning(text[sp[0]:sp[1]]) != "shortfall")


def paragraph_after(text: str, end: int, templates: frozenset[str],
                    lean: str) -> list[tuple[int, int]]:
    """The findings after ``end`` in its paragraph; below a low grade, those that state a
    shortfall first, in order. The headline's paragraph names what works before what does
    not ("The local authority is in touch with the vast majority of care leavers. ... Support
    from personal advisers is variable"), and asked why the grade is low, the reason is the
    latter."""
    read = islice(_findings(text, end, templates, lean), 2 * _READ)
    return _shortfalls_first(text, [sp for sp in read if "\n" not in text[end:sp[0]]], lean)


def _about(sentence: str, named: set[str]) -> bool:
    """Is the sentence about the judgement: are its words in the sentence's opening words
    (its subject: "Services to care leavers have improved ...", not "... woven through work
    with all children and care leavers")?"""
    return named <= set(tokenize(" ".join(sentence.split()[:_SUBJECT_WORDS])))


def _findings(text: str, start: int, templates: frozenset[str],
              lean: str = "") -> Iterator[tuple[int, int]]:
    """The findings from ``start`` on; below a low grade (``lean`` "shortfall"), not those
    that praise. A low-graded summary opens with what works as well as what does not, and
    asked why a service requires improvement, the reasons are its shortfalls. Not the other
    way round: a good grade's summary is mostly praise already, and the shortfall cue's
    words turn up in praise too ("arrangements to prevent, delay or reduce needs")."""
    return (sp for sp in _opening(text, start) if is_finding(text[sp[0]:sp[1]], templates)
            and not (lean == "shortfall" and leaning(text[sp[0]:sp[1]]) == "strength"))


def _summary_start(text: str, table_end: int, prof: Profile | None) -> int:
    """Where the summary of findings opens: after the family's findings heading when it has
    one, else right below the grades."""
    for heading in prof.findings if prof else ():
        # The heading's own line before its line in a contents list ("Summary of findings 3").
        m = re.compile(rf"^{re.escape(heading)}[ \t]*$", re.M).search(text, table_end)
        if m:
            return m.end()
        at = text.find(heading, table_end)
        if at >= 0:
            return at + len(heading)
    return table_end


def _section_start(text: str, named: set[str], after: int) -> int | None:
    """The end of the heading of a judgement's own section: the first heading line after the
    grades with every distinctive word of the judgement ("The experiences and progress of
    care leavers: requires improvement to be good"; SIF: "The graded judgement about the
    experience and progress of care leavers is that ..."), not a contents line (which ends
    in its page number)."""
    for m in re.finditer(r"[^\n]+", text[after:]):
        s, e = after + m.start(), after + m.end()
        if (_heading(text, s, e) and len(m.group().split()) <= _HEADING_WORDS
                and not re.search(r"\s\d{1,3}$", m.group()) and named <= set(tokenize(m.group()))):
            return e
    return None


_HEADING_WORDS = 25
_OPENING_CHARS = 12000  # how far a summary or section is read for its findings


def _opening(text: str, start: int) -> Iterator[tuple[int, int]]:
    """The findings from ``start`` on, in order: sentences of a few words or more, not
    headings and not under one of CQC's standard headings ("What people expect", "The local
    authority commitment"). The caller skips labels and standard wording (``is_finding``)."""
    standard = False
    for s, e in sentence_spans(text, start, min(len(text), start + _OPENING_CHARS)):
        if _heading(text, s, e):
            standard = text[s:e].strip() in BOILERPLATE
        elif len(text[s:e].split()) >= 4 and not standard:
            yield s, e


def _heading(text: str, s: int, e: int) -> bool:
    """A whole line that does not end as a sentence ends: a heading, or a question heading."""
    whole_line = (s == 0 or text[s - 1] == "\n") and (e == len(text) or text[e] == "\n")
    return whole_line and not text[s:e].rstrip("”’\"')").endswith((".", "!"))


def _fit(text: str, spans: list[tuple[int, int]],
         budget: int | None = None) -> list[tuple[int, int]]:
    """The spans in order, as many as fit in ``budget`` words (``W.reason_words``; a first one
    too long for it cut to its opening words)."""
    budget = budget or W.reason_words
    out: list[tuple[int, int]] = []
    words = 0
    for s, e in spans:
        n = len(text[s:e].split()) + 1  # its citation marker ("[2].") is a word of the answer
        if words + n > budget:
            if not out:
                out.append((s, s + len(" ".join(text[s:e].split(" ")[:budget - 1]))))
            break
        out.append((s, e))
        words += n
    return out
