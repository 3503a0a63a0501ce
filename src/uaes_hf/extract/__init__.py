"""Feature extraction at scale: model registry, LLM and vision features, into the feature
store (:mod:`uaes_hf.features`), in one process or under ``accelerate launch``.

Everything heavy is imported lazily, so ``import uaes_hf.extract`` loads no torch.

Example:
    >>> from uaes_hf.extract import FeatureStore, extract_features
    >>> FeatureStore.__module__, extract_features.__module__
    ('uaes_hf.features.store', 'uaes_hf.extract.run')
    >>> extract_features(["a poem", "a text"], "smollm2-135m").shape  # doctest: +SKIP
    (2, 31, 576)
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "FeatureStore": "uaes_hf.features.store",
    "StoredFeatures": "uaes_hf.features.store",
    "FingerprintMismatchError": "uaes_hf.features.store",
    "FeaturesNotFoundError": "uaes_hf.features.store",
    "dataset_fingerprint": "uaes_hf.features.fingerprint",
    "ModelSpec": "uaes_hf.extract.registry",
    "REGISTRY": "uaes_hf.extract.registry",
    "MODEL_SETS": "uaes_hf.extract.registry",
    "expand_models": "uaes_hf.extract.registry",
    "resolve_model": "uaes_hf.extract.registry",
    "effective_token_caps": "uaes_hf.extract.token_limits",
    "TokenCap": "uaes_hf.extract.token_limits",
    "TextFeatureExtractor": "uaes_hf.extract.text",
    "VisionFeatureExtractor": "uaes_hf.extract.vision",
    "PerplexityScorer": "uaes_hf.extract.perplexity",
    "perplexity_table": "uaes_hf.extract.perplexity",
    "ExtractOptions": "uaes_hf.extract.run",
    "entry_options": "uaes_hf.extract.run",
    "accelerate_launch_command": "uaes_hf.extract.launch",
    "extract_text_group_accelerate": "uaes_hf.extract.launch",
    "extract_features": "uaes_hf.extract.run",
    "extract_layers": "uaes_hf.extract.run",
    "extract_to_store": "uaes_hf.extract.run",
    "load_features": "uaes_hf.extract.run",
    "read_dataset": "uaes_hf.extract.source",
}


__getattr__ = lazy_exports("uaes_hf.extract", _LAZY)


__all__ = sorted(_LAZY)
