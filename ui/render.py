"""Plain-text and CSV renderings of an Answer (used by the CLI; the UI renders its own HTML)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from reportqa.records import Answer
from reportqa.text import answer_sentences, clean_quote

# New columns go last: columns readers of earlier exports rely on keep their places.
CSV_FIELDS = ("n", "council", "quality_statement", "claim", "quote", "source", "report_id",
              "start", "end", "page", "see_also")


def answer_text(ans: Answer) -> str:
    lines = [ans.text, *(f"Note: {n}" for n in ans.notes), ""]
    if ans.citations:
        lines.append("Sources:" if not ans.abstained else "See also:")
    for c in ans.citations:
        where = " / ".join(x for x in (c.council, c.quality_statement, c.section) if x)
        lines.append(f"  [{c.n}] {where}")
        lines.append(f"      \u201c{clean_quote(c.quote)}\u201d")
        # A PDF's page is where a reader looks; the offsets are for programs.
        page = f", p. {c.pages}" if c.pages else ""
        lines.append(f"      {c.source}{page} (chars {c.start}-{c.end})")
    return "\n".join(lines).rstrip()


def claims(ans: Answer) -> dict[int, str]:
    """The answer sentence(s) that carry each marker."""
    out: dict[int, str] = {}
    for sent in answer_sentences(ans.text):
        for m in re.findall(r"\[(\d+)\]", sent):
            out.setdefault(int(m), re.sub(r"\s*\[\d+\]", "", sent).strip())
    return out


def csv_rows(ans: Answer) -> list[dict[str, object]]:
    cl = claims(ans)
    return [{"n": c.n, "council": c.council or "", "quality_statement": c.quality_statement or "",
             # A "see also" passage supports no claim: the answer said the reports don't say.
             "claim": "" if c.see_also else cl.get(c.n, ""), "quote": c.quote, "source": c.source,
             "report_id": c.report_id, "start": c.start, "end": c.end, "page": c.pages,
             # "yes": a closest passage shown beside "the reports don't say", not evidence.
             "see_also": "yes" if c.see_also else ""}
            for c in ans.citations]


def write_csv(ans: Answer, path: str | Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        w.writeheader()
        w.writerows(csv_rows(ans))
