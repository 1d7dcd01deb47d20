"""Text utilities shared by chunking and answering: sentence spans and word-piece counts."""

from __future__ import annotations

import difflib
import re
import tomllib
import unicodedata
from datetime import date
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before whitespace
# and a capital, digit or opening quote; common abbreviations are not ends.
_END = re.compile(r"(?<=[.!?])[\"”’')\]]*\s+(?=[A-Z0-9“\"‘'(£•])")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|Dr|Mr|Mrs|Ms|St|No|vs|approx|inc|Ltd|Co)\.$", re.I)


def years_in(text: str) -> tuple[str, ...]:
    """The years (1900-2099) a text names, in order, each once ("the 2016 inspection")."""
    return tuple(dict.fromkeys(re.findall(r"\b((?:19|20)\d\d)\b", text)))


MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december")
# Each month as a question may write it: its name or its short form ("dec", "sept").
MONTH_WORDS = (*MONTHS, *(m[:3] for m in MONTHS), "sept")


def months_in(text: str, loose: bool = False) -> tuple[int, ...]:
    """The months (1-12) a text names, in order, each once: "22 January to 2 February 2024"
    -> (1, 2). ``loose`` (a typed question): also "feb", "sept" and a month one slip away
    ("novemeber"); "may" counts only before a year ("in may 2024"), as it is a verb too."""
    out: list[int] = []
    low = text.lower()
    for m in re.finditer(r"[a-z]+", low):
        w = m.group()
        hit = MONTHS.index(w) + 1 if w in MONTHS else None
        if hit is None and loose and len(w) >= 3:
            if len(w) <= 4 and any(n.startswith(w) for n in MONTHS) and w not in ("mar", "jun"):
                hit = next(i + 1 for i, n in enumerate(MONTHS) if n.startswith(w))
            elif len(w) >= 6:
                close = difflib.get_close_matches(w, MONTHS, n=1, cutoff=0.85)
                hit = MONTHS.index(close[0]) + 1 if close else None
        if hit == 5 and not re.match(r"\s+(?:19|20)\d\d\b", low[m.end():]):
            hit = None
        if hit and hit not in out:
            out.append(hit)
    return tuple(out)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets in ``text[start:end]``, trimmed of surrounding space.

    Lines are always boundaries: report pages put headings, bullets and scores on their own lines.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].split("\n"):
        ls, le = pos, pos + len(line)
        pos = le + 1
        cut = ls
        for m in _END.finditer(text, ls, le):
            if _ABBREV.search(text[max(ls, m.start() - 8) : m.start()]):
                continue
            spans.append((cut, m.start() + len(m.group(0).rstrip())))
            cut = m.end()
        spans.append((cut, le))
    return [t for t in (_trim(text, s, e) for s, e in spans) if t[1] > t[0]]


# A numbered paragraph's number on its own ("40." before "The corporate parenting board ..."):
# the splitter leaves it as a span, but it is a paragraph break, not a sentence to quote.
_PARAGRAPH_NUMBER = re.compile(r"\(?\d{1,3}[.)]")


# A paragraph number run into its first word ("46.Over-optimism by leaders ...": one PDF
# sets its numbers apart by position, not by a space).
_GLUED_NUMBER = re.compile(r"\d{1,3}\.(?=[A-Z‘“])")


def after_paragraph_number(text: str, start: int, end: int) -> int:
    """Where the sentence text[start:end] starts once a paragraph number run into it is
    left out ("46.Over-optimism ..." starts at "Over-optimism")."""
    m = _GLUED_NUMBER.match(text, start, end)
    return m.end() if m else start


def unnumbered_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """``sentence_spans`` with a paragraph number run into a sentence left out of it
    ("46.Over-optimism ..." starts at "Over-optimism"); a number standing alone stays."""
    return [(after_paragraph_number(text, s, e), e) for s, e in sentence_spans(text, start, end)]


def quotable_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """The sentences of ``text[start:end]`` that an answer may quote: ``sentence_spans``
    without Ofsted's paragraph numbers, standing alone or run into the sentence. (Chunking
    keeps the plain spans, so chunk ids do not move.)"""
    return [(s, e) for s, e in unnumbered_spans(text, start, end)
            if not _PARAGRAPH_NUMBER.fullmatch(text, s, e)]


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s] in " \t•":
        s += 1
    while e > s and text[e - 1] in " \t":
        e -= 1
    return s, e


