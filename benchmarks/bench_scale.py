"""Scale benchmark: ingest throughput, unchanged re-ingest, ask latency, RSS and index size
for synthetic corpora of 100 / 1,000 / 5,000 reports, in embedded and Chroma-server mode.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 100,1000,5000]
                                               [--modes embedded,server,server-auth]
                                               [--embedder minilm|hash] [--calls 50]

Corpora come from benchmarks/synth.py (seed 0): fictional councils, varied figures and scores.
Each (size, mode) runs in its own child process with a fresh index, so its peak RSS
(ru_maxrss) is its own. In server mode the script starts `chroma run --path DIR --host
127.0.0.1 --port FREE` itself (.venv/bin/chroma), points Settings(chroma_url=...) at it, and
stops it afterwards; the server's own peak RSS (VmHWM) and data size are reported too.

Figures per run:
  raw embed    embedder.embed() on a sample of the corpus's chunk texts (model loaded first,
               load time excluded): chunks/s. For MiniLM a 256-chunk sample, else all chunks.
  ingest       ingest() of the whole corpus into an empty index: chunks/s over the whole call
               (parse, structure, chunk, embed, vector upsert, SQLite commit); "embed %" is the
               share of that wall time spent inside embedder.embed()
  ratio        ingest / raw (1.0 = the pipeline costs nothing beyond the embedder)
  re-ingest    ingest() again with nothing changed (in-process, model already loaded)
  ask          Engine.load + answer() warm, in-process: each question once, then --calls timed
  index MB     du of the index dir (SQLite manifest + embedded Chroma; server: + server data)
With ``--embedder hash`` the embedder costs ~nothing, so the figures isolate the pipeline's own
overhead; every printed table names the embedder used. The 1-minute load average is printed
with each run: other jobs on this 2-core machine skew timings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def du_mb(path: Path) -> float:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
    return total / 1048576


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


# --- child ---------------------------------------------------------------------------------

def child(corpus: Path, index_dir: Path, n_reports: int, embedder: str, chroma_url: str | None,
          calls: int, seed: int) -> dict[str, Any]:
    import bench_ask

    from ingest.chunk import embed_text
    from ingest.pipeline import ingest
    from rag.answer import answer
    from rag.engine import Engine
    from reportqa.embed import embedder_for
    from reportqa.settings import Settings

    # REPORTQA_CHROMA_TOKEN comes from the parent in "server-auth" mode only.
    settings = Settings.from_env(embedder=embedder, index_dir=index_dir, chroma_url=chroma_url)
    emb = embedder_for(settings)
    emb.embed(["warm up the model", "second text"])  # model load excluded from throughput
    import chromadb  # noqa: F401  - import time (~seconds) excluded too, like the model load
    load0 = os.getloadavg()

    t = time.perf_counter()
    s = ingest([corpus], settings)
    wall = time.perf_counter() - t
    assert not s.failed and s.reports_total == n_reports, s.line()

    t = time.perf_counter()
    again = ingest([corpus], settings)
    reingest = time.perf_counter() - t
    assert again.chunks_added == 0 and len(again.unchanged) == n_reports, again.line()

    eng = Engine.load(settings)
    texts = [embed_text(c) for c in eng.store.chunks()]
    sample = texts[:256] if embedder == "minilm" else texts
    t = time.perf_counter()
    emb.embed(sample)
    raw = len(sample) / (time.perf_counter() - t)

    qs = bench_ask.questions_for(f"{n_reports}r", seed)
    for q in qs:
        answer(q, settings, engine=eng)
    times = []
    for i in range(calls):
        t = time.perf_counter()
        answer(qs[i % len(qs)], settings, engine=eng)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "reports": s.reports_total, "chunks": s.chunks_total, "ingest_s": wall,
        "ingest_cps": s.chunks_total / wall, "embed_share": s.embed_seconds / wall,
        "raw_cps": raw, "raw_sample": len(sample), "reingest_s": reingest,
        "ask_p50": _pct(times, 50), "ask_p95": _pct(times, 95), "ask_mean": statistics.fmean(times),
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_before": load0, "load_after": os.getloadavg(),
    }


# --- chroma server ---------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ChromaServer:
    """`chroma run` on a free loopback port, or with ``token`` Chroma's Python server with token
    auth (`reportqa chroma-server`); stopped (by its own pid) on exit."""

    def __init__(self, data: Path, token: str | None = None) -> None:
        from reportqa.chroma_server import find_chroma

        self.exe = find_chroma() or "chroma"
        self.token = token
        self.data = data
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> ChromaServer:
        self.data.mkdir(parents=True, exist_ok=True)
        self.log = open(self.data.parent / f"{self.data.name}.log", "wb")  # noqa: SIM115
        argv = [self.exe, "run", "--path", str(self.data), "--host", "127.0.0.1",
                "--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
        if self.token:
            argv = [sys.executable, "-m", "ui.cli", "chroma-server", *argv[2:]]
            env["REPORTQA_CHROMA_TOKEN"] = self.token
        self.proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chroma server exited ({self.proc.returncode})")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/heartbeat", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("chroma server did not answer within 90 s")
            time.sleep(0.2)

    def peak_rss_mb(self) -> float:
        """VmHWM of the server process and its children (the Rust server may fork)."""
        assert self.proc is not None
        pids = [self.proc.pid]
        try:
            kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            pids += [int(k) for k in kids]
        except OSError:
            pass
        total = 0.0
        for pid in pids:
            try:
                for ln in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if ln.startswith("VmHWM:"):
                        total += int(ln.split()[1]) / 1024
            except OSError:
                pass
        return total

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.log.close()


# --- parent --------------------------------------------------------------------------------

def _run_child(corpus: Path, index_dir: Path, n: int, embedder: str, url: str | None,
               calls: int, seed: int, token: str | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    if token:
        env["REPORTQA_CHROMA_TOKEN"] = token
    args = [sys.executable, __file__, "--child", "--corpus", str(corpus), "--index",
            str(index_dir), "--n", str(n), "--embedder", embedder, "--calls", str(calls),
            "--seed", str(seed)]
    if url:
        args += ["--chroma-url", url]
    proc = subprocess.run(args, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(f"child for {n} reports ({url or 'embedded'}) failed: exit {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000,5000", help="numbers of reports, comma-separated")
    ap.add_argument("--modes", default="embedded,server",
                    help="embedded, server (`chroma run`), server-auth (`reportqa chroma-server` "
                    "with a token: Chroma's Python server)")
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", help="keep corpora and indexes here (default: a temp dir, removed)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help=argparse.SUPPRESS)
    ap.add_argument("--index", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--chroma-url", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child:
        out = child(Path(args.corpus), Path(args.index), args.n, args.embedder, args.chroma_url,
                    args.calls, args.seed)
        print(json.dumps(out))
        return

    import synth

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="reportqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench_scale: embedder={args.embedder}; {os.cpu_count()} CPUs; python "
          f"{platform.python_version()}; {time.strftime('%Y-%m-%d %H:%M')}; work dir {work}",
          flush=True)
    rows = []
    try:
        for n in [int(x) for x in args.sizes.split(",") if x.strip()]:
            corpus = work / f"corpus-{n}"
            if not (corpus / "SOURCES.tsv").exists():
                synth.make_corpus(corpus, n, seed=args.seed)
            for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
                index_dir = work / f"index-{n}-{mode}-{args.embedder}"
                shutil.rmtree(index_dir, ignore_errors=True)
                server_rss = server_mb = None
                if mode in ("server", "server-auth"):
                    import secrets

                    data = work / f"chroma-{n}-{mode}-{args.embedder}"
                    shutil.rmtree(data, ignore_errors=True)
                    token = secrets.token_urlsafe(24) if mode == "server-auth" else None
                    with ChromaServer(data, token) as srv:
                        r = _run_child(corpus, index_dir, n, args.embedder, srv.url, args.calls,
                                       args.seed, token)
                        server_rss = srv.peak_rss_mb()
                    server_mb = du_mb(data)
                else:
                    r = _run_child(corpus, index_dir, n, args.embedder, None, args.calls,
                                   args.seed)
                r.update(mode=mode, index_mb=du_mb(index_dir) + (server_mb or 0.0),
                         server_rss=server_rss)
                rows.append(r)
                print(f"[{n} reports, {mode}] {r['chunks']} chunks; ingest {r['ingest_s']:.1f} s = "
                      f"{r['ingest_cps']:.1f} chunks/s (embedding {100 * r['embed_share']:.0f}% of "
                      f"it); raw embed {r['raw_cps']:.1f} chunks/s; re-ingest "
                      f"{r['reingest_s']:.2f} s; ask p50 {r['ask_p50']:.1f} / p95 "
                      f"{r['ask_p95']:.1f} ms; RSS {r['rss_mb']:.0f} MB"
                      + (f" + server {server_rss:.0f} MB" if server_rss else "")
                      + f"; index {r['index_mb']:.1f} MB; load avg "
                      f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"embedder: {args.embedder}"
          + (" (hashed bag of words: embedding is ~free, so this isolates the pipeline's own "
             "cost)" if args.embedder == "hash" else " (all-MiniLM-L6-v2 on CPU)")
          + f"; ask = answer() warm, in-process, {args.calls} calls")
    head = ("| reports | chunks | mode | raw embed chunks/s | ingest chunks/s | ingest / raw | "
            "embed % of ingest | re-ingest unchanged s | ask p50 ms | ask p95 ms | peak RSS MB | "
            "index on disk MB | load avg (1 min) |")
    print(head)
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        rss = f"{r['rss_mb']:.0f}" + (f" + {r['server_rss']:.0f} server" if r["server_rss"] else "")
        print(f"| {r['reports']:,} | {r['chunks']:,} | {r['mode']} | {r['raw_cps']:.1f} | "
              f"{r['ingest_cps']:.1f} | {r['ingest_cps'] / r['raw_cps']:.2f} | "
              f"{100 * r['embed_share']:.0f}% | {r['reingest_s']:.2f} | {r['ask_p50']:.1f} | "
              f"{r['ask_p95']:.1f} | {rss} | {r['index_mb']:.1f} | "
              f"{r['load_before'][0]:.1f}-{r['load_after'][0]:.1f} |")


if __name__ == "__main__":
    main()
