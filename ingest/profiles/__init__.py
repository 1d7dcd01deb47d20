"""Report-family profiles: how to recognise a family of inspection reports and read its facts.

One TOML file per family in this folder (data, not code): how to recognise it, where the
organisation and dates are, its judgement names and grade scale. Adding a family is one file
plus one test (tests/test_profiles.py checks that each file's bundled example reports are
recognised as its family). The CQC local authority assessment keeps its own reader in
ingest/structure.py; a report no profile recognises gets the generic path there.

``councils.txt`` here is the gazetteer of English councils that organisations resolve to.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reportqa.records import Judgement
from reportqa.text import sentence_spans

HERE = Path(__file__).parent
_HEAD = 1500  # a family is recognised from the start of the report


@dataclass(frozen=True)
class Profile:
    name: str
    inspectorate: str
    title: str
    page_kind: str
    recognise: tuple[re.Pattern[str], ...]
    organisation: tuple[re.Pattern[str], ...]
    dates: tuple[re.Pattern[str], ...]
    grades: tuple[str, ...]
    overall: str | None
    overall_patterns: tuple[re.Pattern[str], ...]
    judgements: tuple[str, ...]
    outcomes: dict[str, str]
    closing: tuple[re.Pattern[str], ...]
    lists: dict[str, tuple[str, ...]]  # kind of list ("improve", "strengths") -> its headings
    findings: tuple[str, ...] = ()  # headings the summary of findings opens under
    # The other headings its reports print on a line of their own: a citation names the one
    # above its quote (rag/evidence.py `section_heading`).
    sections: tuple[str, ...] = ()
    # judgement -> the words people ask it by that its name lacks ("leadership")
    asked_as: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Phrases a question names a grade by, short of its name ("the positive outcome").
    grade_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    service: str = ""  # how a list across councils labels this family ("children's services (Ofsted)")
    asked_by: tuple[str, ...] = ()  # words a question names the family by ("ofsted", "send")
    # A letter's greeting ("Dear Ms Hammond"), its `surname` group naming the addressee
    salutation: tuple[re.Pattern[str], ...] = ()
    # Who inspected: each match one entry of the inspection team (`name`, optional `role`
    # groups), searched case-sensitively, below the `team_under` heading line when one is set.
    team: tuple[re.Pattern[str], ...] = ()
    team_under: str = ""
    # The heading of a table of the organisation's leaders ("Name, Post"), and whose column
    # each is: the first person named is the first side's, the rest the second's.
    people_under: str = ""
    people_sides: tuple[str, ...] = ()

    @property
    def headings(self) -> tuple[str, ...]:
        """Every heading the profile names, once each: its sections, findings and lists."""
        return tuple(dict.fromkeys((*self.sections, *self.findings,
                                    *(h for hs in self.lists.values() for h in hs))))


@dataclass(frozen=True)
class FamilyFacts:
    family: str
    inspectorate: str
    page_kind: str
    organisation: str | None  # as the report names it
    council: str | None  # resolved to the gazetteer ("Medway Local Area Partnership" -> Medway)
    inspection_dates: str | None
    judgements: tuple[Judgement, ...]
    overall: Judgement | None


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.I | re.M) for p in patterns)


@lru_cache(maxsize=1)
def profiles() -> tuple[Profile, ...]:
    out = []
    for path in sorted(HERE.glob("*.toml")):
        d = tomllib.loads(path.read_text(encoding="utf-8"))
        out.append(Profile(
            name=d["name"], inspectorate=d["inspectorate"], title=d["title"],
            page_kind=d["page_kind"], recognise=_compile(d["recognise"]),
            organisation=_compile(d["organisation"]), dates=_compile(d.get("dates", [])),
            grades=tuple(d.get("grades", [])), overall=d.get("overall"),
            overall_patterns=_compile(d.get("overall_patterns", [])),
            judgements=tuple(d.get("judgements", [])), outcomes=dict(d.get("outcomes", {})),
            closing=_compile([p.replace(" ", r"\s+") for p in d.get("closing", [])]),
            lists={k: tuple(v) for k, v in d.get("lists", {}).items()},
            findings=tuple(d.get("findings", [])), sections=tuple(d.get("sections", [])),
            asked_as={k: tuple(v) for k, v in d.get("asked_as", {}).items()},
            grade_words={k: tuple(v) for k, v in d.get("grade_words", {}).items()},
            service=d.get("service", ""), asked_by=tuple(d.get("asked_by", [])),
            salutation=_compile(d.get("salutation", [])),
            # Case matters: a name opens with a capital ("Adam Sproston HMI, Ofsted ...").
            team=tuple(re.compile(t, re.M) for t in d.get("team", [])),
            team_under=d.get("team_under", ""),
            people_under=d.get("people_under", ""), people_sides=tuple(d.get("people_sides", [])),
        ))
    return tuple(out)


@dataclass(frozen=True)
class Scope:
    """A report family as a list across councils names it: its label and the words that ask
    for it alone, with its grade scale (the overall grades its reports state)."""

    family: str
    inspectorate: str
    service: str
    asked_by: tuple[str, ...]
    grades: tuple[str, ...]
    grade_words: tuple[tuple[str, str], ...] = ()  # (phrase, grade): "positive outcome"


@lru_cache(maxsize=1)
def scopes() -> tuple[Scope, ...]:
    """Every family's scope: the profiles here, then CQC's local authority assessments, whose
    names live with their own reader (ingest/vocab/cqc-la-assessment.toml)."""
    cqc = tomllib.loads((HERE.parent / "vocab" / "cqc-la-assessment.toml").read_text("utf-8"))
    fam = cqc["family"]
    return (*(Scope(p.name, p.inspectorate, p.service, p.asked_by, (*p.grades, *p.outcomes),
                    tuple((w, g) for g, ws in p.grade_words.items() for w in ws))
              for p in profiles()),
            Scope(fam["name"], fam["inspectorate"], fam["service"], tuple(fam["asked_by"]),
                  tuple(cqc["ratings"]["names"])))


def profile_named(name: str | None) -> Profile | None:
    return next((p for p in profiles() if p.name == name), None)


# How far into a letter its greeting may be (past the sender's address and the date).
GREETING_CHARS = 3000


def addressee(text: str, prof: Profile) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Spans of a letter's addressee and their post: the line above the address that ends
    with the surname its greeting uses, and the line below it ("Sarah Hammond" /
    "Corporate Director - Children, Young People and Education" ... "Dear Ms Hammond").
    None for a report of a family with no greeting, or a letter whose greeting names no
    line above it."""
    head = text[:GREETING_CHARS]
    greeting = next((m for rx in prof.salutation for m in [rx.search(head)] if m), None)
    if greeting is None:
        return None
    surname = greeting.group("surname")
    lines = [m for m in re.finditer(r"[^\n]+", head[:greeting.start()])]
    for i in range(len(lines) - 2, -1, -1):
        words = lines[i].group().split()
        if 2 <= len(words) <= 5 and words[-1] == surname:
            post = lines[i + 1]
            return (lines[i].start(), lines[i].end()), (post.start(), post.end())
    return None


