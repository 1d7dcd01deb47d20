"""The Streamlit app driven headless with streamlit.testing.v1.AppTest (hash embedder), plus the
UI's pure helpers (escaping, uploads) tested directly."""

from __future__ import annotations

import html
import os
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import CORPUS_DIR

from reportqa.records import Answer, Citation
from reportqa.settings import Settings

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "ui" / "app.py")
CORPUS = CORPUS_DIR  # the 36 CQC pages (conftest): these app tests are about them
# Worded close to the report: the hash embedder used here is a bag-of-words fake, so the
# answerer's semantic re-ranking needs lexical overlap to be confident (the real-model browser
# test asks the everyday wording "What percentage of Stockton carers used a support group?").
STOCKTON_Q = ("What percentage of carers in Stockton-on-Tees said they were accessing a "
              "support group?")

TESTSHIRE = """Testshire County Council: local authority assessment

Key findings for this quality statement
Testshire County Council commissioned a wide range of home care services across the county.
In the latest survey, 73.41% of people who use services in Testshire said they were satisfied with the lantern visiting scheme, which was better than the England average.
Waiting lists for occupational therapy had fallen over the previous year.
"""

XSS = """Xssville Borough Council: local authority assessment

Key findings for this quality statement
Xssville Borough Council ran a quarterly marmalade forum for carers.
The marmalade forum notice read <script>window.__xss=1</script> and <img src=x onerror="window.__xss=2"> and **bold** [link](javascript:alert(1)) according to 41.17% of carers.
Staff told us the forum was well attended.
"""


# --- fixtures (kept here on purpose: independent of conftest) --------------------------------

@pytest.fixture
def ui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """REPORTQA_* for the app: hash embedder, fresh index under tmp_path, bundled corpus."""
    for k in list(os.environ):
        if k.startswith("REPORTQA_"):
            monkeypatch.delenv(k)
    index = tmp_path / "index"
    monkeypatch.setenv("REPORTQA_EMBEDDER", "hash")
    monkeypatch.setenv("REPORTQA_INDEX", str(index))
    monkeypatch.setenv("REPORTQA_CORPUS_DIR", str(CORPUS))
    return Settings.from_env()


@pytest.fixture
def app(ui_env: Settings):  # type: ignore[no-untyped-def]
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def ask(at, question: str):  # type: ignore[no-untyped-def]
    at.chat_input[0].set_value(question).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def answers(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.value for h in at.html if 'class="rq-answer' in h.value]


