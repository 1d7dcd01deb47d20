"""Stage 2: report text -> CQC structure (council, page kind, statement, score, sections).

Public: `extract_structure`. Anything that is not a CQC page still gets a title and
headings through the generic path, so other inspection reports ingest too.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from ingest.profiles import FamilyFacts, line_span, read_family
from reportqa.records import Section, StatementScore, Structure

# CQC's names (statements, their themes and identifying words, score labels, ratings,
# headings) are data: ingest/vocab/cqc-la-assessment.toml, each table with why it exists.
_CQC = tomllib.loads((Path(__file__).parent / "vocab" / "cqc-la-assessment.toml").read_text("utf-8"))
# The 9 quality statements and their 4 themes, as CQC names them.
STATEMENTS: dict[str, str] = {r["name"]: r["theme"] for r in _CQC["statement"]}
# Distinctive words that identify a statement in a title or in a question.
STATEMENT_KEYS: dict[str, tuple[str, ...]] = {r["name"]: tuple(r["keys"]) for r in _CQC["statement"]}
SCORE_LABELS = {int(k): v for k, v in _CQC["score_labels"].items() if k.isdigit()}
RATINGS = tuple(_CQC["ratings"]["names"])
KNOWN_HEADINGS = tuple(_CQC["headings"]["names"])
# The report family name of a CQC local authority assessment page (no profile of its own).
CQC_FAMILY: str = _CQC["family"]["name"]
_TITLE_PATTERNS = (
    re.compile(r"^(?P<c>.+?):\s*local authority assessment\s*$", re.I),
    re.compile(r"^CQC rates (?P<c>.+?)[’']s? adult social care", re.I),
    re.compile(r"^(?P<c>.+?(?:Council|Borough|County)(?: of [A-Z][\w-]+)?) assessment\s*$", re.I),
)
_COUNCIL_IN_TEXT = re.compile(
    r"\b((?:London Borough of|Metropolitan Borough of|Royal Borough of|City of) [A-Z][\w-]+"
    r"(?: [A-Z][\w-]+)?|(?:[A-Z][\w’'-]+ ){1,5}(?:City|County|Borough|District|Metropolitan "
    r"Borough|Metropolitan District)? ?Council)\b"
)
_DATE = re.compile(r"(?:Assessment published|Published):?\s*(\d{1,2} [A-Z][a-z]+ \d{4})")


def extract_structure(
    text: str, headings: tuple[str, ...] = (), council_hint: str | None = None,
    kind_hint: str | None = None, page_starts: tuple[int, ...] = (),
) -> Structure:
    """Read a report's structure from its text. Hints come from SOURCES.tsv or markup.

    A family profile (ingest/profiles) that recognises the report reads its organisation,
    dates and judgements; otherwise the report is read as a CQC local authority page."""
    lines = _lines(text)
    title = next((ln for _, _, ln in lines if ln.strip()), "")[:200].strip()
    facts = read_family(text, page_starts)
    if facts is not None:
        return _family_structure(text, lines, headings, facts, council_hint, page_starts)
    page_kind = _page_kind(text, lines, title, kind_hint)
    statement_scores: list[StatementScore] = []
    statement = score = label = span = None
    if page_kind != "quality_statement":
        statement_scores = _summary_scores(text, lines)
        if statement_scores and page_kind == "other":
            page_kind = "overall_summary"
    else:
        statement = _statement_from_top(lines) or _statement_from_hint(kind_hint)
        score, label, span = _page_score(text, lines)
    rating, rating_span = (_overall_rating(text, lines)
                           if page_kind in ("overall_summary", "press_release") else (None, None))
    return Structure(
        title=title, council=_council(lines, council_hint), page_kind=page_kind,
        quality_statement=statement, theme=STATEMENTS.get(statement or "") if statement else None,
        score=score, score_label=label, score_span=span,
        overall_rating=rating, overall_rating_span=rating_span,
        overall_percentage=_overall_percentage(text),
        indicative=bool(re.search(r"\bindicative (score|rating)\b|part of the pilots", text, re.I)),
        published=_published(text), sections=tuple(_sections(text, lines, headings)),
        statement_scores=tuple(statement_scores),
    )


def _family_structure(text: str, lines: list[tuple[int, int, str]], headings: tuple[str, ...],
                      facts: FamilyFacts, hint: str | None,
                      page_starts: tuple[int, ...]) -> Structure:
    overall = facts.overall
    title = " ".join(text[:300].split("\n\n")[0].split())[:200]
    return Structure(
        # A provider (care home, hospital) is no council: its own name is what users ask by.
        title=title, council=facts.council or facts.organisation or _council(lines, hint),
        page_kind=facts.page_kind,
        overall_rating=overall.grade if overall else None,
        overall_rating_span=(overall.start, overall.end) if overall else None,
        published=_published(text), sections=tuple(_sections(text, lines, headings)),
        family=facts.family, inspectorate=facts.inspectorate, organisation=facts.organisation,
        inspection_dates=facts.inspection_dates, judgements=facts.judgements,
        page_starts=page_starts,
    )


def canonical_statement(name: str) -> str | None:
    """Map any wording of a statement ("Supporting people to lead healthier lives") to its name."""
    low = name.lower().replace("’", "'")
    for canon in STATEMENTS:
        if low.strip(" .:") == canon.lower():
            return canon
    for canon, keys in STATEMENT_KEYS.items():
        if any(k in low for k in keys):
            return canon
    return None


def inspectorate_of(metadata: Mapping[str, Any]) -> str | None:
    """Whose report this is: its family profile's inspectorate ("Ofsted", "Ofsted and CQC"),
    "CQC" for a CQC local authority assessment page (no family of its own, but a page kind),
    None for a file that is neither (an uploaded note)."""
    if metadata.get("inspectorate"):
        return str(metadata["inspectorate"])
    if not metadata.get("family") and metadata.get("page_kind") not in (None, "other"):
        return "CQC"
    return None


def council_key(name: str | None) -> str | None:
    """A matching key shared by every wording of a council's name ("Stockton-on-Tees")."""
    if not name:
        return None
    low = name.lower().replace("’", "'").replace("&", "and")
    low = re.sub(r"\b(london borough of|metropolitan borough of|royal borough of|city of|council|"
                 r"county|city|borough|metropolitan|district|the)\b", " ", low)
    return re.sub(r"[^a-z]+", "-", low).strip("-") or None


