"""`reportqa` command line: thin. Parse arguments, call the library, render, map errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from reportqa.errors import ReportQAError
from reportqa.settings import MAX_K, Settings
from reportqa.text import clean_quote

Handler = Callable[[argparse.Namespace, Settings], int]
_COMMANDS: dict[str, Handler] = {}


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "cmd", None):
        parser.print_help()
        return 2
    try:
        settings = Settings.from_env(index_dir=getattr(args, "index", None))
        return _COMMANDS[args.cmd](args, settings)
    except ReportQAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `reportqa reports | head`: the reader left; not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to finish (nothing is left half-indexed)",
              file=sys.stderr)
        return 130


CHAT_HELP = ("commands: /new starts over, /literal QUESTION asks QUESTION alone (not as a "
             "follow-up), /quit ends; anything else is a question about the reports")


def _passages(raw: str) -> int:
    """``--k``: a whole number of passages the API would accept too."""
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of passages from 1 to {MAX_K}")
    return k


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


def _port(value: str) -> int:
    """A TCP port: 1-65535 (uvicorn took 99999 modulo 65536 and served on another port)."""
    try:
        port = int(value)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port: give a number from 1 to 65535")
    return port


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reportqa", description=__doc__)
    sub = p.add_subparsers(dest="cmd")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--index", help="index directory (default: $REPORTQA_INDEX or "
                        "~/.cache/reportqa/index)")
        return sp

    sp = add("ingest", "add report files/folders to the index")
    sp.add_argument("paths", nargs="+")
    sp.add_argument("--json", action="store_true")
    sp = add("reports", "list indexed reports")
    sp.add_argument("--json", action="store_true")
    sp = add("remove", "delete a report and all its chunks")
    sp.add_argument("report_id")
    sp.add_argument("--json", action="store_true")
    sp = add("scores", "the score table: council x quality statement -> score, and ratings")
    sp.add_argument("--council", help="only this council")
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    sp = add("judgements", "every graded judgement of every report family (Ofsted grades, "
             "SEND outcomes, CQC ratings and scores), with the line that says so")
    sp.add_argument("--council", help="only this council")
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    sp = add("stats", "figures extracted from report text, with their comparisons")
    sp.add_argument("--council", help="only this council")
    fmt = sp.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    sp = add("ask", "answer a question with cited passages")
    sp.add_argument("question")
    sp.add_argument("--council", action="append", help="only this council (repeatable)")
    sp.add_argument("--statement", action="append", help="only this quality statement")
    sp.add_argument("--k", type=_passages, help=f"passages to retrieve, 1 to {MAX_K} (default 8)")
    sp.add_argument("--answerer", choices=["extractive", "llm"])
    sp.add_argument("--csv", metavar="FILE", help="also write the evidence as CSV rows")
    sp.add_argument("--json", action="store_true")
    sp = add("chat", "a conversation in the terminal: follow-ups such as 'and Bury?' or 'why?' "
             "are read against the question before (/new starts over, /literal Q asks Q alone)")
    sp.add_argument("--answerer", choices=["extractive", "llm"])
    sp.add_argument("--json", action="store_true", help="one JSON answer per line")
    sp = add("eval-chat", "score follow-up answers on a conversation set (JSON Lines)")
    sp.add_argument("conversations", metavar="CONVERSATIONS.jsonl")
    sp.add_argument("--out", default="evals/out-chat", help="output folder")
    sp.add_argument("--json", action="store_true", help="print summary.json to stdout")
    sp = add("eval", "score answers on a gold question set (JSON Lines)")
    sp.add_argument("questions", metavar="QUESTIONS.jsonl", nargs="?")
    sp.add_argument("--out", default="evals/out", help="output folder (default ./evals/out)")
    sp.add_argument("--from-feedback", action="store_true",
                    help="write the index's answer feedback as candidate gold questions "
                    "(OUT/feedback-candidates.jsonl) for review, instead of evaluating")
    sp.add_argument("--baseline", metavar="PREVIOUS_OUT",
                    help="an earlier --out folder to compare with")
    sp.add_argument("--compare-baseline", action="store_true",
                    help="also run a plain llama-index pipeline on the same questions")
    sp.add_argument("--split", choices=["dev", "held", "all"], default="all")
    sp.add_argument("--answerer", choices=["extractive", "llm"])
    sp.add_argument("--gate", metavar="THRESHOLDS.json",
                    help="exit non-zero when an overall metric is below its minimum")
    sp.add_argument("--json", action="store_true", help="print summary.json to stdout")
    sp = add("ui", "start the browser front end (Streamlit chat) on the index")
    sp.add_argument("--port", type=_port, default=8501, help="port to serve on (default 8501)")
    sp.add_argument("--address", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1, this machine only)")
    sp.add_argument("--headless", action="store_true",
                    help="do not open a browser window (for servers and CI)")
    sp.add_argument("streamlit_args", nargs=argparse.REMAINDER,
                    help="further `streamlit run` options after `--`, e.g. -- --theme.base dark")
    sp = add("serve", "HTTP API over the index (POST /ask, GET/POST /reports, GET /judgements, "
             "GET /scores; docs at /docs)")
    sp.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1; any other needs a token)")
    sp.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    sp.add_argument("--token", help="require 'Authorization: Bearer TOKEN' (default "
                    "$REPORTQA_API_TOKEN; prefer the variable: other local users can read a "
                    "command line)")
    sp = sub.add_parser("chroma-server", help="run a Chroma server for REPORTQA_CHROMA_URL "
                        "(Chroma token auth when REPORTQA_CHROMA_TOKEN is set)")
    sp.add_argument("--path", required=True, help="folder for the server's data")
    sp.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sp.add_argument("--port", type=_port, default=8000, help="port (default 8000)")
    sp.add_argument("--insecure", action="store_true",
                    help="allow a non-loopback address without a token (not recommended)")
    return p


@command("ingest")
def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import ingest
    from rag.listing import version_notes

    summary = ingest(args.paths, settings, progress=sys.stderr.isatty() or not args.json)
    for path, reason in summary.failed:
        # One line per file, whatever the file name holds (newlines, escape sequences).
        print(f"FAILED {_one_line(path)}: {_one_line(reason)}", file=sys.stderr)
    changed = [*summary.added, *summary.updated]
    notes = version_notes(_open_store(settings), changed) if changed else {}
    if args.json:
        print(json.dumps({**summary.to_json(), "notes": notes}))
    else:
        print(summary.line())
        for note in notes.values():
            print(f"note: {note}")
    return 1 if summary.failed else 0


def _one_line(text: str) -> str:
    """Control characters (newline, ESC...) shown escaped, so output stays one line per item."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


