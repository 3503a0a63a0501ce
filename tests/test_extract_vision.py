"""Vision features: timm block hooks (random weights), packaged EfficientNet-Lite0 and DINOv2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from uaes_hf.extract.vision import VisionFeatureExtractor, load_image, pool_tokens


@pytest.fixture(scope="module")
def sample_images() -> list[Path]:
    import skimage

    folder = Path(skimage.data.__file__).parent
    paths = [folder / "coffee.png", folder / "chelsea.png", folder / "astronaut.png"]
    assert all(path.exists() for path in paths)
    return paths


def test_timm_hooks_capture_every_block_residual_output(sample_images):
    extractor = VisionFeatureExtractor(
        "vit_tiny_patch16_224", pretrained=False, batch_size=2, progress=False
    )
    model = extractor.model
    cls_layers, info = extractor(sample_images)
    assert len(cls_layers) == len(model.blocks) == 12 and cls_layers[0].shape == (3, 192)
    # brute force: walk the ViT by hand, block by block
    pixels = torch.stack([extractor.preprocess(load_image(p)) for p in sample_images])
    with torch.no_grad():
        x = model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(pixels))))
        manual = []
        for block in model.blocks:
            x = block(x)
            manual.append(x)
    for got, tokens in zip(cls_layers, manual, strict=True):
        np.testing.assert_allclose(got, tokens[:, 0].numpy(), rtol=1e-4, atol=1e-5)
    # mean pooling: the average of the patch tokens (CLS excluded) of every block
    mean_extractor = VisionFeatureExtractor(
        "vit_tiny_patch16_224", pretrained=False, pooling="mean", batch_size=3, progress=False
    )
    mean_extractor.model.load_state_dict(model.state_dict())  # same random weights
    mean_layers, _ = mean_extractor(sample_images)
    assert len(mean_layers) == 12
    for got, tokens in zip(mean_layers, manual, strict=True):
        expected = tokens[:, model.num_prefix_tokens :].mean(dim=1).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    assert info["n_batches"] == 2
    # preprocessing came from the model's own data config
    assert extractor.describe()["preprocessing"]["input_size"] == [3, 224, 224]


def test_pool_tokens_semantics():
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3)
    assert torch.equal(pool_tokens(tokens, "cls", 1), tokens[:, 0])
    assert torch.allclose(pool_tokens(tokens, "mean", 1), tokens[:, 1:].mean(dim=1))
    maps = torch.randn(2, 5, 3, 3)
    assert torch.allclose(pool_tokens(maps, "cls", 1), maps.mean(dim=(2, 3)))
    with pytest.raises(ValueError, match="CLS"):
        pool_tokens(tokens, "cls", 0)


@pytest.mark.slow
def test_packaged_efficientnet_lite0_stage_features(sample_images):
    extractor = VisionFeatureExtractor("efficientnet-lite0", batch_size=2, progress=False)
    layers, _ = extractor(sample_images[:2])
    dims = [layer.shape[1] for layer in layers]
    assert dims == [16, 24, 40, 80, 112, 192, 320, 1280]  # 7 stages + head
    # the head features, through the model's own classifier, give its own logits
    model = extractor.model
    pixels = torch.stack([extractor.preprocess(load_image(p)) for p in sample_images[:2]])
    with torch.no_grad():
        logits = model(pixels)
        from_features = model._fc(torch.from_numpy(layers[-1]))
    np.testing.assert_allclose(from_features.numpy(), logits.numpy(), rtol=1e-4, atol=1e-4)
    top = logits.argmax(dim=1).tolist()
    assert top[0] == 967  # coffee.png: ImageNet "espresso"
    assert 281 <= top[1] <= 285  # chelsea.png: a domestic cat class


@pytest.mark.slow
def test_packaged_dinov2_onnx_layers(sample_images):
    import onnx
    from onnx import numpy_helper

    from uaes_hf.assets import dinov2_onnx_path

    extractor = VisionFeatureExtractor("dinov2-vits14-onnx", batch_size=2, progress=False)
    layers, _ = extractor(sample_images[:2])
    assert len(layers) == 13 and all(layer.shape == (2, 384) for layer in layers)
    assert extractor.describe()["layer_names"][-1] == "final_norm"
    # brute force: the final LayerNorm of block 11's CLS token with the graph's own weights
    weights = {
        init.name: numpy_helper.to_array(init)
        for init in onnx.load(str(dinov2_onnx_path())).graph.initializer
        if init.name.startswith("backbone.layernorm")
    }
    cls = layers[11].astype(np.float64)
    normed = (cls - cls.mean(axis=1, keepdims=True)) / np.sqrt(
        cls.var(axis=1, keepdims=True) + 1e-6
    )
    expected = normed * weights["backbone.layernorm.weight"] + weights["backbone.layernorm.bias"]
    np.testing.assert_allclose(layers[12], expected, rtol=1e-3, atol=1e-3)
    # different photos give clearly different final features
    a, b = layers[12]
    assert np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)) < 0.95


def test_transformers_vision_model_hidden_states(tmp_path, sample_images):
    """A transformers ViT (random weights from a config) read with its own image processor."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(0)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        intermediate_size=64,
        image_size=32,
        patch_size=8,
    )
    ViTModel(config).save_pretrained(tmp_path)
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    processor.save_pretrained(tmp_path)
    for pooling in ("cls", "mean"):
        extractor = VisionFeatureExtractor(
            str(tmp_path), kind="hf_vision", pooling=pooling, batch_size=2, progress=False
        )
        layers, info = extractor(sample_images)
        assert len(layers) == 4 and info["n_batches"] == 2  # embeddings + 3 blocks
        model = ViTModel.from_pretrained(tmp_path).eval()
        for index, path in enumerate(sample_images):  # one image at a time, by hand
            pixels = processor(images=load_image(path), return_tensors="pt")["pixel_values"]
            with torch.no_grad():
                hidden = model(pixel_values=pixels, output_hidden_states=True).hidden_states
            for got, tokens in zip(layers, hidden, strict=True):
                expected = tokens[0, 0] if pooling == "cls" else tokens[0, 1:].mean(dim=0)
                np.testing.assert_allclose(got[index], expected.numpy(), rtol=1e-4, atol=1e-5)
