"""Stage 2: structure extraction, checked on every corpus page against SOURCES.tsv and an
independent reading of the page text, plus the generic (non-CQC) path."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from conftest import page_score

from ingest.parse import parse_file
from ingest.pipeline import ingest
from ingest.structure import (
    KNOWN_HEADINGS,
    RATINGS,
    SCORE_LABELS,
    STATEMENT_KEYS,
    STATEMENTS,
    canonical_statement,
    council_key,
    extract_structure,
)

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CORPUS_NAMES = sorted(p.name for p in CORPUS.glob("*.txt"))
KIND_OF_PAGE = {"about": "about", "overview": "overall_summary", "press-release": "press_release"}


def _extract(name: str, sources: dict[str, dict[str, str]]):  # type: ignore[no-untyped-def]
    """Structure exactly as the pipeline computes it (SOURCES.tsv hints included)."""
    parsed = parse_file(CORPUS / name)
    row = sources[name]
    return parsed.text, extract_structure(parsed.text, parsed.headings, row["council"], row["page"])


# --- independent readings of the page text ----------------------------------------------------

def listed_statement_scores(text: str) -> list[tuple[str, int]]:
    """'  • <statement>' followed by 'Score: N' on the next line."""
    return [(m.group(1).strip(), int(m.group(2)))
            for m in re.finditer(r"^\s*•\s*([^\n]+?)\s*\n\s*Score: ?(\d+)\s*$", text, re.M)
            if canonical_statement(m.group(1))]


def stated_published(text: str) -> str | None:
    m = re.search(r"^(?:Assessment published|Published): (\d{1,2} \w+ \d{4})", text, re.M)
    return datetime.strptime(m.group(1), "%d %B %Y").date().isoformat() if m else None


# --- every corpus page ----------------------------------------------------------------------

def test_sources_tsv_lists_every_corpus_page(corpus_sources) -> None:
    assert sorted(corpus_sources) == CORPUS_NAMES
    for name, row in corpus_sources.items():
        council, page = name[: -len(".txt")].split("__")
        assert (row["council"], row["page"]) == (council, page)
        assert row["source_url"].startswith("http")


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_council_matches_sources(name: str, corpus_sources) -> None:
    _, st = _extract(name, corpus_sources)
    assert st.council, name
    # council_key drops "Council", "Borough", "City of" ...; what remains is the TSV slug.
    assert council_key(st.council) == corpus_sources[name]["council"]


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_page_kind_and_statement_match_sources(name: str, corpus_sources) -> None:
    _, st = _extract(name, corpus_sources)
    page = corpus_sources[name]["page"]
    if page in KIND_OF_PAGE:
        assert st.page_kind == KIND_OF_PAGE[page]
        assert st.quality_statement is None and st.theme is None
    else:
        expected = canonical_statement(page.replace("-", " "))
        assert expected is not None
        assert st.page_kind == "quality_statement"
        assert st.quality_statement == expected
        assert st.theme == STATEMENTS[expected]


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_score_matches_page_text(name: str, corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    expected = page_score(text)
    assert st.score == expected
    if st.page_kind == "quality_statement":
        assert expected is not None, "every quality-statement page in the corpus states a score"
    if expected is not None:
        assert st.score_label == SCORE_LABELS[expected]
        s, e = st.score_span
        quoted = text[s:e]
        assert str(expected) in quoted and "\n" not in quoted
        assert re.search(r"Score|Evidence shows", quoted)


@pytest.mark.parametrize("name", [n for n in CORPUS_NAMES if n.endswith("__overview.txt")])
def test_overview_statement_scores_match_listed_pairs(name: str, corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    listed = listed_statement_scores(text)
    got = [(s.statement, s.score) for s in st.statement_scores]
    assert got == [(canonical_statement(n), score) for n, score in listed]
    if name == "gateshead__overview.txt":
        assert got == []
    elif name == "birmingham__overview.txt":
        assert got == []  # the pilot overview lists no per-statement scores
    else:
        assert len(got) == 9
        assert {s for s, _ in got} == set(STATEMENTS)
    for s in st.statement_scores:
        quoted = text[s.start : s.end]
        assert quoted.split("\n")[0].lstrip("• ").strip() in (
            s.statement, s.statement.replace("live healthier", "lead healthier"))
        assert quoted.rstrip().endswith(f"Score: {s.score}")
        assert s.theme == STATEMENTS[s.statement] and s.label == SCORE_LABELS[s.score]


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_indicative_flag(name: str, corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    if name.startswith("birmingham__"):
        assert st.indicative  # Birmingham was a 2023 pilot: scores are indicative
    elif not re.search(r"indicative|pilot", text, re.I):
        assert not st.indicative


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_published_date(name: str, corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    assert st.published == stated_published(text)


@pytest.mark.parametrize("name,rating,percentage", [
    ("staffordshire__overview.txt", "Good", 75),
    ("westminster__overview.txt", "Good", 75),
    ("ealing__overview.txt", "Requires improvement", 56),
    ("birmingham__overview.txt", "Good", None),
    ("darlington__press-release.txt", "Good", None),
    ("gateshead__overview.txt", None, None),
])
def test_overall_rating(name: str, rating: str | None, percentage: int | None,
                        corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    assert st.overall_rating == rating
    assert st.overall_percentage == percentage
    if rating:
        s, e = st.overall_rating_span
        assert rating.lower() in text[s:e].lower()


def test_only_summary_pages_carry_an_overall_rating(corpus_sources) -> None:
    for name in CORPUS_NAMES:
        _, st = _extract(name, corpus_sources)
        if st.page_kind not in ("overall_summary", "press_release"):
            assert st.overall_rating is None, name


@pytest.mark.parametrize("name", CORPUS_NAMES)
def test_sections_are_ordered_disjoint_and_cover_known_headings(name: str,
                                                               corpus_sources) -> None:
    text, st = _extract(name, corpus_sources)
    assert st.sections
    prev_end = 0
    for sec in st.sections:
        assert 0 <= sec.start <= sec.end <= len(text)
        assert sec.start >= prev_end, "sections overlap"
        assert text[sec.start : sec.end].strip()
        prev_end = sec.end
    titles = [s.title for s in st.sections]
    lines = [ln.strip().rstrip(":") for ln in text.split("\n")[1:]]
    for heading in ("Key findings for this quality statement", "What people expect",
                    "Demographics"):
        if heading in lines:
            assert heading in titles
    assert st.title == text.split("\n")[0].strip()


def test_pipeline_metadata_matches_extraction(shared_hash_index, corpus_sources,
                                              open_index) -> None:
    """What `reportqa reports` serves is what the extractor read (and the full council name
    wins over the file-name hint, e.g. 'Birmingham City Council' on every Birmingham page)."""
    rows = {Path(r.path).name: r for r in open_index(shared_hash_index).reports()}
    assert sorted(rows) == CORPUS_NAMES
    for name, row in rows.items():
        _, st = _extract(name, corpus_sources)
        m = row.metadata
        assert council_key(m["council"]) == corpus_sources[name]["council"]
        assert (m["page_kind"], m["quality_statement"], m["score"], m["published"],
                m["overall_rating"], m["indicative"]) == (
            st.page_kind, st.quality_statement, st.score, st.published, st.overall_rating,
            st.indicative)
        assert row.source == corpus_sources[name]["source_url"]
    assert {rows[n].metadata["council"] for n in CORPUS_NAMES if n.startswith("birmingham")} == {
        "Birmingham City Council"}


def test_council_key_normalises_wordings() -> None:
    assert council_key("Stockton-on-Tees Borough Council") == "stockton-on-tees"
    assert council_key("London Borough of Ealing") == "ealing"
    assert council_key("Metropolitan Borough of Wirral") == "wirral"
    assert council_key("Bath and North East Somerset Council") == "bath-and-north-east-somerset"
    assert council_key("Westminster City Council") == council_key("City of Westminster")
    assert council_key(None) is None and council_key("Council") is None


def test_canonical_statement_wordings() -> None:
    assert canonical_statement("Supporting people to lead healthier lives") == (
        "Supporting people to live healthier lives")
    assert canonical_statement("safe pathways systems and transitions") == (
        "Safe pathways, systems and transitions")
    assert canonical_statement("Learning improvement and innovation") == (
        "Learning, improvement and innovation")
    assert canonical_statement("Financial facts") is None
    for name in STATEMENTS:
        assert canonical_statement(name) == name
        assert canonical_statement(name.lower().replace(",", "").replace(" ", "-")
                                   .replace("-", " ")) == name


# --- generic (non-CQC) reports ----------------------------------------------------------------

FIRE_REPORT = """Riverside Fire and Rescue Service: fire safety inspection report
Premises: Mill Lane Community Centre, 14 Mill Lane
Inspection date: 12 March 2024
Summary
The premises were inspected under the Regulatory Reform (Fire Safety) Order 2005. The responsible person had completed a fire risk assessment, but it had not been reviewed since 2019.
Findings
Fire doors on the first floor did not close fully into their frames, and two were wedged open during the visit.
The fire alarm system was tested weekly and records were kept up to date by the site manager.
Required actions
Review the fire risk assessment and record the significant findings within 28 days of this letter.
Repair or replace the defective self-closing devices on the first-floor fire doors.
"""

OFSTED_REPORT = """# Inspection of Hillside Primary School

