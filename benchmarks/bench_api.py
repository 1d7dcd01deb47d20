"""The HTTP API under load: `reportqa serve` on a free port, N clients asking at once for S s.

    .venv/bin/python benchmarks/bench_api.py [--index DIR] [--embedder minilm|hash]
                                             [--clients 20] [--seconds 60] [--stream]

Without --index, the bundled corpus (corpus/: CQC pages and Ofsted PDFs) is ingested into a
temp index first, with the chosen embedder (default minilm, what `./run.sh` uses; with --index
give the embedder the index was built with). The server is a child process started exactly as
a user would (`python -m ui.cli serve`), so its start-up and warm-up are not timed. Each client
is a thread with its own stdlib urllib connection per request, asking the questions of
evals/questions.jsonl in turn (client i starts at question 7*i, so they do not move in step).
Prints requests, errors (any status but 200, or a failed connection), latency p50/p95/max in
ms and throughput in requests per second, with the machine's cores and 1-minute load average:
the server shares the cores with the clients and with whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QUESTIONS_FILE = REPO / "evals" / "questions.jsonl"


@dataclass
class Tally:
    """What every client thread records (under one lock)."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, ms: float, error: str | None) -> None:
        with self.lock:
            self.latencies_ms.append(ms)
            if error:
                self.errors[error] += 1


def questions() -> list[str]:
    with QUESTIONS_FILE.open(encoding="utf-8") as f:
        return [json.loads(line)["question"] for line in f if line.strip()]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_env(embedder: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPORTQA_")}
    env.update({"REPORTQA_EMBEDDER": embedder, "PYTHONUNBUFFERED": "1",
                "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"})
    return env


def build_index(index: Path, embedder: str) -> None:
    print(f"ingesting {REPO / 'corpus'} into {index} ({embedder}) ...", file=sys.stderr,
          flush=True)
    subprocess.run([sys.executable, "-m", "ui.cli", "ingest", str(REPO / "corpus"), "--index",
                    str(index), "--json"], cwd=REPO, env=server_env(embedder), check=True,
                   stdout=subprocess.DEVNULL)


def start_server(index: Path, embedder: str, port: int,
                 log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--index", str(index),
                                 "--port", str(port)], cwd=REPO, env=server_env(embedder),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not answer /health within 300 s")


def ask(url: str, question: str, stream: bool) -> str | None:
    """One request; None when it succeeded, else what went wrong."""
    body = json.dumps({"question": question, "stream": stream}).encode()
    req = urllib.request.Request(f"{url}/ask", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except OSError as exc:
        return type(exc).__name__
    last = data.strip().splitlines()[-1] if data.strip() else b"{}"
    ok = "answer" in json.loads(last)  # plain: Answer.to_json(); stream: {"answer": ...}
    return None if ok else "no answer in the response"


def client(url: str, qs: list[str], start: int, deadline: float, stream: bool,
           tally: Tally) -> None:
    i = start
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        error = ask(url, qs[i % len(qs)], stream)
        tally.add((time.perf_counter() - t0) * 1000, error)
        i += 1


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    k = max(0, min(len(sorted_ms) - 1, math.ceil(q * len(sorted_ms)) - 1))
    return sorted_ms[k]


def run(url: str, clients: int, seconds: float, stream: bool) -> tuple[Tally, float]:
    qs = questions()
    for q in qs[:5]:  # the first answers open lazy tables: not part of the timed run
        ask(url, q, stream)
    tally = Tally()
    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(url, qs, 7 * i, t0 + seconds, stream,
                                                     tally)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return tally, time.monotonic() - t0


def report(tally: Tally, wall: float, args: argparse.Namespace, index: Path,
           load_before: float) -> None:
    ms = sorted(tally.latencies_ms)
    n = len(ms)
    print(f"reportqa serve under load: {args.clients} clients x {args.seconds:g} s, "
          f"{'stream' if args.stream else 'plain'} /ask, embedder {args.embedder}, index {index}")
    print(f"machine: {os.cpu_count()} cores; 1-min load average {load_before:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print(f"requests     {n}")
    print(f"errors       {sum(tally.errors.values())}"
          + (f" ({dict(tally.errors)})" if tally.errors else ""))
    if n:
        print(f"latency p50  {percentile(ms, 0.50):.1f} ms")
        print(f"latency p95  {percentile(ms, 0.95):.1f} ms")
        print(f"latency max  {ms[-1]:.1f} ms")
    print(f"throughput   {n / wall:.2f} requests/s over {wall:.1f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--index", type=Path, help="an existing index (default: a temp index of "
                   "the bundled corpus)")
    p.add_argument("--embedder", default="minilm", choices=["minilm", "hash"])
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--stream", action="store_true", help="ask for NDJSON streaming")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="reportqa-bench-api-") as tmp:
        index = args.index or Path(tmp) / "index"
        if not args.index:
            build_index(index, args.embedder)
        port = free_port()
        proc = start_server(index, args.embedder, port, Path(tmp) / "server.log")
        try:
            load_before = os.getloadavg()[0]
            tally, wall = run(f"http://127.0.0.1:{port}", args.clients, args.seconds,
                              args.stream)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        report(tally, wall, args, index, load_before)
    return 1 if tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
