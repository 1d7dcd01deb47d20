"""Who a visit letter was sent to: its addressee and their post, as the letter prints them
above its greeting. Public: `letter_addressee`.

Ofsted's focused-visit and monitoring-visit letters open with the director's name, post and
address ("Sarah Hammond" / "Corporate Director - Children, Young People and Education" / ...
/ "Dear Ms Hammond"). Two lines with no sentence between them, so no candidate sentence holds
both the name and the post: asked who the letter went to (three blind writers, of Dudley, Kent
and Worcestershire), the search quoted something else or nothing."""

from __future__ import annotations

from ingest.profiles import addressee
from rag.engine import Engine
from rag.evidence import cite_span
from rag.lexicon import words
from rag.query import Understanding, asks
from rag.retrieve import tokenize
from reportqa.records import Answer, Citation

_POST_WORDS = words("questions", "post_words")


def _post_words(text: str) -> set[str]:
    """The words of a post in ``text`` ("interim director of childrens services" -> interim,
    director, children), the possessive and plural "s" of "children's" dropped."""
    out = set()
    for w in tokenize(text.replace("\u2019", "'")):
        w = w.removesuffix("'s").removesuffix("s'").rstrip("'")
        w = "children" if w == "childrens" else w
        if w == "dcs":
            out |= {"director", "children"}
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
