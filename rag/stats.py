"""Statistics table: figures in report text with what they measure and their comparison.
Public: `extract_stats`.

"25.19% of carers ... accessing a support group ..., which was worse than the England average
of 32.98% (SACE, June 2024)" -> subject "carers ... accessing a support group ...", value 25.19,
unit %, comparator "England average" 32.98, direction below, source "SACE", date "June 2024".
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from rag.lexicon import pattern
from reportqa.text import sentence_spans

_PCT = r"\d{1,3}(?:\.\d+)?\s?%"
_FIGURE = re.compile(
    rf"(?P<pct>{_PCT})|(?P<money>£\s?\d[\d,]*(?:\.\d+)?\s?(?:m|bn|k|million|billion)?\b)|"
    r"(?P<dur>\b\d+(?:\.\d+)?\s(?:days?|weeks?|months?|years?|hours?)\b)|"
    r"(?P<count>\b\d{1,3}(?:,\d{3})+\b|\b\d{2,}\b(?=\s+(?:people|carers|adults|providers|"
    r"care homes|homes|staff|referrals|assessments|requests|beds|hours|residents)))"
)
_COMPARATOR = re.compile(
    rf"(?P<name>(?:{pattern('cues', 'comparator_name').pattern})"
    rf"(?: local authorities)? average)(?:\s*(?:of|at|was|is|:)?\s*\(?(?P<val>{_PCT}))?", re.I)
_COMPARED_TO = re.compile(rf"\(?(?P<a>{_PCT})\s*(?:compared (?:to|with)|vs\.?|versus)\s*(?P<b>{_PCT})")
_SOURCE = re.compile(
    r"\((?P<src>[^()]*?(?:Survey|SACE|ASCS|ASCOF|Outcomes Framework|Census|data)[^()]*?)"
    r"(?:,\s*(?P<date>(?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December) \d{4}|\d{4}(?:/\d{2,4})?))?\)")
# Which way a figure lies from its comparator (rag/vocab/cues.toml).
_BELOW = pattern("cues", "below")
_ABOVE = pattern("cues", "above")
_SIMILAR = pattern("cues", "similar")


@dataclass(frozen=True)
class Stat:
    report_id: str
    council: str | None
    quality_statement: str | None
    subject: str
    value: float
    unit: str  # % | £ | count | duration
    raw: str
    comparator: str | None
    comparator_value: float | None
    direction: str | None  # below | above | similar
    source: str | None
    date: str | None
    start: int  # the sentence's span in the report text (what a citation quotes)
    end: int
    figure_start: int
    figure_end: int
    # The stretch of the sentence this figure owns: from the previous figure to the next one
    # ("80% of the population are adults and | 23.1% of the population are aged 65 and over").
    context_start: int
    context_end: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def extract_stats(report_id: str, text: str, council: str | None,
                  statement: str | None) -> list[Stat]:
    out: list[Stat] = []
    for s, e in sentence_spans(text):
        sent = text[s:e]
        if not re.search(r"\d", sent):
            continue
        out.extend(_sentence_stats(report_id, text, s, sent, council, statement))
    return out


def _sentence_stats(report_id: str, text: str, s: int, sent: str, council: str | None,
                    statement: str | None) -> list[Stat]:
    comp = _COMPARATOR.search(sent)
    pair = _COMPARED_TO.search(sent)
    src = _SOURCE.search(sent)
    comparator_vals = set()
    if comp and comp.group("val") and not (pair and comp.start("val") == pair.start("a")):
        comparator_vals.add(comp.start("val"))
    if pair:
        comparator_vals.add(pair.start("b"))
    stats = []
    figures = [m for m in _FIGURE.finditer(sent) if not _is_age(sent, m)]
    bounds = [(m.start(), m.end()) for m in figures]
    for m in figures:
        if m.start() in comparator_vals or _inside_comparator(sent, m.start()):
            continue
        if re.fullmatch(r"(19|20)\d\d", m.group(0).strip()):
            continue
        unit = next(k for k in ("pct", "money", "dur", "count") if m.group(k))
        value = _num(m.group(0))
        if value is None:
            continue
        cval, cname = None, None
        if unit == "pct":
            if pair and pair.start("a") == m.start():
                cval = _num(pair.group("b"))
                cname = comp.group("name") if comp else "comparison"
            elif comp and comp.group("val") and comp.start("val") != m.start() and comp.start() > m.start():
                cval, cname = _num(comp.group("val")), comp.group("name")
            elif comp and comp.start() > m.start():
                cname = comp.group("name")
        direction = _direction(sent, m.end(), value, cval) if cname else None
        stats.append(Stat(
            report_id=report_id, council=council, quality_statement=statement,
            subject=_subject(sent, m.start(), m.end()), value=value,
            unit={"pct": "%", "money": "£", "dur": "duration", "count": "count"}[unit],
            raw=m.group(0).strip().rstrip(","), comparator=_title(cname), comparator_value=cval,
            direction=direction, source=src.group("src").strip() if src else None,
            date=src.group("date") if src else None, start=s, end=s + len(sent),
            figure_start=s + m.start(), figure_end=s + m.end(),
            context_start=s + max((e for _, e in bounds if e <= m.start()), default=0),
            context_end=s + min((b for b, _ in bounds if b >= m.end()), default=len(sent)),
        ))
    return stats


def _is_age(sent: str, m: re.Match[str]) -> bool:
    """"aged 65 years and over", "over 65 years of age": an age band, not a duration."""
    if not m.group("dur"):
        return False
    before, after = sent[max(0, m.start() - 12) : m.start()], sent[m.end() : m.end() + 12]
    return bool(re.search(r"\b(aged|over|under|above|below)\s*$", before, re.I)
                or re.match(r"\s*(of age|old|and (over|older|above)|\+)", after, re.I))


def _inside_comparator(sent: str, pos: int) -> bool:
    before = sent[max(0, pos - 40) : pos].lower()
    return bool(re.search(r"average(?: of| was| is| at|:)?\s*\(?$", before))


def _num(raw: str) -> float | None:
    m = re.search(r"\d[\d,]*(?:\.\d+)?", raw)
    if not m:
        return None
    try:
        v = float(m.group(0).replace(",", ""))
    except ValueError:
        return None
    if re.search(r"(m|million)\b", raw):
        v *= 1e6
    elif re.search(r"(bn|billion)\b", raw):
        v *= 1e9
    return v


def _direction(sent: str, after: int, value: float, cval: float | None) -> str | None:
    if cval is not None:
        if abs(value - cval) < 1e-9:
            return "similar"
        numeric = "below" if value < cval else "above"
        if _SIMILAR.search(sent):
            return "similar"
        return numeric
    tail = sent[after : after + 160]
    if _SIMILAR.search(tail):
        return "similar"
    if _BELOW.search(tail):
        return "below"
    if _ABOVE.search(tail):
        return "above"
    return None


def _subject(sent: str, fs: int, fe: int) -> str:
    """What the figure measures, read from the clause around it:
    "25.19% of carers said ..." -> "carers said ..."; "Its actual spend was £236,392,000" ->
    "actual spend"; "£33,572,000 more than estimated" -> "more than estimated"."""
    lo = max((m.end() for m in _CLAUSE_BREAK.finditer(sent, 0, fs)), default=0)
    hi = next((m.start() for m in _CLAUSE_BREAK.finditer(sent, fe)), len(sent))
    before, after = sent[lo:fs].strip(), sent[fe:hi].strip()
    m = re.match(r"(?:of|of the)\s+(.{3,160})$", after)
    if m:
        return _tidy(_FILLER_TAIL.sub("", m.group(1)))
    core = _FILLER_TAIL.sub("", before)
    core = _FILLER_HEAD.sub("", core).strip()
    if len(re.findall(r"[A-Za-z]{3,}", core)) >= 2:
        tail = f" {after}" if re.match(r"(for|among|in|aged|who|of)\b", after) else ""
        return _tidy(" ".join((core + tail).split()[-14:]))
    if re.search(r"[A-Za-z]{3,}", after):
        return _tidy(after)
    return _tidy(" ".join(before.split()[-12:]) or sent[:80])


_CLAUSE_BREAK = re.compile(r"[,;:()]|\s(?=(?:Its|The|This|These|There)\s)|\b(?:which|whereas|while|"
                           r"compared|but)\b|\band(?=\s+\d)")
_FILLER_TAIL = re.compile(r"(?:\s*\b(?:was|were|is|are|be|been|being|of|at|to|by|around|approximately|"
                          r"about|nearly|almost|over|had|has|have|with|totalling|totaling|reached|would|will|"
                          r"stood at|rose to|fell to|increased to|decreased to|higher at|lower at|"
                          r"only|just|there|were)\b)+\s*$", re.I)
_FILLER_HEAD = re.compile(r"^(?:-\s*)?(?:in \d{4}(?:/\d{2})?\s*|the\s+|its\s+|their\s+|there\s+)+",
                          re.I)


def _tidy(text: str) -> str:
    return text.strip(" ,;:-").rstrip(".")


def _title(name: str | None) -> str | None:
    if not name:
        return None
    return name[0].upper() + name[1:]
