"""`reportqa` command line: thin. Parse arguments, call the library, render, map errors."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from reportqa.errors import ReportQAError
from reportqa.settings import Settings

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
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to finish (nothing is left half-indexed)",
              file=sys.stderr)
        return 130


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        _COMMANDS[name] = fn
        return fn

    return register


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
    sp = add("ask", "answer a question with cited passages")
    sp.add_argument("question")
    sp.add_argument("--council", action="append", help="only this council (repeatable)")
    sp.add_argument("--statement", action="append", help="only this quality statement")
    sp.add_argument("--k", type=int, help="passages to retrieve (default 8)")
    sp.add_argument("--answerer", choices=["extractive", "llm"])
    sp.add_argument("--csv", metavar="FILE", help="also write the evidence as CSV rows")
    sp.add_argument("--json", action="store_true")
    return p


@command("ingest")
def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.pipeline import ingest

    summary = ingest(args.paths, settings, progress=sys.stderr.isatty() or not args.json)
    for path, reason in summary.failed:
        print(f"FAILED {path}: {reason}", file=sys.stderr)
    if args.json:
        print(json.dumps(summary.to_json()))
    else:
        print(summary.line())
    return 1 if summary.failed else 0


@command("reports")
def _reports(args: argparse.Namespace, settings: Settings) -> int:
    rows = [r.to_json() for r in _open_store(settings).reports()]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not rows:
        print("no reports indexed; run `reportqa ingest corpus/`")
        return 0
    cols = ("id", "council", "page_kind", "quality_statement", "score", "chunks", "source")
    _table([[("" if r[c] is None else str(r[c])) for c in cols] for r in rows], cols)
    return 0


@command("ask")
def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from rag.answer import answer
    from rag.retrieve import Filters
    from reportqa.render import answer_text, write_csv

    if args.answerer:
        settings = replace(settings, answerer=args.answerer)
    filters = Filters(councils=tuple(args.council or ()),
                      statements=tuple(_statement(s) for s in args.statement or ()))
    ans = answer(args.question, settings, filters, k=args.k)
    if args.csv:
        write_csv(ans, args.csv)
    print(json.dumps(ans.to_json(), ensure_ascii=False) if args.json else answer_text(ans))
    return 0


def _statement(name: str) -> str:
    from ingest.structure import STATEMENTS, canonical_statement

    canon = canonical_statement(name)
    if not canon:
        raise ReportQAError(f"unknown quality statement '{name}'; one of: " + "; ".join(STATEMENTS))
    return canon


@command("remove")
def _remove(args: argparse.Namespace, settings: Settings) -> int:
    store = _open_store(settings)
    if not store.find_id(args.report_id):
        raise ReportQAError(f"no report with id '{args.report_id}'; see `reportqa reports`")
    n = store.remove(args.report_id)
    if args.json:
        print(json.dumps({"removed": args.report_id, "chunks": n}))
    else:
        print(f"removed {args.report_id} ({n} chunks)")
    return 0


def _open_store(settings: Settings):  # type: ignore[no-untyped-def]
    from ingest.index import IndexStore
    from reportqa.embed import get_embedder

    emb = get_embedder(settings.embedder, settings.batch_size)
    return IndexStore(settings, emb.name, emb.dim, create=False)


def _table(rows: list[list[str]], header: tuple[str, ...]) -> None:
    widths = [min(60, max(len(h), *(len(r[i]) for r in rows))) for i, h in enumerate(header)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
