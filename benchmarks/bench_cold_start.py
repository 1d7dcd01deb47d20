"""Cold start of the answering side on an existing index. Prints figures; not a test.

    .venv/bin/python benchmarks/bench_cold_start.py --index DIR [--embedder minilm|hash]

The model is loaded first and excluded (the UI loads it once per process). Then:
  cold start      Engine.load + the first answer (chunk rows, BM25 build, score/rating tables,
                  council catalogue, idf), as after a restart of the app
  first stats     the first question that needs the statistics table (read on first use)
Indexes built by bench_ask.py live under ~/.cache/reportqa/bench/ (e.g. ask-minilm-10267r-seed0
= 49,544 chunks).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rag.answer import answer  # noqa: E402
from rag.engine import Engine  # noqa: E402
from reportqa.embed import embedder_for  # noqa: E402
from reportqa.settings import Settings  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    args = ap.parse_args()
    settings = Settings(embedder=args.embedder, index_dir=args.index, chroma_url=None)
    embedder_for(settings).embed(["warm up"])
    load = os.getloadavg()[0]
    t = time.perf_counter()
    eng = Engine.load(settings)
    answer("What score did Darlington get for safeguarding?", settings, engine=eng)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    answer("Which council has the largest population?", settings, engine=eng)
    stats = time.perf_counter() - t
    print(f"{len(eng.retriever.state().chunks):,} chunks [{args.embedder}]: cold start + first "
          f"answer {cold:.1f} s; first statistics question {stats:.1f} s "
          f"(load avg {load:.1f} -> {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
