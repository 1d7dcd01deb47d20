"""Self-contained HTML report for an evaluation run (figures embedded as base64 PNG).

Public: `render_html`. Everything taken from questions or answers is HTML-escaped.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

_METRICS = (
    ("answer_accuracy", "Answer accuracy (answerable)", "pct"),
    ("contains_gold", "Contains gold, ignoring the 75-word limit", "pct"),
    ("abstention_accuracy", "Abstention accuracy (unanswerable)", "pct"),
    ("false_abstention_rate", "False abstentions (answerable)", "pct"),
    ("citation_support", "Citation support (correct answers)", "pct"),
    ("recall_at_1", "Retrieval recall@1", "pct"),
    ("recall_at_5", "Retrieval recall@5", "pct"),
    ("mrr", "Retrieval MRR@10", "num"),
    ("latency_p50_ms", "Latency p50 (ms)", "ms"),
    ("latency_p95_ms", "Latency p95 (ms)", "ms"),
    ("mean_answer_words", "Mean answer length (words)", "num"),
    ("errors", "Errors", "int"),
    ("n", "Questions", "int"),
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.figs img{max-width:100%;margin:.5em 0;border:1px solid #eee}
.bad{color:#a00}.good{color:#070}.muted{color:#777;font-size:.85em}
"""


def _fmt(v: Any, kind: str) -> str:
    if v is None:
        return "–"
    if kind == "pct":
        return f"{100 * v:.1f}%"
    if kind == "ms":
        return f"{v:,.0f}"
    if kind == "int":
        return f"{int(v)}"
    return f"{v:.3f}" if isinstance(v, float) else escape(str(v))


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="figure">'


