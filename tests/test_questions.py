"""The gold question set is well formed and every evidence string occurs verbatim in its file."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _questions() -> list[dict]:
    lines = (ROOT / "evals" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines if ln.strip()]


def test_evidence_is_verbatim_in_its_file() -> None:
    for q in _questions():
        for ev in q["evidence"]:
            text = (ROOT / "corpus" / q["file"]).read_text(encoding="utf-8")
            assert ev in text, f"{q['id']}: evidence not in {q['file']}: {ev[:60]!r}"


def test_mix_and_coverage() -> None:
    qs = _questions()
    assert len(qs) >= 120
    unanswerable = [q for q in qs if not q["answerable"]]
    assert len(unanswerable) / len(qs) >= 0.15
    assert all(not q["answers"] and not q["evidence"] for q in unanswerable)
    covered = {q["file"] for q in qs if q["answerable"]}
    pages = {p.name for p in (ROOT / "corpus").glob("*.txt")}
    assert pages <= covered, f"pages without a question: {sorted(pages - covered)}"
    assert {q.get("split") for q in qs} == {"dev", "held"}


def test_checker_script_passes() -> None:
    import subprocess
    import sys

    res = subprocess.run([sys.executable, str(ROOT / "evals" / "check_questions.py")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
