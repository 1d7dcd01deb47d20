"""Who a report names in a post: a visit letter's addressee, as the letter prints them above
its greeting, and an area SEND report's partnership leaders, as its details table prints
them. Public: `letter_addressee`, `partnership_post_holder`.

Ofsted's focused-visit and monitoring-visit letters open with the director's name, post and
address ("Sarah Hammond" / "Corporate Director - Children, Young People and Education" / ...
/ "Dear Ms Hammond"). Two lines with no sentence between them, so no candidate sentence holds
both the name and the post: asked who the letter went to (three blind writers, of Dudley, Kent
and Worcestershire), the search quoted something else or nothing."""

from __future__ import annotations

import re

from ingest.profiles import Person, addressee, partnership_people
from rag.engine import Engine
from rag.evidence import cite_span
from rag.lexicon import words
from rag.query import Understanding, asks
from rag.retrieve import tokenize
from reportqa.records import Answer, Citation

# As the tokenizer stems them ("executive" -> "execut"): a post is compared word for word.
_POST_WORDS = {t for w in words("questions", "post_words") for t in tokenize(w)}
_CHIEF_EXECUTIVE = set(tokenize("chief executive"))


def _post_words(text: str) -> set[str]:
    """The words of a post in ``text`` ("interim director of childrens services" -> interim,
    director, children), the possessive and plural "s" of "children's" dropped."""
    out = set()
    for w in tokenize(text.replace("\u2019", "'")):
        w = w.removesuffix("'s").removesuffix("s'").rstrip("'")
        w = "children" if w == "childrens" else w
        if w == "dcs":
            out |= {"director", "children"}
        elif w in ("ceo", "exec"):  # "CEO", "chief exec"
            out |= _CHIEF_EXECUTIVE if w == "ceo" else _CHIEF_EXECUTIVE - {"chief"}
        elif w in _POST_WORDS:
            out.add(w)
    return out


def letter_addressee(u: Understanding, councils: tuple[str, ...], eng: Engine) -> Answer | None:
    """"Who was Ofsted's letter to Kent sent to?": the addressee of each letter of the named
    councils, with their post, cited. Asked by post instead ("who was the interim director of
    children's services at Dudley?"), only a letter whose addressee holds every word of the
    post asked answers; None (search) when no indexed letter does."""
    by_letter = asks("asks_addressee", u.normalised)
    asked = set() if by_letter else _post_words(u.normalised)
    if not (by_letter or asked):
        return None
    cites: list[Citation] = []
    said: list[str] = []
    for row, prof, text in eng.profiled_reports(councils):
        found = addressee(text, prof)
        if found is None or not asked <= _post_words(text[found[1][0]:found[1][1]]):
            continue
        (s, e), (ps, pe) = found
        n = len(cites) + 1
        cites.append(cite_span(n, row.report_id, eng, s, pe, council=row.metadata.get("council")))
        org = row.metadata.get("organisation") or row.metadata.get("council")
        said.append(f"{prof.inspectorate}'s letter to {org} was addressed to "
                    f"{' '.join(text[s:e].split())}, "
                    f"{' '.join(text[ps:pe].split())} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(said), False, tuple(cites), answerer="table")


_ICB = re.compile(r"\b(?:icbs?|nhs|integrated care|ccg)\b")
_COUNCIL = re.compile(r"\b(?:council|local authority|la)\b")


def _sides_asked(question: str) -> set[str]:
    """Whose leader is asked: the integrated care board's, the council's, or either."""
    icb, council = bool(_ICB.search(question)), bool(_COUNCIL.search(question))
    if icb == council:
        return {"local authority", "integrated care board"}
    return {"integrated care board"} if icb else {"local authority"}


def _best_named(people: list[Person], text: str, question: str) -> list[Person]:
    """Of several people holding the post asked, those whose line shares most of the
    question's other words ("NHS Frimley ICB": its chief executive, not Surrey Heartlands')."""
    q = set(tokenize(question))
    shared = [len(q & set(tokenize(text[p.start:p.end]))) for p in people]
    return [p for p, n in zip(people, shared, strict=True) if n == max(shared)] if people else []


def partnership_post_holder(u: Understanding, councils: tuple[str, ...],
                            eng: Engine) -> Answer | None:
    """"Who is the chief executive of NHS Frimley ICB in Surrey's SEND report?": the people
    a SEND report's partnership table names whose post holds every post word asked, on the
    side asked (council or ICB), cited with the side they are on. None (search) otherwise."""
    asked = _post_words(u.normalised)
    if not asked:
        return None
    sides = _sides_asked(u.normalised)
    cites: list[Citation] = []
    said: list[str] = []
    for row, prof, text in eng.profiled_reports(councils):
        fit = [p for p in partnership_people(text, prof)
               if p.side in sides and asked <= _post_words(text[p.start:p.end])]
        for p in _best_named(fit, text, u.normalised):
            n = len(cites) + 1
            cites.append(cite_span(n, row.report_id, eng, p.start, p.end,
                                   council=row.metadata.get("council")))
            line = ", ".join(" ".join(ln.split()) for ln in text[p.start:p.end].splitlines())
            said.append(f"{row.metadata.get('council')}'s area SEND report names, for the "
                        f"{p.side}: {line} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(said), False, tuple(cites), answerer="table")
