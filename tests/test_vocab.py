"""Vocabulary files are data with provenance: every row compiles, says why it exists, and
matches its own examples (questions users type)."""

from __future__ import annotations

import re
import tomllib
from itertools import pairwise
from pathlib import Path

from rag.query import question_frames, strip_frames

VOCAB = Path(__file__).resolve().parents[1] / "rag" / "vocab"


def test_every_frame_row_compiles_explains_itself_and_matches_its_examples() -> None:
    rows = tomllib.loads((VOCAB / "frames.toml").read_text(encoding="utf-8"))["frame"]
    assert len(rows) == len(question_frames())
    for row in rows:
        pattern = re.compile(row["pattern"], re.I)
        assert len(row["why"]) > 20
        assert len(row["examples"]) >= 2
        for ex in row["examples"]:
            assert pattern.search(ex), (row["pattern"], ex)
            assert re.search(r"[A-Za-z]{3,}", strip_frames(ex)), ex


def test_frames_leave_the_subject_alone() -> None:
    assert strip_frames("How long do children in Bury wait for speech therapy, according to "
                        "the latest inspection report?") == ("How long do children in Bury wait "
                                                             "for speech therapy")
    assert strip_frames("Can you tell me how many people live in Bradford?") == (
        "how many people live in Bradford")
    # not a frame: the inspection is the subject here
    assert strip_frames("What was the outcome of the inspection?") == (
        "What was the outcome of the inspection")
    # nothing would be left: the question stays as asked
    assert strip_frames("according to the report?") == "according to the report?"
    # an organisation's designation goes, its name stays; "the council" alone is the subject
    assert strip_frames("where does darlington borough council publish its JSNA?") == (
        "where does darlington publish its JSNA")
    assert strip_frames("What did Ofsted find in the London Borough of Havering?") == (
        "What did Ofsted find in Havering")
    assert strip_frames("who leads the council?") == "who leads the council"


def test_every_list_row_compiles_explains_itself_and_matches_its_examples() -> None:
    from rag.query import asks_for_list

    rows = tomllib.loads((VOCAB / "lists.toml").read_text(encoding="utf-8"))["list"]
    for row in rows:
        pattern = re.compile(row["pattern"], re.I)
        assert len(row["why"]) > 20 and len(row["examples"]) >= 2
        for ex in row["examples"]:
            assert pattern.search(ex), (row["kind"], ex)
            assert asks_for_list(ex) == row["kind"], ex
    assert asks_for_list("How many people live in Bradford?") is None
    for row in tomllib.loads((VOCAB / "lists.toml").read_text(encoding="utf-8"))["not_list"]:
        assert len(row["why"]) > 20 and len(row["examples"]) >= 2
        for ex in row["examples"]:
            assert re.search(row["pattern"], ex, re.I) and asks_for_list(ex) is None, ex


def _corpus_sentences() -> dict[str, str]:
    from ingest.parse import parse_file

    root = VOCAB.parents[1] / "corpus"
    files = sorted(root.glob("*.txt")) + sorted((root / "ofsted").glob("*.pdf"))
    return {f.name: " ".join(parse_file(f).text.split()) for f in files}


def test_every_cue_row_is_backed_by_two_reports_it_matches() -> None:
    """Each synonym and cue quotes sentences from at least two different bundled reports,
    word for word, and matches each of them: a rule must hold on several reports."""
    from rag.retrieve import tokenize

    data = tomllib.loads((VOCAB / "cues.toml").read_text(encoding="utf-8"))
    corpus = _corpus_sentences()
    for row in data["synonym"] + data["cue"]:
        assert len(row["why"]) > 20, row
        files = set()
        for ex in row["examples"]:
            name, sentence = ex.split(": ", 1)
            assert " ".join(sentence.split()) in corpus[name], ex
            files.add(name)
            if "pattern" in row:
                assert re.search(row["pattern"], sentence, re.I), (row["name"], ex)
            else:
                assert set(tokenize(row["report"])) & set(tokenize(sentence)), (row, ex)
        assert len(files) >= 2, row


def test_every_phrase_row_matches_its_questions_and_two_reports_use_its_words() -> None:
    """A question phrase searched with the reports' term: its pattern matches the questions it
    gives, and sentences of two bundled reports, word for word, use the term."""
    from rag.retrieve import report_words, tokenize

    data = tomllib.loads((VOCAB / "cues.toml").read_text(encoding="utf-8"))
    corpus = _corpus_sentences()
    for row in data["phrase"]:
        assert len(row["why"]) > 20 and len(row["questions"]) >= 2, row
        for q in row["questions"]:
            assert re.search(row["question"], q, re.I), (row["report"], q)
            assert set(tokenize(row["report"])) <= set(report_words(q)), q
        files = set()
        for ex in row["examples"]:
            name, sentence = ex.split(": ", 1)
            assert " ".join(sentence.split()) in corpus[name], ex
            assert set(tokenize(row["report"])) <= set(tokenize(sentence)), ex
            files.add(name)
        assert len(files) >= 2, row
    assert report_words("how many adults are in care homes?") == []


