"""Image aesthetic scorers: classical features order synthetic images as they must, levels
are monotone, answers parse robustly, and the LAION predictor's mechanics work."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFilter

from uaes_hf.images.scorers import (
    AVA_LEVEL_CUTS,
    ClassicalAestheticScorer,
    ImageAestheticScorer,
    LaionPredictorScorer,
    ScoreParseError,
    VLMScorer,
    colourfulness,
    exposure_quality,
    image_features,
    laplacian_variance,
    level_from_cuts,
    parse_continuous_score,
    quantile_cuts,
    rms_contrast,
    thirds_ratio,
    validate_cuts,
)

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def textured_images(draw: st.DrawFn) -> Image.Image:
    """A colourful, textured RGB image: smooth colour blobs plus fine noise."""
    seed = draw(st.integers(0, 2**31 - 1))
    h, w = draw(st.integers(24, 64)), draw(st.integers(24, 64))
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (4, 4, 3))
    base = np.kron(coarse, np.ones((h // 4 + 1, w // 4 + 1, 1)))[:h, :w]
    noise = rng.normal(0, 40, (h, w, 1)) * rng.uniform(0.5, 1.5, 3)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def as_array(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.float64)


# -- brute-force references, written independently of the implementation -----------------


def brute_colourfulness(rgb: np.ndarray) -> float:
    rg, yb = [], []
    for r, g, b in rgb.reshape(-1, 3):
        rg.append(r - g)
        yb.append((r + g) / 2 - b)
    rg_a, yb_a = np.array(rg), np.array(yb)
    return math.hypot(rg_a.std(), yb_a.std()) + 0.3 * math.hypot(rg_a.mean(), yb_a.mean())


def brute_laplacian_variance(rgb: np.ndarray) -> float:
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    values = [
        y[i - 1, j] + y[i + 1, j] + y[i, j - 1] + y[i, j + 1] - 4 * y[i, j]
        for i in range(1, y.shape[0] - 1)
        for j in range(1, y.shape[1] - 1)
    ]
    return float(np.var(values))


@FAST
@given(textured_images())
def test_features_match_brute_force(img: Image.Image) -> None:
    rgb = as_array(img)
    assert colourfulness(rgb) == pytest.approx(brute_colourfulness(rgb), rel=1e-9)
    assert laplacian_variance(rgb) == pytest.approx(brute_laplacian_variance(rgb), rel=1e-9)


@FAST
@given(textured_images(), st.floats(1.0, 3.0))
def test_blurred_copy_is_less_sharp(img: Image.Image, radius: float) -> None:
    blurred = img.filter(ImageFilter.GaussianBlur(radius))
    assert image_features(blurred)["sharpness"] < image_features(img)["sharpness"]
    scorer = ClassicalAestheticScorer(weights={"sharpness": 1.0})
    assert scorer.score([blurred])[0] < scorer.score([img])[0]


@FAST
@given(textured_images())
def test_greyscale_copy_is_less_colourful(img: Image.Image) -> None:
    grey = img.convert("L").convert("RGB")
    assert image_features(grey)["colourfulness"] == pytest.approx(0.0, abs=1e-9)
    assert image_features(grey)["colourfulness"] < image_features(img)["colourfulness"]


@FAST
@given(textured_images(), st.floats(0.1, 0.6))
def test_low_contrast_copy_has_lower_contrast(img: Image.Image, factor: float) -> None:
    rgb = as_array(img)
    flat = 128 + (rgb - 128) * factor  # squeeze toward mid-grey, float: no rounding
    assert rms_contrast(flat) < rms_contrast(rgb)
    assert rms_contrast(flat) == pytest.approx(factor * rms_contrast(rgb), rel=1e-9)


def test_exposure_prefers_mid_grey_and_punishes_clipping() -> None:
    mid = np.full((16, 16, 3), 128.0)
    dark = np.full((16, 16, 3), 30.0)
    clipped = mid.copy()
    clipped[:8] = 255.0
    assert exposure_quality(mid) > exposure_quality(dark) > 0
    assert exposure_quality(clipped) < exposure_quality(mid)


def test_rule_of_thirds_prefers_an_edge_on_a_third_line() -> None:
    size = 90
    on_third = np.zeros((size, size, 3))
    on_third[:, 30:] = 255.0  # vertical edge at x = 1/3
    centred = np.zeros((size, size, 3))
    centred[:, 45:] = 255.0  # vertical edge at x = 1/2
    assert thirds_ratio(on_third) > 1.0 > thirds_ratio(centred)


def test_classical_score_range_and_name() -> None:
    scorer = ClassicalAestheticScorer()
    assert isinstance(scorer, ImageAestheticScorer)
    rng = np.random.default_rng(0)
    imgs = [
        Image.new("RGB", (40, 40)),
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)),
    ]
    scores = scorer.score(imgs)
    assert all(1.0 <= s <= 10.0 for s in scores) and scores[0] < scores[1]
    assert "heuristic" in scorer.name


@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=30))
def test_levels_are_monotone_in_the_score(scores: list[float]) -> None:
    for cuts in (AVA_LEVEL_CUTS, (-50.0, -1.0, 0.0, 60.0)):
        ordered = sorted(scores)
        levels = [level_from_cuts(s, cuts) for s in ordered]
        assert levels == sorted(levels) and all(1 <= v <= 5 for v in levels)


def test_documented_cut_points() -> None:
    assert [level_from_cuts(s, AVA_LEVEL_CUTS) for s in (3.99, 4.0, 5.5, 6.0, 6.99, 7.0)] == [
        1, 2, 3, 4, 4, 5,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="non-finite"):
        level_from_cuts(float("nan"), AVA_LEVEL_CUTS)
    with pytest.raises(ValueError, match="strictly increasing"):
        validate_cuts([1, 1, 2, 3])


@given(st.lists(st.floats(1, 10, allow_nan=False), min_size=5, max_size=60))
def test_quantile_levels_are_balanced_and_monotone(scores: list[float]) -> None:
    scorer = ClassicalAestheticScorer().with_quantile_cuts(scores)
    assert scorer.level_mode == "quantile"
    levels = [scorer.level(s) for s in sorted(scores)]
    assert levels == sorted(levels)
    if len(set(scores)) == len(scores):  # no ties: every level gets at most ~20% + 1
        counts = np.bincount(levels, minlength=6)[1:]
        assert counts.max() <= math.ceil(len(scores) * 0.2) + 1
    with pytest.raises(ValueError, match="at least 5"):
        quantile_cuts([1.0, 2.0])


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"score": 6.4}', 6.4),
        ('Good light.\n```json\n{"score": 7.25}\n```\nThanks', 7.25),
        ("{'score': 5.0,}", 5.0),
        ("Score: 8/10", 8.0),
        ("Aesthetic score = 3.5", 3.5),
        ("  9.1 ", 9.1),
        ('{"score": 2} then {"score": 4.5}', 4.5),
        ('{"score": "6.0"}', 6.0),
    ],
)
def test_parse_continuous_score(answer: str, expected: float) -> None:
    assert parse_continuous_score(answer) == expected


@pytest.mark.parametrize("answer", ["", "lovely image", '{"score": 0.3}', '{"score": 10.5}',
                                    '{"score": null}', '{"score": true}', '{"rating": 5}'])  # fmt: skip
def test_parse_rejects_unusable_answers(answer: str) -> None:
    with pytest.raises(ScoreParseError):
        parse_continuous_score(answer)


def test_vlm_scorer_rejects_unknown_prompt_version() -> None:
    with pytest.raises(ValueError, match="unknown prompt version"):
        VLMScorer(client=None, store=None, prompt_version="v0")


@pytest.mark.slow
def test_laion_offline_gives_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache: nothing to find offline
    scorer = LaionPredictorScorer()
    with pytest.raises(RuntimeError, match="--scorer classical"):
        scorer.score([Image.new("RGB", (8, 8))])


@pytest.mark.slow
def test_laion_mechanics_with_a_random_tiny_clip(tmp_path) -> None:
    """Random weights (mechanics only): local CLIP folder + head file -> finite scores that
    equal a hand-computed forward pass."""
    import torch
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from uaes_hf.images.scorers import laion_head

    torch.manual_seed(0)
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, image_size=32, patch_size=8,
                              projection_dim=768)  # fmt: skip
    vision = CLIPVisionModelWithProjection(config).eval()
    vision.save_pretrained(tmp_path / "clip")
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(tmp_path / "clip")
    head = laion_head(768).eval()
    torch.save(head.state_dict(), tmp_path / "head.pth")

    scorer = LaionPredictorScorer(
        clip_model=str(tmp_path / "clip"), head=str(tmp_path / "head.pth"), batch_size=2
    )
    rng = np.random.default_rng(1)
    imgs = [Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)) for _ in range(3)]
    scores = scorer.score(imgs)
    assert len(scores) == 3 and all(math.isfinite(s) for s in scores)
    processor = CLIPImageProcessor.from_pretrained(tmp_path / "clip")
    with torch.no_grad():
        emb = vision(
            pixel_values=processor(images=imgs, return_tensors="pt")["pixel_values"]
        ).image_embeds
        emb = emb / emb.norm(dim=-1, keepdim=True)
        expected = head(emb).squeeze(-1).tolist()
    assert scores == pytest.approx(expected, abs=1e-4)
    assert scorer.level(scores[0]) == level_from_cuts(scores[0], AVA_LEVEL_CUTS)
