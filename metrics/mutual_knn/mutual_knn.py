"""Mutual k-nearest-neighbour alignment as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/mutual_knn")`` (or ``"<org>/mutual_knn"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="mutual_knn")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
Mutual kNN measures how much two representations of the same N samples agree on which
samples are neighbours: each row is L2-normalised, every sample's k nearest other samples
(cosine) are found in each space, and the score is the mean over samples of
|kNN_A(i) ∩ kNN_B(i)| / k (Huh et al., 2024). 1 when the neighbourhoods coincide, about
k / (N - 1) (`chance_level`) for unrelated spaces.
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


_EXAMPLES = """
Examples:
    >>> import evaluate
    >>> import numpy as np
    >>> metric = evaluate.load("metrics/mutual_knn")  # or "<org>/mutual_knn" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # one space, rescaled
    {'mutual_knn': 1.0, 'chance_level': 0.128...}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class MutualKNN(metric_module.AlignmentMetric):
    """Mutual kNN between two feature matrices (predictions: model A, references: model B)."""

    metric = "mutual_knn"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
