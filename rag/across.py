"""Questions across councils, answered from the tables: which councils have a grade (of any
report family, for a judgement the question names, on a side of a grade), which were
inspected when, which has the top or bottom score of a quality statement, two councils'
overall grades side by side, and what the index holds. Public: `which_rated`,
`which_inspected`, `statement_top`, `grades_side_by_side`, `names_a_topic`,
`indexed_reports`.

The question types that route here are rows of rag/structured.py `QUESTION_TYPES`; the grade
and family wording they read is rag/grades.py and rag/vocab/questions.toml. Every answer
cites each council's own line (a judgement table row, a rating line, printed inspection
dates), one citation per council; measured on blind analyst-style questions by
evals/cross_councils.py (evals/README.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from ingest.profiles import scopes
from rag.cite_rows import cite_row, cite_score, refused
from rag.engine import Engine
from rag.evidence import cite_span
from rag.grades import grades_match, named_families, rank, scope_of
from rag.judgement_answers import judgements_named_across, report_metadata
from rag.lexicon import pattern, words
from rag.query import Understanding
from rag.retrieve import tokenize
from rag.tables import JudgementRow, RatingRow, best_per_key
from rag.when import Window, asked_extreme, asked_window
from reportqa.records import Answer, Citation
from reportqa.text import date_range, years_in


def _family_of(m: Mapping[str, Any]) -> str:
    """A report's family: a page no profile recognised is a CQC assessment page when the CQC
    reader gave it one of its page kinds; anything else has none ("")."""
    return m.get("family") or (
        "cqc-la-assessment" if m.get("page_kind") not in (None, "", "other") else "")


def indexed_reports(u: Understanding, eng: Engine) -> Answer:
    """What the index holds: its current reports by family (only the families the question
    names, if any), each family's councils in order. About the index, not the reports' text,
    so nothing is quoted."""
    named = named_families(u.normalised)
    groups: dict[str, list[str]] = {}
    counts: dict[str, int] = {}
    for row in eng.current_reports():
        m = row.metadata
        family = _family_of(m)
        if named and family not in named:
            continue
        scope = scope_of(family)
        service = scope.service if scope else "other reports"
        counts[service] = counts.get(service, 0) + 1
        groups.setdefault(service, []).append(m.get("council") or m.get("title") or row.path)
    if not groups:
        return refused(u, "No report of that kind is indexed.")
    lines = [f"{s} ({_reports_on(counts[s], len(set(names)))}): {', '.join(sorted(set(names)))}"
             for s, names in sorted(groups.items(), key=lambda g: g[0].lower())]
    return Answer(u.question, "The index holds " + "; ".join(lines) + ".", False, (),
                  answerer="table")


def _reports_on(reports: int, councils: int) -> str:
    said = f"{reports} report{'s' if reports != 1 else ''}"
    return said if councils == reports else f"{said} on {councils} councils"


@dataclass(frozen=True)
class _Inspected:
    """One report's line in a which-inspected (or CQC-published) answer: its printed dates,
    where they are in the report's text, and their first day (None when they do not read as
    a date)."""

    service: str
    council: str
    report_id: str
    dates: str
    at: int
    first_day: date | None


def which_inspected(u: Understanding, eng: Engine) -> Answer | None:
    """The councils whose current reports state inspection dates in the stretch of dates
    asked ("in 2024", "in october 2024", "between July and December 2024", "before 2023"),
    any when none is, of the families the question names, each cited on its dates, grouped
    by family; only the earliest or the most recent when that is asked. Reports that state no
    inspection dates (CQC's assessments state when they were published) are not listed: None
    when no report of the families asked states dates, so search answers; when some do but
    none in the dates asked, no council was."""
    named = named_families(u.normalised)
    window, extreme = asked_window(u.question), asked_extreme(u.question)
    found: list[_Inspected] = []
    dated = 0
    for row in eng.current_reports():
        m = row.metadata
        dates = m.get("inspection_dates") or ""
        if not dates or (named and m.get("family") not in named):
            continue
        dated += 1
        span = date_range(dates)
        if (window or extreme) and (span is None or (window and not window.overlaps(*span))):
            continue
        at = eng.retriever.report_text(row.report_id).find(dates)
        if at >= 0:
            found.append(_Inspected(_service(m.get("family") or ""), m.get("council") or "",
                                    row.report_id, dates, at, span[0] if span else None))
    if not found and not dated and named:
        # The families asked state no inspection dates (CQC's assessments): when they were
        # published is what their pages say.
        return _published_in(u, eng, named, window)
    when = window.said if window else ""
    if not found:
        return refused(u, f"No indexed report of that kind states an inspection{when} "
                       f"({dated} reports' dates checked).") if dated else None
    found = _at_extreme(found, extreme)
    services = list(dict.fromkeys(f.service for f in found))
    found.sort(key=lambda f: (services.index(f.service), f.council))
    cites: list[Citation] = []
    groups: dict[str, list[str]] = {}
    for f in found:
        cites.append(cite_span(len(cites) + 1, f.report_id, eng, f.at, f.at + len(f.dates),
                               council=f.council))
        groups.setdefault(f.service, []).append(f"{f.council} ({f.dates}) [{len(cites)}]")
    body = "; ".join(f"{s}: {', '.join(items)}" for s, items in groups.items())
    lead = f"The {_EXTREME_SAID[extreme]} indexed inspection{when}" if extreme \
        else f"Indexed councils inspected{when}"
    return Answer(u.question, f"{lead} - {body}.", False, tuple(cites), answerer="table")


_EXTREME_SAID = {"earliest": "earliest", "latest": "most recent"}


def _at_extreme(found: list[_Inspected], extreme: str) -> list[_Inspected]:
    """Those of ``found`` on the earliest or latest first day, when that is asked (ties: all)."""
    if not extreme or not found:
        return found
    pick = (min if extreme == "earliest" else max)(f.first_day or date.min for f in found)
    return [f for f in found if (f.first_day or date.min) == pick]


_PUBLISHED = pattern("sentences", "published_line")


def _published_in(u: Understanding, eng: Engine, named: frozenset[str],
                  window: Window | None) -> Answer | None:
    """"Which councils did CQC assess in 2024?": CQC's pages state when an assessment was
    published, not when it was made, so the answer says so and lists the councils whose
    assessment was published in the dates asked, each cited on its "Published:" line (one
    per council); None when no report of the families asked prints one."""
    found: dict[str, _Inspected] = {}  # by council: its first page printing a date in the window
    printed = 0
    for row in eng.current_reports():
        if _family_of(row.metadata) not in named:
            continue
        line = _PUBLISHED.search(eng.retriever.report_text(row.report_id))
        if line is None:
            continue
        printed += 1
        span = date_range(line.group(1))
        if span is None or (window and not window.overlaps(*span)):
            continue
        council = row.metadata.get("council") or ""
        found.setdefault(council, _Inspected("", council, row.report_id, line.group(1),
                                             line.start(1), span[0]))
    if not printed:
        return None
    extreme = asked_extreme(u.question)
    kept = sorted(_at_extreme(list(found.values()), extreme), key=lambda f: f.council)
    when = window.said if window else ""
    if not kept:
        return refused(u, f"The indexed CQC assessments state when they were published, not when "
                       f"they were made; none was published{when} ({printed} pages checked).")
    cites: list[Citation] = []
    items: list[str] = []
    for f in kept:
        cites.append(cite_span(len(cites) + 1, f.report_id, eng, f.at, f.at + len(f.dates),
                               council=f.council))
        items.append(f"{f.council} ({f.dates}) [{len(cites)}]")
    which = f"The {_EXTREME_SAID[extreme]} published" if extreme else "Published"
    return Answer(u.question, f"The indexed CQC assessments state when they were published, not "
                  f"when they were made. {which}{when}: {', '.join(items)}.", False, tuple(cites),
                  answerer="table")


def statement_top(u: Understanding, stmts: tuple[str, ...], eng: Engine) -> Answer:
    """The councils with the lowest (highest) stated score for each statement asked, every
    council that shares it listed, one citation each."""
    hidden = set(eng.derived().hidden())
    groups = best_per_key([r for r in eng.derived().scores if r.report_id not in hidden])
    word = "lowest" if u.direction == "min" else "highest"
    parts: list[str] = []
    cites: list[Citation] = []
    for stmt in stmts:
        rows = [g[0] for (_c, s), g in groups.items() if s == stmt]
        if not rows:
            continue
        best = (min if u.direction == "min" else max)(r.score for r in rows)
        names = []
        for r in (r for r in rows if r.score == best):
            cites.append(cite_score(len(cites) + 1, r, eng))
            names.append(f"{r.council} [{len(cites)}]")
        label = next(r.label for r in rows if r.score == best)
        # No count of the councils compared: it is no figure a quote states (check_figures).
        parts.append(f"the {word} score for {stmt} among indexed councils is {best} ({label}): "
                     + "; ".join(names))
    if not parts:
        return refused(u, f"No indexed council states a score for {' or '.join(stmts)}.")
    text = ". ".join(p[0].upper() + p[1:] for p in parts) + "."
    return Answer(u.question, text, False, tuple(cites), answerer="table")


def names_a_topic(u: Understanding, names: dict[str, str]) -> bool:
    """Does a comparison ask about something besides the councils and their grades
    ("compare cumberland and havering" does not; "... on care leavers" does)?"""
    known = {t for k, n in names.items() for t in tokenize(f"{n} {k.replace('-', ' ')}")}
    return bool(set(u.terms) - known - _not_a_topic())


@cache
def _not_a_topic() -> frozenset[str]:
    """Words a comparison may use without asking about anything but the grades."""
    text = " ".join([*words("questions", "compare_only"), *words("questions", "grade_asking"),
                     *(w for s in scopes() for w in (*s.asked_by, *s.grades))])
    return frozenset(tokenize(text))


def grades_side_by_side(u: Understanding, councils: tuple[str, ...],
                         eng: Engine) -> Answer | None:
    """Each council's overall grade from every family indexed for it (only the families the
    question names, if any), in the order asked; None when no council has one."""
    named = named_families(u.normalised)
    hidden = set(eng.derived().hidden())
    parts: list[str] = []
    cites: list[Citation] = []
    for key in councils:
        rows: dict[str, RatingRow] = {}
        for r in eng.derived().ratings:
            if r.council_key == key and r.report_id not in hidden and (not named or r.family in named):
                rows.setdefault(r.family, r)
        for r in rows.values():
            cites.append(cite_row(len(cites) + 1, r, eng, r.start, r.end))
            parts.append(f"{r.council}, {_service(r.family)}: {r.rating}"
                         f"{' (indicative)' if r.indicative else ''} [{len(cites)}].")
        if not rows:
            name = eng.derived().council_names((key,))[0]
            parts.append(f"No overall grade of {name} is indexed.")
    if not cites:
        return None
    return Answer(u.question, " ".join(parts), False, tuple(cites), answerer="table")


def which_rated(u: Understanding, eng: Engine) -> Answer:
    """The councils whose overall grade is one asked, one citation each, one grade per
    council and report family (a council may have a CQC rating and an Ofsted grade); only the
    families the question names ("rated good by Ofsted"); grouped by family when the list
    mixes them. "Not rated good", "below good", "good or better": the councils whose family
    grades on a scale with that grade, graded otherwise, lower, or as high or higher."""
    wanted = _Wanted.of(u)
    # A topic some judgement covers ("for care leavers"): that judgement's grades. Any other
    # topic ("rated good for safeguarding", a CQC statement) keeps the overall grades.
    named = named_families(u.normalised)
    across = [j for j in judgements_named_across(u, eng) or [] if wanted.on_scale(j.family)
              and (not named or j.family in named) and _of_year(u, j.report_id, eng)]
    if across:
        return _which_judged(u, wanted, across, eng)
    hidden = set(eng.derived().hidden())
    rows: dict[tuple[str, str], RatingRow] = {}
    for r in eng.derived().ratings:
        if (r.report_id not in hidden and (not named or r.family in named)
                and _of_year(u, r.report_id, eng)):
            rows.setdefault((r.council_key, r.family), r)
    match = [r for r in rows.values() if wanted(r.family, r.rating)]
    where = "" if not named else " for " + " and ".join(sorted(
        {_service(r.family) for r in rows.values() if wanted.on_scale(r.family)}
        or {s.service for f in named if (s := scope_of(f)) and wanted.on_scale(f)}))
    if not match:
        return refused(u, f"No indexed council is {wanted.said('rated')}{where} "
                       f"({len(rows)} rating{'' if len(rows) == 1 else 's'} indexed).")
    listed = _by_service(match)
    cites = [cite_row(i + 1, r, eng, r.start, r.end) for i, r in enumerate(listed)]
    # "How many ...?" gets the list too: its markers count it, and a count the table derives
    # is no figure a quote states (check_figures would drop it).
    body = _rated_list(listed, wanted.shows_grade, bool(named))
    return Answer(u.question, f"Indexed councils {wanted.said('rated')}{where}{body}.",
                  False, tuple(cites), answerer="table")


def _of_year(u: Understanding, report_id: str, eng: Engine) -> bool:
    """Is the report of the year the question names ("inspected by ofsted in 2024"), if any?
    Its inspection dates' years when it prints them, else its publication's: in a list,
    "inspected in 2025" is not a November 2024 inspection published in January."""
    if not u.years:
        return True
    m = report_metadata(report_id, eng)
    stated = m.get("inspection_dates") or m.get("published") or ""
    return not stated or bool(set(u.years) & set(years_in(str(stated))))


@dataclass(frozen=True)
class _Wanted:
    """Which grades a list question wants: those named, or (``side``) every other grade, the
    grades below the first named, or it and those above, on each family's scale."""

    grades: tuple[str, ...]
    side: str  # "" | "not" | "below" | "at_least"

    @classmethod
    def of(cls, u: Understanding) -> _Wanted:
        side = "not" if u.negated else (u.direction if u.direction in ("below", "at_least") else "")
        return cls(tuple((u.rating_value or "").split(" or ")), side)

    def on_scale(self, family: str) -> bool:
        """Is some grade asked on the family's scale (area SEND has no "Good")?"""
        return any(rank(family, g) is not None for g in self.grades)

    def __call__(self, family: str, grade: str) -> bool:
        named = any(grades_match(grade, g) for g in self.grades)
        if not self.side:
            return named
        if not self.on_scale(family):
            return False
        if self.side == "not":
            return not named
        at, first = rank(family, grade), rank(family, self.grades[0])
        if at is None or first is None:
            return False
        return at > first if self.side == "below" else at <= first

    @property
    def shows_grade(self) -> bool:
        """Each council's own grade is said when the list holds more than the grades named."""
        return bool(self.side) or len(self.grades) > 1

    def said(self, verb: str) -> str:
        grades = " or ".join(self.grades)
        return {"": f"{verb} {grades}", "not": f"not {verb} {grades}",
                "below": f"{verb} below {grades}",
                "at_least": f"{verb} {grades} or better"}[self.side]


