"""Agreement between the judge's ratings and human ratings (integer scores 1..5).

Pure functions on two equal-length score sequences, plus a CSV reader and a report that
joins two rating files on ``id``:

- Spearman's rho (Pearson correlation of average ranks; ties get their mean rank);
- quadratic-weighted Cohen's kappa over the fixed labels 1..5;
- exact agreement and within-one agreement (share of |a - b| <= 1);
- the 5 x 5 confusion matrix (rows: judge, columns: human).

Example:
    >>> judge, human = [1, 2, 3, 4, 5], [1, 2, 3, 5, 4]
    >>> round(spearman_rho(judge, human), 3), exact_agreement(judge, human)
    (0.9, 0.6)
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LABELS = (1, 2, 3, 4, 5)


def _check_pair(a: Sequence[int], b: Sequence[int]) -> tuple[list[int], list[int]]:
    a, b = list(a), list(b)
    if len(a) != len(b):
        raise ValueError(f"score sequences differ in length: {len(a)} vs {len(b)}")
    if not a:
        raise ValueError("need at least one pair of scores")
    for name, seq in (("first", a), ("second", b)):
        for value in seq:
            if isinstance(value, bool) or not isinstance(value, int) or value not in LABELS:
                raise ValueError(f"{name} sequence holds {value!r}; scores must be ints 1-5")
    return a, b


def average_ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank.

    Example:
        >>> average_ranks([10, 20, 20, 30])
        [1.0, 2.5, 2.5, 4.0]
    """
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman_rho(a: Sequence[int], b: Sequence[int]) -> float:
    """Spearman's rho; NaN when either side is constant (rank correlation undefined)."""
    a, b = _check_pair(a, b)
    ra, rb = average_ranks(a), average_ranks(b)
    n = len(ra)
    ma, mb = sum(ra) / n, sum(rb) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb, strict=True))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return float("nan")
    return cov / math.sqrt(va * vb)


def confusion_matrix(a: Sequence[int], b: Sequence[int]) -> list[list[int]]:
    """5 x 5 counts: row = score in ``a`` (judge), column = score in ``b`` (human)."""
    a, b = _check_pair(a, b)
    matrix = [[0] * len(LABELS) for _ in LABELS]
    for x, y in zip(a, b, strict=True):
        matrix[x - 1][y - 1] += 1
    return matrix


def quadratic_weighted_kappa(a: Sequence[int], b: Sequence[int]) -> float:
    """Cohen's kappa with quadratic weights ``(i - j)^2 / (K - 1)^2`` over labels 1..5.

    1 = perfect agreement, 0 = chance level; NaN when the expected disagreement is 0
    (both raters gave one and the same score to everything).
    """
    observed = confusion_matrix(a, b)
    n = len(list(a))
    k = len(LABELS)
    row = [sum(r) for r in observed]
    col = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    num = den = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2 / (k - 1) ** 2
            num += weight * observed[i][j] / n
            den += weight * row[i] * col[j] / (n * n)
    if den == 0:
        return float("nan")
    return 1.0 - num / den


def exact_agreement(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of pairs with the same score."""
    a, b = _check_pair(a, b)
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def within_one_agreement(a: Sequence[int], b: Sequence[int]) -> float:
    """Share of pairs whose scores differ by at most 1."""
    a, b = _check_pair(a, b)
    return sum(abs(x - y) <= 1 for x, y in zip(a, b, strict=True)) / len(a)


@dataclass(frozen=True)
class AgreementReport:
    """Judge vs human agreement on the ``n`` ids both rated."""

    n: int
    spearman_rho: float
    quadratic_kappa: float
    exact: float
    within_one: float
    confusion: list[list[int]]
    only_judge: int
    only_human: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def format(self) -> str:
        """Plain-text report with the confusion matrix (rows judge, columns human)."""
        lines = [
            f"items rated by both: {self.n} (only judge: {self.only_judge}, "
            f"only human: {self.only_human})",
            f"Spearman rho:              {self.spearman_rho:.3f}",
            f"quadratic-weighted kappa:  {self.quadratic_kappa:.3f}",
            f"exact agreement:           {self.exact:.3f}",
            f"within-one agreement:      {self.within_one:.3f}",
            "confusion (rows: judge 1-5, columns: human 1-5):",
            "        " + " ".join(f"{h:>5d}" for h in LABELS),
        ]
        for label, row in zip(LABELS, self.confusion, strict=True):
            lines.append(f"  judge {label}" + " ".join(f"{c:>5d}" for c in row))
        return "\n".join(lines)


def agreement_report(judge: Mapping[str, int], human: Mapping[str, int]) -> AgreementReport:
    """Join two ``id -> score`` maps on id and compute every agreement statistic.

    Example:
        >>> r = agreement_report({"a": 1, "b": 3, "c": 5}, {"a": 1, "b": 4, "c": 5, "d": 2})
        >>> r.n, r.exact, r.only_human
        (3, 0.6666666666666666, 1)
    """
    shared = [i for i in judge if i in human]
    if not shared:
        raise ValueError(
            "the judge and human ratings share no id; check that both files use the same ids"
        )
    a = [judge[i] for i in shared]
    b = [human[i] for i in shared]
    return AgreementReport(
        n=len(shared),
        spearman_rho=spearman_rho(a, b),
        quadratic_kappa=quadratic_weighted_kappa(a, b),
        exact=exact_agreement(a, b),
        within_one=within_one_agreement(a, b),
        confusion=confusion_matrix(a, b),
        only_judge=len(judge) - len(shared),
        only_human=sum(1 for i in human if i not in judge),
    )


def read_ratings(
    path: str | Path, id_column: str = "id", score_column: str = "score"
) -> dict[str, int]:
    """Read ``id -> score`` from a CSV (or JSONL) file, with errors that name the problem.

    Rows with an empty score are skipped (unrated); anything else must be an integer 1-5.

    Raises:
        ValueError: missing file or column, non-integer or out-of-range score, duplicate id.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ratings file {path} does not exist")
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8") as fh:
            records = [json.loads(line) for line in fh if line.strip()]
        columns = set().union(*(r.keys() for r in records)) if records else set()
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = set(reader.fieldnames or [])
            records = list(reader)
    for column in (id_column, score_column):
        if column not in columns:
            raise ValueError(
                f"{path} has no {column!r} column (columns: {sorted(columns)}); "
                f"expected at least {id_column!r} and {score_column!r}"
            )
    ratings: dict[str, int] = {}
    for line, record in enumerate(records, start=2):
        raw = record.get(score_column)
        if raw is None or str(raw).strip() == "":
            continue
        item_id = str(record.get(id_column, "")).strip()
        if not item_id:
            raise ValueError(f"{path}, row {line}: empty {id_column!r}")
        text = str(raw).strip()
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{path}, row {line}: score {text!r} is not a number") from None
        if not value.is_integer() or int(value) not in LABELS:
            raise ValueError(f"{path}, row {line}: score {text!r} is not an integer 1-5")
        if item_id in ratings:
            raise ValueError(f"{path}, row {line}: duplicate id {item_id!r}")
        ratings[item_id] = int(value)
    return ratings