@dataclass(frozen=True)
class TeamEntry:
    """One entry of a report's inspection team as printed: the line or table cell (``start``,
    ``end``: the quote), the names in it and the post they held ("" where the report prints
    none beside them, as a letter's list of its inspectors)."""

    start: int
    end: int
    names: str
    role: str


def inspection_team(text: str, prof: Profile) -> tuple[TeamEntry, ...]:
    """The inspection team a report prints, in report order: its profile's `team` patterns,
    below the `team_under` heading when the profile names one (a SEND report's table)."""
    under = re.search(rf"^{re.escape(prof.team_under)}[ \t]*$", text, re.M) \
        if prof.team_under else None
    if prof.team_under and under is None:
        return ()
    start = under.end() if under else 0
    found = {m.start(): m for rx in prof.team for m in rx.finditer(text, start)}
    return tuple(TeamEntry(m.start(), m.end(), " ".join(m.group("name").split()),
                           " ".join((m.groupdict().get("role") or "").split()))
                 for _, m in sorted(found.items()))


_NAME = r"[A-Z][\w’'-]+(?: [A-Z][\w’'-]+){1,3}(?: \([A-Z]+\))?"
_NAME_POST = re.compile(rf"^{_NAME}\s*[,–-]\s*\S")  # "Jeanette Richards, Executive Director ..."
_NAME_ALONE = re.compile(rf"^{_NAME}$")
_POST_OPENS = re.compile(r"^(?:Executive|Acting|Interim|CEO|Chief|Director|Corporate|Deputy|"
                         r"Strategic|Managing)\b")
