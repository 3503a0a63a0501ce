"""Dual encoders: the Hub CLIP/SigLIP code path (tiny RANDOM-WEIGHT models saved and loaded
with from_pretrained: mechanics only) and the offline encoder's retrieval sanity check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from retrieval_helpers import tiny_dual_encoder_dir, write_images

from uaes_hf.retrieval.corpus import load_image
from uaes_hf.retrieval.encoders import DualEncoder, HFTowers

TEXTS = ["a red dog", "a blue boat near a green tree", "an old house"]


def _normalize(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x, dim=-1).detach().numpy()


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_hub_towers_reproduce_the_models_own_embeddings(kind, tmp_path) -> None:
    from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

    folder = tiny_dual_encoder_dir(tmp_path / kind, kind)
    towers = HFTowers(str(folder))
    encoder = DualEncoder(towers, towers.initial_heads())
    images = [load_image(p) for p in write_images(tmp_path / "img", [10, 120, 240])]
    # Independently: the model's own forward pass, projection included.
    model = AutoModel.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    pixels = AutoImageProcessor.from_pretrained(folder)(images=images, return_tensors="pt")
    padding = "max_length" if kind == "siglip" else True
    enc = tokenizer(TEXTS, padding=padding, truncation=True, max_length=16, return_tensors="pt")
    enc.pop("token_type_ids", None)
    with torch.no_grad():
        text_pooled = model.text_model(**enc).pooler_output
        image_pooled = model.vision_model(pixel_values=pixels["pixel_values"]).pooler_output
        if kind == "clip":
            text_pooled = model.text_projection(text_pooled)
            image_pooled = model.visual_projection(image_pooled)
    np.testing.assert_allclose(encoder.encode_texts(TEXTS), _normalize(text_pooled), atol=1e-5)
    np.testing.assert_allclose(encoder.encode_images(images), _normalize(image_pooled), atol=1e-5)
    base = towers.text_features(TEXTS)
    assert base.shape[0] == 3 and np.allclose(
        encoder.embed_text_features(base), encoder.encode_texts(TEXTS), atol=1e-6
    )


def test_hub_towers_errors_are_clear(tmp_path) -> None:
    with pytest.raises(ValueError, match="cannot load"):
        HFTowers(str(tmp_path / "missing")).load()
    towers = HFTowers(str(tiny_dual_encoder_dir(tmp_path / "clip")))
    with pytest.raises(ValueError, match="non-empty"):
        towers.text_features(["ok", "  "])


@pytest.mark.slow
def test_offline_encoder_finds_a_captions_own_image(capsys) -> None:
    """Held-out captions: their own image is in the top 5 of the held-out gallery for most.

    Uses the default corpus and LiT options of `uaes retrieval run` (shared cache)."""
    from uaes_hf.images.classical import ClassicalAestheticScorer
    from uaes_hf.retrieval.cache import ArtifactCache
    from uaes_hf.retrieval.config import config_from_dict
    from uaes_hf.retrieval.corpus import build_corpus
    from uaes_hf.retrieval.encoders import PackagedTowers
    from uaes_hf.retrieval.features import cached_text_features, corpus_features
    from uaes_hf.retrieval.heads import cpu_threads
    from uaes_hf.retrieval.lit import caption_views, recall_at_k, split_held_out, train_lit

    cfg = config_from_dict({})
    corpus = build_corpus(
        cfg.corpus.sources,
        max_items=cfg.corpus.max_items,
        per_category=cfg.corpus.per_category,
        seed=cfg.corpus.seed,
    )
    towers, cache = PackagedTowers(cfg.encoder.image_size), ArtifactCache()
    with cpu_threads(cfg.cpu_threads):  # as `uaes retrieval run` does
        feats = corpus_features(corpus, towers, ClassicalAestheticScorer(), cache, progress=False)
        views = caption_views(corpus.captions, [item.title for item in corpus.items])
        text = np.stack([cached_text_features(towers, v, cache) for v in views])
    train, held = split_held_out(len(corpus), cfg.lit.held_out, cfg.lit.seed)
    assert set(train).isdisjoint(held)
    heads, history = train_lit(feats.image, text, train, cfg.lit)
    assert history[-1] < history[0]
    with torch.no_grad():
        image = heads.image(torch.as_tensor(feats.image[held])).numpy()
        recall = recall_at_k(heads.text(torch.as_tensor(text[0][held])).numpy(), image)
    with capsys.disabled():
        print(f"\noffline encoder, {len(held)} held-out captions: {recall}")
    # Most held-out captions find their own image in the top 5 (chance: 5 / 100).
    assert recall[5] > 0.5
