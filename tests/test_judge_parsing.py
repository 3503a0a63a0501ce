"""Parsing of judge answers: fences, chatter, single quotes, score validation."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uaes_hf.annotate.parsing import (
    ParsedRating,
    RatingParseError,
    extract_json_objects,
    parse_rating,
    validate_score,
)


@pytest.mark.parametrize(
    "answer, expected",
    [
        ('{"thinking": "vivid", "score": 4}', ParsedRating(4, "vivid")),
        ('```json\n{"thinking": "vivid", "score": 4}\n```', ParsedRating(4, "vivid")),
        ('```\n{"thinking": "vivid", "score": 4}\n```', ParsedRating(4, "vivid")),
        (
            'Rationale: strong imagery.\nScore: 4\n{ "thinking": "strong imagery", "score": 4 }'
            "\nThanks!",
            ParsedRating(4, "strong imagery"),
        ),
        ("{'thinking': 'flat diction', 'score': 2}", ParsedRating(2, "flat diction")),
        ('{"thinking": "ok", "score": 3,}', ParsedRating(3, "ok")),
        ('{"thinking": "ok", "score": "5"}', ParsedRating(5, "ok")),
        ('{"thinking": "ok", "score": 1.0}', ParsedRating(1, "ok")),
        (
            '{"thinking": "uses {braces} and \\"quotes\\"", "score": 3}',
            ParsedRating(3, 'uses {braces} and "quotes"'),
        ),
        # Two objects: the rubric puts the final JSON last, so the last one wins.
        (
            '{"score": 2} then corrected: {"thinking": "better", "score": 3}',
            ParsedRating(3, "better"),
        ),
        ('{"score": 5}', ParsedRating(5, "")),
    ],
)
def test_parse_rating_accepts_common_shapes(answer: str, expected: ParsedRating) -> None:
    assert parse_rating(answer) == expected


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("I think this poem deserves a 4.", "no_json"),
        ('Here is my evaluation: {"thinking": "vivid imagery, score": ', "no_json"),
        ('{"thinking": "no score here"}', "no_json"),
        ('{"thinking": "x", "score": 0}', "bad_score"),
        ('{"thinking": "x", "score": 7}', "bad_score"),
        ('{"thinking": "x", "score": 3.5}', "bad_score"),
        ('{"thinking": "x", "score": true}', "bad_score"),
        ('{"thinking": "x", "score": "four"}', "bad_score"),
        ('{"thinking": "x", "score": null}', "bad_score"),
        ("", "no_json"),
    ],
)
def test_parse_rating_rejects_unusable_answers(answer: str, reason: str) -> None:
    with pytest.raises(RatingParseError) as info:
        parse_rating(answer)
    assert info.value.reason == reason
    assert info.value.problem  # the text sent back in the re-ask


def test_extract_json_objects_finds_fenced_and_inline() -> None:
    text = 'a {"x": 1} b\n```json\n{"y": 2}\n```\n'
    assert extract_json_objects(text) == [{"y": 2}, {"x": 1}]


def test_validate_score_bounds() -> None:
    assert [validate_score(v) for v in (1, 2, 3, 4, 5)] == [1, 2, 3, 4, 5]
    for bad in (0, 6, -1, 2.5, "3.5", None, [3]):
        with pytest.raises(ValueError):
            validate_score(bad)


@given(
    score=st.integers(min_value=-3, max_value=9),
    thinking=st.text(max_size=80),
    before=st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=40),
    after=st.text(alphabet=st.characters(blacklist_characters="{}`"), max_size=40),
    fenced=st.booleans(),
)
def test_parse_rating_roundtrip_any_rationale(
    score: int, thinking: str, before: str, after: str, fenced: bool
) -> None:
    """Whatever the rationale text and chatter around it, the JSON's score is recovered,
    and out-of-range scores are always rejected."""
    body = json.dumps({"thinking": thinking, "score": score})
    answer = f"{before}\n```json\n{body}\n```\n{after}" if fenced else f"{before} {body} {after}"
    if 1 <= score <= 5:
        assert parse_rating(answer) == ParsedRating(score, thinking.strip())
    else:
        with pytest.raises(RatingParseError):
            parse_rating(answer)
