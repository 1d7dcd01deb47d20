"""Synthetic CQC report corpora made from the bundled corpus/ text, for scale benchmarks.

    .venv/bin/python benchmarks/synth.py OUT_DIR N [--seed 0]

Each fictional council ("Ashbridge Borough Council") takes the pages of one bundled council
(chosen with probability proportional to its page count, so page sets stay coherent: an
overview page, statement pages with scores, an "about" page...). Every page is rewritten:

* every spelling of the source council's name ("Stockton-on-Tees Borough Council",
  "Stockton on Tees", "Stockton", "B&NES") becomes the fictional place name, keeping the
  council type wording ("Borough Council", "London Borough of", ...); names of the other
  bundled councils are replaced by other fictional places, so no bundled council survives;
* figures are scaled by a random factor per figure, keeping their format: percentages
  ("25.19%" -> "27.43%", capped at 100), money ("£169,571,000"), and counts of 3+ digits
  ("110,562"); years ("2023/24", "2025") are left alone;
* scores are redrawn: "Score: 3" -> "Score: N" (1-4) with the matching label line
  "N - Evidence shows ..." and press-release lines "7. Safeguarding - N".

A SOURCES.tsv (file, council, page, source_url) is written beside the pages, like corpus/'s,
and ``make_corpus`` returns the manifest. No two files have identical text.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"

SCORE_LABELS = {
    1: "Evidence shows significant shortfalls",
    2: "Evidence shows some shortfalls",
    3: "Evidence shows a good standard",
    4: "Evidence shows an exceptional standard",
}

# Every spelling of each bundled council's short name, longest first. The council-type words
# around it ("Borough Council", "London Borough of") stay as they are.
NAME_VARIANTS: dict[str, tuple[str, ...]] = {
    "bath-and-north-east-somerset": ("Bath and North East Somerset", "Bath & North East Somerset",
                                     "B&NES", "BaNES", "Bath"),
    "birmingham": ("Birmingham",),
    "bradford": ("Bradford",),
    "darlington": ("Darlington",),
    "ealing": ("Ealing",),
    "gateshead": ("Gateshead",),
    "gloucestershire": ("Gloucestershire",),
    "lincolnshire": ("Lincolnshire",),
    "nottingham": ("Nottingham",),
    "staffordshire": ("Staffordshire",),
    "stockton-on-tees": ("Stockton-on-Tees", "Stockton on Tees", "Stockton-On-Tees", "Stockton"),
    "westminster": ("Westminster",),
    "wiltshire": ("Wiltshire",),
    "wirral": ("Wirral",),
}

_PRE = ("Ash", "Bram", "Carl", "Dun", "Elm", "Fern", "Gar", "Holm", "Ivel", "Kes", "Lyn", "Mar",
        "Nor", "Ock", "Pen", "Quen", "Rad", "Sel", "Thorn", "Ux", "Val", "Wen", "Yar", "Brack",
        "Cal", "Hask", "Lang", "Mell", "Stan", "Wold", "Aln", "Bex", "Cor", "Dray", "Ew", "Frith")
_MID = ("", "en", "ing", "er", "el", "ow", "ley", "bers")
_SUF = ("bridge", "moor", "haven", "fold", "combe", "well", "bury", "mere", "stead", "leigh",
        "wick", "brook", "ford", "low", "dale", "by", "ham", "ton", "field", "worth", "thorpe",
        "hurst", "minster", "port", "gate", "holme", "cester", "wood", "chester", "sey")


@dataclass(frozen=True)
class SynthReport:
    file: str  # file name inside out_dir
    council: str  # fictional place name ("Ashbridge")
    slug: str  # its SOURCES.tsv council slug ("ashbridge")
    source_council: str  # bundled council slug it was made from ("darlington")
    page: str  # page slug ("safeguarding")
    source_file: str  # bundled file it was made from


def bundled_pages() -> dict[str, list[Path]]:
    """Bundled council slug -> its page files (from corpus/SOURCES.tsv)."""
    out: dict[str, list[Path]] = {}
    with (CORPUS / "SOURCES.tsv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            out.setdefault(row["council"], []).append(CORPUS / row["file"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _reserved_names() -> set[str]:
    """Lower-cased names a fictional council must not take: bundled and gazetteer councils."""
    names = {v.lower() for vs in NAME_VARIANTS.values() for v in vs}
    gaz = REPO / "ingest" / "profiles" / "councils.txt"
    if gaz.is_file():
        for ln in gaz.read_text(encoding="utf-8").splitlines():
            if ln.strip() and not ln.startswith("#"):
                names.add(ln.strip().lower())
                names.update(w.lower() for w in ln.split() if len(w) > 3)
    return names


def place_names(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct one-word fictional place names ("Ashbridge", "Kesingford")."""
    reserved = _reserved_names()
    pool = [p + m + s for p in _PRE for m in _MID for s in _SUF]
    pool = [x for x in dict.fromkeys(pool) if x.lower() not in reserved]
    rng.shuffle(pool)
    if n > len(pool):  # very large corpora: two-part names ("Ashbridge" + "holme")
        extra = [a + b.lower() for a in pool for b in _SUF]
        pool += [x for x in dict.fromkeys(extra) if x.lower() not in reserved][: n - len(pool)]
    if n > len(pool):
        raise ValueError(f"cannot make {n} distinct council names")
    return pool[:n]


