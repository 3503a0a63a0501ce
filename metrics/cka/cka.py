"""Centered kernel alignment as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/cka")`` (or ``"<org>/cka"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="cka")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
CKA is HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with the biased HSIC on L2-normalised
rows (Kornblith et al., 2019), with a linear (default) or RBF kernel (`kernel`,
`rbf_sigma`), as platonic-rep's cka.
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
    >>> metric = evaluate.load("metrics/cka")  # or "<org>/cka" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # one space, rescaled
    {'cka': 1.0, 'chance_level': 0.138...}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class CKA(metric_module.AlignmentMetric):
    """CKA between two feature matrices (predictions: model A, references: model B)."""

    metric = "cka"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
