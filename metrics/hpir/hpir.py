"""HPIR-style preference accuracy as an `evaluate` metric (thin shell over uaes_hf).

Load it with ``evaluate.load("metrics/hpir")``; the computation is
``uaes_hf.retrieval.hpir.hpir_scores``. The examples are in the class docstring.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from uaes_hf.retrieval.hpir import hpir_scores

_DESCRIPTION = """\
HPIR-style accuracy of a model's preferences between two groups of retrieved images,
against repeated human votes (the benchmark design of "Aligning Vision Models with Human
Aesthetics in Retrieval", arXiv 2406.09397; its data is not public, the definitions here
are ours). Per item a model predicts 0 (it prefers group_a) or 1 (group_b); the reference
is the pair of vote counts [votes_a, votes_b]. With share_a = votes_a / (votes_a + votes_b):
soft_accuracy = mean share of the predicted group (expected agreement with a random
annotator); hard_accuracy = agreement with the majority, tied items skipped;
oracle_soft_accuracy = mean max(share_a, 1 - share_a), the best reachable soft accuracy;
normalized_score = (soft - 0.5) / (oracle - 0.5), 0 at chance and 1 at the ceiling.
"""

_CITATION = """\
@inproceedings{zhang2024aligning,
  title     = {Aligning Vision Models with Human Aesthetics in Retrieval: Benchmarks and Algorithms},
  author    = {Zhang, Miaosen and others},
  booktitle = {Advances in Neural Information Processing Systems},
  year      = {2024}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: per item, 0 (the model prefers group_a) or 1 (group_b).
    references: per item, [votes_a, votes_b] (non-negative integers, not both 0).
    aspects (list of str, optional): aspect of each item (accuracy, aesthetics, diversity);
        adds `per_aspect` results.
Returns:
    soft_accuracy, hard_accuracy (NaN if every item is tied), oracle_soft_accuracy,
    normalized_score (NaN if every item is tied), n_items, n_hard_items, n_ties,
    per_aspect (only with aspects).
Examples:
    >>> import evaluate
    >>> metric = evaluate.load("metrics/hpir")  # or "<org>/hpir" from the Hub
    >>> metric.compute(predictions=[0, 1, 0, 1], references=[[3, 1], [0, 4], [2, 2], [3, 1]])
    {'soft_accuracy': 0.625, 'hard_accuracy': 0.666..., 'oracle_soft_accuracy': 0.75,
     'normalized_score': 0.5, 'n_items': 4, 'n_hard_items': 3, 'n_ties': 1}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HPIR(evaluate.Metric):
    """Soft/hard accuracy of group preferences against human votes."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {
                    "predictions": datasets.Value("int64"),
                    "references": datasets.Sequence(datasets.Value("int64"), length=2),
                }
            ),
            reference_urls=["https://arxiv.org/abs/2406.09397"],
        )

    def _compute(self, predictions: Any, references: Any, aspects: Any = None) -> dict[str, Any]:
        return hpir_scores(list(predictions), [list(r) for r in references], aspects)