def _name_regex(slug: str) -> re.Pattern[str]:
    alts = sorted(NAME_VARIANTS[slug], key=len, reverse=True)
    return re.compile(r"(?<![A-Za-z])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![A-Za-z])")


_PCT = re.compile(r"(?<![\d.,£])(\d{1,3}(?:\.\d+)?)%")
_MONEY = re.compile(r"£(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(m|bn|k| million| billion)?\b")
_COUNT = re.compile(r"(?<![\d.,£/])(\d{1,3}(?:,\d{3})+|\d{3,})(?![\d%]|[.,]\d|/\d)")
_YEAR = re.compile(r"^(19|20)\d\d$")
_SCORE_LINE = re.compile(r"^(\s*(?:Indicative )?Score: ?)([1-4])([ \t]*)$")
_LABEL_LINE = re.compile(r"^(\s*)([1-4]) - Evidence shows [^\n]*?([ \t]*)$")
_PRESS_LINE = re.compile(r"^(\s*\d\.\s*.{5,70}?\s*[–-]\s*)([1-4])(\s*)$")


def vary_figures(text: str, rng: random.Random, spread: float = 0.15) -> str:
    """Scale percentages, money and 3+ digit counts by random factors, keeping their format."""

    def factor() -> float:
        return rng.uniform(1 - spread, 1 + spread)

    def pct(m: re.Match[str]) -> str:
        raw = m.group(1)
        dec = len(raw.split(".")[1]) if "." in raw else 0
        v = float(raw) * factor()
        if float(raw) <= 100:
            v = min(v, 100.0)
        return f"{v:.{dec}f}%"

    def money(m: re.Match[str]) -> str:
        whole, frac, unit = m.group(1), m.group(2) or "", m.group(3) or ""
        v = float(whole.replace(",", "") + frac) * factor()
        if frac:
            s = f"{v:,.{len(frac) - 1}f}" if "," in whole else f"{v:.{len(frac) - 1}f}"
        else:
            s = f"{round(v):,}" if "," in whole else str(round(v))
        return f"£{s}{unit}"

    def count(m: re.Match[str]) -> str:
        raw = m.group(1)
        if _YEAR.match(raw):
            return raw
        v = max(100, round(int(raw.replace(",", "")) * factor()))
        return f"{v:,}" if "," in raw else str(v)

    text = _PCT.sub(pct, text)
    text = _MONEY.sub(money, text)
    return _COUNT.sub(count, text)


