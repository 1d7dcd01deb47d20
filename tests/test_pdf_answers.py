"""Every citation of a PDF carries the right page: over every citation that the open blind
questions on the bundled Ofsted PDFs produce, the quote is on the page it names, read
independently from pypdf's raw text of that page."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import pytest

from ingest.pipeline import ingest
from rag.answer import answer
from rag.engine import Engine
from reportqa.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "corpus" / "ofsted"
QUESTIONS = [q for q in (json.loads(ln) for ln in
                         (ROOT / "evals" / "blind" / "open.jsonl").read_text().splitlines())
             if (q.get("file") or "").endswith(".pdf")]


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    settings = Settings(index_dir=tmp_path_factory.mktemp("pdf-index"), embedder="hash")
    assert ingest([FOLDER], settings).reports_total == 30
    return Engine.load(settings)


@cache
def _raw_pages(path: str) -> tuple[str, ...]:
    import pypdf

    return tuple(_words(p.extract_text() or "") for p in pypdf.PdfReader(path).pages)


def _words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def test_every_blind_question_citation_is_on_its_page(eng: Engine) -> None:
    assert len(QUESTIONS) >= 100
    checked = 0
    for q in QUESTIONS:
        for c in answer(q["question"], eng.settings, engine=eng).citations:
            row = eng.retriever.report(c.report_id)
            assert row is not None and c.page is not None, (q["id"], c.report_id)
            assert eng.retriever.report_text(c.report_id)[c.start:c.end] == c.quote
            pages = _raw_pages(row.path)
            last = c.page_end or c.page
            on = " ".join(pages[c.page - 1 : last])
            # the quote's opening and closing words are printed on the pages it names
            words = _words(c.quote).split()
            head, tail = " ".join(words[:5]), " ".join(words[-5:])
            assert head in on or c.page_end, (q["id"], c.page, c.quote[:80])
            assert tail in on or head in on, (q["id"], c.page, c.quote[:80])
            assert head in pages[c.page - 1] or " ".join(words[:2]) in pages[c.page - 1], (
                q["id"], c.page, c.quote[:80])
            checked += 1
    assert checked >= 100
