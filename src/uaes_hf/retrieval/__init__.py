"""Aesthetic image retrieval: query rephrasing, a judged win rate, an HPIR-style metric and
preference fine-tuning of a dual encoder (the related study of arXiv 2406.09397).

Modules (nothing heavy is imported here; the names below load on first use):

- ``corpus``: image-text pairs from installed packages (Open Clip Art, embedded photos);
- ``encoders``, ``heads``, ``lit``: dual encoders (offline towers + trained linear heads, or
  a Hub CLIP/SigLIP), LiT training, caption recall; ``index``: exact top-k search;
- ``rephrase``: LLM query rephrasing (client or packaged LM, durable store);
- ``evaluation``: aesthetics@k, relevance@k, diversity@k; ``judge`` and ``winrate``: the
  order-swapped pairwise judge (VLM or offline proxy) and its statistics;
- ``hpir`` and ``votes``: the HPIR-style metric, vote log and aggregation; ``tabs``: the
  Gradio vote and results tabs;
- ``preference``, ``dpo``, ``finetune``: grid pairs, ranked DPO, resumable fine-tuning;
- ``config``, ``pipeline``, ``report``: ``uaes retrieval run``.

Example:
    >>> from uaes_hf.retrieval import hpir_scores
    >>> hpir_scores([0], [[2, 1]])["soft_accuracy"]
    0.6666666666666666
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "build_corpus": "uaes_hf.retrieval.corpus",
    "DualEncoder": "uaes_hf.retrieval.encoders",
    "HFTowers": "uaes_hf.retrieval.encoders",
    "PackagedTowers": "uaes_hf.retrieval.encoders",
    "ImageIndex": "uaes_hf.retrieval.index",
    "rephrase_queries": "uaes_hf.retrieval.rephrase",
    "judge_pairwise": "uaes_hf.retrieval.judge",
    "win_rate_stats": "uaes_hf.retrieval.winrate",
    "hpir_scores": "uaes_hf.retrieval.hpir",
    "partial_order_pairs": "uaes_hf.retrieval.preference",
    "ranked_dpo_loss": "uaes_hf.retrieval.dpo",
    "finetune": "uaes_hf.retrieval.finetune",
    "run_retrieval": "uaes_hf.retrieval.pipeline",
    "load_config": "uaes_hf.retrieval.config",
}

__getattr__ = lazy_exports("uaes_hf.retrieval", _LAZY)

__all__ = list(_LAZY)
