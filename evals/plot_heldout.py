"""Bars for `reportqa eval` runs over the same questions: answer accuracy, false "not in the
reports" and strict abstention, per question set (training-set ids start ``tr``, the open
split's do not), one bar per run.

    python evals/plot_heldout.py OUT.png "label A=DIR_A[,DIR_A2]" "label B=DIR_B[,DIR_B2]" ...

Made for the reader's held-out folds (evals/README.md): each DIR is a `--out` folder of the
same fold's questions asked with a different reader (several folders, comma-separated, are
read as one run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The training set's third round (evals/blind/TRAIN_BRIEF.md) asked facts the first two had
# not, so it is harder and shown apart.
THIRD_ROUND = ("trK", "trL", "trM", "trN", "trO", "trP", "trQ")
# The fourth asked the central facts again in the users' words: it reads like the open split.
FOURTH_ROUND = ("trR", "trS", "trT", "trU", "trV", "trW", "trX")


def group(qid: str) -> str:
    if qid.startswith(THIRD_ROUND):
        return "training,\nround 3"
    if qid.startswith(FOURTH_ROUND):
        return "training,\nround 4"
    return "training,\nrounds 1-2" if qid.startswith("tr") else "open split"


def figures(folders: list[Path]) -> dict[str, dict[str, float]]:
    rows = [json.loads(ln) for folder in folders
            for ln in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines()
            if ln.strip()]
    out: dict[str, dict[str, float]] = {}
    for g in sorted({group(r["id"]) for r in rows}):
        part = [r for r in rows if group(r["id"]) == g]
        ans = [r for r in part if r["answerable"]]
        una = [r for r in part if not r["answerable"]]
        out[f"{g}\n({len(part)})"] = {
            "answer accuracy": sum(r["correct"] for r in part) / len(part),
            'false "not found"': sum(r["outcome"] == "not_found" for r in ans) / max(1, len(ans)),
            "strict abstention": sum(r["outcome"] == "not_found" for r in una) / max(1, len(una)),
        }
    return out


def plot(runs: dict[str, dict[str, dict[str, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(next(iter(runs.values())))
    metrics = list(next(iter(next(iter(runs.values())).values())))
    wide = max(4.0, 0.28 * len(groups) * len(runs) + 1)  # room for every bar's label
    fig, axes = plt.subplots(1, len(metrics), figsize=(wide * len(metrics), 3.8), sharey=False)
    width = 0.8 / len(runs)
    for ax, m in zip(axes, metrics, strict=True):
        for i, (label, figs) in enumerate(runs.items()):
            xs = [j + i * width for j in range(len(groups))]
            vals = [figs[g][m] for g in groups]
            bars = ax.bar(xs, vals, width, label=label)
            ax.bar_label(bars, labels=[f"{v:.3f}" for v in vals], fontsize=6, rotation=90,
                         padding=2)
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(groups))], groups,
                      fontsize=8)
        ax.set_title(m, fontsize=10)
        ax.margins(y=0.18)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=8, loc="upper center", ncol=len(runs))
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(path, dpi=110)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or any("=" not in a for a in argv[1:]):
        print(__doc__, file=sys.stderr)
        return 2
    runs: dict[str, Any] = {}
    for arg in argv[1:]:
        label, folders = arg.split("=", 1)
        runs[label] = figures([Path(f) for f in folders.split(",")])
    plot(runs, Path(argv[0]))
    print(f"wrote {argv[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