@command("reports")
def _reports(args: argparse.Namespace, settings: Settings) -> int:
    from rag.listing import report_rows

    rows = report_rows(_open_store(settings))
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no reports indexed; run `reportqa ingest corpus/`")
        return 0
    cols = ("id", "council", "page_kind", "quality_statement", "score", "chunks", "version",
            "source")
    _table([[("" if r[c] is None else str(r[c])) for c in cols] for r in rows], cols)
    return 0


@command("ask")
def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from rag.chat import answer_in_chat
    from rag.query import resolve_statement
    from rag.retrieve import Filters
    from ui.render import answer_text, write_csv

    if args.answerer:
        settings = replace(settings, answerer=args.answerer)
    filters = Filters(councils=tuple(args.council or ()),
                      statements=tuple(resolve_statement(s) for s in args.statement or ()))
    # As the API's POST /ask reads a question with no history: one answer, whichever asks.
    ans = answer_in_chat(args.question, [], settings, filters, k=args.k)
    # The answer first: a CSV path that cannot be written does not lose it.
    print(json.dumps(ans.to_json(), ensure_ascii=False) if args.json else answer_text(ans),
          flush=True)
    if args.csv:
        try:
            write_csv(ans, args.csv)
        except OSError as exc:
            raise ReportQAError(f"cannot write the CSV to {args.csv} ({exc.strerror or exc}); "
                                "give --csv a file in a folder that exists and you can write "
                                "to") from exc
    return 0


