"""The VLM image scorer and poem generator against the real local OpenAI-compatible server:
images go out as base64 content parts, faults are retried, answers land in the store once,
and the build script produces a dataset repo from them."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from openai_server import ChatRequest, FakeOpenAIServer, FaultSchedule, sha256_text
from PIL import Image

from uaes_hf.annotate.client import ChatClient, ChatConfig
from uaes_hf.annotate.store import ResultStore
from uaes_hf.images.poems import VLMPoemGenerator
from uaes_hf.images.scorers import (
    AVA_LEVEL_CUTS,
    IMAGE_AESTHETIC_INSTRUCTION,
    VLMScorer,
    encode_image_data_url,
)

ROOT = Path(__file__).resolve().parents[1]
# Every fault but score_7: on a 1-10 scale "7.x" is a valid (different) score, not a fault.
IMAGE_FAULT_WEIGHTS = {"429": 0.2, "500": 0.2, "slow": 0.1, "garbage_body": 0.1,
                       "malformed": 0.2, "score_0": 0.15, "fenced": 0.05}  # fmt: skip


def expected_image_score(item_key: str) -> float:
    return 1.0 + (int(item_key[:8], 16) % 90) / 10.0  # 1.0 .. 9.9, one decimal


def expected_poem(item_key: str) -> str:
    return f"Light on {item_key[:6]},\nquiet colour\nholding still"


def image_responder(request: ChatRequest) -> str:
    """Score or poem, depending on which prompt the request carries."""
    if '"poem"' in request.user_text:
        return json.dumps({"poem": expected_poem(request.item_key)})
    return json.dumps({"score": expected_image_score(request.item_key)})


def images(n: int, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)) for _ in range(n)]


def client_for(server: FakeOpenAIServer, **kw) -> ChatClient:
    config = dict(model="test-vlm", base_url=server.base_url, timeout=0.4, backoff_base=0.005,
                  backoff_max=0.05, max_retries=6, concurrency=4)  # fmt: skip
    config.update(kw)
    return ChatClient(ChatConfig(**config), api_key="sk-test")


def image_parts(body: dict) -> list[dict]:
    user = next(m for m in body["messages"] if m["role"] == "user")
    return [p for p in user["content"] if p.get("type") == "image_url"]


def test_vlm_scorer_sends_base64_images_and_caches(tmp_path: Path) -> None:
    bodies: list[dict] = []

    def recording(request: ChatRequest) -> str:
        bodies.append(request.body)
        return image_responder(request)

    imgs = images(5)
    with FakeOpenAIServer(responder=recording) as server, ResultStore(tmp_path / "s.db") as store:
        scorer = VLMScorer(client_for(server), store, progress=False)
        scores = scorer.score(imgs)
        n_first = len(server.chat_requests())
        again = scorer.score(imgs)  # all cached: no new request
        assert len(server.chat_requests()) == n_first == 5
        assert scorer.last_stats is not None and scorer.last_stats.cached == 5

    # the server keys an item by its user text parts: the instruction, then the image URL
    keys = [sha256_text(f"{IMAGE_AESTHETIC_INSTRUCTION}\n{encode_image_data_url(img)}")
            for img in imgs]  # fmt: skip
    assert scores == again == [expected_image_score(k) for k in keys]
    for body in bodies:
        parts = image_parts(body)
        assert len(parts) == 1
        url = parts[0]["image_url"]["url"]
        assert url.startswith("data:image/jpeg;base64,")
        decoded = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        assert decoded.format == "JPEG" and decoded.size == (32, 24)
        assert body["model"] == "test-vlm"
    assert [scorer.level(s) for s in scores] == [
        1 + sum(s >= c for c in AVA_LEVEL_CUTS) for s in scores
    ]
    assert scorer.name == "vlm:test-vlm@image-aesthetic-regression-v1"


def test_vlm_scorer_under_faults_every_image_one_outcome(tmp_path: Path) -> None:
    schedule = FaultSchedule(seed=10, fault_rate=0.6, weights=IMAGE_FAULT_WEIGHTS, slow_s=0.8,
                             always_fail_rate=0.2, always_fail_kind="malformed")  # fmt: skip
    imgs = images(24, seed=1)
    with (
        FakeOpenAIServer(schedule, responder=image_responder) as server,
        ResultStore(tmp_path / "s.db") as store,
    ):
        scorer = VLMScorer(client_for(server), store, progress=False, content_retries=3)
        scores = scorer.score(imgs)
        log = server.chat_requests()
        rows = store.results(task="image_aesthetic")

    by_key: dict[str, list[dict]] = {}
    for entry in log:
        by_key.setdefault(entry["item_key"], []).append(entry)
    assert len(by_key) == len(imgs) == len(rows)  # one store row per image, none missing
    doomed = {k for k in by_key if schedule.always_fails(k)}
    assert 0 < len(doomed) < len(imgs)
    faults = Counter(e["fault"] for e in log)
    for kind in IMAGE_FAULT_WEIGHTS:
        assert faults[kind] > 0, f"schedule never produced {kind}: {faults}"
    expected = {k: expected_image_score(k) for k in by_key}
    ok_scores = sorted(expected[k] for k in by_key if k not in doomed)
    assert sorted(s for s in scores if not math.isnan(s)) == ok_scores
    assert sum(math.isnan(s) for s in scores) == len(doomed)
    for row in rows:
        assert row.ok == (row.payload is not None and "score" in row.payload)
        if not row.ok:
            assert row.reason == "invalid_output" and row.attempts == 4  # 1 ask + 3 re-asks
    # a faulty item was asked again until it got a good answer
    for key, entries in by_key.items():
        if key not in doomed and any(e["fault"] for e in entries):
            assert entries[-1]["fault"] in (None, "fenced")


def test_vlm_poem_generator_under_faults(tmp_path: Path) -> None:
    schedule = FaultSchedule(seed=2, fault_rate=0.5, weights=IMAGE_FAULT_WEIGHTS, slow_s=0.8)
    imgs = images(8, seed=3)
    captions = [f"caption {i}" for i in range(len(imgs))]
    with (
        FakeOpenAIServer(schedule, responder=image_responder) as server,
        ResultStore(tmp_path / "s.db") as store,
    ):
        gen = VLMPoemGenerator(client_for(server), store, progress=False)
        poems = gen.generate(imgs, captions)
        log = server.chat_requests()
    assert all(p is not None for p in poems)
    keys = {e["item_key"] for e in log}
    assert sorted(p.text for p in poems) == sorted(expected_poem(k) for k in keys)
    assert {p.source for p in poems} == {"vlm:test-vlm@image-to-poem-v1"}
    assert any(e["fault"] for e in log)
    # the caption is not shown by default (the study's pipeline was image-only)
    assert not any("caption 0" in json.dumps(e) for e in log)


def test_build_script_end_to_end_with_vlm(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    rows = ["file_name,caption,license"]
    for i, img in enumerate(images(4, seed=9)):
        img.save(folder / f"im{i}.png")
        rows.append(f"im{i}.png,A small test picture number {i}.,CC0-1.0")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "repo"
    schedule = FaultSchedule(seed=4, fault_rate=0.3, weights={"429": 1.0, "malformed": 1.0})
    with FakeOpenAIServer(schedule, responder=image_responder) as server:
        env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1",
               "UAES_HOME": str(tmp_path / "home")}  # fmt: skip
        proc = subprocess.run(
            [sys.executable, str(ROOT / "datasets_scripts" / "image_poem_text.py"), "build",
             str(folder), str(out), "--poems", "vlm", "--scorer", "vlm", "--base-url",
             server.base_url, "--model", "test-vlm", "--store", str(tmp_path / "s.db")],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    from datasets import load_dataset

    ds = load_dataset(str(out), split="train")
    assert len(ds) == 4
    assert set(ds["poem_source"]) == {"vlm:test-vlm@image-to-poem-v1"}
    assert set(ds["scorer"]) == {"vlm:test-vlm@image-aesthetic-regression-v1"}
    for row in ds:
        assert row["image"].size == (32, 24)
        assert 1.0 <= row["image_aesthetic_score"] <= 9.9
        assert row["image_aesthetic_level"] == 1 + sum(
            row["image_aesthetic_score"] >= c for c in AVA_LEVEL_CUTS
        )
        assert row["license"] == "CC0-1.0" and row["poem"].startswith("Light on ")


def test_build_script_without_key_fails_with_one_clear_message(tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    images(1)[0].save(folder / "a.png")
    (folder / "metadata.csv").write_text("file_name,caption\na.png,A test.\n")
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "datasets_scripts" / "image_poem_text.py"), "build",
         str(folder), str(tmp_path / "out"), "--scorer", "vlm", "--poems", "vlm"],
        env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "OPENAI_API_KEY is not set" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("answer", ["", "no number here", '{"score": 11}', '{"score": true}'])
def test_unusable_answers_are_reasked_then_recorded(tmp_path: Path, answer: str) -> None:
    with (
        FakeOpenAIServer(responder=lambda r: answer) as server,
        ResultStore(tmp_path / "s.db") as store,
    ):
        scores = VLMScorer(client_for(server), store, progress=False, content_retries=2).score(
            images(1)
        )
        assert len(server.chat_requests()) == 3
        (row,) = store.results()
    assert math.isnan(scores[0])
    assert not row.ok and row.reason == "invalid_output"
