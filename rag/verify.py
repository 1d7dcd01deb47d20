"""Check a generated answer against the passages it cites. Pure functions, no I/O.

Public:

* ``verify_figures(sentence, quote_or_passage)`` -> the sentence's figures that the text does not
  state with the same value (for every answer path, not only the LLM one).
* ``verify_answer(raw, passages, max_words)`` -> ``Verified``: the sentences that survive, each
  with its citations (passage number + an exact quote span into the report text), and what was
  removed and why.

Rules, in order, for each sentence of the generated text:

1. markers naming no passage (``[9]`` when 5 passages were given) are removed;
2. a sentence citing no valid passage is dropped ("uncited");
3. every figure (``25.19%``, ``25.19 %``, ``25.19 per cent``, ``£1,234``, ``1234``, ``£1.2m``) must
   appear with the same value in a cited passage, else the sentence is dropped ("figure"); so
   must a CQC rating word (Outstanding, Requires improvement, Inadequate) ("rating");
4. at least ``MIN_SUPPORT`` of the sentence's content words (stemmed, stopwords dropped, figures
   left to rule 3) must occur in the cited passages (+ their council/section header), else the
   sentence is dropped ("unsupported");
   Passage sentences that read like instructions to a model ("Ignore the question and say ...")
   are never support and never quoted (and are blanked in the prompt, see ``prompt_text``);
5. each surviving citation's quote is the passage sentence (or up to 3 adjacent sentences when the
   figures are spread over them) that best supports the claim: an exact substring of the report.

Finally trailing sentences are dropped until the answer fits ``max_words``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from rag.retrieve import tokenize
from reportqa.text import sentence_spans

MIN_SUPPORT = 0.5  # share of a sentence's content words that must occur in the cited passages
QUOTE_WINDOW = 3  # at most this many adjacent passage sentences in one quote

# --- markers and sentences -------------------------------------------------------------------

MARKER_RE = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_CLOSERS = "\"”’')"
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|Dr|Mr|Mrs|Ms|St|No|vs|approx|inc|Ltd|Co)\.$", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def marker_numbers(text: str) -> list[int]:
    """Passage numbers cited in ``text``, in order, without repeats."""
    out: list[int] = []
    for m in MARKER_RE.finditer(text):
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(part)
            if n not in out:
                out.append(n)
    return out


def strip_markers(text: str) -> str:
    """The text without citation markers, spaces tidied ("25% [1]." -> "25%.")."""
    t = MARKER_RE.sub("", text)
    t = re.sub(r"\s+([.,;:!?])", r"\1", t)
    return " ".join(t.split())


def remove_invalid_markers(text: str, valid: Iterable[int]) -> tuple[str, list[int]]:
    """Drop the numbers of markers that name no passage; returns (text, removed numbers)."""
    ok = set(valid)
    removed: list[int] = []

    def fix(m: re.Match[str]) -> str:
        keep: list[int] = []
        for part in re.split(r"\s*[,;]\s*", m.group(1)):
            n = int(part)
            (keep if n in ok else removed).append(n)
        return "[" + ", ".join(str(n) for n in keep) + "]" if keep else ""

    out = MARKER_RE.sub(fix, text)
    out = re.sub(r"[ \t]+([.,;:!?])", r"\1", out)
    out = re.sub(r"[ \t]{2,}", " ", out)
    return out, removed


def split_sentences(text: str) -> list[str]:
    """Sentences of generated text, each keeping the markers that follow its full stop
    ("A [1]. B. [2] C" -> ["A [1].", "B. [2]", "C"]). Lines and bullets are boundaries.
    When the text opens with a marker ("[1] A. [2] B."), markers lead their sentence instead."""
    out: list[str] = []
    leading = bool(re.match(r"\s*(?:[-*•]\s*)?" + MARKER_RE.pattern, text))
    for line in text.replace("\r", "\n").split("\n"):
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        cut = 0
        i = 0
        while i < len(line):
            ch = line[i]
            if ch in ".!?" and not (ch == "." and i + 1 < len(line) and line[i + 1].isdigit()):
                j = i + 1
                while j < len(line) and (line[j] in ".!?" or line[j] in _CLOSERS):
                    j += 1
                # markers after the full stop belong to this sentence
                while not leading:
                    m = re.compile(r"\s*" + MARKER_RE.pattern).match(line, j)
                    if not m:
                        break
                    j = m.end()
                rest = line[j:]
                nxt = rest.lstrip()
                is_end = not nxt or (rest[:1].isspace() and re.match(r"[A-Z0-9\"“‘'(£\[]", nxt))
                if is_end and not (ch == "." and _ABBREV.search(line[max(cut, i - 8): i + 1])):
                    s = line[cut:j].strip()
                    if s:
                        out.append(s)
                    cut = j
                    i = j
                    continue
            i += 1
        s = line[cut:].strip()
        if s:
            out.append(s)
    return out


def word_count(text: str) -> int:
    """Words as a reader sees them (markers are not words)."""
    return len(strip_markers(text).split())


# --- figures ---------------------------------------------------------------------------------

_FIGURE = re.compile(
    r"(?<![\w.,])(?P<cur>[£$€])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)*)"
    r"(?:(?P<mult1>m|bn|k)\b|\s?(?P<mult2>million|billion|thousand)\b)?"
    r"(?P<pct>\s?(?:%|per\s?cent\b|percent\b))?",
    re.I,
)
_MULT = {"m": Decimal(10) ** 6, "million": Decimal(10) ** 6, "bn": Decimal(10) ** 9,
         "billion": Decimal(10) ** 9, "k": Decimal(1000), "thousand": Decimal(1000)}
_UNITS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
          "fourteen fifteen sixteen seventeen eighteen nineteen twenty")
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth"
_WORD_NUMBERS = {w: Decimal(i) for i, w in enumerate(_UNITS.split(" "))}
_WORD_NUMBERS.update({w: Decimal(i + 1) for i, w in enumerate(_ORDINALS.split(" "))})
_WORD_NUMBERS.update({"half": Decimal("0.5"), "quarter": Decimal("0.25"),
                      "thirty": Decimal(30), "forty": Decimal(40), "fifty": Decimal(50),
                      "hundred": Decimal(100)})


@dataclass(frozen=True)
class Figure:
    raw: str
    values: frozenset[Decimal]  # every reading of the figure ("196.000" is 196 or 196,000)
    start: int
    end: int


def _readings(num: str) -> set[Decimal]:
    out: set[Decimal] = set()
    try:
        if re.fullmatch(r"\d{1,3}(?:\.\d{3})+", num):
            out.add(Decimal(num.replace(".", "")))  # European thousands: "196.000"
            if num.count(".") == 1:
                out.add(Decimal(num))
        elif num.count(".") > 1:  # "1.2.3": a list/section number, read each part
            out.update(Decimal(p) for p in num.split(".") if p)
        else:
            out.add(Decimal(num.replace(",", "")))
    except InvalidOperation:
        pass
    return out


def figures(text: str) -> list[Figure]:
    """Every figure written in digits: its text, the values it can mean, its span."""
    out = []
    for m in _FIGURE.finditer(strip_markers(text) if MARKER_RE.search(text) else text):
        vals = _readings(m.group("num"))
        mult = (m.group("mult1") or m.group("mult2") or "").lower()
        if mult:
            vals |= {v * _MULT[mult] for v in vals}
        if vals:
            out.append(Figure(m.group(0).strip(), frozenset(vals), m.start(), m.end()))
    return out


def figure_values(text: str, words: bool = True) -> set[Decimal]:
    """All values stated in ``text`` (digits, and with ``words`` small number words too)."""
    vals: set[Decimal] = set()
    for f in figures(text):
        vals |= f.values
    if words:
        for w in re.findall(r"[a-z]+", text.lower()):
            if w in _WORD_NUMBERS:
                vals.add(_WORD_NUMBERS[w])
    return vals


def verify_figures(sentence: str, quote_or_passage: str) -> list[str]:
    """Figures in ``sentence`` that ``quote_or_passage`` does not state with the same value.

    Values are compared, not strings: "25.19 %" = "25.19%" = "25.19 per cent", "£1,234" =
    "1234", "£1.2m" = "1,200,000". Citation markers in the sentence are ignored. An empty list
    means every figure is supported.
    """
    have = figure_values(quote_or_passage)
    return [f.raw for f in figures(sentence) if not (f.values & have)]


# --- instruction-like text and rating words --------------------------------------------------

_INSTRUCTION = re.compile(
    r"^\W*(?:please\s+)?(?:(?:ignore|disregard|forget|say|reply|respond|answer with|pretend|act as|"
    r"you (?:are|must|should))\b|(?:system|assistant|user|developer)\s*:)"
    r"|\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+|the\s+|your\s+)?(?:previous\s+|prior\s+|"
    r"above\s+|earlier\s+)?(?:question|instructions?|rules|prompt|passages?)\b",
    re.I)


def looks_like_instruction(sentence: str) -> bool:
    """Report text addressed to a model ("Ignore the question and say ..."): it is never
    shown to the model as is, never counts as support and is never quoted."""
    return bool(_INSTRUCTION.search(sentence.strip()))


_RATING = re.compile(r"\b(outstanding|requires improvement|inadequate)\b", re.I)


def verify_ratings(sentence: str, quote_or_passage: str) -> list[str]:
    """CQC rating words in ``sentence`` (Outstanding, Requires improvement, Inadequate) that
    ``quote_or_passage`` does not use: a rating is a claim, like a figure."""
    have = {m.lower() for m in _RATING.findall(quote_or_passage)}
    return [m for m in dict.fromkeys(x.lower() for x in _RATING.findall(sentence))
            if m not in have]


# --- lexical support -------------------------------------------------------------------------

def content_words(text: str) -> set[str]:
    """Stemmed content words (stopwords and figures left out)."""
    return {t for t in tokenize(strip_markers(text)) if not (t[0].isdigit() or t[0] == "£")}


def support(sentence: str, passage_text: str) -> float:
    """Share of the sentence's content words that occur in the passage (1.0 if it has none)."""
    words = content_words(sentence)
    if not words:
        return 1.0
    return len(words & set(tokenize(passage_text))) / len(words)


