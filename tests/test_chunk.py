"""Stage 3: chunking. Section-bounded, exact offsets, always inside the model window, stable ids."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from ingest.chunk import chunk_report, embed_text
from ingest.parse import parse_file
from ingest.pipeline import ingest
from ingest.structure import extract_structure
from reportqa.embed import MAX_WORDPIECES
from reportqa.records import Chunk, Report, Section, sha256
from reportqa.text import count_wordpieces

LIMIT = MAX_WORDPIECES - 2  # 254: the model adds [CLS] and [SEP]


def _report(text: str, sections: tuple[Section, ...] | None = None, **meta) -> Report:
    if sections is None:
        sections = tuple(extract_structure(text).sections)
    return Report(report_id=meta.pop("report_id", "r"), text=text, source="test", path="test",
                  title=text.split("\n")[0], sections=sections, **meta)


def _check_chunks(text: str, sections, chunks: list[Chunk]) -> None:
    """The invariants every chunk list must satisfy."""
    assert chunks
    covered = bytearray(len(text))
    prev_end = -1
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.text and c.text == c.text.strip()
        assert c.start >= prev_end, "chunks overlap or are out of order"
        prev_end = c.end
        owners = [s for s in sections if s.start <= c.start and c.end <= s.end]
        assert len(owners) == 1, f"chunk {c.start}-{c.end} crosses a section boundary"
        assert c.section == owners[0].title
        n = count_wordpieces(embed_text(c))
        assert n <= LIMIT, f"{n} word pieces > {LIMIT}: {embed_text(c)[:80]}..."
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    # Nothing is lost: every word character of every section body is inside some chunk.
    for s in sections:
        for m in re.finditer(r"\w", text[s.start : s.end]):
            assert covered[s.start + m.start()], (
                f"text lost in section {s.title!r}: {text[s.start + m.start():][:60]!r}")


# --- the bundled corpus, as indexed --------------------------------------------------------

def test_every_corpus_chunk_is_exact_bounded_and_fits(shared_hash_index, open_index) -> None:
    store = open_index(shared_hash_index)
    by_report: dict[str, list[Chunk]] = {}
    for c in store.chunks():
        by_report.setdefault(c.report_id, []).append(c)
    rows = store.reports()
    assert len(rows) == 36
    for row in rows:
        text = store.report_text(row.report_id)
        sections = [Section(t, s, e) for t, s, e in row.metadata["sections"]]
        chunks = by_report[row.report_id]
        assert len(chunks) == row.chunk_count
        _check_chunks(text, sections, chunks)
        for c in chunks:
            # Chunk metadata is the report's.
            assert (c.council, c.page_kind, c.quality_statement, c.score) == (
                row.metadata["council"], row.metadata["page_kind"],
                row.metadata["quality_statement"], row.metadata["score"])
            assert c.chunk_id == Chunk.make_id(row.content_hash, c.start, c.text)


def test_embed_text_carries_the_context_header(shared_hash_index, open_index) -> None:
    chunks = open_index(shared_hash_index).chunks()
    stockton = [c for c in chunks if c.council == "Stockton-on-Tees Borough Council"]
    assert stockton
    for c in stockton:
        et = embed_text(c)
        assert et.startswith("Stockton-on-Tees Borough Council | "
                             "Care provision, integration and continuity | ")
        assert et.endswith(c.text)


@pytest.mark.parametrize("chunk_tokens", [200, 1000])
def test_corpus_chunks_fit_for_any_configured_size(chunk_tokens: int, corpus_files,
                                                   corpus_sources) -> None:
    for f in corpus_files:
        parsed = parse_file(f)
        row = corpus_sources[f.name]
        st = extract_structure(parsed.text, parsed.headings, row["council"], row["page"])
        r = _report(parsed.text, tuple(st.sections), council=st.council,
                    page_kind=st.page_kind, quality_statement=st.quality_statement)
        chunks = chunk_report(r, chunk_tokens)
        _check_chunks(parsed.text, st.sections, chunks)
        if chunk_tokens == 200:
            assert all(count_wordpieces(c.text) <= 200 for c in chunks)


# --- synthetic worst cases -----------------------------------------------------------------

def _run_on_sentence(words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    vocab = " ".join((
        "the local authority and its partners worked with unpaid carers and people who",
        "draw on care and support including Stockton-on-Tees Northumberland's homecare",
        "reablement co-ordinated £1,234,567 2023/24 87.5% antidisestablishmentarianism",
        "pseudohypoparathyroidism (ASC) ‘strengths-based’ assessments safeguarding",
    )).split(" ")
    return " ".join(rng.choice(vocab) for _ in range(words))


@pytest.mark.parametrize("chunk_tokens", [200, 5000])
def test_two_thousand_word_run_on_sentence(chunk_tokens: int) -> None:
    sentence = _run_on_sentence(2000)
    assert len(sentence.split()) == 2000
    text = ("Some Very Long Named Metropolitan Borough Council: local authority assessment\n"
            "Care provision, integration and continuity\nScore: 2\n"
            "Key findings for this quality statement\n" + sentence + "\n"
            "What people expect\n"
            "I have care and support that is co-ordinated, and everyone works well together and "
            "with me, and nobody has to tell their story twice to get help that fits.")
    st = extract_structure(text)
    titles = [s.title for s in st.sections]
    assert "Key findings for this quality statement" in titles and "What people expect" in titles
    r = _report(text, tuple(st.sections),
                council="Some Very Long Named Metropolitan Borough Council",
                page_kind="quality_statement",
                quality_statement="Care provision, integration and continuity")
    chunks = chunk_report(r, chunk_tokens)
    _check_chunks(text, st.sections, chunks)
    long_sec = next(s for s in st.sections if s.title.startswith("Key findings"))
    inside = [c for c in chunks if long_sec.start <= c.start < long_sec.end]
    assert len(inside) >= 10  # 2,000 words is far over one window
    # Cuts fall on word boundaries: rejoined chunks give back the sentence's words.
    assert " ".join(c.text for c in inside).split() == sentence.split()


def test_single_line_without_sentence_breaks_and_long_tokens() -> None:
    # No ". " anywhere, 150-character "words" and digits glued together.
    junk = " ".join(("x" * 150 if i % 50 == 0 else f"item{i}value{i * 37}") for i in range(1500))
    text = "Data appendix\nTable of figures\n" + junk
    sections = (Section("Table of figures", text.index(junk), len(text)),)
    chunks = chunk_report(_report(text, sections), 200)
    _check_chunks(text, sections, chunks)


def test_report_without_sections_yields_no_chunks() -> None:
    assert chunk_report(_report("Title\nSome text here.", sections=())) == []


# --- ids ------------------------------------------------------------------------------------

def test_chunk_ids_are_derived_from_content() -> None:
    text = ("Northbridge Council: local authority assessment\n"
            "Key findings for this quality statement\n"
            "Waiting lists had reduced. Carers felt supported by the local authority.")
    a = chunk_report(_report(text, report_id="a"))
    b = chunk_report(_report(text, report_id="b"))
    assert [c.chunk_id for c in a] == [c.chunk_id for c in b]  # same text -> same ids
    h = sha256(text)
    assert all(c.chunk_id == sha256(f"{h}:{c.start}:{c.text}")[:24] for c in a)
    changed = chunk_report(_report(text.replace("reduced", "grown"), report_id="a"))
    assert not {c.chunk_id for c in a} & {c.chunk_id for c in changed}
    assert len({c.chunk_id for c in a}) == len(a)


def test_chunk_ids_stable_across_separate_ingests(tmp_path: Path, corpus_dir: Path,
                                                  make_settings, open_index) -> None:
    s1, s2 = make_settings("one"), make_settings("two")
    ingest([corpus_dir], s1)
    ingest([corpus_dir], s2)
    c1 = [(c.report_id, c.chunk_id, c.start, c.end) for c in open_index(s1).chunks()]
    c2 = [(c.report_id, c.chunk_id, c.start, c.end) for c in open_index(s2).chunks()]
    assert c1 == c2
    assert c1 and len({cid for _, cid, _, _ in c1}) == len(c1)