def full_council_names(names: list[str | None]) -> dict[str, str]:
    """Council key -> the longest wording seen ("Birmingham City Council" over "Birmingham")."""
    best: dict[str, str] = {}
    for n in names:
        k = council_key(n)
        if k and n and len(n) > len(best.get(k, "")):
            best[k] = n
    return best


# --- helpers -------------------------------------------------------------------------------

def _lines(text: str) -> list[tuple[int, int, str]]:
    out, pos = [], 0
    for ln in text.split("\n"):
        out.append((pos, pos + len(ln), ln))
        pos += len(ln) + 1
    return out


def _council(lines: list[tuple[int, int, str]], hint: str | None) -> str | None:
    for _, _, ln in lines[:6]:
        for pat in _TITLE_PATTERNS:
            m = pat.match(ln.strip())
            if m:
                return m.group("c").strip()
    head = "\n".join(ln for _, _, ln in lines[:40])
    for m in _COUNCIL_IN_TEXT.finditer(head):
        cand = m.group(1).strip()
        plausible = cand.lower() not in ("the council", "local council") and len(cand.split()) <= 6
        if plausible and (not hint or council_key(cand) == council_key(hint)):
            return cand
    if hint:
        return hint.replace("-", " ").title().replace(" On ", "-on-").replace(" And ", " and ")
    return None


def _published(text: str) -> str | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%d %B %Y").date().isoformat()
    except ValueError:
        return None


def _page_kind(text: str, lines: list[tuple[int, int, str]], title: str, hint: str | None) -> str:
    top = [ln.strip().rstrip(":") for _, _, ln in lines[:8]]
    if re.match(r"^CQC (rates|publishes|has rated)", title) or "Categories" in top and "Media" in top:
        return "press_release"
    if _statement_from_top(lines) and (
        re.search(r"^(Indicative score:?|Score: ?[1-4])\s*$", text, re.M)
        or "Key findings for this quality statement" in text
        or "What people expect" in text
    ):
        return "quality_statement"
    if re.search(r"^(Overall summary|Quality statement scores)\s*$", text, re.M):
        return "overall_summary"
    if re.search(r"^(About .+|Demographics|Financial facts)\s*$", text, re.M):
        return "about"
    if hint:
        h = hint.lower()
        if h in ("about", "overview", "press-release"):
            return {"about": "about", "overview": "overall_summary"}.get(h, "press_release")
        if canonical_statement(h.replace("-", " ")):
            return "quality_statement"
    return "other"


def _statement_from_top(lines: list[tuple[int, int, str]]) -> str | None:
    for _, _, ln in lines[:6]:
        cand = ln.strip().rstrip(":")
        if cand.lower().replace("lead healthier", "live healthier") in (
            k.lower() for k in STATEMENTS
        ):
            return canonical_statement(cand)
    return None


def _statement_from_hint(hint: str | None) -> str | None:
    return canonical_statement(hint.replace("-", " ")) if hint else None


def _page_score(text: str, lines: list[tuple[int, int, str]]):  # type: ignore[no-untyped-def]
    label_re = re.compile(r"^([1-4]) - (Evidence shows [^\n]+?)[ \t]*$", re.M)
    m = label_re.search(text[:3000])
    if m:
        return int(m.group(1)), m.group(2).strip(), (m.start(), m.end())
    m2 = re.search(r"^Score: ?([1-4])[ \t]*$", text[:3000], re.M)
    if m2:
        n = int(m2.group(1))
        return n, SCORE_LABELS[n], (m2.start(), m2.end())
    return None, None, None


