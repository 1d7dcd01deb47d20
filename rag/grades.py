"""Grades named in a question, across report families. Public: `asked_grade`,
`listed_grades`, `grades_match`, `rank`, `named_families`, `without_families`,
`drop_families`, `scope_of`, `unshorten`.

"Which councils were rated requires improvement?" must find CQC's "Requires improvement" and
Ofsted's "Requires improvement to be good"; "which areas had widespread or systemic failings?"
an area SEND outcome printed as "Widespread and/or systemic failings"; "rated good by Ofsted"
only Ofsted's families. The grade scales and the words that name a family are data
(ingest/profiles/*.toml, ingest/vocab/cqc-la-assessment.toml: `ingest.profiles.scopes`);
the wording that asks for a grade is rag/vocab/questions.toml (`rated_as`, `rated_with`).
"""

from __future__ import annotations

import difflib
import re
from functools import cache

from ingest.profiles import Scope, scopes
from rag.lexicon import pattern

# Words a grade's name joins its words with; a question may leave them out or say them
# another way ("widespread or systemic failings" for "Widespread and/or systemic failings").
# Area SEND reports print their best outcome as "arrangements typically lead to positive
# experiences and outcomes", and people ask it so.
_JOINING = frozenset({"and", "or", "to", "be", "of", "lead", "leads"})
# After "got", "with", "have" ... a grade asks for a grade only when one of these, or nothing,
# follows it ("councils with an outstanding rating"; not "councils that got good feedback").
_GRADE_NOUNS = frozenset({"rating", "ratings", "grade", "grades", "judgement", "judgements",
                          "judgment", "overall", "from", "by", "for", "in"})


def _content(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z]+", text.lower()) if w not in _JOINING]


@cache
def _all_grades() -> tuple[str, ...]:
    return tuple(dict.fromkeys(g for s in scopes() for g in s.grades))


@cache
def _verbs() -> tuple[re.Pattern[str], re.Pattern[str]]:
    strong, weak = pattern("questions", "rated_as"), pattern("questions", "rated_with")
    return (re.compile(rf"\b{strong.pattern}\s+", re.I), re.compile(rf"\b{weak.pattern}\s+", re.I))


@cache
def _grade_words() -> tuple[tuple[list[str], str], ...]:
    """Phrases people name a grade by, as words, with the grade (profiles' grade_words)."""
    return tuple((_content(w), g) for s in scopes() for w, g in s.grade_words)


def _named_at(words: list[str], skip_good: bool = False) -> tuple[int, str] | None:
    """The grade ``words`` open with, by its name or a phrase people name it by, and how many
    words name it: the one naming most, the shortest name on a tie (CQC's "Requires
    improvement" over Ofsted's longer name). ``skip_good``: not a bare "good"."""
    named = [(n, g) for g in _all_grades() if not (skip_good and g.lower() == "good")
             and (n := _consumed(g, words))]
    named += [(len(p), g) for p, g in _grade_words() if words[:len(p)] == p]
    return max(named, key=lambda x: (x[0], -len(x[1]))) if named else None


def _consumed(grade: str, words: list[str]) -> int:
    """How many of ``words`` (from the start) name ``grade``: all its words, or its first two
    when it has more ("requires improvement" names "Requires improvement to be good"); 0: none."""
    g = _content(grade)
    if words[:len(g)] == g:
        return len(g)
    return 2 if len(g) > 2 and words[:2] == g[:2] else 0


def _grade_at(after: str, weak: bool) -> str | None:
    """The grade the words right after a rating verb name: the one naming most of them, the
    shortest name on a tie (CQC's "Requires improvement" over Ofsted's longer name)."""
    words = _content(after)
    found = _named_at(words)
    if found is None:
        return None
    n, grade = found
    if weak and words[n:] and words[n] not in _GRADE_NOUNS:
        return None
    return grade


