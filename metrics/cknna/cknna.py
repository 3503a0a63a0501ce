"""CKA over mutual nearest neighbours as an `evaluate` metric (a thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/cknna")`` (or ``"<org>/cknna"`` from the Hub); the
computation is ``uaes_hf.alignment.compare(..., metric="cknna")``. The card is README.md.
"""

from __future__ import annotations

import evaluate

from uaes_hf.hub import metric_module

_DESCRIPTION = """\
CKNNA is CKA (unbiased HSIC, linear kernel) restricted to the pairs of samples that are
k-nearest neighbours in both spaces (Huh et al., 2024); about 0 for unrelated spaces and 1
for identical ones.
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
    >>> metric = evaluate.load("metrics/cknna")  # or "<org>/cknna" from the Hub
    >>> x = np.random.default_rng(0).normal(size=(40, 6))
    >>> metric.compute(predictions=x, references=2 * x, k=5)  # one space, rescaled
    {'cknna': 1.0, 'chance_level': None}
"""


@evaluate.utils.file_utils.add_start_docstrings(
    _DESCRIPTION, metric_module.KWARGS_DESCRIPTION, _EXAMPLES
)
class CKNNA(metric_module.AlignmentMetric):
    """CKNNA between two feature matrices (predictions: model A, references: model B)."""

    metric = "cknna"
    description = _DESCRIPTION
    examples = _EXAMPLES
    citation = _CITATION