@command("chat")
def _chat(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from rag.chat import answer_in_chat
    from reportqa.errors import QuestionError
    from reportqa.records import Turn
    from ui.render import answer_text

    if args.answerer:
        settings = replace(settings, answerer=args.answerer)
    history: list[Turn] = []
    interactive = sys.stdin.isatty()

    def say(line: str, message: str, **fields: str) -> None:
        """A reply that is not an answer: on stderr, or with --json one line on stdout, so
        every message typed gets exactly one line back."""
        if args.json:
            print(json.dumps({"input": line, **fields, "message": message}, ensure_ascii=False),
                  flush=True)
        else:
            print(message, file=sys.stderr)

    while True:
        try:
            line = input("you> " if interactive else "").strip()
        except EOFError:
            return 0
        if not line:
            continue
        if line == "/new":
            history.clear()
            say(line, "new conversation: the next question is read on its own", command="new")
            continue
        if line in ("/quit", "/exit"):
            return 0
        command, _, question = line.partition(" ")
        if line.startswith("/") and (command != "/literal" or not question.strip()):
            # A command is never searched as a question ("/help" is not about the reports).
            say(line, CHAT_HELP if line == "/help"
                else "/literal needs a question after it; " + CHAT_HELP if command == "/literal"
                else f"unknown command {command}; " + CHAT_HELP,
                **({"command": "help"} if line == "/help" else {"error": "command"}))
            continue
        literal = command == "/literal"
        question = question.strip() if literal else line
        try:
            ans = answer_in_chat(question, history, settings, literal=literal)
        except QuestionError as exc:  # a bad message ends that turn, not the conversation
            say(line, f"error: {exc}", error="question")
            continue
        history.append(Turn.of(ans))
        if args.json:
            print(json.dumps(ans.to_json(), ensure_ascii=False), flush=True)
            continue
        if ans.read_as and ans.read_as != ans.question:  # "" when read as typed
            print(f"(read as: {ans.read_as} — to ask only the words you typed: "
                  f"/literal {ans.question})")
        print(answer_text(ans) + "\n", flush=True)


@command("eval-chat")
def _eval_chat(args: argparse.Namespace, settings: Settings) -> int:
    from evals.conversations import evaluate_conversations

    summary = evaluate_conversations(args.conversations, settings, out_dir=args.out,
                                     progress=True)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False))
        return 0
    f = summary["follow_ups"]
    print(f"follow-up accuracy   {f['accuracy']}  ({f['n']} turns in "
          f"{summary['n_conversations']} conversations)")
    print(f"first-turn accuracy  {summary['first_turns']['accuracy']}")
    print(f"wrong, but the answer before already held the gold: {summary['wrong_given_before']}")
    for kind, v in summary["by_kind"].items():
        print(f"  {kind:14} {v['accuracy']}  (n={v['n']})")
    for batch, v in summary["by_set"].items():
        print(f"  set {batch:10} {v['accuracy']}  (n={v['n']})")
    print(f"wrote {args.out}/results.jsonl and {args.out}/by_kind.png")
    return 0


def _feedback_candidates(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from reportqa import feedback

    if not feedback.path(settings).exists():
        print(f"no feedback recorded yet: {feedback.path(settings)} does not exist. The app's "
              "thumbs up/down under each answer (reportqa ui) write it.", file=sys.stderr)
        return 1
    rows = feedback.candidate_questions(feedback.load(settings))
    out = Path(args.out) / "feedback-candidates.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"{len(rows)} candidate questions from {feedback.path(settings)} -> {out} "
          "(review each before adding it to a question set)")
    return 0


@command("eval")
def _eval(args: argparse.Namespace, settings: Settings) -> int:
    from evals.run import evaluate

    if args.from_feedback:
        return _feedback_candidates(args, settings)
    if not args.questions:
        print("error: give a question set (QUESTIONS.jsonl) or --from-feedback", file=sys.stderr)
        return 2

    res = evaluate(args.questions, settings, out_dir=args.out, previous=args.baseline,
                   compare_baseline=args.compare_baseline, split=args.split,
                   answerer=args.answerer, gate_path=args.gate, progress=True)
    if args.json:
        print(json.dumps(res.summary, ensure_ascii=False))
    else:
        o = res.summary["overall"]
        for key in ("answer_accuracy", "abstention_accuracy", "citation_support",
                    "recall_at_5", "mrr"):
            print(f"{key:20} {'-' if o[key] is None else f'{o[key]:.3f}'}")
        if o["unsupported_by_answerer"]:
            print("  not supported, by answerer: " + ", ".join(
                f"{k} {v}" for k, v in o["unsupported_by_answerer"].items()))
        print(f"{res.summary['n']} questions, {o['errors']} errors; wrote "
              f"{res.out_dir / 'report.html'}")
    for msg in res.gate_failures:
        print(f"GATE FAILED: {msg}", file=sys.stderr)
    return 1 if res.gate_failures else 0


@command("scores")
def _scores(args: argparse.Namespace, settings: Settings) -> int:
    from rag.engine import Engine
    from rag.listing import score_rows

    rows = score_rows(Engine.load(settings), args.council)
    _emit(rows, args, ("council", "quality_statement", "score", "label", "page_kind", "report_id"))
    return 0


@command("judgements")
def _judgements(args: argparse.Namespace, settings: Settings) -> int:
    from rag.engine import Engine
    from rag.listing import judgement_rows

    rows = judgement_rows(Engine.load(settings), args.council)
    _emit(rows, args, ("inspectorate", "council", "judgement", "grade", "date", "page",
                       "report_id"))
    return 0


