"""Stage 3: Report -> Chunks. Public: `chunk_report`.

Section-aware (a chunk never crosses a section boundary), split on sentence boundaries and
sized in MiniLM word pieces so that header + text always fit the model's 256-piece window:
no chunk loses text to silent truncation.
"""

from __future__ import annotations

from reportqa.embed import MAX_WORDPIECES
from reportqa.records import Chunk, Report
from reportqa.text import count_wordpieces, count_wordpieces_batch, sentence_spans

_SPECIAL = 2  # [CLS] and [SEP]
_HEADER_SEP = 2  # the ": " / newline joining header and text, generously


def chunk_report(report: Report, max_tokens: int = 200) -> list[Chunk]:
    """Split a report into chunks that each fit the embedder and carry full metadata."""
    chunks: list[Chunk] = []
    for section in report.sections or ():
        probe = _make(report, section.title, section.start, section.start, "")
        budget = min(max_tokens, MAX_WORDPIECES - _SPECIAL - _HEADER_SEP
                     - count_wordpieces(probe.header()))
        for s, e in _pack(report.text, section.start, section.end, max(budget, 32)):
            chunks.append(_make(report, section.title, s, e, report.text[s:e]))
    return chunks


def embed_text(chunk: Chunk) -> str:
    """What the embedder sees: the context header, then the chunk text."""
    header = chunk.header()
    return f"{header}: {chunk.text}" if header else chunk.text


def _make(report: Report, section: str, s: int, e: int, text: str) -> Chunk:
    return Chunk(
        chunk_id=Chunk.make_id(report.content_hash, s, text),
        report_id=report.report_id,
        text=text,
        start=s,
        end=e,
        section=section,
        council=report.council,
        page_kind=report.page_kind,
        quality_statement=report.quality_statement,
        theme=report.theme,
        score=report.score,
    )


def _pack(text: str, start: int, end: int, budget: int) -> list[tuple[int, int]]:
    """Greedily pack whole sentences into spans of at most ``budget`` word pieces."""
    sents = sentence_spans(text, start, end)
    sizes = count_wordpieces_batch([text[s:e] for s, e in sents]) if sents else []
    pieces: list[tuple[int, int, int]] = []
    for (s, e), n in zip(sents, sizes, strict=True):
        if n <= budget:
            pieces.append((s, e, n))
        else:
            pieces.extend(_split_long(text, s, e, budget))
    out: list[tuple[int, int]] = []
    cur_s, cur_e, cur_n = -1, -1, 0
    for s, e, n in pieces:
        # +1 covers the word piece a joining space/newline can add between sentences.
        if cur_s >= 0 and cur_n + n + 1 <= budget:
            cur_e, cur_n = e, cur_n + n + 1
            continue
        if cur_s >= 0:
            out.append((cur_s, cur_e))
        cur_s, cur_e, cur_n = s, e, n
    if cur_s >= 0:
        out.append((cur_s, cur_e))
    return out


def _split_long(text: str, s: int, e: int, budget: int) -> list[tuple[int, int, int]]:
    """A sentence longer than the budget is cut at word boundaries (rare: tables, run-ons)."""
    out: list[tuple[int, int, int]] = []
    cur = s
    while cur < e:
        lo, hi = cur + 1, e
        # Binary search the longest prefix within budget, then back off to a space.
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_wordpieces(text[cur:mid]) <= budget:
                lo = mid
            else:
                hi = mid - 1
        cut = lo
        if cut < e:
            space = text.rfind(" ", cur, cut)
            cut = space if space > cur else cut
        seg_s, seg_e = cur, cut
        while seg_e > seg_s and text[seg_e - 1].isspace():
            seg_e -= 1
        if seg_e > seg_s:
            out.append((seg_s, seg_e, count_wordpieces(text[seg_s:seg_e])))
        cur = cut
        while cur < e and text[cur].isspace():
            cur += 1
    return out
