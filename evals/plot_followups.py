"""Follow-up accuracy by kind, two or more runs side by side (outputs of `reportqa eval-chat`).

    python evals/plot_followups.py OUT.png "label=RESULTS.jsonl[,RESULTS.jsonl...]" ...

Each label's results files are pooled (one set run at two times, say), so a run is compared
turn for turn with another over the same conversations.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def pooled(paths: str) -> dict[str, tuple[int, int]]:
    """kind -> (right, n) over the follow-up turns of these results files."""
    out: dict[str, tuple[int, int]] = {}
    for p in paths.split(","):
        for line in Path(p).read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            if r["turn"] > 1:
                right, n = out.get(r["kind"], (0, 0))
                out[r["kind"]] = (right + bool(r["correct"]), n + 1)
    return out


def main(argv: list[str]) -> int:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    out, runs = Path(argv[0]), [a.split("=", 1) for a in argv[1:]]
    data = {label: pooled(paths) for label, paths in runs}
    kinds = sorted({k for d in data.values() for k in d})
    width = 0.8 / len(data)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for i, (label, d) in enumerate(data.items()):
        right = sum(r for r, _ in d.values())
        total = sum(n for _, n in d.values())
        xs = [j + i * width for j in range(len(kinds))]
        ax.bar(xs, [d[k][0] / d[k][1] if k in d else 0 for k in kinds], width,
               label=f"{label}: {right}/{total}")
    ax.set_xticks([j + width * (len(data) - 1) / 2 for j in range(len(kinds))])
    ax.set_xticklabels([f"{k}\n(n={max(d.get(k, (0, 0))[1] for d in data.values())})"
                        for k in kinds], fontsize=8)
    ax.set(ylim=(0, 1), ylabel="answered right", title="Follow-up turns by kind")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
