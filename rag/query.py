"""Question parsing: which councils and statements a question names, and the wording slots
(figure asked for, yes/no, list, grade, years) every answerer reads. Public: `parse_question`.
Which type of question it is comes from the question-type table (rag/structured.py).

Councils and statements are recognised against the index's own metadata, so a newly ingested
council is recognised without code changes. A small gazetteer of English councils lets us tell
"a council we have not indexed" (abstain) from "no council named" (search everything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from ingest.profiles import gazetteer_lines, scopes
from ingest.structure import (
    STATEMENT_KEYS,
    STATEMENTS,
    canonical_statement,
    council_key,
    full_council_names,
)
from rag.lexicon import pattern, vocab, words
from rag.retrieve import tokenize
from rag.spelling import english
from reportqa.errors import QuestionError
from reportqa.records import Span
from reportqa.text import years_in

_GENERIC = words("questions", "generic_name_words")


@dataclass(frozen=True)
class Council:
    key: str
    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Understanding:
    question: str
    content: str = ""  # the question without source frames ("according to its report"): searched and ranked
    normalised: str = ""  # the question as wording rows are matched in (`normalise`): detectors read it
    councils: tuple[str, ...] = ()  # council keys named in the question and indexed
    unknown_councils: tuple[str, ...] = ()  # named but not indexed (gazetteer names)
    statements: tuple[str, ...] = ()
    intent: str = "search"  # a row of rag/structured.py QUESTION_TYPES, or search (set by its `understand`)
    score_value: int | None = None
    rating_value: str | None = None
    wants_figure: bool = False
    direction: str | None = None  # below | above (versus_england); max | min (superlative)
    unknown_first: bool = False  # an un-indexed council is the question's subject
    asks_rank: bool = False
    asks_frequency: bool = False
    asks_difference: bool = False  # "by how much did spend exceed the estimate?"
    all_of: bool = False  # "every one of", "all" quality statements
    asks_reason: bool = False
    asks_effect: bool = False  # "what happens to ...", "what is the effect of ..."
    asks_quantity: bool = False  # a count, share, rate or length: the answer states a figure
    compares: bool = False  # "how does X compare to the national rate": words can answer
    asks_name: bool = False  # "what is X called", "who is ...": the answer names something
    negated: bool = False  # "not", "n't", "never": "which area was not rated good?"
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Passages the conversation already quoted: "why?" wants a new one.
    avoid: tuple[Span, ...] = ()
    # "What are they doing about it?" in a chat: only a sentence saying what is being done
    # about it answers (rag/vocab/cues.toml action_taken), not the problem quoted again.
    wants_action: bool = False
    # "Why?" after a finding: the reason is another finding of the same report, leaning the
    # same way ("shortfall" | "strength" | "" for neither; rag/vocab/cues.toml), never a label
    # line or standard text; after a quoted answer the closest one is quoted as uncertain
    # rather than "not in the reports". None: not a "why?" follow-up.
    reason_for: str | None = None
    # What the sentence reader reads, when not the content the search uses (a follow-up that
    # points back is read as its own question, then the one before: rag/followup.py).
    reader_question: str = ""
    # Read once here for the table answers, which never parse the question themselves:
    terms: tuple[str, ...] = ()  # the question's words as the retriever stems them, in order
    topic_terms: tuple[str, ...] = ()  # a grade question's words less "children's services" (judgement row)
    asks_grade: bool = False  # a judgement or grade ("graded", "judged", "outcome")
    list_kind: str | None = None  # which of a report's lists it asks for (vocab/lists.toml)
    yes_no: bool = False  # "is it true that ...", "did ..."
    asks_overall: bool = False
    asks_which: bool = False
    asks_lowest: bool = False  # "lowest", "worst" (else highest/best)
    asks_percentage: bool = False
    unit: str | None = None  # the unit of the figure asked for (wanted_unit)
    projection: bool = False  # "expected by 2030": a projection, not today's level
    change: bool = False  # "increase", "fell": a change, not a level
    other_inspection: bool = False  # "at its previous inspection": not the indexed report's tables
    years: tuple[str, ...] = ()  # years the question names ("in its 2015 inspection")

    @property
    def for_reader(self) -> str:
        """What the sentence reader reads: ``reader_question``, else the content searched,
        else the question as typed."""
        return self.reader_question or self.content or self.question


def parse_question(question: str, councils: list[Council]) -> Understanding:
    """The question parsed once; its type is left to rag/structured.py `understand`. A claim
    put to be checked ("X was rated good, right?") is read as the yes/no question it asks,
    without its checking words (questions.toml tag_question)."""
    checked = _TAG.sub(" ", question).strip() or question
    claim = _GRADE_CLAIM.match(checked)
    if claim and _only_a_council(claim.group("who"), councils):
        # "is sheffield good?", "did havering fail?": its overall grade answers.
        return _overall_asked(claim.group("who"), question, checked, councils)
    said = _CLAIMED.match(checked) if checked != question else None
    if said and _only_a_council(said.group("who"), councils):
        # "Westminster was rated good, right?", "is it true that Ealing requires improvement?"
        if _only_grade_words(said.group("rest")):
            return _overall_asked(said.group("who"), question, checked, councils)
        # "Doncaster got good for care leavers, didn't it?": as asked the usual way round.
        verb = said.group("verb").lower()
        lead = "did" if verb in ("got", "gets", "received", "had") else verb
        rest = said.group("rest") if lead == verb else f"get {said.group('rest')}"
        checked = f"{lead} {said.group('who')} {rest}?"
    u = _parsed(checked, councils)
    return replace(u, question=question, yes_no=u.yes_no or checked != question)


def _overall_asked(who: str, question: str, checked: str, councils: list[Council]) -> Understanding:
    """The question read as "how did <council> do?", yes or no, searched with its own words."""
    u = _parsed(f"how did {who} do?", councils)
    return replace(u, question=question, yes_no=True, content=strip_frames(checked))


def _only_grade_words(text: str) -> bool:
    """Does ``text`` say only that a grade was given ("was rated requires improvement", "had
    widespread failings")? claim_grade_words plus every family's grade and outcome words."""
    said = set(re.findall(r"[a-z]+", normalise(text)))
    return bool(said) and said <= _claim_words() and bool(said & _grade_words())


@lru_cache(maxsize=1)
def _grade_words() -> frozenset[str]:
    return frozenset(w for s in scopes() for g in (*s.grades, *(p for p, _ in s.grade_words))
                     for w in re.findall(r"[a-z]+", g.lower()))


@lru_cache(maxsize=1)
def _claim_words() -> frozenset[str]:
    return _grade_words() | frozenset(words("questions", "claim_grade_words"))


def _only_a_council(words: str, councils: list[Council]) -> bool:
    """Are ``words`` an indexed council's name and nothing else ("brighton and hove", "bury
    council"), not a council and a topic ("sheffields pre birth assessments")?"""
    q = normalise(words)
    found = _find_councils(q, councils)
    if len(found) != 1:
        return False
    rest = f" {q} "
    for a in sorted(next(c for c in councils if c.key == found[0]).aliases, key=len, reverse=True):
        rest = rest.replace(f" {a} ", " ").replace(f" {a}'s ", " ")
    return set(rest.split()) <= _NAME_WORDS


# Words a council's name may carry beyond its aliases ("the city of york council").
_NAME_WORDS = frozenset({"the", "council", "city", "county", "borough", "of"})


def _parsed(question: str, councils: list[Council]) -> Understanding:
    q = normalise(question)
    found = _find_councils(q, councils)
    known = {c.key for c in councils}
    # A gazetteer name inside an indexed council's name ("Stockton" in "Stockton-on-Tees") is
    # that council, not an un-indexed one.
    unknown = tuple(n for n in _gazetteer_mentions(q)
                    if council_key(n) not in known
                    and not any((council_key(n) or "") in c.key and _contains(q, a)
                                for c in councils for a in c.aliases))
    stmts = _find_statements(q)
    first_unknown = min((m.start() for n in unknown for m in [re.search(re.escape(normalise(n)), q)]
                         if m), default=None)
    first_known = min((q.find(a) for c in councils if c.key in found for a in c.aliases
                       if q.find(a) >= 0), default=None)
    return Understanding(
        unknown_first=first_unknown is not None and (first_known is None or first_unknown < first_known),
        asks_rank=asks("asks_rank", q),
        asks_frequency=asks("asks_frequency", q),
        asks_difference=asks("asks_difference", q),
        all_of=asks("all_of", q),
        asks_reason=asks("asks_reason", q),
        asks_effect=asks("asks_effect", q),
        asks_quantity=asks_quantity(q),
        compares=asks("compare", q),
        asks_name=asks("asks_name", q),
        negated=asks("grade_negated", question),
        question=question, content=strip_frames(question), normalised=q, councils=found,
        unknown_councils=unknown, statements=stmts,
        wants_figure=asks("wants_figure", q),
        **_shape(question),
    )


def _shape(question: str) -> dict[str, Any]:
    """Slots the table answers (rag/structured.py) need, read once from the question as typed."""
    return dict(
        terms=tuple(tokenize(question)), asks_grade=asks_grade(question), list_kind=asks_for_list(question),
        yes_no=_YES_NO.match(question) is not None,
        asks_overall=asks("asks_overall", question),
        asks_which=asks("which_what", question),
        asks_lowest=asks("asks_lowest", question),
        asks_percentage=asks_percentage(question), unit=wanted_unit(question),
        projection=PROJECTION.search(question) is not None,
        change=CHANGE.search(question) is not None,
        other_inspection=asks("other_inspection", question),
        years=years_in(question))


def asks(name: str, text: str) -> bool:
    """Does the question wording row ``name`` of rag/vocab/questions.toml occur in ``text``?"""
    return pattern("questions", name).search(text) is not None


# Question wording (rag/vocab/questions.toml). A projection or a change is another measure
# than the level a superlative compares.
_YES_NO = pattern("questions", "yes_no")
_TAG = pattern("questions", "tag_question")
_GRADE_CLAIM = pattern("questions", "grade_claim")
_CLAIMED = pattern("questions", "claimed")
PROJECTION = pattern("questions", "projection")
CHANGE = pattern("questions", "change")


def wanted_unit(question: str) -> str | None:
    """The unit a figure answering the question is in: % | £ | duration | count | None."""
    if asks_percentage(question):
        return "%"
    if asks("unit_money", question):
        return "£"
    if asks("unit_duration", question):
        return "duration"
    if asks_count(question) or asks("unit_people", question):
        return "count"  # "which council has the most people ..." compares counts too
    return None


@lru_cache(maxsize=1)
def question_frames() -> tuple[re.Pattern[str], ...]:
    """rag/vocab/frames.toml: phrases that name the source, not the subject, of a question."""
    return tuple(re.compile(r["pattern"], re.I) for r in vocab("frames")["frame"])


@lru_cache(maxsize=1)
def _list_cues() -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((r["kind"], re.compile(r["pattern"], re.I)) for r in vocab("lists")["list"])


@lru_cache(maxsize=1)
def _not_list() -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(r["pattern"], re.I) for r in vocab("lists").get("not_list", []))


