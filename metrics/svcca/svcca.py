"""Singular vector canonical correlation analysis as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/svcca")`` (or ``"<org>/svcca"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="svcca")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
SVCCA keeps the top `cca_dim` singular directions of each (standardised) representation
and averages the canonical correlations between the two (Raghu et al., 2017;
platonic-rep's svcca), with an exact SVD by default (`svd="randomized"`: seeded).
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
    >>> metric = evaluate.load("metrics/svcca")  # or "<org>/svcca" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5, cca_dim=4)  # one space, rescaled
    {'svcca': 1.0, 'chance_level': None}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class SVCCA(metric_module.AlignmentMetric):
    """SVCCA between two feature matrices (predictions: model A, references: model B)."""

    metric = "svcca"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
