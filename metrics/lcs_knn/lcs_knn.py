"""Longest-common-subsequence kNN alignment as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/lcs_knn")`` (or ``"<org>/lcs_knn"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="lcs_knn")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
LCS kNN is the mean length of the longest common subsequence of A's and B's ordered
lists of each sample's k nearest neighbours (platonic-rep's lcs_knn): a length in [0, k];
`normalize=True` divides it by k. Unlike mutual kNN it rewards agreeing on the order.
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
    >>> metric = evaluate.load("metrics/lcs_knn")  # or "<org>/lcs_knn" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # one space, rescaled
    {'lcs_knn': 5.0, 'chance_level': None}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class LcsKNN(metric_module.AlignmentMetric):
    """LCS kNN between two feature matrices (predictions: model A, references: model B)."""

    metric = "lcs_knn"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
