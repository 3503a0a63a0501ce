"""Dual encoders behind one interface: frozen towers + trainable projection heads.

- :class:`PackagedTowers` (offline): the packaged EfficientNet-Lite0 (ImageNet, mean-pooled
  1280-d features) and all-MiniLM-L6-v2 (384-d sentence embeddings). Their heads are linear
  maps trained on real image-text pairs (:mod:`uaes_hf.retrieval.lit`).
- :class:`HFTowers`: a Hugging Face ``CLIPModel`` or ``SiglipModel`` loaded with
  ``from_pretrained`` (a Hub id or a local folder with model, tokenizer and image processor).
  Base features are what enters the model's projection (captured with a forward pre-hook),
  and the model's own projections are the initial heads, so ``encode_*`` equals
  ``get_*_features`` up to normalisation.

A :class:`DualEncoder` pairs towers with heads and encodes images or texts to L2-normalised
joint embeddings.

Example:
    >>> towers = HFTowers("openai/clip-vit-base-patch32")  # doctest: +SKIP
    >>> encoder = DualEncoder(towers, towers.initial_heads())  # doctest: +SKIP
    >>> encoder.encode_texts(["a dog"]).shape  # doctest: +SKIP
    (1, 512)
"""

from __future__ import annotations

import contextlib
import copy
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from uaes_hf.retrieval.heads import ProjectionHeads

PACKAGED_IMAGE_TOWER = "efficientnet-lite0"
PACKAGED_TEXT_TOWER = "all-minilm-l6-v2"
# Which module projects into the joint space, per model type: (text head, image head).
HF_HEADS: dict[str, tuple[str, str | None]] = {
    "clip": ("text_projection", "visual_projection"),
    "siglip": ("text_model.head", None),
}


@runtime_checkable
class Towers(Protocol):
    """Frozen image and text towers; ``describe()`` identifies them in cache keys."""

    name: str

    def describe(self) -> dict[str, Any]: ...

    def image_features(self, images: Sequence[Any]) -> np.ndarray: ...

    def text_features(self, texts: Sequence[str]) -> np.ndarray: ...


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not len(texts):
        raise ValueError("texts must be a non-empty list of strings")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"texts must be non-empty strings; bad entries at {bad[:5]}")
    return list(texts)


def _check_images(images: Sequence[Any]) -> list[Any]:
    if isinstance(images, (str, bytes)) or not len(images):
        raise ValueError("images must be a non-empty list of PIL images")
    return [img.convert("RGB") if hasattr(img, "convert") else img for img in images]


def pad_to_square(image: Any, fill: tuple[int, int, int] = (255, 255, 255)) -> Any:
    """Centre ``image`` on a square canvas (drawings keep their whole outline).

    Example:
        >>> from PIL import Image
        >>> pad_to_square(Image.new("RGB", (4, 2))).size
        (4, 4)
    """
    from PIL import Image

    side = max(image.size)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas


