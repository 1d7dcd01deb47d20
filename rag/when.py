"""When a question asks about: the stretch of dates it names, for lists of inspections ("which
councils did Ofsted visit between July and December 2024?", "... before 2023", "... in autumn
2024") and whether it asks for the earliest or the most recent one. Public: `Window`,
`asked_window`, `asked_extreme`, `season_words`.

The wording is data (rag/vocab/questions.toml: the `[[season]]` rows and the patterns named
below); report dates are read by reportqa.text `date_range`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache

from rag.lexicon import pattern, vocab
from reportqa.text import MONTHS, months_in, years_in

_HALVES = {"first": (1, 6), "second": (7, 12)}


@dataclass(frozen=True)
class Window:
    """Stretches of dates (first day, last day), any of which an inspection may overlap, and
    how the answer says them (" between July and December 2024")."""

    spans: tuple[tuple[date, date], ...]
    said: str

    def overlaps(self, first: date, last: date) -> bool:
        return any(first <= b and a <= last for a, b in self.spans)


def _month_span(year: int, first: int, last: int) -> tuple[date, date]:
    """First day of ``first`` month to last day of ``last`` (the next year's when it is
    earlier in the calendar: winter, December to February)."""
    end_year = year + 1 if last < first else year
    return date(year, first, 1), date(end_year, last, calendar.monthrange(end_year, last)[1])


def _name(m: int) -> str:
    return MONTHS[m - 1].title()


def _open_ended(q: str) -> Window | None:
    """"before 2023", "since March 2024", "after 2023": one side open."""
    for name, side in (("before_date", "before"), ("after_date", "after"), ("since_date", "since")):
        m = pattern("questions", name).search(q)
        if m is None:
            continue
        year = int(m.group("year"))
        month = months_in(m.group("month") or "", loose=True)
        first, last = _month_span(year, month[0], month[0]) if month else _month_span(year, 1, 12)
        said = f" {side} {_name(month[0]) + ' ' if month else ''}{year}"
        if side == "before":
            return Window(((date.min, first - timedelta(days=1)),), said)
        if side == "after":
            return Window(((last + timedelta(days=1), date.max),), said)
        return Window(((first, date.max),), said)
    return None


def _month_range(q: str, years: list[int]) -> Window | None:
    """"between July and December 2024", "from Dec 2024 to Feb 2025", "September to
    November": every month from the first named to the last."""
    for m in pattern("questions", "month_range").finditer(q):
        a, b = months_in(m.group("a"), loose=True), months_in(m.group("b"), loose=True)
        dated = m.group("ya") and m.group("yb")
        if not a or not b or (m.group("join") == "and" and not (m.group("between") or dated)):
            continue
        ya = int(m.group("ya")) if m.group("ya") else years[0]
        yb = int(m.group("yb")) if m.group("yb") else years[-1]
        if yb == ya and b[0] < a[0]:
            yb += 1  # "December to February 2025" runs over the new year
        first = _month_span(ya, a[0], a[0])[0]
        last = _month_span(yb, b[0], b[0])[1]
        said = f" between {_name(a[0])}{' ' + str(ya) if ya != yb else ''} and {_name(b[0])} {yb}"
        return Window(((first, last),), said)
    return None


@cache
def _seasons() -> tuple[tuple[str, tuple[str, ...], int, int], ...]:
    """Each [[season]] row: its name, the words that name it, its first and last month."""
    return tuple((r["name"], tuple(r["words"].split()), r["months"][0], r["months"][-1])
                 for r in vocab("questions")["season"])


def season_words() -> frozenset[str]:
    """Every word that names a season ("autumn", "fall")."""
    return frozenset(w for _, said, _, _ in _seasons() for w in said)


def _season(q: str, year: int) -> Window | None:
    for name, said, first, last in _seasons():
        if re.search(rf"\b(?:{'|'.join(said)})\b", q, re.I):
            span = _month_span(year, first, last)
            return Window((span,), f" in {name} {year} ({_name(first)} to {_name(last)})")
    return None


def _half(q: str, year: int) -> Window | None:
    m = pattern("questions", "half_year").search(q)
    if m is None:
        return None
    half = "first" if m.group("half") in ("first", "1st") else "second"
    return Window((_month_span(year, *_HALVES[half]),), f" in the {half} half of {year}")


def asked_window(question: str) -> Window | None:
    """The dates a question asks about, or None when it names no year. Read in this order: a
    range of months, one side open ("before 2023"), a season, half a year, months of the
    year, the years themselves ("in 2016 or 2017")."""
    years = [int(y) for y in years_in(question)]
    if not years:
        return None
    found = (_month_range(question, years) or _open_ended(question)
             or _season(question, years[0]) or _half(question, years[0]))
    if found:
        return found
    months = months_in(question, loose=True)
    if months:
        spans = tuple(_month_span(y, m, m) for y in years for m in months)
        names = " or ".join(_name(m) for m in months)
        return Window(spans, f" in {names} {' or '.join(map(str, years))}")
    return Window(tuple(_month_span(y, 1, 12) for y in years),
                  " in " + " or ".join(map(str, years)))


def asked_extreme(question: str) -> str:
    """"earliest" or "latest" when the question asks for the first or the most recent
    inspection ("which area had the earliest of the SEND inspections?"), else ""."""
    for side, row in (("earliest", "earliest_one"), ("latest", "latest_one")):
        if pattern("questions", row).search(question):
            return side
    return ""
