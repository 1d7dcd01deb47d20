"""answer() latency and peak RSS at scale, against a plain llama-index dense retriever.

    .venv/bin/python benchmarks/bench_ask.py [--embedder minilm|hash] [--sizes bundled,10k,50k]
                                             [--calls 100] [--no-baseline] [--profile]
                                             [--reader auto@torch,auto,lexical]

Corpora: ``bundled`` is corpus/ (36 pages); ``10k`` / ``50k`` are synthetic corpora of about
that many chunks made by benchmarks/synth.py from corpus/ text (fictional councils, varied
figures and scores). Their indexes are built once and cached under
~/.cache/reportqa/bench/ask-<embedder>-<reports>r-seed<seed>/ (reused when BUILT.json is there;
an interrupted build resumes, since ingest skips files already indexed). Embedding 50k chunks
with MiniLM on 2 busy cores takes hours, so ``--embedder hash`` exists for quick runs: it
measures everything but the model's cost; every printed figure names the embedder used.

Per corpus size, two child processes (so ru_maxrss is that child's own peak):
  ours      Engine.load + answer(q, settings, engine=eng) (in-process, warm): each question
            once to warm, then --calls timed calls cycling through the questions
  baseline  llama_index.core VectorStoreIndex over the SAME chunks and vectors (TextNodes with
            the stored embedding set: nothing is re-embedded), embed_model= a BaseEmbedding
            wrapper around the same embedder (never llama-index's global default), retriever =
            index.as_retriever(similarity_top_k=8); retrieve() timed the same way.
Questions: 32 realistic ones (figures, facts, scores, ratings, lists, cross-council,
unanswerable) from evals/questions.jsonl; for synthetic corpora the council names in them are
replaced by fictional councils made from the same bundled council, so they exist there.
The 1-minute load average is printed with each run: other work on the machine skews timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

CACHE = Path(os.path.expanduser("~/.cache/reportqa/bench"))
CHUNKS_PER_REPORT = 4.87  # measured: synth.make_corpus(seed=0) pages average 4.87 chunks
TARGETS = {"p50": 100.0, "p95": 250.0, "rss": 1536.0}  # at 50k chunks
TARGETS_10K = {"p50": 150.0, "p95": 300.0}  # the reader issue's, at 10k chunks, warm answer()

QUESTIONS = [
    "What is the population of Darlington?",
    "In June 2024, what was the longest wait for residential support among people admitted to "
    "care in Stockton?",
    "What percentage of Bradford's residents identify as Asian or Asian British?",
    "What share of Wiltshire households include someone who has served in the Armed Forces?",
    "How big is Westminster in square miles?",
    "What is the life expectancy gap for men between Westminster's most and least deprived areas?",
    "Where does Gloucestershire rank for deprivation among England's local authorities?",
    "What percentage of Darlington's budget was spent on adult social care in 2023/24?",
    "Which CQC chief inspector commented on Darlington's assessment?",
    "What plan did Staffordshire develop with its Health and Wellbeing Board and ICB to address "
    "the needs of an ageing population?",
    "Which Birmingham schemes were given the job of finding gaps in service provision for "
    "under-represented groups?",
    "Which integrated care system is Ealing part of?",
    "Which integrated care system does Bath and North East Somerset sit within?",
    "What is the name of Staffordshire's advice and guidance hub?",
    "What score did Ealing get for assessing needs?",
    "How did Darlington score on supporting people to live healthier lives?",
    "What was Darlington's score for governance, management and sustainability?",
    "What safeguarding score did CQC give Darlington?",
    "What overall rating did Bradford receive from CQC?",
    "What was Wirral's adult social care budget for 2023/24?",
    "What did Gateshead score for safeguarding?",
    "What rating did Hartlepool, one of Darlington's five-borough partners, receive from CQC?",
    "What indicative score did Birmingham get for partnerships and communities?",
    "What overall rating did CQC give the London Borough of Ealing?",
    "What indicative overall rating did Birmingham City Council get in CQC's pilot assessment?",
    "What problems did people in Ealing raise about the council's online information?",
    "What limited access to records between health and social work staff in Darlington?",
    "Which population groups did Staffordshire set up partnership boards for?",
    "Compare Stockton-on-Tees and Darlington on care provision, integration and continuity.",
    "Which had the higher overall percentage score, Ealing or Staffordshire?",
    "Which councils were rated Good by CQC for adult social care?",
    "How do councils use technology enabled care to keep people independent at home?",
]


# --- corpora -------------------------------------------------------------------------------

def n_reports_for(label: str) -> int | None:
    """'bundled' -> None; '10k' -> reports for about 10,000 chunks; '500r' -> 500 reports."""
    if label == "bundled":
        return None
    if label.endswith("r"):
        return int(label[:-1])
    n = float(label.rstrip("k")) * (1000 if label.endswith("k") else 1)
    return round(n / CHUNKS_PER_REPORT)


def corpus_root(label: str, embedder: str, seed: int) -> Path:
    n = n_reports_for(label)
    return CACHE / (f"ask-{embedder}-bundled" if n is None else f"ask-{embedder}-{n}r-seed{seed}")


def build(label: str, embedder: str, seed: int) -> dict[str, Any]:
    """Make (or resume) the corpus and its index; write and return BUILT.json."""
    import synth

    from ingest.pipeline import ingest
    from reportqa.settings import Settings

    root = corpus_root(label, embedder, seed)
    n = n_reports_for(label)
    if n is None:
        src = REPO / "corpus"
    else:
        src = root / "corpus"
        if not (src / "SOURCES.tsv").exists():
            synth.make_corpus(src, n, seed=seed)
    settings = Settings(embedder=embedder, index_dir=root / "index", chroma_url=None)
    load0, t = os.getloadavg(), time.perf_counter()
    s = ingest([src], settings, progress=sys.stderr.isatty())
    info = {"label": label, "embedder": embedder, "seed": seed, "reports": s.reports_total,
            "chunks": s.chunks_total, "chunks_added_this_run": s.chunks_added,
            "seconds_this_run": round(time.perf_counter() - t, 1),
            "embed_seconds_this_run": round(s.embed_seconds, 1), "failed": len(s.failed),
            "load_before": load0, "load_after": os.getloadavg(),
            "built": time.strftime("%Y-%m-%d %H:%M:%S")}
    (root / "BUILT.json").write_text(json.dumps(info, indent=1))
    return info


def questions_for(label: str, seed: int) -> list[str]:
    """The question list with councils that exist in that corpus."""
    n = n_reports_for(label)
    if n is None:
        return list(QUESTIONS)
    import synth

    by_src: dict[str, list[str]] = {}
    for r in synth.manifest(n, seed):
        if r.council not in by_src.setdefault(r.source_council, []):
            by_src[r.source_council].append(r.council)
    fallback = next(iter(by_src.values()))
    out = []
    for i, q in enumerate(QUESTIONS):
        # A different fictional council per question (same bundled origin, so same pages).
        def pick(slug: str, i: int = i) -> str:
            names = by_src.get(slug) or fallback
            return names[i % len(names)]

        out.append(synth.substitute_councils(q, pick))
    return out


# --- children ------------------------------------------------------------------------------

def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _settings(label: str, embedder: str, seed: int, reader: str = "auto"):  # type: ignore[no-untyped-def]
    """``reader`` is a reader, optionally with a precision after a slash and a runtime after
    an at sign ("auto/fp32", "auto@torch")."""
    from reportqa.settings import Settings

    os.environ.pop("REPORTQA_CHROMA_URL", None)
    reader, _, runtime = reader.partition("@")
    kind, _, precision = reader.partition("/")
    return Settings.from_env(index_dir=corpus_root(label, embedder, seed) / "index",
                             embedder=embedder, reader=kind, reader_precision=precision or None,
                             reader_runtime=runtime or None)


def child_ours(label: str, embedder: str, seed: int, calls: int, profile: bool,
               reader: str = "auto") -> dict[str, Any]:
    from rag.answer import answer
    from rag.engine import Engine

    settings = _settings(label, embedder, seed, reader)
    qs = questions_for(label, seed)
    load0 = os.getloadavg()
    t = time.perf_counter()
    eng = Engine.load(settings)
    first = answer(qs[0], settings, engine=eng)
    cold_ms = (time.perf_counter() - t) * 1000
    for q in qs:
        answer(q, settings, engine=eng)
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    times, ret, abstained = [], [], 0
    for i in range(calls):
        t = time.perf_counter()
        a = answer(qs[i % len(qs)], settings, engine=eng)
        times.append((time.perf_counter() - t) * 1000)
        ret.append(a.timings_ms.get("retrieve", 0.0))
        abstained += bool(a.abstained)
    if prof:
        import io
        import pstats

        prof.disable()
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        print(buf.getvalue(), file=sys.stderr)
    return {"who": "ours", "label": label, "chunks": eng.store.counts()[1], "calls": calls,
            "p50": _pct(times, 50), "p95": _pct(times, 95), "mean": statistics.fmean(times),
            "retrieve_p50": _pct(ret, 50), "cold_ms": cold_ms, "rss_mb": _rss_mb(),
            "abstained": abstained, "first_answer": first.text[:80],
            "load_before": load0, "load_after": os.getloadavg()}


def child_baseline(label: str, embedder: str, seed: int, calls: int) -> dict[str, Any]:
    import numpy as np
    from llama_index.core import VectorStoreIndex
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.schema import TextNode
    from pydantic import PrivateAttr

    from ingest.index import IndexStore
    from reportqa.embed import embedder_for

    settings = _settings(label, embedder, seed)
    emb = embedder_for(settings)

    class Wrapped(BaseEmbedding):
        """Our embedder behind llama-index's interface (query embedding only is used)."""

        _emb: Any = PrivateAttr()

        def __init__(self, inner: Any) -> None:
            super().__init__(model_name=inner.name, embed_batch_size=32)
            self._emb = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._emb.embed([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._emb.embed([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._emb.embed(texts).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    load0 = os.getloadavg()
    t = time.perf_counter()
    store = IndexStore(settings, emb.name, emb.dim, create=False)
    chunks = store.chunks()
    col = store.collection()
    vecs: dict[str, Any] = {}
    ids = [c.chunk_id for c in chunks]
    for i in range(0, len(ids), 2000):
        got = col.get(ids=ids[i : i + 2000], include=["embeddings"])
        vecs.update(zip(got["ids"], got["embeddings"], strict=True))
    nodes = [TextNode(id_=c.chunk_id, text=c.text,
                      embedding=np.asarray(vecs[c.chunk_id], dtype=float).tolist(),
                      metadata={"report_id": c.report_id, "council": c.council or ""})
             for c in chunks if c.chunk_id in vecs]
    del vecs
    embed_model = Wrapped(emb)
    index = VectorStoreIndex(nodes=nodes, embed_model=embed_model, show_progress=False)
    retriever = index.as_retriever(similarity_top_k=8)
    qs = questions_for(label, seed)
    retriever.retrieve(qs[0])
    cold_ms = (time.perf_counter() - t) * 1000
    for q in qs:
        retriever.retrieve(q)
    times = []
    for i in range(calls):
        t = time.perf_counter()
        hits = retriever.retrieve(qs[i % len(qs)])
        times.append((time.perf_counter() - t) * 1000)
        assert len(hits) == min(8, len(nodes))
    return {"who": "baseline", "label": label, "chunks": len(nodes), "calls": calls,
            "p50": _pct(times, 50), "p95": _pct(times, 95), "mean": statistics.fmean(times),
            "cold_ms": cold_ms, "rss_mb": _rss_mb(),
            "load_before": load0, "load_after": os.getloadavg()}


# --- parent --------------------------------------------------------------------------------

def _run_child(args: list[str]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    proc = subprocess.run([sys.executable, __file__, *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"child {' '.join(args)} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _load(x: list[float]) -> str:
    return f"{x[0]:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--sizes", default="bundled,10k,50k",
                    help="comma-separated: bundled, 10k, 50k, any Nk, or Nr (N reports)")
    ap.add_argument("--calls", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--profile", action="store_true", help="cProfile our timed loop (stderr)")
    ap.add_argument("--reader", default="auto",
                    help="sentence reader(s) of ours, comma-separated, each timed in its own "
                    "child one after another: auto, cross or lexical, optionally /fp32 or /bf16 "
                    "and @torch or @onnx (\"auto@torch,auto\" puts the torch runtime beside "
                    "today's default; children ignore REPORTQA_* from the shell)")
    ap.add_argument("--child", choices=["ours", "baseline", "build"], help=argparse.SUPPRESS)
    ap.add_argument("--label", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        if args.child == "build":
            out = build(args.label, args.embedder, args.seed)
        elif args.child == "ours":
            out = child_ours(args.label, args.embedder, args.seed, args.calls, args.profile,
                             args.reader)
        else:
            out = child_baseline(args.label, args.embedder, args.seed, args.calls)
        print(json.dumps(out))
        return

    common = ["--embedder", args.embedder, "--seed", str(args.seed), "--calls", str(args.calls)]
    print(f"bench_ask: embedder={args.embedder}, reader={args.reader}, {args.calls} timed calls per corpus, "
          f"{len(QUESTIONS)} questions; {os.cpu_count()} CPUs; python {platform.python_version()}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    readers = [r.strip() for r in args.reader.split(",") if r.strip()]
    rows: list[Any] = []
    for label in [s.strip() for s in args.sizes.split(",") if s.strip()]:
        root = corpus_root(label, args.embedder, args.seed)
        if (root / "BUILT.json").exists():
            built = json.loads((root / "BUILT.json").read_text())
            print(f"[{label}] reusing cached index {root} ({built['chunks']} chunks, built "
                  f"{built.get('built', '?')})", flush=True)
        else:
            print(f"[{label}] building {root} ...", flush=True)
            built = _run_child(["--child", "build", "--label", label, *common])
            print(f"[{label}] built: {built['reports']} reports, {built['chunks']} chunks in "
                  f"{built['seconds_this_run']} s (embedding {built['embed_seconds_this_run']} s)",
                  flush=True)
        for reader in readers:
            ours = _run_child(["--child", "ours", "--label", label, *common, "--reader", reader,
                               *(["--profile"] if args.profile else [])])
            _print_ours(label, reader, ours)
            rows.append((label, reader, ours, None))
        base = None
        if not args.no_baseline:
            base = _run_child(["--child", "baseline", "--label", label, *common])
            print(f"[{label}] baseline: p50 {base['p50']:.1f} ms, p95 {base['p95']:.1f} ms, "
                  f"build + first retrieve {base['cold_ms']:.0f} ms, peak RSS "
                  f"{base['rss_mb']:.0f} MB; load avg {_load(base['load_before'])} -> "
                  f"{_load(base['load_after'])}", flush=True)
            rows[-1] = (*rows[-1][:3], base)
    _print_table(args, rows)


def _print_ours(label: str, reader: str, ours: dict[str, Any]) -> None:
    print(f"[{label}] ours ({reader}): p50 {ours['p50']:.1f} ms, p95 {ours['p95']:.1f} ms, mean "
          f"{ours['mean']:.1f} ms (retrieve stage p50 {ours['retrieve_p50']:.1f} ms), load + "
          f"first answer {ours['cold_ms']:.0f} ms, peak RSS {ours['rss_mb']:.0f} MB, "
          f"{ours['abstained']}/{ours['calls']} abstained; load avg "
          f"{_load(ours['load_before'])} -> {_load(ours['load_after'])}", flush=True)


def _print_table(args: argparse.Namespace, rows: list[Any]) -> None:
    print()
    print(f"embedder: {args.embedder}; ours = answer() end to end (extractive), baseline = "
          "llama-index VectorStoreIndex retrieve(top 8); latencies in ms over "
          f"{args.calls} warm calls; RSS = peak of that child process")
    head = ("| corpus | reader | chunks | ours p50 | ours p95 | ours RSS MB | baseline p50 "
            "| baseline p95 | baseline RSS MB | load avg (1 min) |")
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for label, reader, o, b in rows:
        bl = (f"{b['p50']:.1f} | {b['p95']:.1f} | {b['rss_mb']:.0f}" if b else "- | - | -")
        loads = f"{_load(o['load_before'])}-{_load(o['load_after'])}"
        if b:
            loads += f" / {_load(b['load_before'])}-{_load(b['load_after'])}"
        print(f"| {label} | {reader} | {o['chunks']:,} | {o['p50']:.1f} | {o['p95']:.1f} | {o['rss_mb']:.0f} "
              f"| {bl} | {loads} |")
    for _, reader, o, _ in rows:
        if 9000 <= o["chunks"] <= 11000:
            ok = [o["p50"] <= TARGETS_10K["p50"], o["p95"] <= TARGETS_10K["p95"]]
            print(f"targets at {o['chunks']:,} chunks, reader {reader} (p50 <= "
                  f"{TARGETS_10K['p50']:.0f} ms, p95 <= {TARGETS_10K['p95']:.0f} ms): " + ", ".join(f"{n} {'OK' if k else 'MISSED'}" for n, k in zip(
                      ("p50", "p95"), ok, strict=True)) + f" [embedder {args.embedder}]")
    big = [o for _, _, o, _ in rows if o["chunks"] >= 45000]
    for o in big:
        ok = [o["p50"] <= TARGETS["p50"], o["p95"] <= TARGETS["p95"], o["rss_mb"] <= TARGETS["rss"]]
        print(f"targets at {o['chunks']:,} chunks (p50 <= 100 ms, p95 <= 250 ms, RSS <= 1.5 GB): "
              + ", ".join(f"{n} {'OK' if k else 'MISSED'}" for n, k in zip(
                  ("p50", "p95", "RSS"), ok, strict=True)) + f" [embedder {args.embedder}]")


if __name__ == "__main__":
    main()