def asks_for_list(question: str) -> str | None:
    """Which of a report's own lists the question asks for ("improve", "strengths"), if any
    (rag/vocab/lists.toml)."""
    if any(p.search(question) for p in _not_list()):
        return None
    return next((kind for kind, p in _list_cues() if p.search(question)), None)


def list_cue_words(question: str) -> set[str]:
    """The words with which the question asks for a list ("needs to improve", "priority
    actions"), stemmed: what is left says which of its items it asks about."""
    return {t for _, p in _list_cues() for m in p.finditer(question) for t in tokenize(m.group(0))}


@lru_cache(maxsize=1)
def _shorthand() -> tuple[re.Pattern[str], dict[str, str]]:
    rows = {r["typed"].lower(): r["means"] for r in vocab("frames").get("shorthand", [])}
    # A whole word only: not a letter of "U.K.", "B&NES" or "ND" (neighbours that are word
    # characters, dots, ampersands, hyphens or apostrophes keep it as typed).
    alts = "|".join(sorted(map(re.escape, rows), key=len, reverse=True))
    return re.compile(rf"(?<![\w.&'’-])(?:{alts})(?![\w.&'’-])", re.I), rows


def expand_shorthand(text: str) -> str:
    """The message with chat shorthand read as the word it stands for ("n bradford?" ->
    "and bradford?", "r they" -> "are they"): rag/vocab/frames.toml [[shorthand]]."""
    pat, rows = _shorthand()
    return pat.sub(lambda m: rows[m.group(0).lower()], text) if rows else text


