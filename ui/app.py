"""reportqa in the browser: chat with cited answers over the indexed inspection reports.

Run with `reportqa ui` (or `streamlit run ui/app.py`). Settings come from REPORTQA_* env vars
(REPORTQA_INDEX names the index). On first start with an empty index the bundled corpus is
ingested with a progress bar. The embedder and the engine (model, BM25, council catalogue) are
loaded once per process; the engine reloads its tables by itself when the index changes, so an
upload is answerable at once.

All report text is rendered escaped (see ui/components.py): a report cannot run script or
restyle the page.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

# OpenMP threads that busy-wait after each embedding steal the CPU from Streamlit's own threads
# on a small machine (2 cores: answers measured ~4x slower under load); let them sleep instead.
# Must be set before torch loads; an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from ingest.structure import STATEMENTS  # noqa: E402
from rag.engine import Engine  # noqa: E402
from rag.examples import example_questions  # noqa: E402
from rag.listing import noted  # noqa: E402
from rag.retrieve import Filters  # noqa: E402
from reportqa import feedback  # noqa: E402
from reportqa.errors import ReportQAError  # noqa: E402
from reportqa.records import Answer, Citation, Turn  # noqa: E402
from reportqa.settings import Settings  # noqa: E402
from ui.components import (  # noqa: E402
    NOT_IN_REPORTS_LABEL,
    UPLOAD_TYPES,
    FileResult,
    answer_html,
    csv_bytes,
    esc,
    index_summary,
    ingest_corpus,
    md_escape,
    needs_corpus,
    page_png,
    passage_html,
    question_html,
    remove_upload,
    report_family,
    report_rows,
    report_years,
    save_and_ingest,
    source_label,
)

log = logging.getLogger("reportqa.ui")


# --- process-wide resources (once per process, shared by every browser session) --------------

def _key(settings: Settings) -> str:
    return repr(settings)


@st.cache_resource(show_spinner=False)
def _embedder(kind: str, batch_size: int, runtime: str) -> Any:
    from reportqa.embed import get_embedder

    return get_embedder(kind, batch_size, runtime=runtime)


@st.cache_resource(show_spinner=False)
def _engine(key: str, _settings: Settings, _embedder: Any) -> Engine:
    """Engine.load once per settings; warmed so the first question pays no model load."""
    eng = Engine.load(_settings, embedder=_embedder)
    # Keyword tables and the vector store open while the model loads (mostly I/O-bound).
    side = threading.Thread(target=lambda: (eng.derived(), eng.store.collection()), daemon=True)
    side.start()
    eng.embedder.embed(["warm up"])
    side.join()
    try:  # one throwaway question opens the vector store and every lazy table now
        from dataclasses import replace

        from rag.answer import answer

        # Extractive on purpose: warming must never wait on an LLM endpoint.
        answer("How many carers used a support group?", replace(_settings, answerer="extractive"),
               engine=eng)
    except ReportQAError:
        pass
    return eng


@st.cache_resource(show_spinner=False)
def _startup_state(key: str) -> dict[str, Any]:
    return {"lock": threading.Lock(), "ready": False}


def _ensure_corpus(settings: Settings, embedder: Any) -> None:
    """First start: ingest the bundled corpus into an empty index, with a progress bar."""
    state = _startup_state(_key(settings))
    if state["ready"]:
        return
    with state["lock"]:
        if state["ready"]:
            return
        if needs_corpus(settings, embedder):
            box = st.empty()
            with box.container():
                st.info(md_escape(f"First start: indexing the bundled reports in "
                                  f"{settings.corpus_dir}. This happens once."))
                bar = st.progress(0.0, text="Loading the embedding model")
                summary = ingest_corpus(settings, _bar_callback(bar), embedder)
            box.empty()
            for path, reason in summary.failed:
                st.sidebar.error(md_escape(f"{Path(path).name}: {reason}"))
            if summary.reports_total == 0:
                st.error(md_escape(f"No reports could be indexed from {settings.corpus_dir}; "
                                   "upload reports in the sidebar or check REPORTQA_CORPUS_DIR."))
                return
            st.toast(md_escape(summary.line()))
        state["ready"] = True


# --- rendering -------------------------------------------------------------------------------

def _bar_callback(bar: Any) -> Callable[[float, str], None]:
    """Feed an st.progress bar from a (fraction, message) progress callback."""

    def update(frac: float, msg: str) -> None:
        bar.progress(min(1.0, max(0.0, frac)), text=md_escape(msg))

    return update


def _render_answer(i: int, turn: dict[str, Any], engine: Engine) -> None:
    if turn.get("error"):
        st.error(md_escape(turn["error"]))
        return
    ans: Answer = turn["answer"]
    if ans.abstained:
        st.warning(NOT_IN_REPORTS_LABEL, icon="\u26a0\ufe0f")
    elif ans.outcome == "uncertain":
        st.info("Not certain: this is the closest passage, check it against the question.",
                icon="\u2754")
    if ans.read_as and ans.read_as != ans.question:
        # A follow-up was read in context: say how, and offer the words as typed.
        st.html(f'<div class="rq-read-as">Read as: {esc(ans.read_as)}</div>')
        if st.button("Ask the words as typed instead", key=f"literal-{_turn_key(i)}"):
            st.session_state["pending"] = {"question": ans.question, "literal": True}
            st.rerun()
    st.html(answer_html(ans))
    meta = [f"answered by {ans.answerer}"]
    if "total" in ans.timings_ms:
        meta.append(f"{ans.timings_ms['total']:.0f} ms")
    if turn.get("filter_note"):
        meta.append(turn["filter_note"])
    st.caption(md_escape(" · ".join(meta)))
    for note in ans.notes:
        st.caption(md_escape(f"Note: {note}"))
    if ans.citations:
        st.markdown("**Closest passages (see also)**" if ans.abstained else "**Sources**")
        for c in ans.citations:
            # Open while its page is shown: switching the page on reruns the script, and the
            # newest answer is then drawn anew, collapsed.
            with st.expander(source_label(c), expanded=bool(st.session_state.get(_page_key(i, c)))):
                st.html(passage_html(c))
                _page_view(i, c, engine)
    # Every answer can be judged, a "not in the reports" with no passage shown too.
    _feedback(i, ans, engine.settings)
    if ans.citations:
        st.download_button("Download evidence (CSV)", data=csv_bytes(ans),
                           file_name=f"reportqa-evidence-{i + 1}.csv", mime="text/csv",
                           key=f"csv-{_turn_key(i)}", on_click="ignore")


def _feedback(i: int, ans: Answer, settings: Settings) -> None:
    """Thumbs up/down and an optional correction, saved to the index folder for review
    (`reportqa eval --from-feedback`). A changed verdict is saved again: the last one counts."""
    key = _turn_key(i)
    verdict = st.feedback("thumbs", key=f"fb-{key}")
    if verdict is None:
        return
    saved = st.session_state.setdefault("feedback_saved", {})  # turn key -> last verdict saved
    label = "up" if verdict == 1 else "down"
    if saved.get(key) != label:
        # Saved on the click: a thumbs down whose optional correction is never sent counts.
        feedback.record(settings, ans, label)
        saved[key] = label
    st.caption("Thanks: saved for review.")
    if label == "down":
        fix = st.text_input("What should it have said? (optional)", key=f"fix-{key}",
                            max_chars=2000)
        if st.button("Send", key=f"send-{key}") and fix.strip():
            feedback.record(settings, ans, "down", fix)  # the last verdict, with its correction
            st.caption("Correction saved.")


def _turn_key(i: int) -> str:
    """Widget keys of turn ``i`` of this conversation: a new conversation's first answer is
    not the last one's (its thumbs, page switches and saved verdicts start afresh)."""
    return f"{st.session_state.get('conversation', 0)}-{i}"


