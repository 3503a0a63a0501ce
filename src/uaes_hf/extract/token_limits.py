"""Each text model's position limit, and the cap it puts on the tokens kept per text.

A model cannot read more tokens than it has positions: a BERT-style encoder indexes a table
of ``max_position_embeddings`` rows and fails deep inside torch on a longer input. So
``max_tokens`` is capped per model at the smallest real limit among the config's
``max_position_embeddings`` / ``n_positions`` / ``n_ctx`` (less the padding offset of
RoBERTa-style models, whose positions start after the pad index) and the tokenizer's
``model_max_length`` (tokenizers without a limit report ``int(1e30)``, which is ignored).
Texts longer than the cap are truncated, and the extractors count them.

:func:`effective_token_caps` lists the cap of every configured model without loading any
weights: a local or packaged folder's ``config.json``, else the Hub config (two small
files), else the position limit recorded in the registry (offline or gated models).

Example:
    >>> position_limit_from_config({"model_type": "bert", "max_position_embeddings": 512})
    (512, 'config.json max_position_embeddings=512')
    >>> position_limit_from_config(
    ...     {"model_type": "mpnet", "max_position_embeddings": 514, "pad_token_id": 1})[0]
    512
    >>> cap = effective_token_caps(["olmo-1b"], 4096, from_hub=False)[0]
    >>> cap.model, cap.requested, cap.cap, cap.source.split(" (")[0]
    ('olmo-1b', 4096, 2048, 'registry: 2048')
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from uaes_hf.extract.registry import ModelSpec, expand_models, resolve_model

POSITION_KEYS: tuple[str, ...] = ("max_position_embeddings", "n_positions", "n_ctx")
# Positions start at pad_token_id + 1 in these models, so pad_token_id + 1 rows are unusable.
OFFSET_POSITION_TYPES: frozenset[str] = frozenset(
    {
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "camembert",
        "mpnet",
        "longformer",
        "data2vec-text",
    }
)
# transformers' "no limit" sentinel is int(1e30); any value this large is not a real limit.
NO_LIMIT = 10**9
HUB_UNREACHABLE = "Hub unreachable"


class TokenCap(NamedTuple):
    """One model's cap: ``cap`` = min(requested, position limit); ``None`` for vision."""

    model: str
    requested: int
    cap: int | None
    source: str


def _real_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0 or value >= NO_LIMIT:
        return None
    return value


def position_limit_from_config(
    config: Mapping[str, Any], tokenizer_max_length: int | None = None
) -> tuple[int | None, str]:
    """The most tokens a model can read, from its config dict (and its tokenizer's limit).

    Returns ``(limit, where it came from)``; ``(None, reason)`` when nothing states a limit
    (e.g. BLOOM's ALiBi). A multimodal config's ``text_config`` is searched as well.

    Example:
        >>> position_limit_from_config({"n_positions": 1024, "n_ctx": 1024}, 10**30)
        (1024, 'config.json n_positions=1024')
        >>> position_limit_from_config({"model_type": "bloom"})
        (None, 'no position limit in config.json or tokenizer_config.json')
    """
    found: list[tuple[int, str]] = []
    sections = [config]
    if isinstance(config.get("text_config"), Mapping):
        sections.append(config["text_config"])
    for section in sections:
        model_type = str(section.get("model_type") or config.get("model_type") or "")
        for key in POSITION_KEYS:
            value = _real_int(section.get(key))
            if value is None:
                continue
            if key == "max_position_embeddings" and model_type in OFFSET_POSITION_TYPES:
                offset = (_real_int(section.get("pad_token_id")) or 0) + 1
                found.append(
                    (value - offset, f"config.json {key}={value} less padding offset {offset}")
                )
            else:
                found.append((value, f"config.json {key}={value}"))
    tokenizer_limit = _real_int(tokenizer_max_length)
    if tokenizer_limit is not None:
        found.append((tokenizer_limit, f"tokenizer model_max_length={tokenizer_limit}"))
    if not found:
        return None, "no position limit in config.json or tokenizer_config.json"
    return min(found, key=lambda item: item[0])