Local authority: Lancashire County Council
Inspection dates: 5 and 6 March 2024

## What is it like to attend this school?

Pupils are happy and safe at this school. They behave well in lessons and at play, and they told inspectors that adults help them quickly if they have a worry.

## What does the school do well and what does it need to do better?

Leaders have designed an ambitious curriculum that sets out the knowledge pupils should learn from the early years to Year 6. In a few subjects, teachers do not check carefully enough what pupils remember.

## Safeguarding

The arrangements for safeguarding are effective. Staff are trained to spot the signs that a pupil may be at risk and they report concerns promptly.
"""


@pytest.mark.parametrize("filename,content,title,sections", [
    ("riverside-fire-inspection.txt", FIRE_REPORT,
     "Riverside Fire and Rescue Service: fire safety inspection report",
     ["Summary", "Findings", "Required actions"]),
    ("hillside-primary.md", OFSTED_REPORT, "Inspection of Hillside Primary School",
     ["What is it like to attend this school?",
      "What does the school do well and what does it need to do better?", "Safeguarding"]),
])
def test_generic_report_ingests_through_generic_path(tmp_path: Path, hash_settings, open_index,
                                                     filename: str, content: str, title: str,
                                                     sections: list[str]) -> None:
    f = tmp_path / filename
    f.write_text(content, encoding="utf-8")
    parsed = parse_file(f)
    st = extract_structure(parsed.text, parsed.headings)
    assert st.title == title
    assert st.page_kind == "other"
    assert st.quality_statement is None and st.score is None and st.overall_rating is None
    assert st.statement_scores == ()
    assert st.council in (None, "Lancashire County Council")
    titles = [s.title for s in st.sections]
    for sec in sections:
        assert sec in titles, (sec, titles)

    summary = ingest([f], hash_settings)
    assert not summary.failed and summary.added and summary.chunks_added > 0
    store = open_index(hash_settings)
    (row,) = store.reports()
    assert row.metadata["title"] == title and row.metadata["page_kind"] == "other"
    assert [s[0] for s in row.metadata["sections"]] == titles
    chunk_sections = {c.section for c in store.chunks()}
    assert set(sections) <= chunk_sections
    assert row.source == str(f.resolve())


def test_cqc_vocabulary_is_data_that_the_bundled_pages_use() -> None:
    """ingest/vocab/cqc-la-assessment.toml: every table says why it exists, and the bundled
    CQC pages print its names (a renamed statement shows up here, not as silently missing
    scores)."""
    import tomllib

    data = tomllib.loads((CORPUS.parent / "ingest" / "vocab" / "cqc-la-assessment.toml").read_text("utf-8"))
    for table in ("statements", "keys", "score_labels", "ratings", "headings"):
        assert len(data[table]["why"]) > 40 and data[table]["example"], table
    pages = "\n".join(p.read_text("utf-8") for p in CORPUS.glob("*.txt"))
    lines = {" ".join(line.split()).lower() for line in pages.splitlines()}
    low = pages.lower()
    for name in STATEMENTS:
        assert name.lower() in low, name
    # The bundled pages reach neither end of every scale (no 4, no "Inadequate"): most of
    # each scale is printed, so a renamed scale fails here.
    for scale in (SCORE_LABELS.values(), RATINGS):
        assert sum(name.lower() in low for name in scale) >= 2, scale
    # Every statement is found by one of its own keys (keys are how questions name them).
    for name, keys in STATEMENT_KEYS.items():
        assert canonical_statement(name) == name and any(canonical_statement(k) == name for k in keys)
    printed = [h for h in KNOWN_HEADINGS if h.lower() in lines]
    assert len(printed) >= len(KNOWN_HEADINGS) - 3, sorted(set(KNOWN_HEADINGS) - set(printed))


def test_a_phone_number_line_is_no_section_heading() -> None:
    """An Ofsted letter opens with its address block; "T 0300 123 1231" above a long line
    read as a heading and labelled every letter's opening (a browser review: "Kent · Visit
    letter · T 0300 123 1231"). A short line of words still heads the text below it."""
    text = ("Ofsted\nPiccadilly Gate\nT 0300 123 1231\nTextphone 0161 618 8524 "
            "enquiries@ofsted.gov.uk www.gov.uk/ofsted and further contact details here\n"
            "Headline findings\nMost children referred to the front door service receive a "
            "timely and appropriate response from social workers.\n")
    titles = [s.title for s in extract_structure(text).sections]
    assert "T 0300 123 1231" not in titles and "Headline findings" in titles