def _page_key(i: int, c: Citation) -> str:
    return f"page-{_turn_key(i)}-{c.n}"


def _page_view(i: int, c: Citation, engine: Engine) -> None:
    """For a PDF source: a switch that shows the cited page as the PDF prints it."""
    row = engine.retriever.report(c.report_id)
    if c.page is None or row is None:
        return
    if st.toggle(f"Show page {c.page} of the PDF", key=_page_key(i, c)):
        png = page_png(row.path, c.page)
        if png is None:
            st.caption(md_escape(f"The PDF is no longer at {row.path}; re-ingest it to see "
                                 "its pages."))
        else:
            st.image(png, caption=f"{Path(row.path).name}, page {c.page}")


def _render_turn(i: int, turn: dict[str, Any], engine: Engine) -> None:
    with st.chat_message("user"):
        st.html(question_html(turn["question"]))
    with st.chat_message("assistant"):
        _render_answer(i, turn, engine)


def _examples(engine: Engine) -> None:
    """The empty chat: questions this index answers, built from its own tables, one click
    to ask."""
    questions = example_questions(engine)
    if not questions:
        return
    st.markdown("**Try asking**")
    for i, q in enumerate(questions):
        if st.button(q, key=f"example-{i}"):
            st.session_state["pending"] = {"question": q}
            st.rerun()