def strip_frames(question: str) -> str:
    """The question without its source frames; the question itself if nothing would be left."""
    out = question
    for p in question_frames():
        out = p.sub(" ", out)
    # Closing punctuation goes too: "...called" and "...called?" are the same question.
    out = " ".join(out.split()).strip(" ,?.!")
    return out if re.search(r"[A-Za-z]{2,}", out) else question


def council_catalogue(names: list[str | None]) -> list[Council]:
    """Aliases per indexed council: full name, key words, and a distinctive first word."""
    best = full_council_names(names)
    firsts: dict[str, int] = {}
    for k in best:
        firsts[k.split("-")[0]] = firsts.get(k.split("-")[0], 0) + 1
    out = []
    for k, name in sorted(best.items()):
        aliases = {normalise(name), k.replace("-", " ")}
        first = k.split("-")[0]
        if firsts[first] == 1 and first not in _GENERIC and len(first) >= 4:
            aliases.add(first)
        aliases.update(_spellings().get(k, ()))
        out.append(Council(k, name, tuple(sorted(aliases, key=len, reverse=True))))
    return out


# --- helpers -------------------------------------------------------------------------------

def normalise(text: str) -> str:
    """The question as council names and question wording are matched in: folded (`_fold`),
    one space between words."""
    return re.sub(r"\s+", " ", _fold(text)).strip()