def asked_grade(question: str) -> str | None:
    """The grade a question asks about after "rated", "judged" ... or, followed by nothing
    but a grade word, after "got", "with", "have" ...; None when it names none."""
    strong, weak = _verbs()
    question = unshorten(question)
    for verb, is_weak in ((strong, False), (weak, True)):
        for m in verb.finditer(question):
            grade = _grade_at(question[m.end():], is_weak)
            if grade:
                return grade
    return None


# A negation within the four words before a list question's first grade negates it; one
# right before a grade leaves that grade out.
_NEGATION = re.compile(r"\b(?:not|never|no)\b|n't\b", re.I)
_LEFT_OUT = re.compile(r"(?:\b(?:not|never|no)|n't)\s*$", re.I)


def listed_grades(question: str) -> tuple[tuple[str, ...], str]:
    """The grades a question across councils asks about, and which side of them: "" (those
    grades), "not" ("which councils were not rated good"), "below" ("graded below good") or
    "at_least" ("good or better"). After a rating
    verb as `asked_grade` reads them, and, as such a question has no other use for them, any
    grade but a bare "good" anywhere ("help & protection inadequate: which councils?", "RI or
    inadequate"), a misspelt grade word too ("outstandng")."""
    q = unshorten(question)
    sided = _sided_good(q)
    if sided:  # "below good (RI or inadequate)": the grades in brackets explain it
        return ("Good",), sided
    first = asked_grade(q)
    found = [(first, _where(q, first))] if first else []
    words = [(_respelt(m.group()), m.start(), m.end()) for m in re.finditer(r"[a-z]+", q.lower())
             if m.group() not in _JOINING]
    i = 0
    while i < len(words):
        named = _named_at([w for w, _, _ in words[i:]], skip_good=True)
        if named:
            n, grade = named
            found.append((grade, words[i][1]))
            i += n
        else:
            i += 1
    # "good, not outstanding": a grade right after a negation is one the question leaves out
    kept = [(g, at) for g, at in found if not _LEFT_OUT.search(q[:at])]
    if found and not kept and "good" not in _content(q):
        # Every grade named is left out ("areas with no systemic failings found"): the
        # question asks for the others. (A bare "good" is a grade named too, though not
        # scanned for: "good, not outstanding" asks for good.)
        return tuple(dict.fromkeys(g for g, _ in found)), "not"
    grades = tuple(dict.fromkeys(g for g, _ in kept))
    if not grades:
        return (), ""
    first_at = min(at for _, at in kept)
    if _NEGATION.search(" ".join(q[:first_at].split()[-4:])):
        return grades, "not"  # "which councils were not rated good", "did NOT get ..."
    return grades, _side(q, grades[0])


def _where(q: str, grade: str) -> int:
    at = re.search(r"\b" + re.escape(_content(grade)[0]) + r"\b", q, re.I) if _content(grade) else None
    return at.start() if at else 0


def _sided_good(q: str) -> str:
    """"Below good", "at least good", "good or better": the side asked of "good", which
    `listed_grades` otherwise reads only after a rating verb."""
    for m in re.finditer(r"\bgood\b", q, re.I):
        if pattern("questions", "grade_below").search(q[:m.start()]):
            return "below"
        at_least = pattern("questions", "grade_at_least")
        if at_least.search(q[:m.start()]) or at_least.search(q[m.end():]):
            return "at_least"
    return ""


def _side(q: str, grade: str) -> str:
    at = re.search(r"\b" + r"\W+".join(_content(grade)[:1]) + r"\b", q, re.I)
    if at is None:
        return ""
    if pattern("questions", "grade_below").search(q[:at.start()]):
        return "below"
    at_least = pattern("questions", "grade_at_least")
    return "at_least" if at_least.search(q[:at.start()]) or at_least.search(q[at.end():]) else ""


def unshorten(question: str) -> str:
    """"RI" as the words it stands for (questions.toml grade_short)."""
    return pattern("questions", "grade_short").sub("requires improvement", question)


