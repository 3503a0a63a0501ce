"""The ``evaluate.Metric`` base class of the alignment metric modules (``metrics/<name>/``).

One module per metric, each a few lines: a subclass that sets :attr:`AlignmentMetric.metric`
and its card text. Inputs are two ``N x D`` matrices (``predictions``: model A,
``references``: model B, same samples in the same order); every computation is
:func:`uaes_hf.alignment.compare`. Options that belong to other metrics (``kernel`` for
``mutual_knn``, ...) are ignored, so that ``evaluate.combine`` can pass one set of arguments
to several modules.

Example (from a checkout, where the module folders are):
    >>> import evaluate, numpy as np, uaes_hf
    >>> from pathlib import Path
    >>> module = Path(uaes_hf.__file__).parents[2] / "metrics" / "cka"
    >>> x = np.random.default_rng(0).normal(size=(30, 4))
    >>> round(evaluate.load(str(module)).compute(predictions=x, references=2 * x)["cka"], 6)
    1.0
"""

from __future__ import annotations

import abc
from typing import Any

import datasets
import evaluate
import numpy as np

KWARGS_DESCRIPTION = """
Args:
    predictions: features of model A, an N x D_a array (one row per sample), as a numpy
        array, torch tensor or list of rows.
    references: features of model B for the same N samples in the same order, N x D_b
        (D_b may differ from D_a).
    k (int, default 10): neighbours per sample, 1 <= k < N (neighbour metrics).
    per_sample (bool, default False): also return the N per-sample scores (mutual_knn,
        cycle_knn, lcs_knn, edit_distance_knn).
    permutations (int, default 0): row permutations of B for the calibrated score and
        the p-value (0 = none).
    alpha (float, default 0.05): the calibration level.
    calibration (str, default "quantile"): "quantile" (tau = the 1 - alpha null quantile,
        unclamped) or "order-statistic" (calibrated-similarity's tau, clamped to [0, 1]).
    bootstrap (int, default 0): resamples for a confidence interval (per-sample metrics).
    ci_level (float, default 0.95): the interval's confidence.
    seed (int, default 0): seed of the permutations and the bootstrap.
    outlier_quantile (float, default None): clamp both inputs first with the study's
        outlier clamp at this quantile (e.g. 0.95); outlier_exact (bool): its exact variant.
    kernel ("linear" | "rbf"), rbf_sigma (float): cka and unbiased_cka.
    cca_dim (int), svd ("exact" | "randomized"), svd_seed (int): svcca.
    normalize (bool): lcs_knn divided by k.
    device ("cpu" | "cuda"), dtype ("float32" | "float64"): the neighbour search.
Returns:
    <metric name> (float): the score.
    chance_level (float or None): the expected score of unrelated features in closed
        form, where the metric has one.
    per_sample (list of float): with per_sample=True.
    calibrated_score, p_value, null_mean (float): with permutations > 0.
    ci_low, ci_high (float): with bootstrap > 0.
"""

# Each sample (row) is stored as a D x 1 array: ArrayXD columns skip the per-element Python
# conversion that Sequence(Value) features go through. Only their first dimension may vary,
# hence D x 1 rather than 1 x D.
_ROW_FEATURE = datasets.Array2D(shape=(None, 1), dtype="float32")


def as_rows(x: Any) -> Any:
    """N x D input -> N x D x 1, the stored layout; anything else is left for validation."""
    if x is None:
        return None
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    try:
        array = np.asarray(x)
    except ValueError:
        return x  # ragged rows: reported by as_matrix
    if array.ndim == 2 and array.dtype != object:
        return array[:, :, None]
    return x


def as_matrix(x: Any, name: str) -> np.ndarray:
    """The stored N x D x 1 layout back to a checked N x D matrix."""
    from uaes_hf.alignment.validation import check_matrix

    try:
        array = np.asarray(x)
    except ValueError as err:
        raise ValueError(f"the rows of {name} have different lengths: {err}") from err
    if array.dtype == object:
        raise ValueError(f"the rows of {name} have different lengths; each must have D values")
    if array.ndim == 3 and array.shape[2] == 1:
        return check_matrix(array[:, :, 0], name)
    raise ValueError(f"{name} must be an N x D matrix, got shape {array.shape}")


