"""Vocabulary as data: the files of rag/vocab/ read once, by name.

Every word list and cue the answer stage uses is a row of a TOML file there, with why it
exists and examples it must match (tests/test_vocab.py checks every row). Two row shapes are
shared by all files:

- ``[[pattern]]``: ``name``, ``pattern`` (a regular expression, case-insensitive unless
  ``case_sensitive = true``), ``why``, ``examples``.
- ``[[words]]``: ``name``, ``words`` (space-separated), ``why``, ``examples``.

This module is the bottom of rag/: it imports nothing of ours, so any rag module may read
its vocabulary here.
"""

from __future__ import annotations

import re
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

VOCAB = Path(__file__).parent / "vocab"


@cache
def vocab(name: str) -> dict[str, Any]:
    """One data file of rag/vocab/ (``name`` without ".toml"), read once per process."""
    return tomllib.loads((VOCAB / f"{name}.toml").read_text("utf-8"))


def _row(file: str, table: str, name: str) -> dict[str, Any]:
    rows = [r for r in vocab(file).get(table, []) if r.get("name") == name]
    if len(rows) != 1:
        raise KeyError(f"rag/vocab/{file}.toml: expected one [[{table}]] row named {name!r}, "
                       f"found {len(rows)}")
    return rows[0]


@cache
def pattern(file: str, name: str) -> re.Pattern[str]:
    """The ``[[pattern]]`` row ``name`` of rag/vocab/``file``.toml, compiled."""
    row = _row(file, "pattern", name)
    return re.compile(row["pattern"], 0 if row.get("case_sensitive") else re.I)


@cache
def words(file: str, name: str) -> frozenset[str]:
    """The ``[[words]]`` row ``name`` of rag/vocab/``file``.toml, as a set of words."""
    return frozenset(_row(file, "words", name)["words"].split())