@lru_cache(maxsize=1)
def _tokenizer():  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer

    from reportqa.embed import model_path

    tok = Tokenizer.from_file(str(model_path() / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def count_wordpieces(text: str) -> int:
    """Word pieces MiniLM sees for ``text`` (without [CLS]/[SEP])."""
    return len(_tokenizer().encode(text, add_special_tokens=False).ids)


def count_wordpieces_batch(texts: list[str]) -> list[int]:
    return [len(e.ids) for e in _tokenizer().encode_batch(texts, add_special_tokens=False)]


# Private-use code point -> the character its PDF font draws (reportqa/glyphs.toml).
GLYPHS = {int(r["code"], 16): r["char"] for r in tomllib.loads(
    (Path(__file__).with_name("glyphs.toml")).read_text("utf-8"))["glyph"]}


def as_printed(text: str) -> str:
    """Report text as its PDF shows it: Symbol-font bullets that text extraction gave as
    private-use characters (an empty box on screen) become the characters drawn, one for one,
    so offsets into the stored text still hold. For what people read; never for matching."""
    return text.translate(GLYPHS)


_SURROGATE = re.compile("[\ud800-\udfff]")
# Characters no one sees, which a paste carries into words ("safe\u200bguarding") and the
# stored text never has (ingest drops them too).
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")


def as_typed(text: str) -> str:
    """A typed question in the form report text is stored in: compatibility characters
    (full-width "Ｂｕｒｙ", ligatures, superscript digits) as their plain letters, invisible
    characters dropped. A phone keyboard or a paste from a PDF gives these; a reader sees no
    difference, so the answer should not differ either."""
    return unicodedata.normalize("NFKC", ZERO_WIDTH.sub("", text))


def surrogate_at(text: str) -> int | None:
    """Where ``text`` has a lone UTF-16 surrogate half (a broken paste or client), which no
    UTF-8 reply can carry; None when it has none."""
    m = _SURROGATE.search(text)
    return m.start() if m else None


def clean_quote(s: str) -> str:
    """A quote as people read it (answer text, the terminal): one space between words,
    bullets as printed. Not for matching: the stored quote is what offsets point at."""
    return " ".join(as_printed(s).split())


def answer_sentences(answer_text: str) -> list[str]:
    """Sentences of an answer we composed (each ends with its "[n]." marker)."""
    return re.split(r"(?<=[.!?])\s+(?=[A-Z0-9])", answer_text)


def sentence_key(sentence: str) -> str:
    """A sentence as words only (lower case, letters and digits): the same wording printed
    with other quotes, dashes or line breaks gives the same key."""
    return " ".join(re.findall(r"[a-z0-9]+", sentence.lower()))


_MONTH_ABBR = tuple(name[:3] for name in MONTHS)
_DATE_PART = re.compile(r"(\d{1,2})/(\d{1,2})/((?:19|20)\d\d)|(?:19|20)\d\d|\d{1,2}|[a-z]+", re.I)


def date_range(text: str) -> tuple[date, date] | None:
    """The first and last day an inspection's dates name: "22 January to 2 February 2024",
    "7 and 8 October 2025", "18 November – 10 December 2014", "12/09/2016 to 06/10/2016",
    "Published: 12 December 2024". A day without its month or year takes those written after
    it ("22 January to 2 February 2024"). None when no whole date is there."""
    parts: list[list[int | None]] = []  # day, month, year
    for m in _DATE_PART.finditer(text):
        tok = m.group()
        if m.group(1):
            parts.append([int(m.group(1)), int(m.group(2)), int(m.group(3))])
        elif tok.isdigit() and len(tok) == 4:
            if parts:
                parts[-1][2] = parts[-1][2] or int(tok)
        elif tok.isdigit():
            parts.append([int(tok), None, None])
        elif tok.lower() in MONTH_WORDS and parts and parts[-1][1] is None:
            parts[-1][1] = _MONTH_ABBR.index(tok.lower()[:3]) + 1
    for later, earlier in pairwise(reversed(parts)):
        earlier[1] = earlier[1] or later[1]
        earlier[2] = earlier[2] or later[2]
    whole = []
    for d, mo, y in parts:
        if d and mo and y:
            try:
                whole.append(date(y, mo, d))
            except ValueError:
                continue
    return (min(whole), max(whole)) if whole else None