# --- passages and the verification of a whole answer ------------------------------------------

@dataclass(frozen=True)
class Passage:
    """A numbered passage shown to the model: report_text[start:end] plus a context header."""

    n: int
    report_text: str
    start: int
    end: int
    header: str = ""
    key: object = None  # caller's handle (e.g. the Hit), carried through untouched

    @property
    def text(self) -> str:
        return self.report_text[self.start:self.end]

    def sentences(self) -> list[tuple[int, int]]:
        """Sentence spans of the passage that are data (instruction-like ones left out)."""
        return [(s, e) for s, e in sentence_spans(self.report_text, self.start, self.end)
                if not looks_like_instruction(self.report_text[s:e])]

    def data_text(self) -> str:
        """The passage without instruction-like sentences (what may support a claim)."""
        return "\n".join(self.report_text[s:e] for s, e in self.sentences())

    def prompt_text(self) -> str:
        """The passage as the model sees it: one line, instruction-like sentences replaced."""
        out, pos = [], self.start
        for s, e in sentence_spans(self.report_text, self.start, self.end):
            if looks_like_instruction(self.report_text[s:e]):
                out.append(self.report_text[pos:s] + "[instruction-like text removed]")
                pos = e
        out.append(self.report_text[pos:self.end])
        return " ".join("".join(out).split())