_WEB = re.compile(r"\s+www\.\S+")


@dataclass(frozen=True)
class Person:
    """A person a report's leaders table names: the span of their name and post as printed
    (web addresses beside them cut off) and whose side they are on ("local authority")."""

    start: int
    end: int
    side: str


def _entry_end(lines: list[re.Match[str]], i: int) -> int | None:
    """Index past the lines of the person entry opening at line ``i`` (its name and post, and
    a post's short continuation: "Director of Children’s" / "Services"), or None."""
    text = [m.group() for m in lines]
    if _NAME_POST.match(text[i]):
        j = i + 1
    elif _NAME_ALONE.match(text[i]) and i + 1 < len(text) and _POST_OPENS.match(text[i + 1]):
        j = i + 2
    else:
        return None
    while j < len(text) and "www." not in text[j - 1] and len(text[j].split()) <= 3 \
            and not re.search(r"\d", text[j]) and _entry_end(lines, j) is None:
        j += 1
    return j


def partnership_people(text: str, prof: Profile) -> tuple[Person, ...]:
    """The people the profile's leaders table names (`people_under`), in order, each labelled
    with its side; the table ends at the line with their web addresses."""
    head = re.search(rf"^{re.escape(prof.people_under)}[ \t]*$", text, re.M) \
        if prof.people_under else None
    if head is None:
        return ()
    lines = list(re.finditer(r"[^\n]+", text[head.end():head.end() + GREETING_CHARS]))
    out: list[Person] = []
    i = 0
    while i < len(lines) and "www." not in lines[max(i - 1, 0)].group():
        j = _entry_end(lines, i)
        if j is None:
            i += 1
            continue
        s, e = head.end() + lines[i].start(), head.end() + lines[j - 1].end()
        web = _WEB.search(text, s, e)
        side = prof.people_sides[min(len(out), len(prof.people_sides) - 1)] if prof.people_sides else ""
        out.append(Person(s, web.start() if web else e, side))
        i = j
    return tuple(out)


_BULLETS = "[◼•●▪■◦‣−–—-]"  # the glyphs a list item may open with (Surrey prints "−")
_NUMBER = r"(\d{1,2})[.)]\s"  # "6. ", "6) ": group 1 of `_NUMBERED` is the number
_ITEM = re.compile(rf"^(?:{_BULLETS}\s*|{_NUMBER}\s*|\(?[a-z][.)]\s+)\S")


def listed_items(text: str, headings: tuple[str, ...]) -> list[tuple[int, int]]:
    """Spans of the items (bulleted or numbered lines) right under the first of ``headings``
    found on a line of its own (a footnote digit after it is allowed), in order."""
    return listed_under(text, headings)[1]


def listed_under(text: str, headings: tuple[str, ...]) -> tuple[str | None, list[tuple[int, int]]]:
    """As `listed_items`, with the heading the items were found under. Under a heading with
    no bulleted or numbered lines, recommendations printed as paragraphs are the items
    (area SEND 'Areas for improvement')."""
    for h in headings:
        words = r"\s+".join(re.escape(w) for w in h.rstrip("?").split())
        # A footnote mark may follow the heading, on its line or the next ("improve?1").
        m = re.search(rf"^{words}\??\d?[ \t]*$(?:\n\d{{1,2}}[ \t]*$)?", text, re.M)
        if not m:
            continue
        spans = _bulleted(text, m.end() + 1, headings) or _paragraphs(text, m.end() + 1,
                                                                        headings)
        if spans:
            return h, _with_sub_items(text, spans)
    return None, []


