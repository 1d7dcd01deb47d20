"""Who inspected: the inspection team a report prints, quoted line by line. Public:
`inspection_team_answer`.

Reports name their inspectors in lines and tables no sentence holds: an ILACS report's "Lead
inspector: Catherine Heron, His Majesty's Inspector" below its dates, a SIF report's lead,
deputy and team lines, a SEND report's Ofsted and CQC table, a visit letter's list of its
inspectors and its signatory (each family's `team` patterns, ingest/profiles). Asked "who led
the ofsted inspection of doncaster?", the search quoted nothing; the deputy lead inspector's
line was never quoted."""

from __future__ import annotations

import re

from ingest.profiles import TeamEntry, inspection_team
from rag.engine import Engine
from rag.evidence import cite_span
from rag.query import Understanding, asks
from reportqa.records import Answer, Citation

_DEPUTY = re.compile(r"\bdeputy\b", re.I)
_LEAD = re.compile(r"\b(?:lead|led|leads|leading|headed|ran)\b", re.I)
_BODY = re.compile(r"\b(ofsted|cqc)\b", re.I)
_OTHERS = re.compile(r"\b(?:else|apart from|other than|besides|except)\b", re.I)


def _asked(entries: tuple[TeamEntry, ...], question: str) -> tuple[TeamEntry, ...]:
    """The entries the question asks for: the deputy's, the lead's (every entry where the
    report names no lead, as a letter: its inspectors and its signatory), the others ("who
    else ... apart from the lead"), or the whole team;
    of one inspectorate when it names one and the report says whose each inspector is."""
    if _OTHERS.search(question):  # "who else was on the team apart from the lead?"
        chosen = tuple(e for e in entries if "lead" not in e.role.lower()) or entries
    elif _DEPUTY.search(question):
        chosen = tuple(e for e in entries if _DEPUTY.search(e.role))
    elif _LEAD.search(question):
        chosen = tuple(e for e in entries
                       if "lead" in e.role.lower() and not _DEPUTY.search(e.role)) or entries
    else:
        chosen = entries
    bodies = {b.lower() for b in _BODY.findall(question)}
    if len(bodies) == 1:
        chosen = tuple(e for e in chosen if bodies & {b.lower() for b in _BODY.findall(e.role)}) \
            or chosen
    return chosen


def inspection_team_answer(u: Understanding, councils: tuple[str, ...],
                           eng: Engine) -> Answer | None:
    """"Who led Ofsted's inspection of Doncaster?": the lines of each named council's reports
    that name its inspectors, quoted and cited. None (search) when no report of those councils
    prints a team, or none holds what was asked (a deputy, where only a lead is named)."""
    if not asks("asks_inspector", u.normalised):
        return None
    cites: list[Citation] = []
    said: list[str] = []
    for row, prof, text in eng.profiled_reports(councils):
        chosen = _asked(inspection_team(text, prof), u.normalised)
        org = row.metadata.get("organisation") or row.metadata.get("council")
        for i, e in enumerate(chosen):
            n = len(cites) + 1
            cites.append(cite_span(n, row.report_id, eng, e.start, e.end,
                                   council=row.metadata.get("council")))
            lead = f"{prof.inspectorate}'s inspection team for {org}: " if i == 0 else ""
            # A signature's name and post are two lines: read as "name, post".
            line = ", ".join(" ".join(ln.split()) for ln in text[e.start:e.end].splitlines())
            said.append(f"{lead}{line} [{n}].")
    if not cites:
        return None
    return Answer(u.question, " ".join(said), False, tuple(cites), answerer="table")