@command("stats")
def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.structure import council_key
    from rag.engine import Engine
    from rag.query import resolve_council

    eng = Engine.load(settings)
    want = resolve_council(args.council, eng.derived().councils) if args.council else None
    rows = [s.to_json() for s in eng.derived().stats
            if not want or council_key(s.council) == want]
    _emit(rows, args, ("council", "raw", "subject", "comparator", "comparator_value",
                       "direction", "source", "date"))
    return 0


def _emit(rows: list[dict[str, Any]], args: argparse.Namespace, cols: tuple[str, ...]) -> None:
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    elif args.csv:
        import csv

        if rows:
            w = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    else:
        _table([["" if r.get(c) is None else str(r.get(c)) for c in cols] for r in rows], cols)


@command("remove")
def _remove(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import remove_reports

    store = _open_store(settings)
    if not store.find_id(args.report_id):
        raise ReportQAError(f"no report with id '{args.report_id}'; see `reportqa reports`")
    n = remove_reports(store, [args.report_id])
    if args.json:
        print(json.dumps({"removed": args.report_id, "chunks": n}))
    else:
        print(f"removed {args.report_id} ({n} chunks)")
    return 0


@command("ui")
def _ui(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with `streamlit run ui/app.py` (the app reads REPORTQA_* env)."""
    import math
    import os
    from pathlib import Path

    import ui

    app = Path(ui.__file__).resolve().parent / "app.py"
    env = dict(os.environ)
    env["REPORTQA_INDEX"] = str(Path(settings.index_dir).resolve())
    extra = [a for a in (args.streamlit_args or []) if a != "--"]
    headless = args.headless or not sys.stdin.isatty()
    if not headless:
        # Streamlit's first non-headless start blocks on an e-mail prompt; answering it with
        # blank is what pressing Enter does, so write that answer up front.
        cred = Path.home() / ".streamlit" / "credentials.toml"
        if not cred.exists():
            cred.parent.mkdir(parents=True, exist_ok=True)
            cred.write_text('[general]\nemail = ""\n', encoding="utf-8")
    cmd = [sys.executable, "-m", "streamlit", "run", str(app),
           "--server.port", str(args.port), "--server.address", args.address,
           "--server.maxUploadSize", str(max(1, math.ceil(settings.max_file_mb))),
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal",
           "--server.headless", "true" if headless else "false", *extra]
    print(f"reportqa ui: http://{args.address}:{args.port} (index {env['REPORTQA_INDEX']})",
          file=sys.stderr, flush=True)
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


@command("serve")
def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import os

    try:
        from ui.api import TOKEN_ENV, serve
    except ModuleNotFoundError as exc:  # fastapi/uvicorn come with the server extra
        raise ReportQAError(f"`reportqa serve` needs {exc.name}; run "
                            "`pip install -e '.[server]'`") from exc
    token = args.token or os.environ.get(TOKEN_ENV) or None
    return serve(settings, args.host, args.port, token)


@command("chroma-server")
def _chroma_server(args: argparse.Namespace, settings: Settings) -> int:
    """Replace this process with a Chroma server; token auth when REPORTQA_CHROMA_TOKEN is set."""
    import os
    from pathlib import Path

    from reportqa.chroma_server import server_command

    path = Path(args.path).expanduser().resolve()
    cmd, env = server_command(settings, path, args.host, args.port, insecure=args.insecure)
    auth = (f"token auth ({settings.chroma_token_header} header)" if settings.chroma_token
            else "NO authentication")
    print(f"reportqa chroma-server: http://{args.host}:{args.port}, data {path}, {auth}; "
          f"clients: REPORTQA_CHROMA_URL=http://{args.host}:{args.port}", file=sys.stderr,
          flush=True)
    os.execve(cmd[0], cmd, env)
    return 0  # not reached


def _open_store(settings: Settings):  # type: ignore[no-untyped-def]
    from ingest.index import IndexStore
    from reportqa.embed import embedder_for

    emb = embedder_for(settings)
    return IndexStore(settings, emb.name, emb.dim, create=False)


def _table(rows: list[list[str]], header: tuple[str, ...]) -> None:
    # Cells as printed, on one line: report text may carry symbol-font bullets and line breaks
    # (JSON and CSV keep the exact text).
    rows = [[clean_quote(c) for c in r] for r in rows]
    widths = [min(60, max([len(h), *(len(r[i]) for r in rows)])) for i, h in enumerate(header)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
