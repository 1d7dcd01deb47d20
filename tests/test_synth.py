"""benchmarks/synth.py: synthetic report corpora for the scale benchmarks."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path

from ingest.index import IndexStore
from ingest.pipeline import ingest
from ingest.structure import council_key
from reportqa.embed import HashEmbedder
from reportqa.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def _synth():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_synth", REPO / "benchmarks" / "synth.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_twenty_synthetic_reports_are_distinct_and_ingest(tmp_path: Path) -> None:
    synth = _synth()
    out = tmp_path / "synth"
    manifest = synth.make_corpus(out, 20, seed=3)
    files = sorted(out.glob("*.txt"))
    assert len(manifest) == len(files) == 20
    texts = [f.read_text(encoding="utf-8") for f in files]
    assert len({hashlib.sha256(t.encode()).hexdigest() for t in texts}) == 20

    # No bundled council name survives; figures and scores keep their formats.
    bundled = [v for vs in synth.NAME_VARIANTS.values() for v in vs if len(v) > 4]
    for t in texts:
        for name in bundled:
            assert not re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", t), name
        for m in re.finditer(r"^Score: ?([1-4])\n([1-4]) - (Evidence shows .*)$", t, re.M):
            assert m.group(1) == m.group(2)
            assert m.group(3) == synth.SCORE_LABELS[int(m.group(1))]

    # Same seed, same corpus.
    again = synth.make_corpus(tmp_path / "again", 20, seed=3)
    assert [r.file for r in again] == [r.file for r in manifest]
    assert (tmp_path / "again" / files[0].name).read_text(encoding="utf-8") == texts[0]

    settings = Settings(embedder="hash", index_dir=tmp_path / "index", chroma_url=None)
    summary = ingest([out], settings, embedder=HashEmbedder())
    assert not summary.failed, summary.failed
    assert len(summary.added) == 20 and summary.chunks_added > 20

    store = IndexStore(settings, "hash-bow", 256, create=False)
    try:
        councils = {council_key(r.metadata.get("council")) for r in store.reports()}
    finally:
        store.close()
    bundled_keys = {council_key(k.replace("-", " ")) for k in synth.NAME_VARIANTS}
    assert None not in councils
    assert councils == {r.slug for r in manifest}
    assert not councils & bundled_keys


def test_figures_keep_their_format() -> None:
    import random

    synth = _synth()
    rng = random.Random(1)
    src = "spent 25.19% and £169,571,000 on 110,562 people in 2023/24 and 2025; £1.2m; 21%."
    out = synth.vary_figures(src, rng)
    assert re.fullmatch(r"spent \d+\.\d\d% and £\d{1,3}(,\d{3}){2} on \d{2,3},\d{3} people in "
                        r"2023/24 and 2025; £\d\.\dm; \d+%\.", out), out
    assert out != src