def _fold(text: str) -> str:
    """Lower case, straight apostrophes, dashes and slashes as spaces: the text council
    names are matched in, character for character."""
    return re.sub(r"[-–—/]", " ", text.lower().replace("’", "'").replace("‘", "'"))


def _contains(q: str, phrase: str) -> bool:
    return re.search(rf"(?<![a-z]){re.escape(phrase)}(?:'s)?(?![a-z])", q) is not None


def _find_councils(q: str, councils: list[Council]) -> tuple[str, ...]:
    first: dict[str, int] = {}
    for s, _, key in _alias_spans(q, councils):
        first.setdefault(key, s)
    return tuple(k for k, _ in sorted(first.items(), key=lambda kv: kv[1]))


def _alias_spans(q: str, councils: list[Council]) -> list[tuple[int, int, str]]:
    """(start, end, council key) of every indexed council's alias in normalised text."""
    pattern, key_of = _alias_matcher(tuple(councils))
    return [(m.start(1), m.end(1), key_of[m.group(1)]) for m in pattern.finditer(q)
            # "baths" is a word, not Bath's: a bare "s" makes a possessive only when the
            # embedder's English does not know the name with it.
            if not (q[m.end(1) : m.end()] == "s" and f"{m.group(1)}s" in english())]


@lru_cache(maxsize=8)
def _alias_matcher(councils: tuple[Council, ...]) -> tuple[re.Pattern[str], dict[str, str]]:
    """One compiled alternation per catalogue: per-alias regexes would be recompiled on every
    question once a large index has more aliases than Python's regex cache holds."""
    key_of: dict[str, str] = {}
    for c in councils:
        for a in c.aliases:
            key_of.setdefault(a, c.key)
    alts = sorted(key_of, key=len, reverse=True) or ["(?!)"]
    body = "|".join(re.escape(a) for a in alts)
    # "kents focused visit", "surreys send inspection": people type the possessive without
    # its apostrophe. Only indexed names take the bare "s" (not the gazetteer's: a council
    # the index does not cover must be named as it is spelt).
    return re.compile(rf"(?<![a-z])({body})(?:'?s)?(?![a-z])"), key_of


@dataclass(frozen=True)
class Mention:
    """An organisation named in a text, indexed or not: where (character offsets in the
    text) and the words as typed."""

    start: int
    end: int
    typed: str


def org_mentions(text: str, councils: list[Council]) -> list[Mention]:
    """Organisations named in ``text``, in order, indexed or not. Offsets are into ``text``
    itself: `_fold` keeps every character in place."""
    low = _fold(text)
    if len(low) != len(text):  # a character whose lower case is longer: no safe offsets
        return []
    spans = [(s, e) for s, e, _ in _alias_spans(low, councils)]
    spans += [(s, e) for s, e, _ in _gazetteer_spans(low)
              if not any(a <= s < b for a, b in spans)]
    return [Mention(s, e, text[s:e]) for s, e in sorted(spans)]


def org_keys(m: Mention, councils: list[Council]) -> frozenset[str]:
    """The index keys of the organisation a mention names, by any of its names ("staffs" is
    staffordshire); an organisation not indexed is its name as typed."""
    return frozenset(_find_councils(normalise(m.typed), councils) or (normalise(m.typed),))