def _which_judged(u: Understanding, wanted: _Wanted, rows: list[JudgementRow],
                  eng: Engine) -> Answer:
    """The councils whose judgement the question names has a grade asked, one citation each."""
    match = [j for j in rows if wanted(j.family, j.grade)]
    names = " or ".join(dict.fromkeys(f"\u201c{j.judgement}\u201d" for j in match or rows))
    if not match:
        return refused(u, f"No indexed council is {wanted.said('graded')} for {names} "
                       f"({len(rows)} judgements checked).")
    cites = [cite_span(i + 1, j.report_id, eng, j.start, j.end, council=j.council)
             for i, j in enumerate(match)]
    body = "; ".join(f"{j.council}{f': {j.grade}' if wanted.shows_grade else ''} [{i + 1}]"
                     for i, j in enumerate(match))
    return Answer(u.question, f"Indexed councils {wanted.said('graded')} for {names}: {body}.",
                  False, tuple(cites), answerer="table")


def _service(family: str) -> str:
    """What a report family is about ("children's services (Ofsted)"), or its id if unknown."""
    s = scope_of(family)
    return s.service if s else family


def _by_service(rows: list[RatingRow]) -> list[RatingRow]:
    """Rows of one family together, the families in the order they first appear."""
    order = list(dict.fromkeys(_service(r.family) for r in rows))
    return sorted(rows, key=lambda r: order.index(_service(r.family)))


def _rated_list(rows: list[RatingRow], with_grade: bool, scoped: bool) -> str:
    """": A [1]; B [2]" or, when the rows mix families the question did not name, " - adult
    social care (CQC): A [1], B [2]; children's services (Ofsted): C [3]"."""
    items = [f"{r.council}{' (indicative)' if r.indicative else ''}"
             f"{f': {r.rating}' if with_grade else ''} [{i + 1}]" for i, r in enumerate(rows)]
    services = [_service(r.family) for r in rows]
    if scoped or len(set(services)) == 1:
        return ": " + "; ".join(items)
    groups = {s: [it for it, s2 in zip(items, services, strict=True) if s2 == s] for s in services}
    return " - " + "; ".join(f"{s}: {', '.join(its)}" for s, its in groups.items())
