"""Build the study's parts from configuration sections (towers, scorer, LLM, judge).

Each factory validates its section and fails with one clear message before any work starts
(a missing key, an unknown name); keys come from ``OPENAI_API_KEY`` only.

Example:
    >>> from uaes_hf.retrieval.config import config_from_dict
    >>> make_scorer(config_from_dict({}).scorer).name
    'classical-heuristic-v1'
"""

from __future__ import annotations

from typing import Any

from uaes_hf.retrieval.config import (
    EncoderSection,
    JudgeSection,
    RephraseSection,
    ScorerSection,
)


def make_towers(section: EncoderSection) -> Any:
    """The frozen towers of the configured encoder (models load on first use)."""
    if section.kind == "packaged":
        from uaes_hf.retrieval.encoders import PackagedTowers

        return PackagedTowers(section.image_size, section.batch_size, section.device)
    from uaes_hf.retrieval.encoders import HFTowers

    assert section.model is not None  # checked by config_from_dict
    return HFTowers(
        section.model,
        revision=section.revision,
        batch_size=section.batch_size,
        device=section.device,
    )


def chat_client(model: str, base_url: str | None, concurrency: int = 4) -> Any:
    """A checked OpenAI-compatible client (one clear error for a missing key or endpoint)."""
    from uaes_hf.annotate.client import ChatClient, ChatConfig

    client = ChatClient(ChatConfig(model=model, base_url=base_url, concurrency=concurrency))
    client.preflight()
    return client


def make_scorer(section: ScorerSection, store: Any = None) -> Any:
    """The configured image aesthetic scorer (see :mod:`uaes_hf.images.scorers`)."""
    from uaes_hf.images import scorers as image_scorers

    if section.name == "classical":
        return image_scorers.ClassicalAestheticScorer()
    if section.name == "laion":
        kwargs = {"clip_model": section.model} if section.model else {}
        return image_scorers.LaionPredictorScorer(**kwargs)
    if store is None:
        raise ValueError("the VLM aesthetic scorer needs a result store")
    client = chat_client(section.model or "gpt-4o", section.base_url)
    return image_scorers.VLMScorer(client, store, progress=False)


def make_rephrase_backend(section: RephraseSection) -> Any:
    """The rephrasing backend, or ``None`` for ``backend: none`` (queries kept as typed)."""
    from uaes_hf.retrieval import rephrase

    if section.backend == "none":
        return None
    if section.backend == "local":
        return rephrase.LocalRephraseBackend(
            section.model, max_new_tokens=section.max_new_tokens, batch_size=section.batch_size
        )
    client = chat_client(section.model, section.base_url, section.concurrency)
    return rephrase.ChatRephraseBackend(client, max_tokens=max(section.max_new_tokens, 60))


def make_vlm_judge(section: JudgeSection, image_paths: list[str]) -> Any:
    """The VLM row judge (the proxy judge is built from scores by the pipeline)."""
    from uaes_hf.retrieval.judge import VLMJudge

    return VLMJudge(chat_client(section.model, section.base_url, section.concurrency), image_paths)
