"""The study's form lists: categories, the ambiguous set, poems with several forms."""

from __future__ import annotations

from uaes_hf.data.forms import (
    AMBIGUOUS_FORMS,
    FORMATED,
    NONFORMATED,
    form_category,
    formatted_vs_free_mask,
    poem_form_category,
)
from uaes_hf.data.lengths import count_lines, count_words, split_at_median


def test_ambiguous_is_exactly_the_intersection() -> None:
    intersection = set(FORMATED) & set(NONFORMATED)
    assert intersection == {"blank-verse", "shi", "elegy", "dramatic-monologue"}
    assert intersection == AMBIGUOUS_FORMS
    assert all(form_category(f) == "ambiguous" for f in intersection)


def test_every_listed_form_has_its_category() -> None:
    assert len(FORMATED) == 80 and len(NONFORMATED) == 51
    for form in FORMATED:
        for part in form.split(" / "):
            expected = "ambiguous" if form in NONFORMATED else "formatted"
            assert form_category(part) == expected, part
    for form in NONFORMATED:
        assert form_category(form) == ("ambiguous" if form in FORMATED else "free_verse")


def test_unknown_and_normalised_names() -> None:
    assert form_category("rap") == "unknown" and form_category("") == "unknown"
    assert form_category("Free Verse") == "free_verse"
    assert form_category("rime-royale") == "formatted"
    assert poem_form_category(["sonnet", "love-poem"]) == "formatted"
    assert poem_form_category(["sonnet", "free-verse"]) == "ambiguous"
    assert poem_form_category([]) == "unknown"
    assert formatted_vs_free_mask(["formatted", "ambiguous", "free_verse", "unknown"]) == [
        True,
        False,
        True,
        False,
    ]


def test_lengths_and_median_split() -> None:
    assert count_words("a b\n\nc") == 3 and count_lines("a b\n\nc\n") == 2
    lengths = [1, 2, 3, 4, 5]
    assert split_at_median(lengths) == ["short", "short", "long", "long", "long"]