def passages(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [h.value for h in at.html if 'class="rq-source' in h.value]


def source_labels(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.label for e in at.expander if e.label.startswith("\\[")]


def unmd(label: str) -> str:
    """Undo md_escape for assertions on Markdown labels."""
    import re

    return re.sub(r"\\(.)", r"\1", label)


# --- the app ---------------------------------------------------------------------------------

def test_first_run_ingests_the_corpus_then_is_ready(app, ui_env: Settings) -> None:
    from ingest.index import IndexStore
    from reportqa.embed import get_embedder

    emb = get_embedder("hash")
    store = IndexStore(ui_env, emb.name, emb.dim, create=False)
    try:
        assert store.counts()[0] == 36
    finally:
        store.close()
    assert len(app.chat_input) == 1
    assert any(e.label == "Indexed reports (36)" for e in app.expander)
    assert not app.error
    # The reports browser lists council, page kind, statement, score and chunks.
    df = app.dataframe[0].value
    assert {"council", "page kind", "quality statement", "score", "chunks"} <= set(df.columns)
    assert len(df) == 36
    # Filter options come from the index's own metadata.
    assert "Stockton-on-Tees Borough Council" in app.multiselect(key="f_council").options
    assert "Safeguarding" in app.multiselect(key="f_statement").options
    # A second run (same process) neither re-ingests nor reloads: still ready at once.
    app.run()
    assert not app.exception and len(app.chat_input) == 1


def test_interrupted_first_start_resumes(ui_env: Settings) -> None:
    """A first-start ingest cut short (marker left behind) is finished on the next start."""
    from streamlit.testing.v1 import AppTest

    from ingest.pipeline import ingest
    from ui.components import CORPUS_PENDING

    ingest([CORPUS / "birmingham__overview.txt"], ui_env)
    (ui_env.index_dir / CORPUS_PENDING).write_text("interrupted")
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    assert any(e.label == "Indexed reports (36)" for e in at.expander)
    assert not (ui_env.index_dir / CORPUS_PENDING).exists()


def test_own_index_is_not_topped_up_with_the_corpus(ui_env: Settings) -> None:
    from streamlit.testing.v1 import AppTest

    from ingest.pipeline import ingest

    ingest([CORPUS / "birmingham__overview.txt"], ui_env)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    assert any(e.label == "Indexed reports (1)" for e in at.expander)


def test_first_start_progress_feeds_a_bar(ui_env: Settings) -> None:
    from ui.components import ingest_corpus

    seen: list[tuple[float, str]] = []
    summary = ingest_corpus(ui_env, lambda f, msg: seen.append((f, msg)))
    assert summary.reports_total == 36
    assert seen[0][0] == 0.0 and seen[-1][0] == pytest.approx(1.0)
    assert all(0.0 <= f <= 1.0 for f, _ in seen)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert len({round(f, 2) for f, _ in seen}) >= 4, "the bar should move in steps, not jump"


def test_question_shows_answer_with_citation(app) -> None:
    ask(app, STOCKTON_Q)
    [ans] = answers(app)
    assert "25.19%" in ans and 'class="rq-marker"' in ans and "[1]" in ans
    assert 'data-abstained="false"' in ans
    labels = [unmd(x) for x in source_labels(app)]
    assert labels and labels[0].startswith("[1] Stockton-on-Tees Borough Council")
    assert "Care provision, integration and continuity" in labels[0]
    assert "score 3/4" in labels[0]
    # The passage shows the quoted sentence highlighted and links to the source.
    p = passages(app)[0]
    assert "<mark" in p and "25.19%" in p.split("<mark", 1)[1].split("</mark>", 1)[0]
    assert 'href="https://www.cqc.org.uk/' in p
    assert any("answered by extractive" in c.value for c in app.caption)
    assert app.get("download_button"), "no evidence CSV download"
    # History is kept; a follow-up is answered on its own and both stay on screen.
    ask(app, "What share of Stockton carers said they had as much social contact as they wanted?")
    assert len(answers(app)) == 2
    assert "25.19%" in answers(app)[0]


def test_an_answer_about_the_index_itself_shows_without_sources(app) -> None:
    """"What reports do you have?" is answered from the index, quoting nothing: the chat
    shows it as an answer (not an abstention) and offers no passage."""
    ask(app, "what reports do you have?")
    [ans] = answers(app)
    assert "adult social care (CQC)" in ans and 'data-abstained="false"' in ans
    assert not passages(app) and not app.exception


def test_engine_loads_once_per_process_not_per_question(ui_env: Settings,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from rag.engine import Engine

    calls: list[Settings] = []
    real = Engine.load.__func__  # type: ignore[attr-defined]

    def counting(cls, settings, embedder=None):  # type: ignore[no-untyped-def]
        calls.append(settings)
        return real(cls, settings, embedder)

    monkeypatch.setattr(Engine, "load", classmethod(counting))
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    ask(at, STOCKTON_Q)
    ask(at, "What did Leeds score for safeguarding?")
    at2 = AppTest.from_file(APP, default_timeout=180)  # a second browser session
    at2.run()
    ask(at2, STOCKTON_Q)
    assert len(calls) == 1


def test_council_filter_restricts_answers(app) -> None:
    app.multiselect(key="f_council").select("Birmingham City Council").run()
    ask(app, STOCKTON_Q)
    labels = [unmd(x) for x in source_labels(app)]
    assert labels, "expected sources or see-also passages"
    assert all("Birmingham City Council" in x for x in labels), labels
    assert not any("Stockton" in x for x in labels)
    assert "25.19%" not in answers(app)[-1]
    assert any("filtered to Birmingham City Council" in unmd(c.value) for c in app.caption)


def test_a_year_filter_keeps_a_council_s_undated_pages_of_that_year(app) -> None:
    """Most CQC quality-statement pages carry no date of their own: filtered to the year of
    their council's assessment they are still searched (the score was "not stated")."""
    assert "2023" in app.multiselect(key="f_year").options
    app.multiselect(key="f_year").select("2023").run()
    ask(app, "What score did Birmingham get for safeguarding?")
    assert "Safeguarding is 2" in answers(app)[-1], answers(app)[-1]


def test_statement_filter_restricts_answers(app) -> None:
    app.multiselect(key="f_statement").select("Safeguarding").run()
    ask(app, "How did the council work with partners?")
    labels = [unmd(x) for x in source_labels(app)]
    assert labels and all("Safeguarding" in x for x in labels), labels


def test_abstained_answer_looks_different(app) -> None:
    ask(app, "What did Leeds score for safeguarding?")
    assert [w.value for w in app.warning] == ["Not in the indexed reports"]
    [ans] = answers(app)
    assert 'data-abstained="true"' in ans and "rq-abstained" in ans
    assert "Leeds" in ans


def test_see_also_passages_for_an_unanswerable_question(app) -> None:
    ask(app, "What did inspectors say about the zebra crossing outside the town hall?")
    assert [w.value for w in app.warning] == ["Not in the indexed reports"]
    if source_labels(app):  # closest passages are shown as "see also"
        assert any(m.value == "**Closest passages (see also)**" for m in app.markdown)


def test_every_answer_can_be_judged_and_a_new_conversation_starts_afresh(
        app, ui_env: Settings) -> None:
    from reportqa import feedback

    ask(app, "What did Leeds score for safeguarding?")  # not indexed: no passage to show
    assert not source_labels(app)
    assert app.get("feedback"), "no thumbs under an answer that quotes nothing"
    assert app.button(key="new_conversation")  # from the first answer on
    # Up, then down (saved on the click, the correction being optional), then its
    # correction, then up again: each change is saved, the last counts.
    app.get("feedback")[0].set_value(1).run()
    app.get("feedback")[0].set_value(0).run()
    assert [r["verdict"] for r in feedback.load(ui_env)] == ["up", "down"]
    app.text_input[0].set_value("Leeds is not indexed").run()
    app.button(key="send-0-0").click().run()
    app.get("feedback")[0].set_value(1).run()
    rows = feedback.load(ui_env)
    assert [(r["verdict"], r["correction"]) for r in rows] == [
        ("up", None), ("down", None), ("down", "Leeds is not indexed"), ("up", None)]
    app.button(key="new_conversation").click().run()
    ask(app, "What did Leeds score for safeguarding?")
    app.get("feedback")[0].set_value(1).run()  # the new conversation's first answer: saved too
    assert [r["verdict"] for r in feedback.load(ui_env)][4:] == ["up"]
    app.button(key="new_conversation").click().run()
    ask(app, "What score did Darlington get for safeguarding?")
    ask(app, "and Staffordshire?")
    assert any("Read as:" in h.value for h in app.html)
    app.button(key="new_conversation").click().run()
    assert not answers(app) and not app.get("feedback")
    ask(app, "and Staffordshire?")  # nothing before it now: read as typed
    assert not any("Read as:" in h.value for h in app.html)


def test_a_question_longer_than_the_limit_is_refused_with_the_limit(app) -> None:
    ask(app, "What did carers say " * 60)  # 1,200 characters: the box no longer drops it
    assert len(app.error) == 1 and "1,000" in unmd(app.error[0].value)


def test_question_error_is_a_message_not_a_traceback(app) -> None:
    ask(app, "??? 123")
    assert not app.exception
    assert len(app.error) == 1 and "English" in app.error[0].value
    assert len(app.chat_input) == 1  # still usable
    ask(app, STOCKTON_Q)
    assert "25.19%" in answers(app)[-1]


def test_upload_in_app_reports_per_file_errors_and_answers_at_once(app, ui_env: Settings) -> None:
    up = app.file_uploader(key="uploader")
    up.set_value([
        ("../../etc/passwd.txt", TESTSHIRE.encode(), "text/plain"),
        ("empty.txt", b"   \n", "text/plain"),
        ("xssville.txt", XSS.encode(), "text/plain"),
    ]).run()
    assert not app.exception
    errors = [unmd(e.value) for e in app.error]
    assert len(errors) == 1 and errors[0].startswith("empty.txt: ") and "empty" in errors[0]
    oks = [unmd(s.value) for s in app.success]
    assert any(s.startswith("../../etc/passwd.txt: indexed as") for s in oks), oks
    assert any(s.startswith("xssville.txt: indexed as") for s in oks), oks
    # Written under the index dir, named by content hash, never by the uploaded path.
    saved = sorted(p.relative_to(ui_env.index_dir) for p in
                   (ui_env.index_dir / "uploads").rglob("*") if p.is_file())
    assert sorted(p.name for p in saved) == ["passwd.txt", "xssville.txt"]
    assert all(p.parts[0] == "uploads" and len(p.parts[1]) == 16 for p in saved)
    assert not (REPO.parent / "etc").exists()
    assert any(e.label == "Indexed reports (38)" for e in app.expander)
    assert "Testshire County Council" in app.multiselect(key="f_council").options
    # Answerable at once, with the same engine.
    ask(app, "What percentage of people in Testshire were satisfied with the lantern visiting scheme?")
    assert "73.41%" in answers(app)[-1]
    # Report text with HTML / Markdown tricks is shown as text.
    ask(app, "What did the Xssville marmalade forum notice read?")
    ans = answers(app)[-1]
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in ans
    assert "<script" not in ans and "<img" not in ans
    for p in passages(app):
        assert "<script" not in p and "<img" not in p and "onerror=\"" not in p
    for lab in source_labels(app):
        assert "<" not in lab.replace("\\<", "")
    # The same upload again in a later rerun is not re-ingested.
    app.run()
    assert not app.exception and any(e.label == "Indexed reports (38)" for e in app.expander)
    # An upload that was no report can be removed again, its saved copy with it.
    remove = next(b for b in app.button if b.label == "Remove xssville.txt from the index")
    remove.click().run()
    assert not app.exception and any(e.label == "Indexed reports (37)" for e in app.expander)
    assert any(unmd(i.value).startswith("xssville.txt: removed ") for i in app.info)
    assert sorted(p.name for p in (ui_env.index_dir / "uploads").rglob("*")
                  if p.is_file()) == ["passwd.txt"]
    assert not any(b.label.startswith("Remove xssville") for b in app.button)


# --- pure helpers ----------------------------------------------------------------------------

def _cite(**kw) -> Citation:  # type: ignore[no-untyped-def]
    base = dict(n=1, report_id="r", council="C", page_kind="other", quality_statement=None,
                section=None, score=None, quote="b", passage="a b c", start=12, end=13,
                source="https://example.org/x", passage_start=10)
    base.update(kw)
    return Citation(**base)  # type: ignore[arg-type]


def test_passage_html_highlights_the_quote_and_escapes_everything() -> None:
    from ui.components import passage_html

    passage = 'Intro <b>x</b>. The <script>alert(1)</script> "quote" here. Outro & more.'
    s = passage.index("The")
    e = passage.index("Outro") - 1
    c = _cite(passage=passage, quote=passage[s:e], start=100 + s, end=100 + e,
              passage_start=100, source='https://example.org/a?b=1&c="x"')
    out = passage_html(c)
    assert "<script" not in out and "<b>" not in out
    marked = out.split("<mark", 1)[1].split(">", 1)[1].split("</mark>", 1)[0]
    assert html.unescape(marked) == passage[s:e]
    assert 'href="https://example.org/a?b=1&amp;c=&quot;x&quot;"' not in out  # quote in URL: no link
    ok = passage_html(_cite(source="https://example.org/a?b=1&c=2"))
    assert 'href="https://example.org/a?b=1&amp;c=2"' in ok and 'rel="noopener' in ok


def test_passage_html_guards_offsets_and_links() -> None:
    from ui.components import passage_html, quote_span

    # Quote outside the passage (it continues past the chunk): shown on its own, still marked.
    c = _cite(passage="abc", quote="zzz", start=50, end=53, passage_start=0)
    assert quote_span(c) is None
    out = passage_html(c)
    assert "<mark" in out and "zzz" in out and "abc" in out
    assert quote_span(_cite(start=5, end=14, passage_start=10)) is None  # starts before
    for bad in ("javascript:alert(1)", "data:text/html,<script>x</script>", "/etc/passwd",
                " JAVASCRIPT:alert(1)", "file:///etc/passwd"):
        out = passage_html(_cite(source=bad))
        assert "href=" not in out and "<script" not in out


def test_answer_html_escapes_and_marks() -> None:
    from ui.components import answer_html

    a = Answer("q", 'See <img src=x onerror="alert(1)"> and **b** [2].', False)
    out = answer_html(a)
    assert "<img" not in out and "&lt;img" in out
    assert '<sup class="rq-marker"' in out and "[2]</sup>" in out
    assert 'data-abstained="true"' in answer_html(Answer("q", "No.", True))


def test_a_file_that_is_no_report_is_not_counted_as_a_cqc_assessment() -> None:
    from types import SimpleNamespace

    from ui.components import index_summary, report_family

    cqc = {"council": "Darlington Borough Council", "page_kind": "about", "family": None}
    note = {"council": None, "page_kind": "other", "family": None}
    # A council's strategy uploaded as a file of no known kind is no CQC assessment either.
    strategy = {"council": "Darlington Borough Council", "page_kind": "other", "family": None}
    assert report_family(strategy) == "Other reports"
    send = {"council": "Bury", "page_kind": "inspection_report", "family": "ofsted-area-send"}
    assert report_family(cqc) == "CQC local authority assessments"
    assert report_family(note) == "Other reports"
    assert report_family(send) == "Ofsted/CQC area SEND inspections"
    rows = [SimpleNamespace(metadata=m) for m in (cqc, cqc, note)]
    assert index_summary(rows) == ("3 reports indexed: CQC local authority assessments (2); "
                                   "Other reports (1)")


def test_md_escape_and_labels_are_literal() -> None:
    from ui.components import md_escape, source_label

    assert md_escape("*a* [l](javascript:x) <b> $x$ :red[y]\n\n# h") == (
        "\\*a\\* \\[l\\]\\(javascript\\:x\\) \\<b\\> \\$x\\$ \\:red\\[y\\] \\# h")
    # A PDF's page ends the label: one page, a range across a page break, never "7-7".
    assert source_label(_cite(page=7, page_end=7)).endswith("p\\. 7")  # Markdown-escaped
    assert source_label(_cite(page=7, page_end=8)).endswith("p\\. 7\\-8")
    lab = source_label(_cite(council="**Evil** <i>C</i>", section="[x](http://e)", score=2))
    assert lab.startswith("\\[1\\] \\*\\*Evil\\*\\*") and "score 2/4" in lab.replace("\\/", "/")
    assert "\n" not in lab


def test_csv_bytes_matches_the_cli_columns() -> None:
    from ui.components import csv_bytes
    from ui.render import CSV_FIELDS

    a = Answer("q", "Figure 1% [1].", False, (_cite(quote='say "hi", ok'),))
    lines = csv_bytes(a).decode().splitlines()
    assert lines[0] == ",".join(CSV_FIELDS)
    assert '"say ""hi"", ok"' in lines[1] and lines[1].startswith("1,C,")


@pytest.mark.parametrize("name,expected", [
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
    ("/abs/path/report.md", "report.md"),
    ("my report (final).pdf", "my_report__final_.pdf"),
    (".hidden.html", "hidden.html"),
    ("r\u00e9sum\u00e9.htm", "r_sum_.htm"),
    ("\u0440\u0435\u043f\u043e\u0440\u0442.txt", "upload.txt"),
])
def test_sanitize_filename(name: str, expected: str) -> None:
    from ui.components import sanitize_filename

    assert sanitize_filename(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "..", "../..", "a/b/", "...", "x/.."])
def test_sanitize_filename_rejects_empty_names(name: str) -> None:
    from ui.components import sanitize_filename

    with pytest.raises(ValueError):
        sanitize_filename(name)


def test_save_and_ingest_handles_traversal_size_type_and_duplicates(ui_env: Settings) -> None:
    from ui.components import save_and_ingest

    settings = replace(ui_env, max_file_mb=0.01)  # ~10 KB
    big = b"x" * 20_000
    progress: list[float] = []
    results = save_and_ingest([
        ("../../etc/passwd.txt", TESTSHIRE.encode()),
        ("huge.txt", big),
        ("macro.exe", b"MZ..."),
        ("..", b"text"),
        ("again.txt", TESTSHIRE.encode()),  # same content, other name: already indexed
        ("broken.pdf", b"%PDF-1.4 not really a pdf"),
    ], settings, progress=lambda f, _m: progress.append(f))
    by = {r.name: r for r in results}
    assert [r.name for r in results][0] == "../../etc/passwd.txt"
    assert by["../../etc/passwd.txt"].status == "added"
    saved = Path(by["../../etc/passwd.txt"].saved_as or "")
    uploads = (ui_env.index_dir / "uploads").resolve()
    assert saved.name == "passwd.txt" and saved.parent.parent == uploads
    assert saved.read_text() == TESTSHIRE
    assert by["huge.txt"].status == "failed" and "upload limit" in by["huge.txt"].message
    assert "0.01 MB" in by["huge.txt"].message
    assert by["macro.exe"].status == "failed" and "unsupported file type '.exe'" in by["macro.exe"].message
    assert by[".."].status == "failed" and "name" in by[".."].message
    assert by["again.txt"].status == "unchanged"
    assert by["broken.pdf"].status == "failed" and by["broken.pdf"].message
    # Nothing but the files indexed from is left on disk (again.txt's text is indexed from
    # passwd.txt); nothing escaped uploads/.
    left = sorted(p.name for p in uploads.rglob("*") if p.is_file())
    assert left == ["passwd.txt"] and by["again.txt"].saved_as is None
    assert progress and progress[-1] == 1.0 and all(0 <= f <= 1 for f in progress)

    from rag.answer import answer

    a = answer("What percentage of people in Testshire were satisfied with the lantern "
               "visiting scheme?", settings)
    assert "73.41%" in a.text


# --- the CLI entry point ---------------------------------------------------------------------

def test_cli_ui_execs_streamlit_with_options(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    from ui import cli

    seen: dict[str, object] = {}

    def fake_execve(path: str, argv: list[str], env: dict[str, str]) -> None:
        seen.update(path=path, argv=argv, env=env)

    monkeypatch.setattr(os, "execve", fake_execve)
    monkeypatch.delenv("REPORTQA_INDEX", raising=False)
    rc = cli.main(["ui", "--index", str(tmp_path / "ix"), "--port", "8599", "--headless",
                   "--", "--theme.base", "dark"])
    assert rc == 0
    argv = seen["argv"]
    assert isinstance(argv, list)
    assert argv[1:4] == ["-m", "streamlit", "run"] and argv[4].endswith("ui/app.py")
    joined = " ".join(argv)
    assert "--server.port 8599" in joined and "--server.headless true" in joined
    assert "--server.maxUploadSize 20" in joined and "--theme.base dark" in joined
    assert "--server.address 127.0.0.1" in joined
    env = seen["env"]
    assert isinstance(env, dict) and env["REPORTQA_INDEX"] == str((tmp_path / "ix").resolve())


def test_title_filters_and_page_labels_come_from_what_is_indexed(ui_env: Settings) -> None:
    """With an Ofsted PDF indexed beside the CQC pages, the intro names both families, the
    family filter offers both, and a PDF source's label carries its page."""
    from streamlit.testing.v1 import AppTest

    from ingest.pipeline import ingest

    ingest([CORPUS, REPO / "corpus" / "ofsted" / "ofsted-send-bury-2024.pdf"], ui_env)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Ask the inspection reports"
    intro = " ".join(unmd(c.value) for c in at.caption)
    assert "37 reports indexed" in intro and "area SEND inspections (1)" in intro
    options = at.multiselect(key="f_family").options
    assert {"CQC local authority assessments", "Ofsted/CQC area SEND inspections"} <= set(options)
    at.multiselect(key="f_family").select("Ofsted/CQC area SEND inspections").run()
    ask(at, "How long do children in Bury wait for speech and language therapy?")
    labels = [unmd(x) for x in source_labels(at)]
    assert labels and all("Bury" in x and " · p. " in x for x in labels), labels
    assert any("filtered to Ofsted/CQC area SEND inspections" in unmd(c.value) for c in at.caption)


def test_a_pdf_source_can_show_its_page(ui_env: Settings) -> None:
    """The source of a PDF answer has a switch that shows the cited page, rendered."""
    from streamlit.testing.v1 import AppTest

    from ingest.pipeline import ingest

    ingest([CORPUS, REPO / "corpus" / "ofsted" / "ofsted-send-bury-2024.pdf"], ui_env)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    ask(at, "How long do children in Bury wait for speech and language therapy?")
    toggles = [t for t in at.toggle if t.label.startswith("Show page ")]
    assert toggles and not at.image
    toggles[0].set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    images = at.image
    assert len(images) == 1
    # The newest answer is drawn anew on that rerun: its source box stays open on the page.
    opened = [e for e in at.expander if unmd(e.label).startswith("[1]")]
    assert opened and opened[0].proto.expanded
    assert "ofsted-send-bury-2024.pdf, page" in str(images[0].proto)


def test_symbol_font_bullets_are_shown_as_printed_and_quotes_stay_exact() -> None:
    """A PDF bullet that text extraction gives as U+F06E shows as the square it is drawn as
    (not an empty box) in the answer, the terminal and the highlighted passage; the citation
    a program reads (JSON, CSV) keeps the stored text, exact at its offsets."""
    from reportqa.text import clean_quote
    from ui.components import passage_html
    from ui.render import answer_text, csv_rows

    quote = "\uf06e At 31 August 2016, 235 children are looked after."
    passage = "Figures:\n" + quote
    c = _cite(quote=quote, passage=passage, start=19, end=19 + len(quote), passage_start=10)
    assert clean_quote(quote) == "■ At 31 August 2016, 235 children are looked after."
    a = Answer("q", f"{clean_quote(quote)} [1].", False, (c,))
    assert "\u201c■ At 31 August" in answer_text(a) and "\uf06e" not in answer_text(a)
    assert '<mark class="rq-quote"' in passage_html(c) and "\uf06e" not in passage_html(c)
    assert "■ At 31 August 2016, 235 children are looked after.</mark>" in passage_html(c)
    assert c.to_json()["quote"] == quote and csv_rows(a)[0]["quote"] == quote
