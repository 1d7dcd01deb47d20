"""PDF page texts -> report text as a reader sees it, with a page map. Public: `clean_pages`.

A PDF text layer comes out line by line, as printed: running headers and footers on every
page, sentences broken at line ends, table cells on lines of their own. This module works on
the extracted page strings only (no PDF library), so it is tested on plain strings:

* Running headers and footers are found by *repetition*, not by wording: a line near the top
  or bottom of a page whose shape (digits folded to ``#``) recurs on many pages is furniture,
  as is a bare page number there.
* Lines are rejoined into paragraphs: a line that wraps (long, ending in a comma, or followed
  by a lower-case continuation) joins the next one; bullets, numbered paragraphs, headings and table cells
  stay on lines of their own, and so are still sentence boundaries downstream.
* A table cell that is only a grade ("Good", "Requires improvement to be good") is put on
  the line of the judgement it grades, so a judgement table reads as rows.

The page map is the offset in the cleaned text where each page's first kept line starts.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# How far from a page's top and bottom a running header or footer can sit (non-blank lines).
EDGE_LINES = 4
# A line shape on at least this share of pages (and on two or more) is running furniture.
REPEAT_SHARE = 0.4
# A line at least this share of the document's typical width (the median over pages of each
# page's longest line: a full line of text) was wrapped.
WRAP_SHARE = 0.7
# Lines of at least SUBSTANTIAL characters are mostly running text, and the upper quartile of
# their lengths a full line; one over MERGED_SHARE times that is two printed lines PDFium read
# as one (`_typical_width`).
SUBSTANTIAL = 40
MERGED_SHARE = 1.5
# A line repeated only in shape ("Page 4 of 12") is running furniture only when shorter than
# this share of the typical width: a full-width line is a templated paragraph's text.
RUNNING_MAX_SHARE = 0.9
# A header and a footer are a few lines; a page that would lose more repeats other pages.
MAX_RUNNING_PER_PAGE = 4

_BULLET = re.compile(r"^(?:[•◼▪●■○◦‣⁃∙]|[-–—*]\s|o\s)")
_NUMBERED = re.compile(r"^\d{1,3}(?:\.\d{1,2})?\.?\s+\S")
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?$", re.I)
# A line opening with a figure then a lower-case word ("25 years of age", "17 are not",
# "72 hours") goes on from a line that ended mid-sentence; a paragraph number, footnote or
# table row opens with a capital ("14. Care leavers", "1 The areas", "2.1 Adoption").
_FIGURE_GOES_ON = re.compile(r"^\d[\d.,]*%?\s+[a-z]")
_SENTENCE_END = re.compile(r"[.!?][\"”’')\]]*$")
_ASKS = re.compile(r"^(?:What|How|Why|Is|Are|Does|Do|Did|Where|Who|Which|When)\b")
# Words no sentence, heading or cell ends on: a line ending with one was wrapped.
_OPEN_ENDED = re.compile(r"\s(?:the|a|an|of|to|and|or|for|with|in|on|at|by|from|into|across|"
                         r"within|between|through|than|that|whose)$")


@dataclass(frozen=True)
class CleanText:
    text: str
    page_starts: tuple[int, ...]  # offset in ``text`` where page i+1 begins

    def page_of(self, offset: int) -> int:
        return page_at(self.page_starts, offset)


def page_at(page_starts: Sequence[int], offset: int) -> int:
    """1-based page holding ``offset`` (the last page whose start is at or before it)."""
    return max(1, bisect_right(page_starts, offset))


def clean_pages(pages: Sequence[str], grades: Sequence[str] = ()) -> CleanText:
    """Join extracted page texts into one cleaned text and its page map."""
    split = [[ln.strip() for ln in p.replace("\r", "\n").split("\n")] for p in pages]
    shapes, exact = _running_lines(split, _shape), _running_lines(split, _exact)
    width = _typical_width(split)
    kept = _drop_running(split, shapes, exact, width)
    return _join(kept, len(pages), width, {g.lower() for g in grades})


def _drop_running(split: list[list[str]], shapes: set[str], exact: set[str],
                  width: float) -> list[tuple[int, str | None]]:
    """The lines to keep, as (page index, line or None for a blank). A page that would lose
    more than MAX_RUNNING_PER_PAGE lines repeats other pages' text (copies of one page, a
    template): it loses only bare page numbers."""
    kept: list[tuple[int, str | None]] = []
    for i, lines in enumerate(split):
        page = _drop_running_on_page(lines, i, shapes, exact, width)
        if sum(1 for ln in lines if ln) - sum(1 for _, ln in page if ln) > MAX_RUNNING_PER_PAGE:
            page = _drop_running_on_page(lines, i, set(), set(), width)
        kept += page
    return kept


def _drop_running_on_page(lines: list[str], i: int, shapes: set[str], exact: set[str],
                          width: float) -> list[tuple[int, str | None]]:
    kept: list[tuple[int, str | None]] = []
    edge = _edge_indexes(lines)
    filled = [j for j, ln in enumerate(lines) if ln]
    outer = {filled[0], filled[-1]} if filled else set()
    prev = ""
    for j, ln in enumerate(lines):
        # A line repeated word for word is furniture; one repeated only in shape ("Page 4 of
        # 12") must also open or close the page, or be short, as running lines are, and must
        # not continue the sentence above it: the lines of a templated paragraph are text.
        running = _exact(ln) in exact or (
            _shape(ln) in shapes and (j in outer or len(ln) < RUNNING_MAX_SHARE * width)
            and not (ln[:1].islower() and prev and not _SENTENCE_END.search(prev)))
        if not ln:
            kept.append((i, None))
        elif not (j in edge and (running or _PAGE_NUMBER.match(ln))):
            kept.append((i, " ".join(ln.split())))
            prev = ln
    return kept


def _edge_indexes(lines: list[str]) -> set[int]:
    filled = [j for j, ln in enumerate(lines) if ln]
    return set(filled[:EDGE_LINES] + filled[-EDGE_LINES:])


def _exact(line: str) -> str:
    return " ".join(line.lower().split())


def _shape(line: str) -> str:
    return re.sub(r"\d+", "#", _exact(line))


def _running_lines(pages: list[list[str]], key: Callable[[str], str]) -> set[str]:
    if len(pages) < 3:
        return set()  # too few pages to tell a running line from a repeated sentence
    seen: Counter[str] = Counter()
    for lines in pages:
        seen.update({key(lines[j]) for j in _edge_indexes(lines)})
    need = max(2, math.ceil(REPEAT_SHARE * len(pages)))
    return {s for s, n in seen.items() if n >= need}


def _typical_width(pages: list[list[str]]) -> float:
    """Median over pages of the longest line: the width of a full line of running text, even
    when most lines are short (a title page, a table of ratings).

    Unless that is itself two printed lines PDFium read as one (150-170 characters among
    lines of 85; over MERGED_SHARE times the upper quartile of substantial lines, a full
    line): then the median over pages of the longest line that is not. On over half of a
    report's pages such a line set the width (Surrey's area SEND report: 165), every full line
    read as short, and sentences broke at each line end before a capital ("... and NHS" /
    "Frimley ICB are ..."). Merged lines on fewer pages leave the median a real line, and the
    width is as it was. (The quartile, not the median: in a short report most substantial
    lines may be a paragraph's last line or a footer, well short of a full one.)"""
    width = _median_longest(pages, math.inf)
    substantial = sorted(len(ln) for lines in pages for ln in lines if len(ln) >= SUBSTANTIAL)
    full = substantial[len(substantial) * 3 // 4] if substantial else math.inf
    return width if width <= MERGED_SHARE * full else _median_longest(pages, MERGED_SHARE * full)


def _median_longest(pages: list[list[str]], cap: float) -> float:
    """Median over pages of the longest line no longer than ``cap`` (80 for no lines)."""
    longest = sorted(max((len(ln) for ln in lines if len(ln) <= cap), default=0)
                     for lines in pages)
    longest = [n for n in longest if n] or [80]
    return float(longest[len(longest) // 2])


def _join(kept: list[tuple[int, str | None]], n_pages: int, width: float,
          grades: set[str]) -> CleanText:
    out: list[str] = []
    pos = 0
    starts: list[int] = []
    prev: str | None = None
    blank = False
    for idx, (page, ln) in enumerate(kept):
        if ln is None:
            blank = prev is not None
            continue
        new_page = len(starts) <= page
        nxt = next((x for _, x in kept[idx + 1:idx + 4] if x), None)
        sep = "" if prev is None else _separator(prev, ln, nxt, blank and not new_page, width,
                                                 grades)
        out.append(sep)
        pos += len(sep)
        while len(starts) <= page:
            starts.append(pos)
        out.append(ln)
        pos += len(ln)
        prev, blank = ln, False
    while len(starts) < n_pages:
        starts.append(pos)
    return CleanText("".join(out), tuple(starts))


def _separator(a: str, b: str, after_b: str | None, blank: bool, width: float,
               grades: set[str]) -> str:
    """What goes between line ``a`` and the next kept line ``b``: "", " " or "\\n"."""
    if b.lower().rstrip(" .") in grades and len(a) < width and (
            a.endswith("?") or not _SENTENCE_END.search(a)):
        # a grade cell joins the judgement it grades: "Care leavers: Good", "Is it safe? Good"
        # (after a heading's own colon, a space: "with children and families: good")
        return " " if a.endswith(("?", ":")) else ": "
    if not blank and _FIGURE_GOES_ON.match(b) and not (_SENTENCE_END.search(a) or a.endswith(":")):
        return " "  # "sometimes over,\n25 years of age": a figure in mid-sentence, no paragraph number
    if blank or _BULLET.match(b) or _NUMBERED.match(b) or a.endswith(":"):
        return "\n"
    if a.endswith(",") or _OPEN_ENDED.search(a):
        # A line ending mid-clause goes on, however short: "the ATLAS (Accept, Teach,", a
        # table cell's "should ensure that the" / "SEND strategy continues ...".
        return " "
    if b[0].isupper() and b.endswith("?") and (len(b) < WRAP_SHARE * width or (
            _ASKS.match(b) and _SENTENCE_END.search(a))):
        # A question heading ("What needs to improve?", "Is the service safe?"), however long
        # ("What is it like to be a child or young person with SEND in this area?", glued to
        # the paragraphs either side in seven of eight SEND reports: quoted as its own answer).
        return "\n"
    if a.endswith("?") and _ASKS.match(a) and b[0].isupper():
        return "\n"  # the paragraph below a question heading
    if _grades_heading(b, after_b, grades):
        return "\n"  # a judgement heading wrapped over two lines opens its section
    if b[0].islower() or b[0] in ",;)":
        return "" if re.search(r"[A-Za-z]-$", a) else " "
    long_a = len(a) >= WRAP_SHARE * width
    if long_a and not _SENTENCE_END.search(a):
        return " "
    if long_a and _runs_on(b, after_b, width):
        return " "  # the paragraph goes on after a sentence that ended at the line's end
    return "\n"


_HEADING_GRADE = re.compile(r"^[A-Z][^.:;]{10,160}?:{1,2}\s*(.+?)\s*$")


def _grades_heading(b: str, after_b: str | None, grades: set[str]) -> bool:
    """Does ``b`` open a judgement heading that wraps onto the next line ("The experiences
    and progress of care leavers: requires" / "improvement to be good", "The impact of leaders
    on social work practice with children and" / "families: good")? Wrapped, it reads as a
    paragraph going on and was glued to the one before, so its section was never opened."""
    if after_b is None or not grades:
        return False
    m = _HEADING_GRADE.match(f"{b} {after_b}")
    return m is not None and m.group(1).lower().rstrip(" .") in grades


def _runs_on(b: str, after_b: str | None, width: float) -> bool:
    """Is ``b`` a wrapped line of running text (full width, or continued on the next line)?
    A short line that is complete by itself is a heading, a cell or a paragraph's end."""
    if len(b) >= WRAP_SHARE * width:
        return True
    return after_b is not None and after_b[0].islower() and not _SENTENCE_END.search(b)