class AlignmentMetric(evaluate.Metric, abc.ABC):
    """Base of the metric modules: set ``metric`` (a name of ``uaes_hf.alignment.METRICS``)."""

    @property
    @abc.abstractmethod
    def metric(self) -> str:
        """The metric's name (also the key of its score in the result)."""

    description: str = ""
    examples: str = ""  # the module's doctest examples, run by tests/test_metric_module_examples.py
    citation: str = ""
    reference_urls: tuple[str, ...] = ("https://arxiv.org/abs/2405.07987",)

    def _info(self) -> evaluate.MetricInfo:
        info = evaluate.MetricInfo(
            module_type="metric",
            description=self.description,
            citation=self.citation,
            inputs_description=KWARGS_DESCRIPTION + self.examples,
            features=datasets.Features({"predictions": _ROW_FEATURE, "references": _ROW_FEATURE}),
            reference_urls=list(self.reference_urls),
        )
        # MetricInfo only accepts format="numpy" for Value features, but datasets returns
        # ArrayXD columns as numpy arrays fine; set after the check so _compute receives one
        # N x D x 1 array instead of nested Python lists.
        info.format = "numpy"
        return info

    def add_batch(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> None:
        """Add rows (N x D); batches are concatenated along N."""
        super().add_batch(
            predictions=as_rows(predictions), references=as_rows(references), **kwargs
        )

    def add(self, *, prediction: Any = None, reference: Any = None, **kwargs: Any) -> None:
        """Add one sample: a D_a vector and a D_b vector."""
        prediction = None if prediction is None else np.asarray(prediction).reshape(-1, 1)
        reference = None if reference is None else np.asarray(reference).reshape(-1, 1)
        super().add(prediction=prediction, reference=reference, **kwargs)

    def compute(self, *, predictions: Any = None, references: Any = None, **kwargs: Any) -> Any:
        """Score the given (or accumulated) rows; see the module description."""
        return super().compute(
            predictions=as_rows(predictions), references=as_rows(references), **kwargs
        )

    def _compute(
        self,
        predictions: Any,
        references: Any,
        k: int = 10,
        per_sample: bool = False,
        permutations: int = 0,
        alpha: float = 0.05,
        calibration: str = "quantile",
        bootstrap: int = 0,
        ci_level: float = 0.95,
        seed: int = 0,
        outlier_quantile: float | None = None,
        outlier_exact: bool = False,
        kernel: str | None = None,
        rbf_sigma: float | None = None,
        cca_dim: int | None = None,
        svd: str | None = None,
        svd_seed: int | None = None,
        normalize: bool | None = None,
        device: str | None = None,
        dtype: str = "float32",
    ) -> dict[str, Any]:
        from uaes_hf.alignment import compare
        from uaes_hf.alignment.registry import METRIC_OPTIONS
        from uaes_hf.alignment.validation import check_same_samples

        a = as_matrix(predictions, "predictions")
        b = as_matrix(references, "references")
        check_same_samples(a.shape[0], b.shape[0], "predictions", "references")
        given = {
            "kernel": kernel,
            "rbf_sigma": rbf_sigma,
            "cca_dim": cca_dim,
            "svd": svd,
            "svd_seed": svd_seed,
            "normalize": normalize,
        }
        options = {
            name: given[name] for name in METRIC_OPTIONS[self.metric] if given[name] is not None
        }
        result = compare(
            a,
            b,
            metric=self.metric,
            k=k,
            permutations=permutations,
            per_sample=per_sample,
            alpha=alpha,
            calibration=calibration,
            bootstrap=bootstrap,
            ci_level=ci_level,
            seed=seed,
            outlier_quantile=outlier_quantile,
            outlier_exact=outlier_exact,
            device=device,
            dtype=dtype,
            **options,
        )
        out: dict[str, Any] = {self.metric: result.score, "chance_level": result.chance_level}
        if per_sample:
            out["per_sample"] = result.per_sample.tolist()
        if permutations:
            out.update(
                calibrated_score=result.calibrated_score,
                p_value=result.p_value,
                null_mean=result.null_mean,
            )
        if bootstrap:
            out.update(ci_low=result.ci_low, ci_high=result.ci_high)
        return out