def same_orgs(named: list[Mention], before: list[Mention], councils: list[Council]) -> bool:
    """Do the organisations ``named`` all stand for ones named ``before``?"""
    earlier = {k for m in before for k in org_keys(m, councils)}
    return bool(before) and all(org_keys(m, councils) <= earlier for m in named)


def _find_statements(q: str) -> tuple[str, ...]:
    # "safe pathways" also contains "safe": prefer the longest statement match per position.
    return tuple(dict.fromkeys(c for _, _, c in statement_spans(q)))


def statement_spans(text: str) -> list[tuple[int, int, str]]:
    """Where a text names each CQC quality statement, by its name or a key word of it (the
    first place, as (start, end, name), in order); offsets are into ``text`` itself."""
    low = _fold(text)
    found: list[tuple[int, int, str]] = []
    for canon, keys in STATEMENT_KEYS.items():
        for k in (canon.lower(), *keys):
            i = low.find(k.replace("-", " "))
            if i >= 0:
                found.append((i, i + len(k), canon))
                break
    return sorted(found)


def asks_rating(q: str) -> bool:
    """Overall rating questions, not "what proportion of care homes were rated good"."""
    return not asks("share_not_rating", q) and (asks("asks_rating", q) or asks("how_did_it_do", q))


# "What did Ofsted grade Doncaster's services for care leavers?", "how was X judged for ...".
_ASKS_GRADE = pattern("questions", "asks_grade")


def asks_grade(q: str) -> bool:
    """A question about a judgement or grade (answered from the judgement table)."""
    return (_ASKS_GRADE.search(q) is not None or asks("names_grade", q)
            or asks("how_did_it_do", q))


def asks_percentage(q: str) -> bool:
    return asks("asks_percentage", q)


def asks_quantity(q: str) -> bool:
    """A question whose answer is a figure: a count, share, rate or length of time."""
    return asks("asks_quantity", q)


def asks_count(q: str) -> bool:
    """"How many residents", "what is X's population": answered by a count, not a share."""
    return not asks_percentage(q) and asks("asks_count", q)


def _gazetteer() -> tuple[str, ...]:
    return tuple(fields[0] for fields in gazetteer_lines())


@lru_cache(maxsize=1)
def _spellings() -> dict[str, tuple[str, ...]]:
    """Council key -> the extra spellings listed for it in councils.txt ("B&NES")."""
    return {council_key(f[0]) or f[0]: tuple(normalise(a) for a in f[1:])
            for f in gazetteer_lines() if len(f) > 1}


def _gazetteer_mentions(q: str) -> list[str]:
    return list(dict.fromkeys(name for _, _, name in _gazetteer_spans(q)))


def _gazetteer_spans(q: str) -> list[tuple[int, int, str]]:
    """(start, end, gazetteer name) of every English council named in normalised text."""
    pattern, name_of = _gazetteer_matcher()
    return [(m.start(1), m.end(1), name_of[m.group(1)]) for m in pattern.finditer(q)]


@lru_cache(maxsize=1)
def _gazetteer_matcher() -> tuple[re.Pattern[str], dict[str, str]]:
    name_of = {normalise(n): n for n in _gazetteer()}
    body = "|".join(re.escape(a) for a in sorted(name_of, key=len, reverse=True))
    # "NHS Greater Manchester" names a city region, not Manchester City Council.
    return re.compile(rf"(?<![a-z])(?<!greater )({body})(?:'s)?(?![a-z])"), name_of


def resolve_council(name: str, councils: list[Council]) -> str:
    """A council as typed in a filter ("Stockton", "stockton-on-tees") -> its index key."""
    key = council_key(name)
    for c in councils:
        if c.key == key:
            return c.key
    found = _find_councils(normalise(name), councils)
    if found:
        return found[0]
    raise QuestionError(f"no indexed council matches '{name}'; indexed: "
                        + ", ".join(c.name for c in councils))


def statement_names() -> tuple[str, ...]:
    return tuple(STATEMENTS)


def resolve_statement(name: str) -> str:
    """A quality statement as typed in a filter ("safeguarding") -> its canonical name."""
    canon = canonical_statement(name)
    if not canon:
        raise QuestionError(f"unknown quality statement '{name}'; one of: "
                            + "; ".join(STATEMENTS))
    return canon