def _figures(summary: dict[str, Any], rows: list[dict[str, Any]],
             base_rows: list[dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import numpy as np

    out = []
    # 1. accuracy per type (answer accuracy, or abstention accuracy for unanswerable-only types)
    types = sorted(summary.get("by_type", {}))
    series: list[tuple[str, dict[str, Any]]] = [("this run", summary.get("by_type", {}))]
    if "previous" in summary:
        series.append(("previous", summary["previous"].get("by_type", {})))
    if "baseline" in summary:
        series.append(("llama-index baseline (contains gold, no word limit)",
                       summary["baseline"].get("by_type", {})))

    def acc(m: dict[str, Any] | None, key: str = "answer_accuracy") -> float:
        if not m:
            return 0.0
        v = m.get(key)
        if v is None:
            v = m.get("abstention_accuracy")
        return float(v or 0.0)

    fig, ax = plt.subplots(figsize=(9, 4))
    x = np.arange(len(types))
    w = 0.8 / max(1, len(series))
    for i, (label, by_type) in enumerate(series):
        key = "contains_gold" if label.startswith("llama-index") else "answer_accuracy"
        vals = [acc(by_type.get(t), key) for t in types]
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * w, vals, w, label=label)
        ax.bar_label(bars, labels=[f"{v:.0%}" for v in vals], fontsize=7)
    ns = [summary["by_type"][t]["n"] for t in types]
    ax.set_xticks(x, [f"{t}\n(n={n})" for t, n in zip(types, ns, strict=True)], fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("accuracy")
    ax.set_title("Accuracy per question type (unanswerable: abstention accuracy)")
    ax.legend(fontsize=8)
    out.append(_png(fig))

    # 2. retrieval rank distribution (answerable questions)
    labels = [str(i) for i in range(1, 11)] + ["miss"]

    def hist(rs: list[dict[str, Any]]) -> list[int]:
        counts = [0] * 11
        for r in rs:
            if not r.get("answerable", True):
                continue
            rank = r.get("rank")
            counts[rank - 1 if rank and 1 <= rank <= 10 else 10] += 1
        return counts

    fig, ax = plt.subplots(figsize=(9, 3.5))
    x = np.arange(11)
    rank_series = [("this run", hist(rows))] + ([("llama-index baseline", hist(base_rows))]
                                               if base_rows else [])
    w = 0.8 / len(rank_series)
    for i, (label, counts) in enumerate(rank_series):
        ax.bar(x + (i - (len(rank_series) - 1) / 2) * w, counts, w, label=label)
    ax.set_xticks(x, labels)
    ax.set_xlabel("rank of the first retrieved passage containing the evidence")
    ax.set_ylabel("answerable questions")
    ax.set_title("Retrieval rank distribution")
    ax.legend(fontsize=8)
    out.append(_png(fig))

    # 3. latency histogram
    lat = [r["latency_ms"] for r in rows if r.get("latency_ms") is not None]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    if lat:
        ax.hist(lat, bins=min(40, max(5, len(lat) // 3)), color="#4c72b0")
        for p, style in (("latency_p50_ms", "--"), ("latency_p95_ms", ":")):
            v = summary["overall"].get(p)
            if v is not None:
                ax.axvline(v, color="k", linestyle=style, label=f"{p[8:11]} {v:,.0f} ms")
        ax.legend(fontsize=8)
    ax.set_xlabel("latency per question (ms)")
    ax.set_ylabel("questions")
    ax.set_title("Latency")
    out.append(_png(fig))
    return out


def _metric_table(summary: dict[str, Any]) -> str:
    cols = [("this run", summary.get("overall", {}))]
    if "previous" in summary:
        cols.append(("previous", summary["previous"].get("overall", {})))
    if "baseline" in summary:
        cols.append(("llama-index baseline", summary["baseline"].get("overall", {})))
    head = "".join(f"<th>{escape(c)}</th>" for c, _ in cols)
    if "previous" in summary:
        head += "<th>Δ vs previous</th>"
    body = []
    for key, label, kind in _METRICS:
        tds = "".join(f'<td class="num">{_fmt(m.get(key), kind)}</td>' for _, m in cols)
        if "previous" in summary:
            d = summary["previous"].get("delta", {}).get(key)
            tds += f'<td class="num">{"–" if d is None else f"{d:+.3f}"}</td>'
        body.append(f"<tr><th>{escape(label)}</th>{tds}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def _group_table(groups: dict[str, dict[str, Any]], prev: dict[str, Any] | None) -> str:
    keys = [k for k in _METRICS if k[0] not in ("errors",)]
    head = "".join(f"<th>{escape(k[0])}</th>" for k in keys)
    body = []
    for name, m in groups.items():
        tds = "".join(f'<td class="num">{_fmt(m.get(k), kind)}</td>' for k, _, kind in keys)
        body.append(f"<tr><th>{escape(name)}</th>{tds}</tr>")
        if prev and name in prev:
            tds = "".join(f'<td class="num muted">{_fmt(prev[name].get(k), kind)}</td>'
                          for k, _, kind in keys)
            body.append(f'<tr><th class="muted">{escape(name)} (previous)</th>{tds}</tr>')
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _failure_table(rows: list[dict[str, Any]], gold: dict[str, list[str]]) -> str:
    bad = [r for r in rows if r.get("failure")]
    if not bad:
        return "<p>No failures.</p>"
    body = []
    for r in bad:
        golds = gold.get(r["id"], r.get("answers") or [])
        ans = r.get("answer")
        err = escape(r.get("error") or "")
        ans_html = escape(ans) if ans is not None else f'<span class="bad">{err}</span>'
        body.append(
            f"<tr><td>{escape(r['id'])}</td><td>{escape(str(r.get('type') or ''))}</td>"
            f"<td>{escape(r['failure'])}</td><td>{escape(r['question'])}</td>"
            f"<td>{escape(' | '.join(golds)) or '<i>(unanswerable)</i>'}</td>"
            f"<td>{ans_html}</td>"
            f'<td class="num">{escape(str(r.get("rank") or "miss"))}</td></tr>'
        )
    return ("<table><tr><th>id</th><th>type</th><th>why</th><th>question</th>"
            "<th>gold answers</th><th>our answer</th><th>rank</th></tr>"
            + "".join(body) + "</table>")


def render_html(summary: dict[str, Any], rows: list[dict[str, Any]], questions: list[Any],
                base_rows: list[dict[str, Any]] | None = None) -> str:
    gold = {q.id: list(q.answers) for q in questions}
    figs = _figures(summary, rows, base_rows or [])
    prev = summary.get("previous")
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>reportqa evaluation</title>", f"<style>{_CSS}</style></head><body>",
        "<h1>reportqa evaluation</h1>",
        f"<p class='muted'>{escape(str(summary.get('questions')))} · split "
        f"{escape(str(summary.get('split')))} · answerer {escape(str(summary.get('answerer')))}"
        f" · embedder {escape(str(summary.get('embedder')))}"
        f" · {escape(str(summary.get('created')))}"
        f" · {summary.get('seconds')} s</p>",
    ]
    if "gate" in summary:
        g = summary["gate"]
        parts.append("<p class='good'>Gate passed.</p>" if g["passed"] else
                     "<p class='bad'>Gate failed: " + escape("; ".join(g["failures"])) + "</p>")
    parts += ["<h2>Overall</h2>", _metric_table(summary)]
    if "baseline" in summary:
        parts.append(f"<p class='muted'>Baseline: {escape(summary['baseline']['pipeline'])}; "
                     f"{summary['baseline']['nodes']} nodes. Its answer is a whole passage, so it "
                     "mostly fails the 75-word limit; 'contains gold' ignores the limit.</p>")
    parts += ["<h2>Figures</h2>", "<div class='figs'>", *figs, "</div>"]
    parts += ["<h2>Per question type</h2>",
              _group_table(summary.get("by_type", {}), prev.get("by_type") if prev else None)]
    if summary.get("by_split"):
        parts += ["<h2>Per split</h2>",
                  _group_table(summary["by_split"], prev.get("by_split") if prev else None)]
    if prev:
        parts.append("<h2>Changes since the previous run</h2>")
        for key, title in (("right_to_wrong", "Right → wrong"), ("wrong_to_right",
                                                                 "Wrong → right")):
            ids = prev.get(key, [])
            parts.append(f"<p><b>{title} ({len(ids)}):</b> "
                         + (escape(", ".join(ids)) or "none") + "</p>")
    counts = summary.get("failures", {})
    parts += ["<h2>Failures</h2>",
              "<p>" + escape(", ".join(f"{k}: {v}" for k, v in counts.items()) or "none") + "</p>",
              _failure_table(rows, gold), "</body></html>"]
    return "\n".join(parts)