@cache
def _grade_vocabulary() -> tuple[str, ...]:
    return tuple({w for g in _all_grades() for w in _content(g) if len(w) >= 7})


def _respelt(word: str) -> str:
    """A long word one slip from a grade's word ("outstandng", "inadequte") as that word."""
    if len(word) < 6 or word in _grade_vocabulary():
        return word
    close = difflib.get_close_matches(word, _grade_vocabulary(), n=1, cutoff=0.88)
    return close[0] if close else word


def rank(family: str, grade: str) -> int | None:
    """Where a grade sits on its family's scale, best first (grades the families name
    differently, "Requires improvement" and "... to be good", share a place); None when the
    family's scale does not have it."""
    s = scope_of(family)
    if s is None:
        return None
    places: list[str] = []
    for g in s.grades:
        if not any(grades_match(g, p) for p in places):
            places.append(g)
    return next((i for i, p in enumerate(places) if grades_match(grade, p)), None)


def grades_match(a: str, b: str) -> bool:
    """Are these the same grade, perhaps as two families name it ("Requires improvement",
    "Requires improvement to be good")? One-word grades only when equal ("Good")."""
    x, y = _content(a), _content(b)
    n = min(len(x), len(y))
    return x == y or (n >= 2 and x[:n] == y[:n])


def named_families(question: str) -> frozenset[str]:
    """The report families the question names ("by Ofsted", "adult social care", "CQC's");
    empty when it names none (then every family counts). Where several phrases name families,
    those every phrase names ("an Ofsted focused visit": the visit letters, not every Ofsted
    family), or all of them when no family is named by every phrase ("CQC and Ofsted")."""
    asked = _plain(question)
    sets = [frozenset(s.family for s in scopes() if phrase in s.asked_by)
            for phrase in dict.fromkeys(p for s in scopes() for p in s.asked_by)
            if any(_named_in(q, w) for w in _plain(phrase) for q in asked)]
    if not sets:
        return frozenset()
    common = frozenset.intersection(*sets)
    return common or frozenset.union(*sets)


def drop_families(text: str) -> str:
    """The text as typed less the phrases that name a report family, with the word that led
    in to each ("for adult social care", "from cqc"): a question ready for another family."""
    for phrase in sorted({p for s in scopes() for p in s.asked_by}, key=len, reverse=True):
        words = r"\W+".join(re.escape(w) for w in re.findall(r"[a-z]+", phrase.replace("'", "")))
        text = re.sub(rf"(?:\b(?:by|from|for|in|at|of|with)\s+)?(?:the\s+)?\b{words}(?:'?s)?\b",
                      " ", text, flags=re.I)
    return " ".join(text.split())


def _named_in(plain: str, phrase: str) -> bool:
    """Is the phrase in the plain text, other than left out ("not the old SIF ones")?"""
    return any(not re.search(r"\b(?:not|no|never|except|excluding)(?: \w+){0,2} $", plain[:m.start() + 1])
               for m in re.finditer(re.escape(phrase), plain))


def without_families(text: str) -> str:
    """The text, lower case and plain, less every phrase that names a report family ("by
    Ofsted", "children's social care"): what is left names a topic, if anything."""
    low = _plain(text)[1]
    for phrase in sorted({w for s in scopes() for p in s.asked_by for w in _plain(p)}, key=len,
                         reverse=True):
        low = low.replace(phrase, " ")
    return " ".join(low.split())


def _plain(text: str) -> tuple[str, ...]:
    """Lower case, anything not a letter a space, with the apostrophes read two ways: dropped
    ("children's" as "childrens") and, with a possessive s, as the name ("CQC's" as "cqc")."""
    low = text.lower().replace("’", "'")
    return tuple(" " + " ".join(re.sub(r"[^a-z]+", " ", x).split()) + " "
                 for x in (low.replace("'", ""), re.sub(r"'s\b", "", low)))


def scope_of(family: str) -> Scope | None:
    return next((s for s in scopes() if s.family == family), None)
