"""The study's models: registry entries, capability scores, and token caps per model.

Hub models cannot be loaded here (offline): their caps come from the position limits the
registry records from their Hub configs (``from_hub=False``), and the test says which
source was used. Packaged models and the tiny config-built models are read from their
real ``config.json`` and run for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import extract_helpers
import numpy as np
import pytest
import torch

from uaes_hf.experiments.config import load_config
from uaes_hf.extract.registry import MODEL_SETS, REGISTRY, resolve_model
from uaes_hf.extract.token_limits import (
    effective_token_caps,
    folder_position_limit,
    format_token_caps,
    model_position_limit,
)

tiny_gpt2_dir = extract_helpers.tiny_gpt2_dir  # shared fixture (GPT-2, n_positions=64)
STUDY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "study.yaml"

# The study's results file, in its model order (Llama-3-8B, Mistral-7B, Gemma-7B, Gemma-2B,
# BLOOMZ-1b7, OLMo-1B, BLOOMZ-560m): IFEval, then the Open LLM Leaderboard average.
STUDY_ORDER = ["llama3-8b", "mistral-7b", "gemma-7b", "gemma-2b", "bloomz-1b7", "olmo-1b"]
STUDY_ORDER.append("bloomz-560m")
IFEVAL = [61.70, 44.87, 26.59, 20.18, 10.44, 21.82, 6.20]
AVERAGE = [23.49, 12.77, 13.07, 7.32, 4.05, 6.63, 3.51]
# Position limits as the models' Hub config.json files state them (written out here, not
# read from the registry): Llama 3 / Gemma 8192, Mistral 32768, OLMo 2048, BLOOM's training
# length 2048 (ALiBi, no table), GPT-2 1024, MiniLM 512.
HUB_LIMITS = {
    "llama3-8b": 8192,
    "mistral-7b": 32768,
    "gemma-7b": 8192,
    "gemma-2b": 8192,
    "bloomz-1b7": 2048,
    "olmo-1b": 2048,
    "bloomz-560m": 2048,
    "gpt2": 1024,
}


def test_mistral_is_the_base_model_and_instruct_a_separate_entry() -> None:
    assert MODEL_SETS["study-llms"] == tuple(STUDY_ORDER)
    assert resolve_model("mistral-7b").source == "mistralai/Mistral-7B-v0.1"
    assert resolve_model("mistralai/Mistral-7B-v0.1").key == "mistral-7b"
    instruct = resolve_model("mistralai/Mistral-7B-Instruct-v0.1")
    assert instruct.key == "mistral-7b-instruct" and instruct.key in REGISTRY
    assert instruct.key not in MODEL_SETS["study-llms"] and instruct.ifeval is None
    gated = {key for key in STUDY_ORDER if REGISTRY[key].gated}
    assert gated == {"llama3-8b", "mistral-7b", "gemma-7b", "gemma-2b"}
    assert REGISTRY["mistral-7b-instruct"].gated


def test_capability_scores_are_the_studys_with_their_source() -> None:
    specs = [REGISTRY[key] for key in STUDY_ORDER]
    assert [s.ifeval for s in specs] == IFEVAL
    assert [s.leaderboard_average for s in specs] == AVERAGE
    assert all("alignment.txt" in s.score_source and "utils.py" in s.score_source for s in specs)


def test_every_model_of_the_study_config_has_a_cap() -> None:
    cfg = load_config(STUDY_CONFIG)
    ex = cfg.extract
    text = [*ex.text_models, cfg.analyse.cluster_model, ex.perplexity_model]
    caps = effective_token_caps([*text, *ex.vision_models], ex.max_tokens, from_hub=False)
    by_model = {c.model: c for c in caps}
    assert list(by_model) == [*text, *ex.vision_models]
    assert ex.max_tokens == 1024 and all(c.requested == 1024 for c in caps)
    for model, limit in HUB_LIMITS.items():  # offline: the registry's Hub-config limits
        assert by_model[model].cap == min(1024, limit)
        assert by_model[model].source.startswith(f"registry: {limit} ")
    minilm = by_model["all-minilm-l6-v2"]  # packaged: its own config.json is read
    assert minilm.cap == 512 and minilm.source == "config.json max_position_embeddings=512"
    assert all(by_model[m].cap is None for m in ex.vision_models)
    lines = format_token_caps(caps)
    assert len(lines) == len(caps) and "asked 1024" in lines[text.index("all-minilm-l6-v2")]


def test_limits_read_from_config_files(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    assert folder_position_limit(tiny_gpt2_dir)[0] == 64
    assert model_position_limit(str(tiny_gpt2_dir))[0] == 64
    roberta = tmp_path / "roberta"
    roberta.mkdir()
    config = {"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}
    (roberta / "config.json").write_text(json.dumps(config))
    assert folder_position_limit(roberta)[0] == 512  # positions start after the pad index
    (roberta / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 256}))
    assert folder_position_limit(roberta) == (256, "tokenizer model_max_length=256")
    (roberta / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 10**30}))
    assert folder_position_limit(roberta)[0] == 512  # "no limit" sentinel ignored
    with pytest.raises(ValueError, match="max_tokens"):
        effective_token_caps(["gpt2"], 0, from_hub=False)


def _long_text(n_words: int) -> str:
    words = ["moonlight", "over", "the", "quiet", "harbour", "where", "gulls", "sleep"]
    return " ".join(words[i % len(words)] for i in range(n_words))


def test_minilm_caps_a_long_text_at_512_and_counts_it() -> None:
    from transformers import AutoModel, AutoTokenizer

    from uaes_hf.assets import sentence_transformer_dir
    from uaes_hf.extract.run import extract_features
    from uaes_hf.extract.text import TextFeatureExtractor

    texts = [_long_text(2000), "A short caption of a harbour."]
    extractor = TextFeatureExtractor("all-minilm-l6-v2", max_length=1024, progress=False)
    layers, info = extractor(texts)
    assert info["n_truncated"] == 1
    assert (extractor.max_length, extractor.requested_max_length) == (512, 1024)
    described = extractor.describe()
    assert described["max_length"] == 512 and described["position_limit"] == 512
    # independent: the BERT body on the first 512 tokens, masked mean of every hidden state
    folder = sentence_transformer_dir("all-minilm-l6-v2")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).eval()
    encoded = tokenizer(texts[:1], truncation=True, max_length=512, return_tensors="pt")
    assert encoded["input_ids"].shape[1] == 512
    with torch.no_grad():
        hidden = model(**encoded, output_hidden_states=True).hidden_states
    expected = np.stack([h[0].mean(dim=0).numpy() for h in hidden])
    got = np.stack([layer[0] for layer in layers])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # the whole extract path (feature store runner) with max_length=1024 runs too
    stack = extract_features(texts, "all-minilm-l6-v2", max_length=1024, progress=False)
    np.testing.assert_allclose(stack[0], got, rtol=1e-4, atol=1e-4)


def test_config_built_models_cap_and_count(tiny_gpt2_dir: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    from uaes_hf.extract.perplexity import PerplexityScorer
    from uaes_hf.extract.text import TextFeatureExtractor

    texts = [" ".join(extract_helpers.TEXTS * 6), extract_helpers.TEXTS[0]]  # ~150 tokens
    scorer = PerplexityScorer(str(tiny_gpt2_dir), max_length=1024, progress=False)
    columns, info = scorer(texts)
    assert scorer.max_length == 64 and info["n_truncated"] == 1
    assert columns[1][0, 0] == 63  # predicted tokens of the kept 64 (BOS + 63)
    extractor = TextFeatureExtractor(str(tiny_gpt2_dir), max_length=1024, progress=False)
    assert extractor.max_length == 64 and extractor(texts)[1]["n_truncated"] == 1
    loaded = TextFeatureExtractor.from_loaded(
        AutoModel.from_pretrained(tiny_gpt2_dir),
        AutoTokenizer.from_pretrained(tiny_gpt2_dir),
        max_length=500,
        progress=False,
    )
    assert loaded.max_length == 64 and loaded(texts)[1]["n_truncated"] == 1


@pytest.mark.slow
def test_packaged_llm_limit_read_from_its_converted_config() -> None:
    limit, source = model_position_limit("smollm2-135m", build_packaged=True)
    assert (limit, source) == (8192, "config.json max_position_embeddings=8192")


def test_hub_configs_are_read_from_a_hub_endpoint(tmp_path: Path) -> None:
    """A real HTTP server on 127.0.0.1 as HF_ENDPOINT: config.json served for gemma-2b, a
    gated answer for Llama 3 (registry fallback, and the Hub is still asked for the next)."""
    import os
    import subprocess
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = json.dumps({"model_type": "gemma", "max_position_embeddings": 4096}).encode()
    asked: list[str] = []

    class FakeHub(BaseHTTPRequestHandler):
        def _answer(self, with_body: bool) -> None:
            asked.append(self.path)
            if self.path.startswith("/meta-llama/"):
                self.send_response(401)
                self.send_header("X-Error-Code", "GatedRepo")
                self.send_header("Content-Length", "0")
            elif self.path == "/google/gemma-2b/resolve/main/config.json":
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"etag-of-config"')
                self.send_header("X-Repo-Commit", "a" * 40)
            else:
                self.send_response(404)
                self.send_header("X-Error-Code", "EntryNotFound")
                self.send_header("Content-Length", "0")
            self.end_headers()
            if with_body and self.path.endswith("/gemma-2b/resolve/main/config.json"):
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._answer(False)

        def do_GET(self) -> None:
            self._answer(True)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {
        **os.environ,
        "HF_ENDPOINT": f"http://127.0.0.1:{server.server_port}",
        "HF_HUB_OFFLINE": "0",
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_TOKEN": "",
    }
    code = (
        "import json; from uaes_hf.extract.token_limits import effective_token_caps as caps; "
        "print(json.dumps([list(c) for c in caps(['llama3-8b', 'gemma-2b'], 100000)]))"
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
    finally:
        server.shutdown()
    assert out.returncode == 0, out.stderr
    llama, gemma = json.loads(out.stdout.strip().splitlines()[-1])
    assert llama[2] == 8192 and "Hub config not readable (GatedRepoError)" in llama[3]
    assert gemma[2:] == [4096, "config.json max_position_embeddings=4096 (Hub google/gemma-2b)"]
    assert "/google/gemma-2b/resolve/main/config.json" in asked
