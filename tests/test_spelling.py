"""Misspelt question words are read as the reports' own words, and only those."""

from __future__ import annotations

from rag.spelling import respell

REPORT_WORDS = frozenset(
    ["children", "assessment", "assessments", "strengths", "waiting", "average", "there", "these", "themes", "cambridgeshire", "looked", "after", "speech", "therapy", "overseen",
     "overlooked", "understand", "former"])


def test_a_word_the_reports_lack_is_read_as_its_one_nearest_report_word() -> None:
    assert respell("how long is the waitng for an autism assesment", REPORT_WORDS) == (
        "how long is the waiting for an autism assessment")
    assert respell("childrn in cambridgshire", REPORT_WORDS) == "children in cambridgeshire"
    assert respell("strenghts", REPORT_WORDS) == "strengths"  # two letters swapped: one edit


def test_real_words_short_words_and_guesses_stay_as_typed() -> None:
    # English words the reports do not use (the embedder's vocabulary knows them)
    assert respell("how do leaders work out what good practice looks like", REPORT_WORDS) == (
        "how do leaders work out what good practice looks like")
    assert respell("banes dads", REPORT_WORDS) == "banes dads"  # under six letters
    # two report words equally near ("there", "themes"): no guess
    assert respell("because theres nothing", REPORT_WORDS) == "because theres nothing"
    # nothing near enough
    assert respell("zzyzzyva", REPORT_WORDS) == "zzyzzyva"


def test_english_words_the_embedder_splits_into_pieces_stay_as_typed() -> None:
    # Not whole words of MiniLM's vocabulary, one or two edits from a report word: before the
    # spelling dictionary they were read as "overseen", "overlooked", "understand", "former".
    typed = "did they overspend, are staff overloaded, was there an underspend, a firmer plan"
    assert respell(typed, REPORT_WORDS) == typed
    # misspellings are not in the dictionary, so they are still read as the reports' words
    assert respell("overlokked", REPORT_WORDS) == "overlooked"


def test_respelt_only_toward_the_words_asked_for_when_no_other_word_is_nearer() -> None:
    councils = frozenset(["county", "sandwell"])
    near = councils | frozenset(["community", "paediatrician"])
    # "comunity" is one edit from "community", two from the council word "county"
    assert respell("a comunity paediatrician in sandwel", near, only=councils) == (
        "a comunity paediatrician in sandwell")
    assert respell("a comunity paediatrician", councils) == "a county paediatrician"


def test_of_words_equally_near_the_one_the_reports_use_far_more_is_meant() -> None:
    words = frozenset(["waiting", "wanting", "support", "sport", "regular", "regularly"])
    counts = {"waiting": 63, "wanting": 1, "support": 1068, "sport": 1, "regular": 88,
              "regularly": 99}
    assert respell("left wating for suport", words, counts=counts) == "left waiting for support"
    # as often as each other: still a guess, left as typed
    assert respell("visited regulary", words, counts=counts) == "visited regulary"
    # without counts, equally near words are a guess
    assert respell("left wating", words) == "left wating"