def test_every_ranker_weight_is_a_row_that_says_why() -> None:
    from dataclasses import fields

    from rag.evidence import Weights

    rows = tomllib.loads((VOCAB / "weights.toml").read_text(encoding="utf-8"))
    names = {f.name for f in fields(Weights)}
    assert set(rows) - {"fitted_on"} == names, "a row without a field, or a field without a row"
    for name in names:
        assert len(rows[name]["why"]) > 20 and rows[name]["example"], name
        assert isinstance(rows[name]["value"], int | float), name
    assert rows["fitted_on"]


def test_every_sentence_shape_row_is_backed_by_two_reports_it_matches() -> None:
    """rag/vocab/sentences.toml: each pattern matches the start (or whole line) it quotes and
    each section name is a heading of the pages it names, in at least two reports."""
    data = tomllib.loads((VOCAB / "sentences.toml").read_text(encoding="utf-8"))
    root = VOCAB.parents[1] / "corpus"
    assert {r["name"] for r in data["pattern"]} == {"anaphor", "heading", "consequence", "report_frame",
                                                   "label_line", "list_number", "examples_follow",
                                                   "published_line", "dated_line", "assessment_start_line"}
    assert all(r.get("case_sensitive") for r in data["pattern"])
    assert {r["name"] for r in data["section"]} == {"boilerplate"}
    # Pattern rows are checked with every other named row (below); here the page lines (a
    # PDF's text as ingest reads it).
    pdfs = _corpus_sentences()
    for row in [r for r in data["pattern"] if r["name"] != "consequence"] + data["section"]:
        assert len(row["why"]) > 20, row
        files = set()
        for ex in row["examples"]:
            name, text = ex.split(": ", 1)
            if name.endswith(".pdf"):
                lines = [text] if " ".join(text.split()) in pdfs[name] else []
            else:
                lines = (root / name).read_text(encoding="utf-8").splitlines()
            assert any(text in ln for ln in lines), ex
            if "pattern" in row:
                assert re.match(row["pattern"], text), (row["name"], ex)
            else:
                assert text in row["sections"] and (f"{text}:" in lines or text in lines), ex
            files.add(name)
        assert len(files) >= 2, row
    # Case-sensitive on purpose: a lower-case "this" mid-line is not a sentence pointing back.
    assert not re.match(data["pattern"][0]["pattern"], "this was not a sentence start")


_REPORT_EXAMPLE = re.compile(r"^([\w.-]+\.(?:txt|pdf)): (.+)$")
_SOURCES = sorted(p for p in (VOCAB.parents[1] / "rag").glob("*.py"))


def _rows(table: str) -> list[tuple[str, dict]]:
    return [(f.stem, row) for f in sorted(VOCAB.glob("*.toml"))
            for row in tomllib.loads(f.read_text(encoding="utf-8")).get(table, [])]


def test_every_named_pattern_and_word_row_explains_itself_and_matches_its_examples() -> None:
    """The shared row shapes of rag/lexicon.py, in every rag/vocab file: a [[pattern]] row
    compiles and matches each example; a [[words]] row shares a word with each example (as
    the retriever stems them). Examples quoted from a report ("file: sentence") are checked
    word for word against that bundled report, and must come from at least two reports."""
    from rag.retrieve import tokenize

    corpus = _corpus_sentences()
    rows = _rows("pattern") + _rows("words")
    assert len(rows) >= 25
    for file, row in rows:
        where = f"rag/vocab/{file}.toml {row['name']}"
        assert len(row["why"]) > 20 and len(row["examples"]) >= 2, where
        rx = (re.compile(row["pattern"], 0 if row.get("case_sensitive") else re.I)
              if "pattern" in row else None)
        reports = set()
        for ex in row["examples"]:
            quoted = _REPORT_EXAMPLE.match(ex)
            text = quoted.group(2) if quoted else ex
            if quoted:
                assert " ".join(text.split()) in corpus[quoted.group(1)], (where, ex)
                reports.add(quoted.group(1).split("__")[0])
            if rx is not None:
                assert rx.search(text), (where, ex)
            else:
                assert set(tokenize(row["words"])) & set(tokenize(text)), (where, ex)
        assert not reports or len(reports) >= 2, (where, "examples from one report only")
        for ex in row.get("unlike", []):  # questions a pattern row must leave alone
            assert rx is not None and not rx.search(ex), (where, ex)


def test_every_named_row_is_read_by_the_code_and_names_are_unique() -> None:
    """A row nobody reads is dead vocabulary; a duplicated name would be ambiguous."""
    from rag.lexicon import pattern, words

    code = "\n".join(p.read_text(encoding="utf-8") for p in _SOURCES)
    seen = set()
    for table, read in (("pattern", pattern), ("words", words)):
        for file, row in _rows(table):
            key = (file, table, row["name"])
            assert key not in seen, key
            seen.add(key)
            # Read as pattern("file", "name"), or by name through a module's own helper.
            assert f'"{row["name"]}"' in code or f"'{row['name']}'" in code, key
            assert read(file, row["name"])  # loads through the same function the code uses


