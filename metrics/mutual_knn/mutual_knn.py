"""Mutual k-nearest-neighbour alignment as an `evaluate` metric (thin shell over uaes_hf).

>>> import evaluate                                           # doctest: +SKIP
>>> metric = evaluate.load("metrics/mutual_knn")              # doctest: +SKIP
>>> metric.compute(predictions=feats_a, references=feats_b, k=10)  # doctest: +SKIP
{'mutual_knn': 0.41, 'chance_level': 0.0097...}
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate
import numpy as np

from uaes_hf.alignment import (
    chance_level,
    mutual_knn,
    mutual_knn_per_sample,
    nearest_neighbors,
    permutation_test,
)

_DESCRIPTION = """\
Mutual kNN measures how much two representations of the same N samples agree on which
samples are neighbours. Each row is L2-normalised, every sample's k nearest other samples
(cosine similarity) are found in each space, and the score is the mean over samples of
|kNN_A(i) ∩ kNN_B(i)| / k (Huh et al., 2024, "The Platonic Representation Hypothesis").
It is 1 when the neighbourhoods coincide and about k / (N - 1) (`chance_level`) for
unrelated spaces. With `permutations > 0` the score is calibrated against a row-permutation
null: `calibrated_score` = (s - tau) / (1 - tau), tau the (1 - alpha) null quantile, with an
add-one permutation `p_value`.
"""

_CITATION = """\
@inproceedings{huh2024platonic,
  title     = {The Platonic Representation Hypothesis},
  author    = {Huh, Minyoung and Cheung, Brian and Wang, Tongzhou and Isola, Phillip},
  booktitle = {Proceedings of the 41st International Conference on Machine Learning},
  year      = {2024}
}
@software{uaes_hf,
  title = {uaes-hf: measuring whether AI models agree on aesthetic data},
  year  = {2026}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: features of model A, an N x D_a array (one row per sample), as a numpy
        array, torch tensor or list of rows.
    references: features of model B for the same N samples in the same order, N x D_b
        (D_b may differ from D_a).
    k (int, default 10): neighbours per sample, 1 <= k < N.
    per_sample (bool, default False): also return the N per-sample scores.
    permutations (int, default 0): if > 0, number of row permutations for the
        calibrated score and p-value.
    alpha (float, default 0.05): the null quantile is 1 - alpha.
    seed (int, default 0): seed of the permutations.
Returns:
    mutual_knn (float): the score in [0, 1].
    chance_level (float): k / (N - 1), the expected score of unrelated features.
    per_sample (list of float): only with per_sample=True.
    calibrated_score (float), p_value (float): only with permutations > 0.
Examples:
    >>> import numpy as np, evaluate
    >>> metric = evaluate.load("metrics/mutual_knn")  # doctest: +SKIP
    >>> x = np.random.default_rng(0).normal(size=(100, 16))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # doctest: +SKIP
    {'mutual_knn': 1.0, 'chance_level': 0.050505050505050504}
"""

# Each sample (row) is stored as a D x 1 array: ArrayXD columns skip the per-element Python
# conversion that Sequence(Value) features go through (measured in README.md). Only their
# first dimension may vary, hence D x 1 rather than 1 x D.
_ROW_FEATURE = datasets.Array2D(shape=(None, 1), dtype="float32")


def _as_rows(x: Any) -> Any:
    """N x D input -> N x D x 1, the stored layout; anything else is left for validation."""
    if x is None:
        return None
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    array = np.asarray(x)
    if array.ndim == 2 and array.dtype != object:
        return array[:, :, None]
    return x


def _as_matrix(x: Any, name: str) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype == object:
        raise ValueError(f"the rows of {name} have different lengths; each must have D values")
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    raise ValueError(f"{name} must be an N x D matrix, got shape {array.shape}")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class MutualKNN(evaluate.Metric):
    """Mutual kNN alignment between two feature matrices."""

    def _info(self) -> evaluate.MetricInfo:
        info = evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _ROW_FEATURE, "references": _ROW_FEATURE}),
            reference_urls=["https://arxiv.org/abs/2405.07987"],
        )
        # MetricInfo only accepts format="numpy" for Value features, but datasets returns
        # ArrayXD columns as numpy arrays fine; set after the check so _compute receives one
        # N x D x 1 array instead of nested Python lists.
        info.format = "numpy"
        return info

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add rows (N x D); batches are concatenated along N."""
        super().add_batch(
            predictions=_as_rows(predictions), references=_as_rows(references), **kwargs
        )

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one sample: a D_a vector and a D_b vector."""
        prediction = None if prediction is None else np.asarray(prediction).reshape(-1, 1)
        reference = None if reference is None else np.asarray(reference).reshape(-1, 1)
        super().add(prediction=prediction, reference=reference, **kwargs)

    def compute(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> Any:
        """Score the given (or accumulated) rows; see the module description."""
        return super().compute(
            predictions=_as_rows(predictions), references=_as_rows(references), **kwargs
        )

    def _compute(
        self,
        predictions: Any,
        references: Any,
        k: int = 10,
        per_sample: bool = False,
        permutations: int = 0,
        alpha: float = 0.05,
        seed: int = 0,
    ) -> dict[str, Any]:
        a = _as_matrix(predictions, "predictions")
        b = _as_matrix(references, "references")
        index_a = nearest_neighbors(a, k, name="predictions") if a.shape[0] > k else a
        index_b = nearest_neighbors(b, k, name="references") if b.shape[0] > k else b
        result: dict[str, Any] = {
            "mutual_knn": mutual_knn(index_a, index_b, k),
            "chance_level": chance_level(k, a.shape[0]),
        }
        if per_sample:
            result["per_sample"] = mutual_knn_per_sample(index_a, index_b, k).tolist()
        if permutations:
            calibrated = permutation_test(
                index_a, index_b, k, n_permutations=permutations, alpha=alpha, seed=seed
            )
            result["calibrated_score"] = calibrated.calibrated
            result["p_value"] = calibrated.p_value
        return result