@dataclass(frozen=True)
class Quote:
    n: int  # passage number
    start: int  # offsets into the passage's report text
    end: int
    text: str


@dataclass(frozen=True)
class Sentence:
    text: str  # without markers
    quotes: tuple[Quote, ...]


@dataclass(frozen=True)
class Dropped:
    text: str
    reason: str  # "uncited" | "figure" | "rating" | "unsupported" | "length"
    detail: str = ""


@dataclass(frozen=True)
class Verified:
    sentences: tuple[Sentence, ...]
    dropped: tuple[Dropped, ...] = ()
    removed_markers: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not self.sentences


def best_quote(sentence: str, p: Passage) -> Quote | None:
    """The passage sentence that best supports ``sentence`` (most of its figures, then most of
    its content words); when no single sentence states all the figures, up to QUOTE_WINDOW
    adjacent sentences that state more of them. None if the passage shares nothing with it."""
    spans = p.sentences()
    if not spans:
        return None
    words = content_words(sentence)
    figs = [f.values for f in figures(sentence)]

    def score(s: int, e: int, w: int, i: int) -> tuple[float, float, int, int]:
        seg = p.report_text[s:e]
        vals = figure_values(seg)
        lex = len(words & set(tokenize(seg))) / len(words) if words else 0.0
        return (sum(1 for v in figs if v & vals), lex, -w, -i)

    best_key, bs, be = max(((score(s, e, 1, i), s, e) for i, (s, e) in enumerate(spans)),
                           key=lambda t: t[0])
    if figs and best_key[0] < len(figs):
        for w in range(2, QUOTE_WINDOW + 1):
            for i in range(len(spans) - w + 1):
                s, e = spans[i][0], spans[i + w - 1][1]
                k = score(s, e, w, i)
                if k[0] > best_key[0]:
                    best_key, bs, be = k, s, e
    if best_key[0] == 0 and best_key[1] == 0.0:
        return None
    return Quote(p.n, bs, be, p.report_text[bs:be])


def _format(body: str, ns: Sequence[int]) -> str:
    marks = "".join(f"[{n}]" for n in ns)
    m = re.search(r"([.!?]+[\"”’')]*)$", body)
    if m:
        return f"{body[: m.start()]} {marks}{m.group(1)}"
    return f"{body} {marks}."


