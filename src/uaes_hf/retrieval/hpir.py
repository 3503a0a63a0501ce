"""The HPIR-style benchmark metric: agreement of a model's preferences with human votes.

Data (one item per row): a ``query``, an ``aspect`` (``accuracy``, ``aesthetics``,
``diversity``, ...), two groups of images ``group_a`` and ``group_b``, and how many
annotators voted for each group, ``votes_a`` and ``votes_b`` (repeated labelling; their
split is the label's confidence). A model predicts which group it prefers: ``0`` for
``group_a``, ``1`` for ``group_b``. With ``share_a = votes_a / (votes_a + votes_b)``:

- soft accuracy: the expected agreement with an annotator drawn at random, i.e. the vote
  share of the predicted group (``share_a`` or ``1 - share_a``), averaged over items;
- hard accuracy: agreement with the majority vote, averaged over items without a tie (tied
  items are skipped; NaN if every item is tied);
- oracle (soft) ceiling: ``mean(max(share_a, 1 - share_a))``, the best soft accuracy any
  predictor can reach (annotators disagree);
- normalised score: ``(soft - 0.5) / (oracle - 0.5)``: 0 at chance (a coin flip has an
  expected soft accuracy of exactly 0.5), 1 at the ceiling; NaN when every item is a tie.

Example:
    >>> r = hpir_scores([0, 1, 0, 1], [[3, 1], [0, 4], [2, 2], [3, 1]])
    >>> r["soft_accuracy"], r["oracle_soft_accuracy"], r["normalized_score"]
    (0.625, 0.75, 0.5)
    >>> round(r["hard_accuracy"], 4), r["n_ties"]
    (0.6667, 1)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

HPIR_COLUMNS: tuple[str, ...] = ("query", "aspect", "group_a", "group_b", "votes_a", "votes_b")
HPIR_ASPECTS: tuple[str, ...] = ("accuracy", "aesthetics", "diversity")


def _check_votes(references: Any) -> np.ndarray:
    votes = np.asarray(references)
    if votes.ndim != 2 or votes.shape[1] != 2 or votes.shape[0] == 0:
        raise ValueError(
            f"references must be a list of [votes_a, votes_b] pairs, got shape {votes.shape}"
        )
    if not np.issubdtype(votes.dtype, np.number) or np.isnan(votes.astype(float)).any():
        raise ValueError("votes must be numbers (no NaN)")
    if (votes < 0).any() or (votes != np.round(votes)).any():
        raise ValueError("votes must be non-negative integers")
    empty = np.nonzero(votes.sum(axis=1) == 0)[0]
    if empty.size:
        raise ValueError(f"items {empty[:5].tolist()} have no votes at all")
    return votes.astype(np.int64)


def _check_predictions(predictions: Any, n: int) -> np.ndarray:
    pred = np.asarray(predictions)
    if pred.shape != (n,):
        raise ValueError(f"predictions must hold one choice per item ({n}), got shape {pred.shape}")
    if not np.isin(pred, (0, 1)).all():
        raise ValueError("predictions must be 0 (prefers group_a) or 1 (prefers group_b)")
    return pred.astype(np.int64)


def _scores(pred: np.ndarray, votes: np.ndarray) -> dict[str, Any]:
    share_a = votes[:, 0] / votes.sum(axis=1)
    chosen = np.where(pred == 0, share_a, 1.0 - share_a)
    soft = float(chosen.mean())
    oracle = float(np.maximum(share_a, 1.0 - share_a).mean())
    decided = votes[:, 0] != votes[:, 1]
    majority = (votes[:, 1] > votes[:, 0]).astype(np.int64)
    hard = float((pred[decided] == majority[decided]).mean()) if decided.any() else math.nan
    normalized = (soft - 0.5) / (oracle - 0.5) if oracle > 0.5 else math.nan
    return {
        "soft_accuracy": soft,
        "hard_accuracy": hard,
        "oracle_soft_accuracy": oracle,
        "normalized_score": normalized,
        "n_items": int(votes.shape[0]),
        "n_hard_items": int(decided.sum()),
        "n_ties": int((~decided).sum()),
    }


def hpir_scores(
    predictions: Sequence[int], references: Any, aspects: Sequence[str] | None = None
) -> dict[str, Any]:
    """Soft/hard accuracy, oracle ceiling and normalised score (see the module doc).

    Args:
        predictions: per item, 0 (the model prefers ``group_a``) or 1 (``group_b``).
        references: per item, ``[votes_a, votes_b]``.
        aspects: optional aspect name per item; adds ``per_aspect`` results.
    """
    votes = _check_votes(references)
    pred = _check_predictions(predictions, votes.shape[0])
    result = _scores(pred, votes)
    if aspects is not None:
        names = np.asarray([str(a) for a in aspects])
        if names.shape != (votes.shape[0],):
            raise ValueError(f"aspects must name one aspect per item ({votes.shape[0]})")
        result["per_aspect"] = {
            name: _scores(pred[names == name], votes[names == name])
            for name in sorted(set(names.tolist()))
        }
    return result


def predict_preferences(
    query_embeddings: Any, group_a_embeddings: Sequence[Any], group_b_embeddings: Sequence[Any]
) -> list[int]:
    """A retriever's choice per item: the group whose images are on average more similar
    (cosine) to the query's embedding; 0 = ``group_a`` (also on an exact tie), 1 = ``group_b``.

    Example:
        >>> import numpy as np
        >>> predict_preferences(np.array([[1.0, 0.0]]), [np.array([[0.0, 1.0]])],
        ...                     [np.array([[1.0, 0.1], [0.9, 0.0]])])
        [1]
    """
    queries = np.asarray(query_embeddings, dtype=np.float64)
    if queries.ndim != 2 or not (
        len(queries) == len(group_a_embeddings) == len(group_b_embeddings)
    ):
        raise ValueError("need one query embedding and two image groups per item")

    def mean_cosine(query: np.ndarray, group: Any) -> float:
        images = np.asarray(group, dtype=np.float64)
        if images.ndim != 2 or images.shape[0] == 0 or images.shape[1] != query.size:
            raise ValueError(f"an image group must be a non-empty K x {query.size} array")
        images = images / np.linalg.norm(images, axis=1, keepdims=True).clip(1e-12)
        return float((images @ (query / max(np.linalg.norm(query), 1e-12))).mean())

    return [
        int(mean_cosine(q, b) > mean_cosine(q, a))
        for q, a, b in zip(queries, group_a_embeddings, group_b_embeddings, strict=True)
    ]


def validate_hpir_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check rows of the documented HPIR format; returns them unchanged.

    Example:
        >>> validate_hpir_rows([{"query": "a dog", "aspect": "aesthetics", "group_a": ["x.png"],
        ...                      "group_b": ["y.png"], "votes_a": 2, "votes_b": 1}])[0]["votes_a"]
        2
    """
    for number, row in enumerate(rows):
        missing = [c for c in HPIR_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"HPIR row {number} lacks columns {missing}")
        if not isinstance(row["query"], str) or not row["query"].strip():
            raise ValueError(f"HPIR row {number}: query must be a non-empty string")
        for group in ("group_a", "group_b"):
            if isinstance(row[group], str) or not len(row[group]):
                raise ValueError(f"HPIR row {number}: {group} must be a non-empty list of images")
    _check_votes([[row["votes_a"], row["votes_b"]] for row in rows])
    return list(rows)