def _render_upload_results(uploads: dict[str, FileResult], shown: list[str],
                           settings: Settings, engine: Engine) -> None:
    """Each upload's result; one just indexed can be removed again (a file that is no report
    would otherwise stay in every answer's search, with only the command line to remove it)."""
    for file_id in shown:
        r = uploads[file_id]
        text = md_escape(f"{r.name}: {r.message}")
        if r.status == "failed":
            st.error(text)
        elif r.status in ("unchanged", "removed"):
            st.info(text)
        else:
            st.success(text)
            if r.report_ids and st.button(f"Remove {r.name} from the index",
                                          key=f"remove-{file_id}"):
                uploads[file_id] = remove_upload(r, settings, engine.store)
                st.rerun()


# --- the page --------------------------------------------------------------------------------

def main() -> None:
    st.set_page_config(page_title="reportqa: inspection reports", page_icon="\U0001f4cb",
                       layout="wide")
    settings = Settings.from_env()
    st.title("Ask the inspection reports")
    intro = st.empty()

    try:
        embedder = _embedder(settings.embedder, settings.batch_size, settings.embed_runtime)
        _ensure_corpus(settings, embedder)
        with st.spinner("Loading the model and the index\u2026"):
            engine = _engine(_key(settings), settings, embedder)
    except ReportQAError as exc:
        st.error(md_escape(str(exc)))
        st.stop()
        return

    ss = st.session_state
    ss.setdefault("history", [])
    ss.setdefault("uploads", {})  # uploader file_id -> FileResult

    sb = st.sidebar
    new_box = sb.container()  # "New conversation", drawn once the message is read
    filters_box = sb.container()
    upload_box = sb.container()
    reports_box = sb.container()

    # Uploads first, so the filters and the reports browser below already show new reports.
    with upload_box:
        st.subheader("Add reports")
        files = st.file_uploader(
            f"Upload report files ({', '.join(UPLOAD_TYPES)}; up to {settings.max_file_mb:g} MB "
            "each)", type=list(UPLOAD_TYPES), accept_multiple_files=True, key="uploader")
        new = [f for f in (files or []) if f.file_id not in ss["uploads"]]
        if new:
            bar = st.progress(0.0, text="Indexing uploaded files")
            results = noted(save_and_ingest(
                [(f.name, f.getvalue()) for f in new], settings,
                progress=_bar_callback(bar),
                embedder=engine.embedder), engine.store)
            bar.empty()
            for f, r in zip(new, results, strict=True):
                ss["uploads"][f.file_id] = r
        _render_upload_results(ss["uploads"], [f.file_id for f in (files or [])
                                                if f.file_id in ss["uploads"]], settings, engine)

    derived = engine.derived()
    indexed = engine.store.reports()
    intro.caption(md_escape(index_summary(indexed)) + ". Answers quote the reports and cite "
                  "them (with the page, for PDFs); if the reports don't say, the answer says so.")
    name_to_key = {c.name: c.key for c in derived.councils}
    families = sorted({report_family(r.metadata) for r in indexed})
    year_of = report_years(indexed)
    years = sorted({y for y in year_of.values() if y}, reverse=True)
    with filters_box:
        st.subheader("Filters")
        chosen_councils = st.multiselect("Council or area", sorted(name_to_key), key="f_council",
                                         placeholder="All councils")
        chosen_families = st.multiselect("Report family", families, key="f_family",
                                         placeholder="All report families")
        chosen_years = st.multiselect("Year", years, key="f_year", placeholder="All years")
        chosen_statements = st.multiselect("Quality statement (CQC)", list(STATEMENTS),
                                           key="f_statement", placeholder="All quality statements")
    only = tuple(r.report_id for r in indexed
                 if (not chosen_families or report_family(r.metadata) in chosen_families)
                 and (not chosen_years or year_of[r.report_id] in chosen_years))
    narrowed = bool(chosen_families or chosen_years)
    filters = Filters(councils=tuple(name_to_key[n] for n in chosen_councils if n in name_to_key),
                      statements=tuple(chosen_statements),
                      report_ids=(only or ("(none)",)) if narrowed else ())
    filter_note = ""
    if not filters.empty():
        filter_note = "filtered to " + "; ".join(list(chosen_councils) + list(chosen_families)
                                                  + list(chosen_years) + list(chosen_statements))

    with filters_box:
        llm_ready = bool(settings.llm_url)
        choice = st.radio(
            "Answerer", ["Extractive (offline, quotes only)", "LLM (verified citations)"],
            index=1 if settings.answerer == "llm" and llm_ready else 0, key="answerer",
            disabled=not llm_ready,
            help=("Set REPORTQA_LLM_URL and REPORTQA_LLM_MODEL (see docs/local_llm.md) to enable "
                  "the LLM answerer." if not llm_ready else
                  "LLM answers are checked sentence by sentence against the passages they cite."))
    run_settings = dataclasses.replace(settings, answerer="llm" if choice.startswith("LLM") else "extractive")

    with reports_box:
        rows = report_rows(engine.store.reports())
        with st.expander(f"Indexed reports ({len(rows)})"):
            st.dataframe(rows, hide_index=True, width="stretch")

    # Read the input first (the box is pinned to the bottom wherever it is called), so the
    # empty state's examples are not drawn above the answer to the first question.
    # No max_chars: the box would silently drop a longer paste; the answer says the limit.
    typed = st.chat_input("Ask about the reports, e.g. What share of Stockton carers used a "
                          "support group?")
    pending = ss.pop("pending", None)
    prompt = typed or (pending or {}).get("question")
    literal = bool(pending and not typed and pending.get("literal"))
    with new_box:
        # A follow-up is read against the questions before it; this starts afresh (a reload
        # does too, silently). Shown from the first question on, while it is answered too.
        if (ss["history"] or prompt) and st.button(
                "New conversation", key="new_conversation",
                help="Forget the questions so far: the next one is read on its own"):
            ss["history"] = []
            ss["conversation"] = ss.get("conversation", 0) + 1
            st.rerun()
    for i, past in enumerate(ss["history"]):
        _render_turn(i, past, engine)
    if not ss["history"] and not prompt:
        _examples(engine)
    if prompt:
        turn: dict[str, Any] = {"question": prompt, "answer": None, "error": None,
                                "filter_note": filter_note}
        # What the conversation so far established, for follow-ups ("and Staffordshire?").
        context = [Turn.of(t["answer"]) for t in ss["history"] if t.get("answer") is not None]
        with st.chat_message("user"):
            st.html(question_html(prompt))
        with st.chat_message("assistant"):
            try:
                with st.spinner("Searching the reports\u2026"):
                    from rag.chat import answer_in_chat

                    draft = st.empty()
                    streamed: list[str] = []

                    def show_draft(delta: str) -> None:
                        # Unverified model text: plain text only, replaced by the checked answer.
                        streamed.append(delta)
                        draft.text("Draft (being checked): " + "".join(streamed))

                    turn["answer"] = answer_in_chat(
                        prompt, context, run_settings, filters, engine=engine, literal=literal,
                        on_delta=show_draft if run_settings.answerer == "llm" else None)
                    draft.empty()
            except ReportQAError as exc:
                turn["error"] = str(exc)
            except Exception as exc:  # keep the conversation alive; details go to the log
                log.exception("answering %r failed", prompt)
                turn["error"] = f"Something went wrong answering this question ({type(exc).__name__}: {exc})."
            ss["history"].append(turn)
            _render_answer(len(ss["history"]) - 1, turn, engine)


main()