def _summary_scores(text: str, lines: list[tuple[int, int, str]]) -> list[StatementScore]:
    """Overall-summary pages list "• <statement>" followed by "Score: N" on the next line;
    press releases list "1. <statement> – N"."""
    out: list[StatementScore] = []
    for start, end, ln in lines:
        m = re.match(r"^(\s*\d\.\s*)(.{5,70}?)\s*[–-]\s*([1-4])\s*$", ln)
        canon = canonical_statement(m.group(2)) if m else None
        if m and canon:
            n = int(m.group(3))
            out.append(StatementScore(canon, STATEMENTS[canon], n, SCORE_LABELS[n],
                                      start + len(m.group(1)), end))
    if out:
        return out
    for i, (start, _, ln) in enumerate(lines[:-1]):
        name = ln.strip().lstrip("•*-· ").strip()
        canon = canonical_statement(name) if name and len(name) < 60 else None
        if not canon or name.lower().strip(" .:") not in (
            canon.lower(), canon.lower().replace("live healthier", "lead healthier")
        ):
            continue
        j = i + 1
        while j < len(lines) and not lines[j][2].strip() and j - i < 3:
            j += 1
        m = re.match(r"^\s*Score: ?([1-4])\s*$", lines[j][2]) if j < len(lines) else None
        if m:
            n = int(m.group(1))
            out.append(StatementScore(canon, STATEMENTS[canon], n, SCORE_LABELS[n],
                                      start + len(ln) - len(ln.lstrip()), lines[j][1]))
    return out


def _overall_rating(text: str, lines: list[tuple[int, int, str]]):  # type: ignore[no-untyped-def]
    rating_re = "|".join(RATINGS)
    for i, (_, _, ln) in enumerate(lines):
        if re.match(r"^\s*Local authority (indicative )?rating", ln.strip()):
            for s, e, nxt in lines[i + 1 : i + 8]:
                m = re.match(rf"^\s*(?:•\s*)?({rating_re})\b", nxt.strip(), re.I)
                if m and not re.match(r"^\s*Score", nxt):
                    off = s + len(nxt) - len(nxt.lstrip())
                    return _canon_rating(m.group(1)), (off, _percentage_line_end(lines, e))
            break
    m = re.search(rf"\b(?:has )?rated [^.\n]{{3,80}}? as ({rating_re})\b", text, re.I)
    if m:
        return _canon_rating(m.group(1)), line_span(text, m.start())
    return None, None


def _percentage_line_end(lines: list[tuple[int, int, str]], end: int) -> int:
    """Extend a rating's span over an "Overall rating ...: 75%" / "Score: 56%" line right
    below it, so a citation of the rating also states the percentage."""
    idx = next((i for i, (_, e, _) in enumerate(lines) if e == end), None)
    if idx is None:
        return end
    for _, e2, ln in lines[idx + 1 : idx + 4]:
        if re.match(r"^\s*(Overall rating for [^:\n]+|Score):\s*\d{1,3}%?\s*$", ln):
            return e2
        if ln.strip():
            break
    return end


def _canon_rating(word: str) -> str:
    return next(r for r in RATINGS if r.lower() == word.lower())


def _overall_percentage(text: str) -> int | None:
    m = re.search(r"^(?:Overall rating for [^:\n]+|Score):\s*(\d{1,3})%?\s*$", text, re.M)
    if m and 0 <= int(m.group(1)) <= 100 and re.search(r"rating", text[: m.start()], re.I):
        return int(m.group(1))
    return None


def _sections(text: str, lines: list[tuple[int, int, str]], headings: tuple[str, ...]) -> list[Section]:
    known = {h.lower() for h in KNOWN_HEADINGS} | {h.lower() for h in headings}
    marks: list[tuple[str, int, int]] = []  # title, heading line start, body start
    for i, (start, end, ln) in enumerate(lines):
        cand = ln.strip().rstrip(":").strip()
        if not cand or i == 0:
            continue
        norm = cand.lower().replace("’", "'")
        nxt = next((x for _, _, x in lines[i + 1 : i + 3] if x.strip()), "")
        if norm in known or norm.startswith("about ") and len(cand) < 80 or (
            _looks_heading(cand) and len(nxt.strip()) > max(60, len(cand) * 2)
        ):
            marks.append((cand, start, min(end + 1, len(text))))
    sections: list[Section] = []
    first_body = 0
    if not marks or marks[0][1] > 0:
        sections.append(Section("Introduction", first_body, marks[0][1] if marks else len(text)))
    for idx, (title, _, body) in enumerate(marks):
        end = marks[idx + 1][1] if idx + 1 < len(marks) else len(text)
        sections.append(Section(title, body, max(body, end)))
    return [s for s in sections if text[s.start : s.end].strip()]


def _looks_heading(line: str) -> bool:
    words = line.split()
    return (
        1 <= len(words) <= 9
        and len(line) <= 80
        and line[0].isupper()
        and not re.search(r"[.;,!?]$", line)
        and not line.startswith(("•", "“", '"', "-"))
        and not re.match(r"^\d", line)
        and not re.match(r"^Score", line)
        # Mostly words, not a phone or reference number ("T 0300 123 1231" above a letter's
        # address block labelled every letter's opening).
        and sum(bool(re.search(r"[A-Za-z]{2}", w)) for w in words) * 2 >= len(words)
    )
