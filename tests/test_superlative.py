"""Superlatives across councils over figures stated in free text ("which council has the
largest population?"), answered from the statistics table with one citation per council.

Fictional about-pages (hash embedder) with traps: a projection and a change stated next to the
level, two figures in one sentence, a count of people that is not a population, an age band
("65 years") that is not a duration, and a council that states no comparable figure.
"""

from __future__ import annotations

import pytest

from ingest.pipeline import ingest
from rag.answer import answer
from rag.engine import Engine
from rag.structured import understand
from reportqa.records import Answer
from reportqa.settings import Settings

PAGES = {
    "aldermoor": "Aldermoor Borough Council has a population of 240,500. 80% of the population "
                 "are adults and 19.4% of the population are aged 65 and over. The population is "
                 "projected to reach 990,000 by 2035.",
    "brackenfield": "There is a population of 98,200 living in Brackenfield. The proportion of "
                    "people over 65 years of age (24.2%) is higher than the England average "
                    "(18.6%). There was an increase of 31.5% in people aged 65 and over between "
                    "2011 and 2021.",
    "coldharbour": "Coldharbour has a population of 512,900 and 14.8% are aged 65 and over.",
    "dunmere": "Dunmere supports 4,300 people with long-term care. Most people who contacted "
               "the council said they got advice quickly.",
}


@pytest.fixture(scope="module")
def eng(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    folder = tmp_path_factory.mktemp("superlative-pages")
    for key, body in PAGES.items():
        name = f"{key.capitalize()} Borough Council"
        text = (f"{name}: local authority assessment\n\nAbout {name}\n\n"
                f"Demographics\n{body}\n")
        (folder / f"{key}__about.txt").write_text(text, encoding="utf-8")
    settings = Settings(index_dir=tmp_path_factory.mktemp("superlative-index"), embedder="hash")
    assert ingest([folder], settings).reports_total == 4
    return Engine.load(settings)


def ask(eng: Engine, q: str) -> Answer:
    a = answer(q, eng.settings, engine=eng)
    for c in a.citations:
        assert eng.retriever.report_text(c.report_id)[c.start : c.end] == c.quote
    return a


def ranked(a: Answer) -> list[tuple[str, str]]:
    """(council, quoted figure) in the order the answer cites them."""
    return [((c.council or "").split()[0], c.quote) for c in a.citations]


def test_largest_population_ranks_levels_not_projections_or_counts_of_people(eng: Engine) -> None:
    a = ask(eng, "Which council has the largest population?")
    assert not a.abstained and a.answerer == "table"
    assert [c for c, _ in ranked(a)] == ["Coldharbour", "Aldermoor", "Brackenfield"]
    assert a.text.startswith("Among the councils") and "Coldharbour Borough Council (512,900) [1]" in a.text
    assert "990,000" not in a.text and "4,300" not in a.text
    assert "Dunmere" not in a.text  # not named in the question: not listed as missing either


def test_smallest_population_reverses_the_order(eng: Engine) -> None:
    a = ask(eng, "Which council has the smallest population?")
    assert [c for c, _ in ranked(a)] == ["Brackenfield", "Aldermoor", "Coldharbour"]
    assert "Brackenfield Borough Council (98,200) [1] has the lowest" in a.text


def test_share_aged_65_uses_each_figures_own_clause(eng: Engine) -> None:
    a = ask(eng, "Which council has the highest proportion of residents aged 65+?")
    assert [c for c, _ in ranked(a)] == ["Brackenfield", "Aldermoor", "Coldharbour"]
    text = a.text
    assert "(24.2%) [1]" in text and "19.4% [2]" in text and "14.8% [3]" in text
    # The increase (31.5%), the adults share (80%) and the England average are not levels.
    assert "31.5%" not in text and "80%" not in text and "18.6%" not in text


def test_named_councils_limit_the_comparison(eng: Engine) -> None:
    a = ask(eng, "Among Aldermoor, Dunmere and Coldharbour, which has the lowest share of "
                 "people aged 65 and over?")
    assert [c for c, _ in ranked(a)] == ["Coldharbour", "Aldermoor"]
    assert "Brackenfield" not in a.text
    assert a.text.endswith("No comparable figure is indexed for Dunmere Borough Council.")


def test_superlative_intent_needs_more_than_one_council() -> None:
    from rag.query import council_catalogue

    cat = council_catalogue([f"{k.capitalize()} Borough Council" for k in PAGES])
    assert understand("Which council has the largest population?", cat).intent == "superlative"
    assert understand("Among Aldermoor, Dunmere and Coldharbour, which has the most carers?",
                      cat).direction == "max"
    # One named council, or no cross-council framing: ordinary retrieval.
    assert understand("What is the most common concern in Aldermoor?", cat).intent == "search"
    assert understand("What was the largest increase in demand?", cat).intent == "search"
    assert understand("How big is the gap between the most and least deprived areas?",
                      cat).intent == "search"
    # A percentage of something is a statistic, not the overall rating's percentage score.
    assert understand("Which council has the highest percentage of carers in work?",
                      cat).intent == "superlative"
    assert understand("Which council has the highest overall score?", cat).intent == "top_rating"


def test_no_comparable_figure_falls_back_to_retrieval(eng: Engine) -> None:
    a = ask(eng, "Which council has the highest number of hospital discharges?")
    assert a.answerer != "table"
