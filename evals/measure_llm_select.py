"""Can a small local LLM choose the answering sentence better than the lexical ranker?

    <llm-venv>/bin/python evals/measure_llm_select.py GGUF [TOP] [CANDIDATES]

Reads the candidates written by evals/measure_rerankers.py (default
artifacts/rerankers/candidates.jsonl; open blind split only), shows the model the question
and the top TOP (default 8) sentences numbered, asks for the number of the one that answers
(0 if none), and prints its top-1 hit rate against the lexical order's, how often it says
"none" to an unanswerable question, and seconds per question. Run it with the python of the
local-LLM venv (scripts/local_llm.sh), which has llama-cpp-python.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

SYSTEM = ("You pick which numbered sentence from inspection reports answers a question. "
          "Reply with the number only, or 0 if none of them answers it.")


def main() -> None:
    from llama_cpp import Llama

    model = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    path = Path(sys.argv[3] if len(sys.argv) > 3 else "artifacts/rerankers/candidates.jsonl")
    llm = Llama(model_path=model, n_ctx=4096, n_threads=2, verbose=False)
    rows = [r for r in map(json.loads, path.read_text().splitlines()) if r["set"] == "open"]
    right = lexical = answerable = none_ok = unanswerable = 0
    t0 = time.perf_counter()
    for r in rows:
        cs = r["cands"][:top]
        if not cs:
            continue
        lines = "\n".join(f"{i + 1}. {' '.join(c['text'].split())[:400]}" for i, c in enumerate(cs))
        out = llm.create_chat_completion(messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Question: {r['query']}\n\nSentences:\n{lines}\n\n"
                                        "Which sentence answers the question? Number only (0 if none)."}],
            max_tokens=4, temperature=0)
        m = re.search(r"\d+", out["choices"][0]["message"]["content"] or "")
        k = int(m.group()) if m else 0
        if r["answerable"]:
            answerable += 1
            right += int(1 <= k <= len(cs) and cs[k - 1]["label"] == 1)
            lexical += cs[0]["label"]
        else:
            unanswerable += 1
            none_ok += int(k == 0)
    n = answerable + unanswerable
    print(f"{Path(model).name}: top {top}; answerable {answerable}: llm top-1 "
          f"{right / answerable:.3f}, lexical top-1 {lexical / answerable:.3f}; unanswerable "
          f"{unanswerable}: says none {none_ok / max(1, unanswerable):.3f}; "
          f"{(time.perf_counter() - t0) / max(1, n):.2f} s per question")


if __name__ == "__main__":
    main()