def test_every_season_row_is_three_months_in_a_row_named_in_its_examples() -> None:
    """A [[season]] row (rag/when.py) is three calendar months in order (winter runs over the
    new year) and one of its words is in each example question."""
    rows = _rows("season")
    assert {r["name"] for _, r in rows} == {"spring", "summer", "autumn", "winter"}
    for _, row in rows:
        months = row["months"]
        assert len(months) == 3 and all((b - a) % 12 == 1 for a, b in pairwise(months)), row
        assert len(row["why"]) > 20 and len(row["examples"]) >= 2, row["name"]
        for ex in row["examples"]:
            assert set(row["words"].split()) & set(re.findall(r"[a-z]+", ex.lower())), (row, ex)


def test_a_missing_row_name_is_a_clear_error() -> None:
    import pytest

    from rag.lexicon import pattern

    with pytest.raises(KeyError, match="questions.toml.*no_such_row"):
        pattern("questions", "no_such_row")


def test_improvement_as_a_topic_does_not_ask_for_the_improvement_list() -> None:
    """'Improvement' naming a board or a change asked about is not 'what needs to improve?'."""
    from rag.query import asks_for_list

    for q in ("Who chairs the improvement board overseeing Southend's children's services?",
              "Over what period have education partners noticed improvements in Southend?",
              "What was Ofsted's final word on the speed of improvement in Cambridgeshire?"):
        assert asks_for_list(q) is None, q
    assert asks_for_list("Which improvements did Ofsted say Doncaster needs?") == "improve"


def test_a_strengths_based_way_of_working_does_not_ask_for_strengths() -> None:
    """'Strengths-based' names an approach the reports describe, not a strength asked for."""
    from rag.query import asks_for_list

    for q in ("What model of strengths-based assessment do Birmingham's community teams use?",
              "oxfordshire - is strengths based practice actually showing in kids records"):
        assert asks_for_list(q) is None, q
    assert asks_for_list("what are oxfordshire's main strengths?") == "strengths"


def test_a_stated_strength_is_not_a_negated_one_nor_a_way_of_working() -> None:
    """cues.toml stated_strength: the strength right after the verb."""
    from rag.lexicon import pattern

    rx = pattern("cues", "stated_strength")
    assert rx.search("The MASH is a strength.") and rx.search("Direct work is a real strength.")
    for sentence in ("The voice of the child is not a strength in casework.",
                     "Practice is strengths-based and relational.",
                     "Leaders know their strengths and weaknesses."):
        assert not rx.search(sentence), sentence


def test_every_shorthand_row_is_read_as_its_word_in_its_examples() -> None:
    """Chat shorthand ("n bradford?", "r they ...") is read as the word it stands for, in
    every message the row quotes; the same letters inside a name or abbreviation are not."""
    from rag.query import expand_shorthand

    rows = tomllib.loads((VOCAB / "frames.toml").read_text(encoding="utf-8"))["shorthand"]
    assert len({r["typed"] for r in rows}) == len(rows)
    for row in rows:
        assert len(row["why"]) > 20 and len(row["examples"]) >= 2, row["typed"]
        for ex in row["examples"]:
            read = expand_shorthand(ex).split()
            assert row["typed"] not in [w.strip("?.,!") for w in read], (row["typed"], ex)
            assert row["means"].split()[0] in [w.strip("?.,!") for w in read], (row["typed"], ex)
    assert expand_shorthand("n bradford?") == "and bradford?"
    assert expand_shorthand("how long r kids waiting in the U.K.?") == (
        "how long are kids waiting in the U.K.?")
    for kept in ("B&NES", "ND assessments", "Hull's", "R.E. lessons", "n-gram"):
        assert expand_shorthand(kept) == kept


def test_every_glyph_row_is_one_character_printed_at_line_starts_of_two_reports() -> None:
    """Each row of reportqa/glyphs.toml turns one private-use character into one character and
    says why; its examples are line starts of at least two bundled PDFs as ingest reads them
    (the stored text keeps the private-use character), and those lines as printed hold none."""
    from ingest.parse import parse_file
    from reportqa.text import as_printed

    ofsted = Path(__file__).resolve().parents[1] / "corpus" / "ofsted"
    rows = tomllib.loads((Path(__file__).resolve().parents[1] / "reportqa" / "glyphs.toml")
                         .read_text("utf-8"))["glyph"]
    texts: dict[str, str] = {}
    for row in rows:
        code = chr(int(row["code"], 16))
        assert 0xE000 <= ord(code) <= 0xF8FF and len(row["char"]) == 1 and row["why"], row
        reports = set()
        for example in row["examples"]:
            name, line = example.split(": ", 1)
            assert line.startswith(code), example
            if name not in texts:
                texts[name] = parse_file(ofsted / name).text
            assert "\n" + line in texts[name], example
            printed = as_printed(line)
            assert printed[0] == row["char"] and len(printed) == len(line)
            assert not any(0xE000 <= ord(ch) <= 0xF8FF for ch in printed), example
            reports.add(name)
        assert len(reports) >= 2, row["code"]