def vary_scores(text: str, rng: random.Random) -> str:
    """Redraw "Score: N" / "N - Evidence shows ..." / press-release "... - N" scores."""
    out: list[str] = []
    pending: int | None = None
    for line in text.split("\n"):
        m = _SCORE_LINE.match(line)
        if m:
            pending = rng.randint(1, 4)
            out.append(f"{m.group(1)}{pending}{m.group(3)}")
            continue
        m = _LABEL_LINE.match(line)
        if m:
            s = pending if pending is not None else rng.randint(1, 4)
            out.append(f"{m.group(1)}{s} - {SCORE_LABELS[s]}{m.group(3)}")
            pending = None
            continue
        if line.strip() and not re.match(r"^\s*Indicative score:?\s*$", line):
            pending = None
        m = _PRESS_LINE.match(line)
        if m:
            line = f"{m.group(1)}{rng.randint(1, 4)}{m.group(3)}"
        out.append(line)
    return "\n".join(out)


def rewrite(text: str, source_council: str, place: str, others: dict[str, str],
            rng: random.Random) -> str:
    """One bundled page -> one synthetic page for council ``place``."""
    text = _name_regex(source_council).sub(place, text)
    for slug, other in others.items():
        if slug != source_council:
            text = _name_regex(slug).sub(other, text)
    return vary_scores(vary_figures(text, rng), rng)


def generate(n_reports: int, seed: int = 0) -> Iterator[tuple[SynthReport, str]]:
    """The ``n_reports`` synthetic reports and their texts, deterministic in ``seed``."""
    rng = random.Random(seed)
    pages = bundled_pages()
    slugs = list(pages)
    weights = [len(pages[s]) for s in slugs]
    # Upper bound on councils: one per report. Names for neighbours come from the same pool.
    names = place_names(rng, n_reports + len(slugs))
    neighbour_names = dict(zip(slugs, names[n_reports:], strict=True))
    texts = {f: f.read_text(encoding="utf-8") for fs in pages.values() for f in fs}
    seen: set[str] = set()
    done = ci = 0
    while done < n_reports:
        src = rng.choices(slugs, weights)[0]
        place = names[ci]
        ci += 1
        slug = place.lower()
        for f in pages[src]:
            if done >= n_reports:
                break
            page = f.stem.split("__", 1)[1]
            for _ in range(20):
                text = rewrite(texts[f], src, place, neighbour_names, rng)
                h = hashlib.sha256(text.encode()).hexdigest()
                if h not in seen:
                    break
            else:  # a page with no figure or score to vary: stamp it
                text += f"\nReference {done + 1:06d}\n"
                h = hashlib.sha256(text.encode()).hexdigest()
            seen.add(h)
            done += 1
            yield SynthReport(f"{slug}__{page}.txt", place, slug, src, page, f.name), text


def manifest(n_reports: int, seed: int = 0) -> list[SynthReport]:
    """What ``make_corpus(out, n_reports, seed)`` writes, without writing it."""
    return [r for r, _ in generate(n_reports, seed)]


def make_corpus(out_dir: str | Path, n_reports: int, seed: int = 0) -> list[SynthReport]:
    """Write ``n_reports`` distinct synthetic report .txt files + SOURCES.tsv into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    made: list[SynthReport] = []
    for r, text in generate(n_reports, seed):
        (out / r.file).write_text(text, encoding="utf-8")
        made.append(r)
    with (out / "SOURCES.tsv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["file", "council", "page", "source_url"])
        for r in made:
            w.writerow([r.file, r.slug, r.page, f"synthetic://{r.slug}/{r.page}"])
    return made


def substitute_councils(question: str, choose: Callable[[str], str | None]) -> str:
    """Replace every bundled council named in ``question`` by ``choose(bundled_slug)`` (a
    fictional place name; None leaves it)."""
    for slug in NAME_VARIANTS:
        rx = _name_regex(slug)
        if rx.search(question):
            place = choose(slug)
            if place:
                question = rx.sub(place, question)
    return question


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("n", type=int, help="number of report files")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    m = make_corpus(args.out_dir, args.n, args.seed)
    print(f"wrote {len(m)} reports for {len({r.slug for r in m})} fictional councils to "
          f"{args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
