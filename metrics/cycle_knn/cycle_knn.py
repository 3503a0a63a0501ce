"""Cycle k-nearest-neighbour alignment as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/cycle_knn")`` (or ``"<org>/cycle_knn"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="cycle_knn")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
Cycle kNN asks whether a sample comes back to itself through B's then A's neighbours:
per sample i, 1 if i is among A's k neighbours of at least one of B's k neighbours of i.
The score is the mean over samples (platonic-rep's cycle_knn); not symmetric in A and B.
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
    >>> metric = evaluate.load("metrics/cycle_knn")  # or "<org>/cycle_knn" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # one space, rescaled
    {'cycle_knn': 0.975, 'chance_level': 0.500...}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class CycleKNN(metric_module.AlignmentMetric):
    """Cycle kNN between two feature matrices (predictions: model A, references: model B)."""

    metric = "cycle_knn"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