def loaded_position_limit(model_config: Any, tokenizer: Any = None) -> tuple[int | None, str]:
    """:func:`position_limit_from_config` for a loaded transformers config and tokenizer.

    Example:
        >>> from transformers import BertConfig
        >>> loaded_position_limit(BertConfig(max_position_embeddings=128))
        (128, 'config.json max_position_embeddings=128')
    """
    config = model_config.to_dict() if hasattr(model_config, "to_dict") else dict(model_config)
    return position_limit_from_config(config, getattr(tokenizer, "model_max_length", None))


def cap_max_length(requested: int, limit: int | None) -> int:
    """Tokens kept per text: ``requested``, or the model's ``limit`` when that is smaller.

    Example:
        >>> cap_max_length(1024, 512), cap_max_length(256, 512), cap_max_length(1024, None)
        (512, 256, 1024)
    """
    if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {requested!r}")
    return requested if limit is None else min(requested, limit)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def sentence_transformer_parts(folder: Path) -> tuple[Path, int | None]:
    """The transformer sub-folder of a sentence-transformers model and its max length."""
    transformer_dir = folder
    modules_file = folder / "modules.json"
    if modules_file.exists():
        for module in json.loads(modules_file.read_text()):
            if module.get("type", "").endswith("Transformer"):
                transformer_dir = folder / module.get("path", "")
                break
    max_length = None
    for config_name in ("sentence_bert_config.json", "sentence_transformers_config.json"):
        config_file = transformer_dir / config_name
        if config_file.exists():
            max_length = json.loads(config_file.read_text()).get("max_seq_length")
            break
    return transformer_dir, max_length


def folder_position_limit(folder: str | Path) -> tuple[int | None, str]:
    """The limit stated by a model folder's ``config.json`` and ``tokenizer_config.json``.

    A sentence-transformers folder is read through its transformer module's sub-folder.
    """
    transformer_dir, _ = sentence_transformer_parts(Path(folder))
    config = _read_json(transformer_dir / "config.json")
    if not config:
        return None, f"no readable config.json in {transformer_dir}"
    tokenizer = _read_json(transformer_dir / "tokenizer_config.json")
    return position_limit_from_config(config, tokenizer.get("model_max_length"))


def _packaged_folder(spec: ModelSpec, build: bool) -> Path | None:
    """The packaged model's folder when it is there (or ``build``: convert it now)."""
    from uaes_hf.paths import cache_dir

    if spec.kind == "sentence_transformer" and (build or spec.source == "all-minilm-l6-v2"):
        from uaes_hf.assets import sentence_transformer_dir

        return Path(sentence_transformer_dir(spec.source))  # MiniLM is used in place
    if spec.kind == "hf_text" and build:
        from uaes_hf.assets import packaged_model_dir

        return Path(packaged_model_dir(spec.source))
    folder = cache_dir("models") / spec.source
    return folder if (folder / "config.json").is_file() else None


def _hub_position_limit(spec: ModelSpec) -> tuple[int | None, str]:
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(spec.source, "config.json", revision=spec.revision)
    config = _read_json(Path(path))
    tokenizer_max = None
    try:
        tok_path = hf_hub_download(spec.source, "tokenizer_config.json", revision=spec.revision)
        tokenizer_max = _read_json(Path(tok_path)).get("model_max_length")
    except Exception:  # a repo without a tokenizer config: the model config decides
        pass
    limit, source = position_limit_from_config(config, tokenizer_max)
    return limit, f"{source} (Hub {spec.source})"


