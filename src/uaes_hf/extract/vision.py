"""Features of vision models: the output of every block, pooled per image.

- timm models: forward hooks on ``model.blocks`` (ViTs: the residual stream after each
  block) or ``model.stages`` (CNNs); the CLS token is the reference pooling (as in the
  study), the mean over patch tokens the alternative. Preprocessing comes from the model's
  own data config (``timm.data.resolve_data_config`` + ``create_transform``).
- transformers vision models: ``output_hidden_states`` with the model's
  ``AutoImageProcessor``.
- the packaged EfficientNet-Lite0: spatially mean-pooled output of each stage and of the
  head (layers differ in width).
- the packaged DINOv2 ViT-S/14 ONNX backbone: the 12 block outputs and the final LayerNorm.

Images are file paths, PIL images, or ``{"bytes"|"path": ...}`` records (a ``datasets``
``Image`` column); they are converted to RGB.

Example:
    >>> extractor = VisionFeatureExtractor("vit_tiny_patch16_224", pretrained=False)  # doctest: +SKIP
    >>> layers, info = extractor(["cat.png"])  # doctest: +SKIP
    >>> len(layers), layers[0].shape  # doctest: +SKIP
    (12, (1, 192))
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.extract.batching import run_with_oom_backoff
from uaes_hf.extract.registry import ModelSpec, resolve_model
from uaes_hf.extract.text import (
    common_description,
    packaged_revision,
    progress_bar,
    resolve_device,
    resolve_dtype,
)

VISION_POOLINGS = ("cls", "mean")


def load_image(item: Any) -> Any:
    """Open one image item as an RGB ``PIL.Image``."""
    from PIL import Image

    if isinstance(item, Image.Image):
        image = item
    elif isinstance(item, (str, Path)):
        path = Path(item)
        if not path.exists():
            raise ValueError(f"image file not found: {path}")
        image = Image.open(path)
    elif isinstance(item, dict) and item.get("bytes") is not None:
        image = Image.open(io.BytesIO(item["bytes"]))
    elif isinstance(item, dict) and item.get("path"):
        image = Image.open(item["path"])
    elif isinstance(item, np.ndarray) and item.ndim in (2, 3):
        image = Image.fromarray(item)
    else:
        raise ValueError(f"cannot read an image from {type(item).__name__}")
    return image.convert("RGB")


def pool_tokens(tokens: Any, pooling: str, n_prefix: int) -> Any:
    """(B, T, D) tokens -> (B, D): the CLS token (index 0) or the mean of patch tokens.

    4-D CNN maps (B, C, H, W) are averaged over space whatever the pooling.
    """
    if tokens.ndim == 4:
        return tokens.float().mean(dim=(2, 3))
    if tokens.ndim != 3:
        raise ValueError(
            f"expected (B, T, D) tokens or (B, C, H, W) maps, got {tuple(tokens.shape)}"
        )
    if pooling == "cls":
        if n_prefix < 1:
            raise ValueError("this model has no CLS token; use pooling='mean'")
        return tokens[:, 0].float()
    return tokens[:, n_prefix:].float().mean(dim=1)


class VisionFeatureExtractor:
    """Pooled output of every block of a vision model.

    Args:
        model: registry key, timm name (``vit_small_patch16_224.augreg_in21k``), Hub id of a
            transformers vision model, or local path.
        pooling: ``cls`` (default, the study's reference) or ``mean`` (over patch tokens).
        batch_size: images per forward pass; halved on out-of-memory.
        pretrained: for timm models, load pretrained weights (False: random, for tests).
        kind: force ``timm``, ``hf_vision``, ``efficientnet_lite0`` or ``onnx_dinov2``.
    """

    def __init__(
        self,
        model: str,
        *,
        pooling: str = "cls",
        batch_size: int = 16,
        device: str | None = None,
        dtype: str = "auto",
        pretrained: bool = True,
        revision: str | None = None,
        kind: str | None = None,
        progress: bool = True,
    ) -> None:
        if pooling not in VISION_POOLINGS:
            raise ValueError(f"vision pooling must be one of {VISION_POOLINGS}, got {pooling!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.spec: ModelSpec = resolve_model(model, kind=kind)
        if self.spec.modality != "vision":
            raise ValueError(f"{model!r} is a {self.spec.kind} model, not a vision model")
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.progress = progress
        self.revision = revision or self.spec.revision
        self.model_revision: str | None = self.revision or packaged_revision(self.spec)
        loaders: dict[str, Callable[[bool], None]] = {
            "timm": self._load_timm,
            "hf_vision": self._load_hf,
            "efficientnet_lite0": self._load_efficientnet,
            "onnx_dinov2": self._load_onnx_dinov2,
        }
        loaders[self.spec.kind](pretrained)

    @property
    def model_id(self) -> str:
        return self.spec.source

    # -- loaders: each sets self.preprocess (PIL -> CHW tensor) and self._forward_layers
    def _load_timm(self, pretrained: bool) -> None:
        import timm
        import torch

        source = self.spec.source
        if Path(source).expanduser().is_dir():
            model = timm.create_model(
                f"local-dir:{Path(source).expanduser()}", pretrained=pretrained
            )
        else:
            model = timm.create_model(source, pretrained=pretrained)
        model.to(self.device, dtype=self.torch_dtype).eval()
        config = timm.data.resolve_data_config({}, model=model)
        self.data_config = {key: _jsonable(value) for key, value in config.items()}
        self.preprocess = timm.data.create_transform(**config)
        modules = getattr(model, "blocks", None)
        if modules is None:
            modules = getattr(model, "stages", None)
        if modules is None or len(modules) == 0:
            raise ValueError(f"timm model {source} has neither .blocks nor .stages to hook")
        self.layer_names = [f"block{i}" for i in range(len(modules))]
        n_prefix = int(getattr(model, "num_prefix_tokens", 0))
        has_cls = bool(
            getattr(model, "has_class_token", getattr(model, "cls_token", None) is not None)
        )
        if self.pooling == "cls" and hasattr(model, "blocks") and not has_cls:
            raise ValueError(f"{source} has no CLS token; use pooling='mean'")
        self.model = model

        def forward_layers(batch: Any) -> list[Any]:
            captured: list[Any] = []
            handles = [
                module.register_forward_hook(
                    lambda _m, _i, output: captured.append(_first_tensor(output))
                )
                for module in modules
            ]
            try:
                with torch.inference_mode():
                    model.forward_features(batch)
            finally:
                for handle in handles:
                    handle.remove()
            return [pool_tokens(tokens, self.pooling, n_prefix) for tokens in captured]

        self._forward_layers = forward_layers

    def _load_hf(self, pretrained: bool) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModel

        source = self.spec.source
        processor = AutoImageProcessor.from_pretrained(source, revision=self.revision)
        if pretrained:
            model = AutoModel.from_pretrained(
                source, revision=self.revision, dtype=self.torch_dtype
            )
        else:
            from transformers import AutoConfig

            model = AutoModel.from_config(
                AutoConfig.from_pretrained(source, revision=self.revision)
            )
        if hasattr(model, "vision_model"):  # CLIP/SigLIP: keep the image tower only
            model = model.vision_model
        model.to(self.device, dtype=self.torch_dtype).eval()
        self.model_revision = getattr(model.config, "_commit_hash", None) or self.revision
        self.model = model
        self.data_config = {"processor": type(processor).__name__}

        def preprocess(image: Any) -> Any:
            return processor(images=image, return_tensors="pt")["pixel_values"][0]

        self.preprocess = preprocess
        n_layers = getattr(model.config, "num_hidden_layers", None)
        self.layer_names = ["embeddings", *(f"block{i}" for i in range(n_layers or 0))]

        def forward_layers(batch: Any) -> list[Any]:
            with torch.inference_mode():
                outputs = model(pixel_values=batch, output_hidden_states=True)
            return [pool_tokens(h, self.pooling, 1) for h in outputs.hidden_states]

        self._forward_layers = forward_layers

    def _load_efficientnet(self, pretrained: bool) -> None:
        import torch
        from torchvision import transforms

        from uaes_hf.assets.models import (
            EFFICIENTNET_LITE0_MEAN,
            EFFICIENTNET_LITE0_SIZE,
            EFFICIENTNET_LITE0_STD,
            load_efficientnet_lite0,
        )

        if self.pooling == "cls":
            self.pooling = "mean"  # a CNN has no CLS token: stages are mean-pooled over space
        model = load_efficientnet_lite0().to(self.device, dtype=self.torch_dtype)
        size = EFFICIENTNET_LITE0_SIZE
        self.preprocess = transforms.Compose(
            [
                transforms.Resize(size + 32, interpolation=transforms.InterpolationMode.BILINEAR),
                transforms.CenterCrop(size),
                transforms.ToTensor(),
                transforms.Normalize(EFFICIENTNET_LITE0_MEAN, EFFICIENTNET_LITE0_STD),
            ]
        )
        self.data_config = {"input_size": [3, size, size], "mean": 0.5, "std": 0.5}
        blocks = list(model._blocks)
        # A stage ends where the next block's output shape changes (width or stride);
        # found once from the shapes of a probe image.
        shapes: list[tuple[int, ...]] = []
        probe = [
            b.register_forward_hook(lambda _m, _i, o: shapes.append(tuple(o.shape))) for b in blocks
        ]
        try:
            with torch.inference_mode():
                model.extract_features(
                    torch.zeros(1, 3, size, size, device=self.device, dtype=self.torch_dtype)
                )
        finally:
            for handle in probe:
                handle.remove()
        stage_ends = [
            i for i in range(len(blocks)) if i == len(blocks) - 1 or shapes[i + 1] != shapes[i]
        ]
        self.layer_names = [f"stage{s}" for s in range(len(stage_ends))] + ["head"]
        self.model = model

        def forward_layers(batch: Any) -> list[Any]:
            captured: dict[int, Any] = {}
            handles = [
                blocks[i].register_forward_hook(
                    lambda _m, _i, output, i=i: captured.__setitem__(i, output)
                )
                for i in stage_ends
            ]
            try:
                with torch.inference_mode():
                    head = model.extract_features(batch)
            finally:
                for handle in handles:
                    handle.remove()
            maps = [captured[i] for i in stage_ends] + [head]
            return [m.float().mean(dim=(2, 3)) for m in maps]

        self._forward_layers = forward_layers

    def _load_onnx_dinov2(self, pretrained: bool) -> None:
        import onnxruntime
        import torch
        from torchvision import transforms

        from uaes_hf.assets import dinov2_onnx_path
        from uaes_hf.assets.dinov2_onnx import IMAGE_MEAN, IMAGE_SIZE, IMAGE_STD, LAYER_NAMES

        providers = ["CPUExecutionProvider"]
        if self.device.startswith("cuda"):
            providers.insert(0, "CUDAExecutionProvider")
        available = set(onnxruntime.get_available_providers())
        session = onnxruntime.InferenceSession(
            str(dinov2_onnx_path()), providers=[p for p in providers if p in available]
        )
        self.model = session
        self.torch_dtype = torch.float32
        self.preprocess = transforms.Compose(
            [
                transforms.Resize(256, interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.CenterCrop(IMAGE_SIZE),
                transforms.ToTensor(),
                transforms.Normalize(IMAGE_MEAN, IMAGE_STD),
            ]
        )
        self.data_config = {"input_size": [3, IMAGE_SIZE, IMAGE_SIZE], "resize": 256}
        self.layer_names = list(LAYER_NAMES)

        def forward_layers(batch: Any) -> list[Any]:
            outputs = session.run(list(LAYER_NAMES), {"input_image": batch.cpu().float().numpy()})
            return [pool_tokens(torch.from_numpy(out), self.pooling, 1) for out in outputs]

        self._forward_layers = forward_layers

    def __call__(self, images: Sequence[Any]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Return one (n, D_l) float32 array per layer, in input order, and statistics."""
        import torch

        if isinstance(images, (str, bytes)) or not len(images):
            raise ValueError("images must be a non-empty sequence of images or paths")
        images = list(images)
        outputs: list[np.ndarray] | None = None
        bar = progress_bar(len(images), self.spec.key, self.progress, unit="img")
        started = time.perf_counter()
        n_batches = 0

        def step(batch: list[int]) -> None:
            nonlocal outputs, n_batches
            pixels = torch.stack([self.preprocess(load_image(images[i])) for i in batch])
            pixels = pixels.to(self.device, dtype=self.torch_dtype)
            layers = [layer.float().cpu().numpy() for layer in self._forward_layers(pixels)]
            if outputs is None:
                outputs = [np.zeros((len(images), layer.shape[1]), np.float32) for layer in layers]
            for store, layer in zip(outputs, layers, strict=True):
                store[batch] = layer
            n_batches += 1
            bar.update(len(batch))

        self.batch_size = run_with_oom_backoff(list(range(len(images))), self.batch_size, step)
        bar.close()
        assert outputs is not None
        info = {
            "n_items": len(images),
            "n_batches": n_batches,
            "seconds": time.perf_counter() - started,
            "final_batch_size": self.batch_size,
        }
        return outputs, info

    def describe(self) -> dict[str, Any]:
        """Metadata recorded next to the features."""
        return {
            **common_description(self),
            "preprocessing": self.data_config,
            "layer_names": self.layer_names,
        }


def _first_tensor(output: Any) -> Any:
    return output[0] if isinstance(output, (tuple, list)) else output


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value