def _with_sub_items(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One item per recommendation: a lead-in ending with a colon ("they should urgently
    improve:", "relating to:") takes the bulleted lines below it, which finish its sentence,
    and a short lead-in of its own ("This is to ensure that:") goes with the item above it.
    Reports print a recommendation so (area SEND, focused visits); an answer quoting the
    lead-in alone would end at the colon."""
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        s, e = spans[i]
        i += 1
        if not text[s:e].rstrip().endswith(":"):
            out.append((s, e))
            continue
        short = len(text[s:e].split()) < PARAGRAPH_WORDS
        glyph = _glyph(text, s)
        while i < len(spans) and _glyph(text, spans[i][0]) not in ("", glyph) \
                and _adjacent(text, e, spans[i][0]):
            e = spans[i][1]
            i += 1
        if out and short and _adjacent(text, out[-1][1], s):
            s = out.pop()[0]
        out.append((s, e))
    return out


def _adjacent(text: str, end: int, start: int) -> bool:
    """Nothing but line breaks and bullets between two items: one follows the other."""
    return not text[end:start].strip(" \t\n" + _GLYPHS)


_GLYPHS = _BULLETS.strip("[]")


def _glyph(text: str, start: int) -> str:
    """The bullet glyph opening the line ``start`` is on ("" for a line of running text)."""
    line_start = text.rfind("\n", 0, start) + 1
    head = text[line_start:start].strip()
    return head[:1] if head and head[0] in _GLYPHS else ""


def _lines(text: str, pos: int) -> Iterator[tuple[int, int, str]]:
    while pos < len(text):
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        yield pos, end, text[pos:end]
        pos = end + 1


_BULLET = re.compile(f"^{_BULLETS}")
_NUMBERED = re.compile(f"^{_NUMBER}")


def _bulleted(text: str, pos: int, headings: tuple[str, ...]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    # Another list's heading ("The local authority's strengths") ends this one, even where
    # the report numbers its paragraphs on past it.
    others = _list_headings() - {_heading_key(h) for h in headings}
    grouped = False
    opened_with_bullet = False
    for start, end, line in _lines(text, pos):
        # Numbered paragraphs after bullets are the report going on, not more of the list:
        # a PDF may run the next section's title into the last bullet (Oxfordshire 2024).
        if not _ITEM.match(line) or (opened_with_bullet and _NUMBERED.match(line)):
            if _subheading_before_item(text, line, end) and (not spans or (
                    grouped and _heading_key(line) not in others
                    and _numbering_goes_on(text, spans[-1], end))):
                grouped = True
                # "Areas for improvement / The quality of practice / 6. ...": before the
                # first item; after it a title line starts the next section, unless the
                # list opened under topic titles and its numbers go on past this one ("5.
                # ..." / "Areas for improvement" / "The quality of social work practice" /
                # "6. ...": Hull's recommendations; its strengths, under no topic title,
                # end where the report's numbered paragraphs go on into the next section).
                continue
            break
        opened_with_bullet = opened_with_bullet or not spans and _BULLET.match(line) is not None
        spans.append(_item(start, end, line))
    return spans


def _item(start: int, end: int, line: str) -> tuple[int, int]:
    """An item's span without its bullet."""
    return start + len(re.match(rf"^(?:{_BULLETS}\s*)?", line).group(0)), end  # type: ignore[union-attr]


_WHOLE = re.compile(r"[.!?:][\"”’')\]]*$")
PARAGRAPH_WORDS = 8  # a paragraph item is at least a short sentence; table cells are shorter
PARAGRAPH_LOOK = 1500  # characters past the heading in which the first paragraph item must start


def _paragraphs(text: str, pos: int, headings: tuple[str, ...]) -> list[tuple[int, int]]:
    """Lines that are whole paragraphs (a sentence or more, ending a sentence or opening a
    list), and any bullets among them. Before the first, a table's header and short cells
    (the responsible body) and a wrapped cell's lines are passed over; after it, any other
    line ends the list."""
    names = {h.rstrip("?").lower() for h in headings}
    spans: list[tuple[int, int]] = []
    # Words of the short lines passed over before the first item: a table's row label (the
    # responsible body, "Bury Metropolitan Borough / Council and NHS Greater / Manchester
    # ICB") is printed again before each row, its words perhaps in another order ("NHS
    # Lancashire and South / Cumbria ICB and Lancashire / County Council"), and the list
    # goes on after it; a title with any other word ends it.
    label: set[str] = set()
    prev = ""
    for start, end, line in _lines(text, pos):
        if not spans and start - pos > PARAGRAPH_LOOK:
            break
        opens = not prev or _WHOLE.search(prev) or len(prev.split()) < PARAGRAPH_WORDS \
            or _names_who(prev)
        whole = (_WHOLE.search(line) and len(line.split()) >= PARAGRAPH_WORDS and opens
                 and line[:1].isupper() and line.rstrip("?").lower() not in names)
        if whole or (spans and (_ITEM.match(line) or _lead_in(text, line, end))):
            spans.extend(_recommendations(text, *_item(start, end, line)))
        elif not spans:
            label |= set(line.lower().split()) if _names_who(line) else set()
        elif not (_names_who(line) and set(line.lower().split()) <= label):
            break
        prev = line
    return spans


def _names_who(line: str) -> bool:
    """A table cell naming a body ("Lancashire County Council and NHS Lancashire and South
    Cumbria ICB"), not a wrapped sentence's first half: mostly capitalised words, no
    sentence end, at most two short lines of words."""
    words = line.split()
    return (0 < len(words) <= 2 * PARAGRAPH_WORDS and not _WHOLE.search(line)
            and 2 * sum(w[0].isupper() for w in words) > len(words))


def _lead_in(text: str, line: str, end: int) -> bool:
    """A line opening the bullets below it ("This is to ensure that:"), however short."""
    return line.rstrip().endswith(":") and line[:1].isupper() \
        and _ITEM.match(_line_after(text, end)) is not None


def _line_after(text: str, end: int) -> str:
    nxt_end = text.find("\n", end + 1)
    return text[end + 1 : len(text) if nxt_end < 0 else nxt_end]


# A sentence that says who should do what: a recommendation of its own, where a PDF runs
# several into one paragraph (Bury's and Newham's 'Areas for improvement'). One opening with
# a word pointing back ("This should be overseen ...", "They should publish ...", "In
# particular, they should ...") goes on with the recommendation before it.
_RECOMMENDS = re.compile(r"\b(?:should|must|needs? to)\b")
_GOES_ON = re.compile(r"(?:This|These|That|Those|It|They|Their|Such|In|Also|Additionally)\b")


def _recommendations(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A paragraph item, split before each further sentence that recommends something of
    its own; any other sentence ("This will enable them to ...") stays with the one before."""
    out: list[tuple[int, int]] = []
    for s, e in sentence_spans(text, start, end):
        if out and not (_RECOMMENDS.search(text, s, e) and not _GOES_ON.match(text, s)):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out or [(start, end)]


def _subheading_before_item(text: str, line: str, end: int) -> bool:
    """A short title line opening a list (older reports group their recommendations under
    topic titles, a title above them: "Priority and immediate action / The quality of social
    work practice / 1. ..."): no full stop, a few words, and an item within two lines."""
    if not _title(line):
        return False
    nxt = _line_after(text, end)
    if _ITEM.match(nxt):
        return True
    return _title(nxt) and _ITEM.match(_line_after(text, end + 1 + len(nxt))) is not None


@lru_cache(maxsize=1)
def _list_headings() -> frozenset[str]:
    return frozenset(_heading_key(h) for p in profiles() for hs in p.lists.values() for h in hs)


def _heading_key(line: str) -> str:
    return " ".join(line.replace("’", "'").rstrip("?").lower().split())


def _title(line: str) -> bool:
    return bool(line.strip()) and len(line.split()) <= 12 \
        and not line.rstrip().endswith((".", ":", ";"))


def _numbering_goes_on(text: str, last: tuple[int, int], end: int) -> bool:
    """Is the next numbered item, within two lines after ``end``, numbered one on from the
    item ``last``?"""
    before = _NUMBERED.match(text[last[0]:last[1]])
    if before is None:
        return False
    line = _line_after(text, end)
    for _ in range(2):
        m = _NUMBERED.match(line)
        if m:
            return int(m.group(1)) == int(before.group(1)) + 1
        end += 1 + len(line)
        line = _line_after(text, end)
    return False


def all_grades() -> tuple[str, ...]:
    """Every grade word of every family, longest first (a PDF table cell that is only one of
    these is joined to the judgement it grades)."""
    return tuple(sorted({g for p in profiles() for g in p.grades}, key=len, reverse=True))


@lru_cache(maxsize=1)
def gazetteer_lines() -> tuple[tuple[str, ...], ...]:
    """councils.txt: each council's short name, then extra spellings after " | "."""
    path = HERE / "councils.txt"
    return tuple(tuple(f.strip() for f in ln.split("|"))
                 for ln in path.read_text(encoding="utf-8").splitlines()
                 if ln.strip() and not ln.startswith("#"))


def resolve_organisation(phrase: str) -> str | None:
    """The gazetteer council named in an organisation phrase: the longest name or spelling
    found in it ("Kingston upon Hull City Council" -> Kingston upon Hull)."""
    low = " " + re.sub(r"[^a-z&]+", " ", phrase.lower()) + " "
    best: tuple[int, str] | None = None
    for fields in gazetteer_lines():
        for spelling in fields:
            s = " " + re.sub(r"[^a-z&]+", " ", spelling.lower()).strip() + " "
            if s.strip() and s in low and (best is None or len(s) > best[0]):
                best = (len(s), fields[0])
    return best[1] if best else None


def detect(text: str) -> Profile | None:
    head = " ".join(text[:_HEAD].split())
    return next((p for p in profiles() if any(r.search(head) for r in p.recognise)), None)


def body_end(text: str) -> int:
    """Where the report's own text ends: before its family's standard closing block (the
    last match, in the second half of the report), else the end of the text."""
    prof = detect(text)
    ends = [m.start() for p in (prof.closing if prof else ()) for m in p.finditer(text)
            if m.start() > len(text) // 2]
    return max(ends) if ends else len(text)


def read_family(text: str, page_starts: tuple[int, ...] = ()) -> FamilyFacts | None:
    """Family, organisation, dates and page-1 judgements of a report a profile recognises."""
    prof = detect(text)
    if prof is None:
        return None
    first = text[: page_starts[1]] if len(page_starts) > 1 else text[:4000]
    org = _first_group(prof.organisation, text[:_HEAD], "org")
    if org is None:
        # Words of a report's title with no organisation after them are a text about such
        # reports (the Ofsted folder's README), not one: read generically, no grade.
        return None
    dates = _first_group(prof.dates, text[:_HEAD], "dates")
    judgements = _table(prof, first)
    overall = next((j for j in judgements if j.name == prof.overall), None) or _overall(prof, first)
    return FamilyFacts(
        family=prof.name, inspectorate=prof.inspectorate, page_kind=prof.page_kind,
        organisation=org, council=resolve_organisation(org) if org else None,
        inspection_dates=dates, judgements=judgements, overall=overall,
    )


def _first_group(patterns: tuple[re.Pattern[str], ...], text: str, group: str) -> str | None:
    """First match of the patterns, on the text as it is, then with its line breaks folded
    (a title wrapped over two lines: "Inspection of Leicestershire County\nCouncil ...")."""
    for p in patterns:
        for t in (text, re.sub(r"\s*\n\s*", " ", text)):
            m = p.search(t)
            if m:
                return " ".join(m.group(group).split()).strip(" ,.")
    return None


def _grade_alternation(grades: tuple[str, ...]) -> str:
    return "|".join(re.escape(g) for g in sorted(grades, key=len, reverse=True))


def _table(prof: Profile, first: str) -> tuple[Judgement, ...]:
    """Rows "<judgement>[:] <grade>" on lines of their own (numbered or not)."""
    if not prof.grades:
        return ()
    grades = _grade_alternation(prof.grades)
    out = []
    for name in prof.judgements:
        words = r"\s+".join(re.escape(w) for w in name.split())
        m = re.search(rf"^(?:\d(?:\.\d)?\.?\s+)?{words}:?\s+(?P<grade>{grades})\s*$", first,
                      re.I | re.M)
        if m:
            out.append(Judgement(name, _canon(m.group("grade"), prof.grades), m.start(), m.end()))
    return tuple(out)


def _overall(prof: Profile, first: str) -> Judgement | None:
    for p in prof.overall_patterns:
        m = p.search(first)
        if m:
            grade = _canon(m.group("grade"), prof.grades)
            if grade:
                return Judgement(prof.overall or "Overall", grade, *line_span(first, m.start()))
    for grade, pattern in prof.outcomes.items():
        m = re.search(pattern.replace(" ", r"\s+"), first, re.I)
        if m:
            return Judgement(prof.overall or "Outcome", grade, *_sentence(first, m.start()))
    return None


def _canon(word: str, grades: tuple[str, ...]) -> str:
    w = " ".join(word.lower().split())
    if w == "require improvement":  # "children's services require improvement"
        w = "requires improvement"
    return next((g for g in grades if g.lower() == w), "")


def line_span(text: str, pos: int) -> tuple[int, int]:
    """Start and end of the line of ``text`` that holds ``pos``."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return start, len(text) if end < 0 else end


def _sentence(text: str, pos: int) -> tuple[int, int]:
    start, end = line_span(text, pos)
    dot = text.find(". ", pos, end)
    return start, end if dot < 0 else dot + 1