def _is_unreachable(err: Exception) -> bool:
    """Offline mode or no connection (as opposed to a gated or missing repo)."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    unreachable = (LocalEntryNotFoundError, OfflineModeIsEnabled, ConnectionError, TimeoutError)
    name = type(err).__name__
    return isinstance(err, unreachable) or "Connect" in name or "Timeout" in name


def model_position_limit(
    model: str | ModelSpec, *, from_hub: bool = True, build_packaged: bool = False
) -> tuple[int | None, str]:
    """A text model's position limit and where it was read, without loading weights.

    Order: a local folder's or packaged model's config; the Hub config (``from_hub``; two
    small files); the registry's ``max_positions``. Vision models have no token limit.

    Example:
        >>> model_position_limit("gemma-2b", from_hub=False)[0]
        8192
    """
    spec = model if isinstance(model, ModelSpec) else resolve_model(model)
    if spec.modality != "text":
        return None, "vision model: its inputs are images, no token limit"
    failures: list[str] = []
    folder: Path | None = None
    if spec.packaged:
        folder = _packaged_folder(spec, build_packaged)
        if folder is None:
            failures.append("packaged model not converted yet")
    elif Path(spec.source).expanduser().is_dir():
        folder = Path(spec.source).expanduser()
    if folder is not None:
        limit, source = folder_position_limit(folder)
        if limit is not None:
            return limit, source
        failures.append(source)
    elif not spec.packaged and from_hub:
        try:
            limit, source = _hub_position_limit(spec)
        except Exception as err:  # offline, gated without a token, missing repo
            why = HUB_UNREACHABLE if _is_unreachable(err) else "Hub config not readable"
            failures.append(f"{why} ({type(err).__name__})")
        else:
            if limit is not None:
                return limit, source
            failures.append(source)
    if spec.max_positions is not None:
        note = "".join(f"; {failure}" for failure in failures)
        known = f"registry: {spec.max_positions} ({spec.max_positions_source}{note})"
        return spec.max_positions, known
    reason = "; ".join(failures) or "not in the registry and the Hub was not asked"
    return None, f"unknown ({reason}): max_tokens used as given"


def effective_token_caps(
    models: str | Sequence[str],
    max_tokens: int,
    *,
    from_hub: bool = True,
    build_packaged: bool = False,
) -> list[TokenCap]:
    """Each model's token cap for a requested ``max_tokens``, without loading weights.

    Args:
        models: registry keys, named sets (``study-llms``), Hub ids or folders (a
            comma-separated string or a list); duplicates are listed once.
        max_tokens: the tokens per text asked for (``extract.max_tokens``).
        from_hub: read Hub models' configs from the Hub (else the registry's limits);
            once one model finds the Hub unreachable, the rest use the registry.
        build_packaged: convert packaged models not converted yet to read their configs
            (slow once); otherwise the registry's limits stand in for them.

    Example:
        >>> [c.cap for c in effective_token_caps("all-minilm-l6-v2,bloomz-560m", 1024,
        ...                                      from_hub=False)]
        [512, 1024]
    """
    cap_max_length(max_tokens, None)  # validates max_tokens
    caps = []
    for spec in expand_models(models if isinstance(models, str) else list(models)):
        limit, source = model_position_limit(spec, from_hub=from_hub, build_packaged=build_packaged)
        if HUB_UNREACHABLE in source:  # one failed connection is enough: skip the others
            from_hub = False
        cap = None if spec.modality != "text" else cap_max_length(max_tokens, limit)
        caps.append(TokenCap(spec.key, max_tokens, cap, source))
    return caps


def format_token_caps(caps: Sequence[TokenCap]) -> list[str]:
    """One line per model, for a dry run or a log.

    Example:
        >>> print(format_token_caps([TokenCap("m", 1024, 512, "n_positions=512")])[0])
          m: 512 tokens (asked 1024; capped by n_positions=512; longer texts are truncated)
    """
    lines = []
    for cap in caps:
        if cap.cap is None:
            lines.append(f"  {cap.model}: no token cap ({cap.source})")
        elif cap.cap < cap.requested:
            lines.append(
                f"  {cap.model}: {cap.cap} tokens (asked {cap.requested}; capped by "
                f"{cap.source}; longer texts are truncated)"
            )
        else:
            lines.append(f"  {cap.model}: {cap.cap} tokens (limit from {cap.source})")
    return lines
