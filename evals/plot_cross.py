"""Draw blind cross-council accuracy across commits: one line per question set, solid while
nobody working on the code had read the set, dotted after.

    python evals/plot_cross.py OUT.png --commits base,1c11ed6,ef48925 \
        "set 1=7,28,-" "set 2=10,22,33*" ...

Each set's figures are turns right at each commit ("-" not measured); a "*" marks the last
figure taken before the set was read. The totals come from `evals/cross_councils.py` runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parse(spec: str) -> tuple[str, list[int | None], int]:
    """"label=7,28*,55" -> (label, [7, 28, 55], index of the last blind figure)."""
    label, _, values = spec.partition("=")
    figures: list[int | None] = []
    blind = -1
    for i, v in enumerate(values.split(",")):
        v = v.strip()
        if v.endswith("*"):
            blind = i
            v = v[:-1]
        figures.append(None if v in ("", "-") else int(v))
    return label, figures, blind if blind >= 0 else len(figures) - 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--commits", required=True)
    ap.add_argument("--of", type=int, default=57, help="turns per set")
    ap.add_argument("sets", nargs="+")
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commits = args.commits.split(",")
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for spec in args.sets:
        label, figures, blind = parse(spec)
        xs = [i for i, f in enumerate(figures) if f is not None]
        seen = [i for i in xs if i <= blind]
        line = ax.plot(seen, [figures[i] / args.of for i in seen], marker="o",  # type: ignore[operator]
                       label=f"{label} (blind)")[0]
        after = [i for i in xs if i >= blind]
        if len(after) > 1:
            ax.plot(after, [figures[i] / args.of for i in after], marker="o", linestyle=":",  # type: ignore[operator]
                    color=line.get_color(), alpha=0.6, label=f"{label} (read)")
    ax.set_xticks(range(len(commits)), commits, rotation=20)
    ax.set_ylabel(f"share of turns right ({args.of} per set)")
    ax.set_ylim(0, 1)
    ax.set_title("Questions across councils, blind sets, real pipeline")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