class PackagedTowers:
    """EfficientNet-Lite0 + all-MiniLM-L6-v2 from installed packages (loaded on first use)."""

    name = f"packaged:{PACKAGED_IMAGE_TOWER}+{PACKAGED_TEXT_TOWER}"

    def __init__(self, image_size: int = 224, batch_size: int = 32, device: str = "cpu") -> None:
        if image_size < 32:
            raise ValueError(f"image_size must be >= 32, got {image_size}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.image_size = image_size
        self.batch_size = batch_size
        self.device = device
        self._image_model: Any = None
        self._text_model: Any = None

    def describe(self) -> dict[str, Any]:
        return {
            "towers": self.name,
            "image_size": self.image_size,
            "image_pooling": "mean of the final feature map",
            "preprocess": "pad to square (white), resize, mean=std=0.5",
        }

    @property
    def image_dim(self) -> int:
        return 1280

    @property
    def text_dim(self) -> int:
        return 384

    def image_features(self, images: Sequence[Any]) -> np.ndarray:
        """``N x 1280`` mean-pooled EfficientNet-Lite0 features."""
        import torch
        from torchvision.transforms import functional as tf

        from uaes_hf.assets.models import (
            EFFICIENTNET_LITE0_MEAN,
            EFFICIENTNET_LITE0_STD,
            load_efficientnet_lite0,
        )

        images = _check_images(images)
        if self._image_model is None:
            self._image_model = load_efficientnet_lite0().to(self.device)
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [
                tf.normalize(
                    tf.to_tensor(pad_to_square(img).resize((self.image_size,) * 2, 2)),
                    EFFICIENTNET_LITE0_MEAN,
                    EFFICIENTNET_LITE0_STD,
                )
                for img in images[start : start + self.batch_size]
            ]
            with torch.inference_mode():
                maps = self._image_model.extract_features(torch.stack(batch).to(self.device))
            out.append(maps.mean(dim=(2, 3)).float().cpu().numpy())
        return np.concatenate(out)

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        """``N x 384`` normalised all-MiniLM-L6-v2 sentence embeddings."""
        texts = _check_texts(texts)
        if self._text_model is None:
            from uaes_hf.assets.models import load_sentence_transformer

            with contextlib.redirect_stdout(sys.stderr):
                self._text_model = load_sentence_transformer(PACKAGED_TEXT_TOWER, self.device)
        return np.asarray(
            self._text_model.encode(
                texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False
            ),
            dtype=np.float32,
        )


def _module(root: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        root = getattr(root, part)
    return root


class HFTowers:
    """A ``CLIPModel`` / ``SiglipModel`` through ``from_pretrained`` (Hub id or local folder).

    Args:
        source: Hub id (``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``)
            or a local folder holding model, tokenizer and image processor.
        revision: Hub revision (pin it for reproducible numbers).
    """

    def __init__(
        self,
        source: str,
        *,
        revision: str | None = None,
        batch_size: int = 32,
        device: str = "cpu",
        max_text_tokens: int = 64,
    ) -> None:
        if not source:
            raise ValueError("source must be a Hub id or a local folder")
        self.source = source
        self.revision = revision
        self.batch_size = batch_size
        self.device = device
        self.max_text_tokens = max_text_tokens
        self.name = f"hf:{source}@{revision or 'main'}"
        self._loaded: tuple[Any, Any, Any, str] | None = None

    def load(self) -> tuple[Any, Any, Any, str]:
        """(model, tokenizer, image processor, model type), loaded once."""
        if self._loaded is None:
            from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

            try:
                model = AutoModel.from_pretrained(self.source, revision=self.revision)
                tokenizer = AutoTokenizer.from_pretrained(self.source, revision=self.revision)
                processor = AutoImageProcessor.from_pretrained(self.source, revision=self.revision)
            except OSError as err:
                raise ValueError(
                    f"cannot load {self.source!r} with from_pretrained ({str(err)[:200]}); "
                    "offline, use the packaged encoder (encoder.kind: packaged)"
                ) from None
            model_type = str(model.config.model_type)
            if model_type not in HF_HEADS:
                raise ValueError(
                    f"{self.source} is a {model_type!r} model; supported: {sorted(HF_HEADS)}"
                )
            self._loaded = (model.to(self.device).eval(), tokenizer, processor, model_type)
        return self._loaded

    def describe(self) -> dict[str, Any]:
        return {"towers": self.name, "max_text_tokens": self.max_text_tokens}

    def _captured(self, head_name: str | None, call: Any) -> np.ndarray:
        """Run ``call()`` and return the input of ``head_name`` (its output if None)."""
        import torch

        model = self.load()[0]
        captured: list[Any] = []
        handle = None
        if head_name is not None:
            handle = _module(model, head_name).register_forward_pre_hook(
                lambda _m, args: captured.append(args[0])
            )
        try:
            with torch.inference_mode():
                output = call()
        finally:
            if handle is not None:
                handle.remove()
        if head_name is None:
            captured.append(getattr(output, "pooler_output", output))
        return captured[-1].float().cpu().numpy()

    def text_features(self, texts: Sequence[str]) -> np.ndarray:
        texts = _check_texts(texts)
        model, tokenizer, _, model_type = self.load()
        padding = "max_length" if model_type == "siglip" else True  # SigLIP's training setup
        limit = getattr(getattr(model.config, "text_config", None), "max_position_embeddings", 0)
        max_length = min(self.max_text_tokens, limit or self.max_text_tokens)
        out = []
        for start in range(0, len(texts), self.batch_size):
            enc = tokenizer(
                texts[start : start + self.batch_size],
                padding=padding,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(self.device)
            enc.pop("token_type_ids", None)
            out.append(
                self._captured(HF_HEADS[model_type][0], lambda e=enc: model.get_text_features(**e))
            )
        return np.concatenate(out)

    def image_features(self, images: Sequence[Any]) -> np.ndarray:
        images = _check_images(images)
        model, _, processor, model_type = self.load()
        out = []
        for start in range(0, len(images), self.batch_size):
            pixels = processor(images=images[start : start + self.batch_size], return_tensors="pt")
            values = pixels["pixel_values"].to(self.device)
            out.append(
                self._captured(
                    HF_HEADS[model_type][1],
                    lambda v=values: model.get_image_features(pixel_values=v),
                )
            )
        return np.concatenate(out)

    def initial_heads(self) -> ProjectionHeads:
        """The model's own projections (copied) and temperature, as trainable heads."""
        from torch import nn

        model, _, _, model_type = self.load()
        text_name, image_name = HF_HEADS[model_type]
        image_head = copy.deepcopy(_module(model, image_name)) if image_name else nn.Identity()
        scale = float(model.logit_scale.detach()) if hasattr(model, "logit_scale") else 0.0
        heads = ProjectionHeads(image_head, copy.deepcopy(_module(model, text_name)), scale)
        return heads.cpu()  # small: the pipeline embeds on the CPU, fine-tuning moves them


@dataclass
class DualEncoder:
    """Towers + heads: encode images and texts to L2-normalised joint embeddings."""

    towers: Any
    heads: ProjectionHeads

    def embed_image_features(self, base: Any) -> np.ndarray:
        """Joint embeddings of precomputed image base features."""
        import torch

        with torch.no_grad():
            return self.heads.image(torch.as_tensor(np.asarray(base), dtype=torch.float32)).numpy()

    def embed_text_features(self, base: Any) -> np.ndarray:
        """Joint embeddings of precomputed text base features."""
        import torch

        with torch.no_grad():
            return self.heads.text(torch.as_tensor(np.asarray(base), dtype=torch.float32)).numpy()

    def encode_images(self, images: Sequence[Any]) -> np.ndarray:
        return self.embed_image_features(self.towers.image_features(images))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        return self.embed_text_features(self.towers.text_features(texts))

    @property
    def temperature(self) -> float:
        return 1.0 / math.exp(float(self.heads.logit_scale.detach()))
