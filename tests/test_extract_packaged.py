"""Real packaged text models (SmolLM2, MiniLM) and the model registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from uaes_hf.extract.registry import MODEL_SETS, REGISTRY, expand_models, resolve_model
from uaes_hf.extract.run import extract_features

POEMS = [
    "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.",
    "I wandered lonely as a cloud that floats on high o'er vales and hills.",
    "The invoice is attached; please pay within thirty days.",
]


def test_minilm_last_layer_mean_is_the_sentence_embedding():
    from uaes_hf.assets import load_sentence_transformer

    features = extract_features(POEMS, "all-minilm-l6-v2", progress=False)
    assert features.shape == (3, 7, 384)  # embeddings + 6 blocks
    last = features[:, -1] / np.linalg.norm(features[:, -1], axis=1, keepdims=True)
    reference = load_sentence_transformer("all-minilm-l6-v2").encode(
        POEMS, normalize_embeddings=True
    )
    np.testing.assert_allclose(last, reference, atol=1e-5)
    # semantics survive: the two poems are closer to each other than to the invoice
    sims = last @ last.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]


@pytest.mark.slow
def test_smollm2_features_match_its_causal_lm_hidden_states():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from uaes_hf.assets import packaged_model_dir

    features = extract_features(POEMS, "smollm2-135m", batch_size=3, progress=False)
    assert features.shape == (3, 31, 576) and np.isfinite(features).all()
    path = packaged_model_dir("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    with torch.no_grad():  # the full causal LM, one unpadded text at a time
        hidden = model(**tokenizer(POEMS[2:], return_tensors="pt"), output_hidden_states=True)
    expected = torch.stack(hidden.hidden_states, dim=1)[0].mean(dim=1).numpy()
    np.testing.assert_allclose(features[2], expected, rtol=1e-3, atol=1e-3)


def test_registry_holds_the_study_models_as_data():
    llms = expand_models("study-llms")
    vits = expand_models("study-vits")
    assert len(llms) == 7 and len(vits) == 7
    assert {s.source for s in llms} >= {"meta-llama/Meta-Llama-3-8B", "google/gemma-2b"}
    assert "vit_huge_patch14_clip_224.laion2b_ft_in12k" in {s.source for s in vits}
    assert all(s.params_millions for s in (*llms, *vits))
    # the study's own leaderboard numbers, with their source (tests/test_study_models.py)
    assert all(s.ifeval and s.leaderboard_average and s.score_source for s in llms)
    assert tuple(s.key for s in expand_models("packaged-vision")) == MODEL_SETS["packaged-vision"]
    assert all(REGISTRY[k].license for k in MODEL_SETS["packaged-text"])


def test_resolve_model_infers_kinds(tmp_path):
    assert resolve_model("google/gemma-2b").key == "gemma-2b"
    assert resolve_model("some-org/some-lm").kind == "hf_text"
    assert resolve_model("vit_small_patch16_224.augreg_in21k").kind == "timm"
    assert resolve_model("timm/vit_tiny_patch16_224").source == "vit_tiny_patch16_224"
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2").kind == "sentence_transformer"
    assert resolve_model("some-org/vit", kind="hf_vision").kind == "hf_vision"
    (tmp_path / "modules.json").write_text("[]")
    assert resolve_model(str(tmp_path)).kind == "sentence_transformer"
    with pytest.raises(ValueError, match="kind"):
        resolve_model("x", kind="nope")
    with pytest.raises(ValueError, match="no models"):
        expand_models(" , ")