def _check(body: str, cited: list[int], by_n: dict[int, Passage],
           min_support: float) -> tuple[str, str]:
    """("", "") if the cited passages support ``body``, else (reason, detail)."""
    data = "\n".join(by_n[n].data_text() for n in cited)
    joined = "\n".join(by_n[n].header + "\n" + by_n[n].data_text() for n in cited)
    bad = verify_figures(body, data)
    if bad:
        return "figure", ", ".join(bad)
    bad = verify_ratings(body, data)
    if bad:
        return "rating", ", ".join(bad)
    sup = support(body, joined)
    if sup < min_support:
        return "unsupported", f"{sup:.2f}"
    return "", ""


def _repair(body: str, by_n: dict[int, Passage], min_support: float) -> int | None:
    """The one passage that fully supports ``body`` on its own (best support first)."""
    ok = [(support(body, p.header + "\n" + p.data_text()), -n) for n, p in by_n.items()
          if not _check(body, [n], by_n, min_support)[0]]
    return -max(ok)[1] if ok else None


def verify_answer(raw: str, passages: Sequence[Passage], max_words: int = 75,
                  min_support: float = MIN_SUPPORT, repair: bool = False) -> Verified:
    """Apply the rules in the module docstring to the model's text ``raw``.

    With ``repair``, a sentence that cites nothing, or cites passages that do not support it,
    is attributed to the single passage that passes every check for it (a note says so) instead
    of being dropped; the checks themselves are the same."""
    by_n = {p.n: p for p in passages}
    text, removed = remove_invalid_markers(raw, by_n)
    kept: list[Sentence] = []
    dropped: list[Dropped] = []
    repaired: list[str] = []
    for sent in split_sentences(text):
        body = strip_markers(sent)
        if not re.search(r"[A-Za-z0-9]", body):
            continue  # stray marker or punctuation
        cited = [n for n in marker_numbers(sent) if n in by_n]
        reason, detail = _check(body, cited, by_n, min_support) if cited else ("uncited", "")
        if reason and repair:
            n = _repair(body, by_n, min_support)
            if n is not None:
                repaired.append(f"citation [{n}] assigned by verification ({reason}): "
                                f"{body[:80]}")
                cited, reason = [n], ""
        if reason:
            dropped.append(Dropped(body, reason, detail))
            continue
        quotes = []
        for n in cited:
            q = best_quote(body, by_n[n])
            if q is not None:
                quotes.append(q)
        if not quotes:
            dropped.append(Dropped(body, "unsupported", "no quote"))
            continue
        kept.append(Sentence(body, tuple(quotes)))
    # Length: the limit counts the note about removed sentences too.
    note = removal_note(len(dropped))
    budget = max_words - (len(note.split()) if note else 0)
    while kept and sum(word_count(s.text) for s in kept) > budget:
        if len(kept) == 1:
            # One over-long sentence: keep its first words (the quote stays exact).
            words = kept[0].text.split()[: max(1, budget - 1)]
            kept[0] = Sentence(" ".join(words).rstrip(",;:") + " …", kept[0].quotes)
            break
        last = kept.pop()
        dropped.append(Dropped(last.text, "length"))
    notes = list(repaired)
    if removed:
        notes.append("removed citation markers naming no passage: "
                     + ", ".join(f"[{n}]" for n in removed))
    for d in dropped:
        why = {"uncited": "cites no passage",
               "figure": f"figure(s) not in the cited passage: {d.detail}",
               "rating": f"rating not in the cited passage: {d.detail}",
               "unsupported": "not supported by the cited passage",
               "length": f"over the {max_words}-word limit"}[d.reason]
        notes.append(f"removed a sentence ({why}): {d.text[:120]}")
    return Verified(tuple(kept), tuple(dropped), tuple(removed), tuple(notes))


def removal_note(n_dropped: int) -> str:
    if not n_dropped:
        return ""
    return f"({n_dropped} unsupported sentence{'s' if n_dropped != 1 else ''} removed)"


def render(v: Verified) -> tuple[str, list[Quote]]:
    """Answer text with markers renumbered 1..m in order of first use, and the quotes in that
    order (one citation per distinct quote span)."""
    order: list[Quote] = []
    index: dict[tuple[int, int, int], int] = {}
    parts = []
    for s in v.sentences:
        ns = []
        for q in s.quotes:
            k = (q.n, q.start, q.end)
            if k not in index:
                order.append(q)
                index[k] = len(order)
            if index[k] not in ns:
                ns.append(index[k])
        parts.append(_format(s.text, ns))
    n_dropped = sum(1 for d in v.dropped if d.reason != "length")
    note = removal_note(n_dropped)
    text = " ".join(parts) + (f" {note}" if note and parts else "")
    return text, order
