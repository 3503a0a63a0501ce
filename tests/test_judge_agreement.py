"""Agreement metrics against independent brute-force formulas, scipy and scikit-learn."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uaes_hf.annotate.agreement import (
    agreement_report,
    average_ranks,
    confusion_matrix,
    exact_agreement,
    quadratic_weighted_kappa,
    read_ratings,
    spearman_rho,
    within_one_agreement,
)

scores = st.integers(min_value=1, max_value=5)
pairs = st.integers(min_value=2, max_value=40).flatmap(
    lambda n: st.tuples(
        st.lists(scores, min_size=n, max_size=n), st.lists(scores, min_size=n, max_size=n)
    )
)


def brute_ranks(values: list[int]) -> list[float]:
    # rank = (#smaller) + (#equal + 1) / 2, computed by counting, not sorting
    return [sum(v < x for v in values) + (sum(v == x for v in values) + 1) / 2 for x in values]


def brute_spearman(a: list[int], b: list[int]) -> float:
    ra, rb = brute_ranks(a), brute_ranks(b)
    n = len(a)
    ma, mb = sum(ra) / n, sum(rb) / n
    num = sum((ra[i] - ma) * (rb[i] - mb) for i in range(n))
    den = math.sqrt(sum((r - ma) ** 2 for r in ra)) * math.sqrt(sum((r - mb) ** 2 for r in rb))
    return num / den if den else float("nan")


def brute_qwk(a: list[int], b: list[int]) -> float:
    # Quadratic kappa as 1 - E[(a_k - b_k)^2] / E[(a_k - b_l)^2] over all cross pairs:
    # the pairwise form, no confusion matrix or marginals involved.
    n = len(a)
    observed = sum((a[k] - b[k]) ** 2 for k in range(n)) / n
    chance = sum((a[k] - b[m]) ** 2 for k in range(n) for m in range(n)) / (n * n)
    return 1 - observed / chance if chance else float("nan")


def same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or math.isclose(x, y, abs_tol=1e-9)


@settings(max_examples=150, deadline=None)
@given(pairs)
def test_metrics_match_brute_force(pair: tuple[list[int], list[int]]) -> None:
    a, b = pair
    assert average_ranks(a) == brute_ranks(a)
    assert same(spearman_rho(a, b), brute_spearman(a, b))
    assert same(quadratic_weighted_kappa(a, b), brute_qwk(a, b))
    assert exact_agreement(a, b) == sum(x == y for x, y in zip(a, b, strict=False)) / len(a)
    assert within_one_agreement(a, b) == sum(
        abs(x - y) < 2 for x, y in zip(a, b, strict=False)
    ) / len(a)
    matrix = confusion_matrix(a, b)
    for i in range(5):
        for j in range(5):
            assert matrix[i][j] == sum(
                1 for x, y in zip(a, b, strict=False) if x == i + 1 and y == j + 1
            )


@pytest.mark.filterwarnings("ignore:.*only one label in common")
@settings(max_examples=60, deadline=None)
@given(pairs)
def test_metrics_match_scipy_and_sklearn(pair: tuple[list[int], list[int]]) -> None:
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score
    from sklearn.metrics import confusion_matrix as sk_confusion

    a, b = pair
    if len(set(a)) > 1 and len(set(b)) > 1:
        assert math.isclose(spearman_rho(a, b), spearmanr(a, b).statistic, abs_tol=1e-9)
    expected_kappa = cohen_kappa_score(a, b, weights="quadratic", labels=[1, 2, 3, 4, 5])
    assert same(quadratic_weighted_kappa(a, b), float(expected_kappa))
    assert confusion_matrix(a, b) == sk_confusion(a, b, labels=[1, 2, 3, 4, 5]).tolist()


@given(st.lists(scores, min_size=2, max_size=30))
def test_perfect_agreement(a: list[int]) -> None:
    assert exact_agreement(a, a) == 1.0 and within_one_agreement(a, a) == 1.0
    if len(set(a)) > 1:
        assert math.isclose(quadratic_weighted_kappa(a, a), 1.0)
        assert math.isclose(spearman_rho(a, a), 1.0)


def test_known_values() -> None:
    a, b = [1, 2, 3, 4, 5], [1, 2, 3, 5, 4]
    assert math.isclose(spearman_rho(a, b), 0.9)
    assert exact_agreement(a, b) == 0.6 and within_one_agreement(a, b) == 1.0
    assert math.isnan(quadratic_weighted_kappa([3, 3], [3, 3]))


@pytest.mark.parametrize(
    "a, b, message",
    [
        ([1, 2], [1], "length"),
        ([], [], "at least one"),
        ([0, 2], [1, 2], "ints 1-5"),
        ([1, 6], [1, 2], "ints 1-5"),
        ([1.5, 2], [1, 2], "ints 1-5"),
    ],
)
def test_bad_inputs_raise_value_error(a: list, b: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        quadratic_weighted_kappa(a, b)


def test_read_ratings_and_report(tmp_path: Path) -> None:
    judge = tmp_path / "ratings.csv"
    judge.write_text("id,score,rationale,annotator\na,1,x,j\nb,3,y,j\nc,5,z,j\nd,,failed,j\n")
    human = tmp_path / "human.jsonl"
    human.write_text(
        "".join(
            json.dumps({"id": i, "score": s}) + "\n"
            for i, s in [("a", 1), ("b", 4), ("c", 5), ("e", 2)]
        )
    )
    report = agreement_report(read_ratings(judge), read_ratings(human))
    assert report.n == 3 and report.only_judge == 0 and report.only_human == 1
    assert report.confusion[2][3] == 1
    assert "quadratic-weighted kappa" in report.format()


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,rating\na,3\n", "no 'score' column"),
        ("id,score\na,three\n", "not a number"),
        ("id,score\na,3.5\n", "not an integer 1-5"),
        ("id,score\na,9\n", "not an integer 1-5"),
        ("id,score\na,3\na,4\n", "duplicate id 'a'"),
        ("id,score\n,3\n", "empty 'id'"),
    ],
)
def test_read_ratings_errors_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_ratings(path)


def test_read_ratings_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_ratings(tmp_path / "nope.csv")


def test_no_shared_ids() -> None:
    with pytest.raises(ValueError, match="share no id"):
        agreement_report({"a": 1}, {"b": 2})


def test_cli_agreement(tmp_path: Path) -> None:
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("id,score,human_score\na,1,1\nb,2,3\nc,4,4\nd,5,5\n")
    human = tmp_path / "human.csv"
    human.write_text("id,score\na,1\nb,3\nc,4\nd,5\n")
    for args in ([str(ratings), str(human)], [str(ratings)]):
        out = subprocess.run(
            [sys.executable, "-m", "uaes_hf.cli", "annotate", "agreement", *args, "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(out.stdout)
        assert report["n"] == 4 and report["exact"] == 0.75
        assert math.isclose(report["quadratic_kappa"], brute_qwk([1, 2, 4, 5], [1, 3, 4, 5]))
    bad = subprocess.run(
        [sys.executable, "-m", "uaes_hf.cli", "annotate", "agreement", str(human)],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "human_score" in bad.stderr and "Traceback" not in bad.stderr
