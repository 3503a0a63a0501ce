"""Helpers for the retrieval tests: a fake VLM that sees two rows of images, small real
image folders, and tiny random-weight CLIP/SigLIP folders (mechanics only, never results).

The fake VLM wraps ``tests/openai_server.py`` (a real HTTP server on 127.0.0.1): its
responder decodes the base64 images of both rows, logs which query was asked with which
rows in which order, and answers per aspect by a fixed policy (``brighter``: the row whose
images are brighter on average; ``first``/``second``: always that row).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from openai_server import ChatRequest, FakeOpenAIServer  # noqa: E402

ASPECTS = ("overall", "accuracy", "aesthetics", "diversity")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_rows(body: dict[str, Any]) -> tuple[str, list[str], list[str]]:
    """(query, row 1 image URLs, row 2 image URLs) of a row-judge request."""
    parts = [m for m in body["messages"] if m["role"] == "user"][0]["content"]
    query, rows, current = "", {1: [], 2: []}, None
    for part in parts:
        if part["type"] == "text" and part["text"].startswith("Query: "):
            query = part["text"][len("Query: ") :]
        elif part["type"] == "text" and part["text"].startswith("Row "):
            current = int(part["text"][4])
        elif part["type"] == "image_url":
            rows[current].append(part["image_url"]["url"])
    return query, rows[1], rows[2]


def url_brightness(url: str) -> float:
    from PIL import Image

    data = base64.b64decode(url.split(",", 1)[1])
    return float(np.asarray(Image.open(io.BytesIO(data)).convert("L")).mean())


def row_digest(urls: list[str]) -> str:
    return hashlib.sha256("".join(urls).encode()).hexdigest()[:12]


class RowJudgeServer:
    """A fake VLM row judge on a real local server; ``calls`` logs every request."""

    def __init__(self, policy: str = "brighter") -> None:
        self.policy = policy
        self.calls: list[dict[str, Any]] = []
        self.server = FakeOpenAIServer(responder=self._respond, item_key=self._key)

    def _key(self, body: dict[str, Any]) -> str:
        user = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
        if isinstance(user, str):  # not a row-judge request (e.g. a rephrasing)
            return hashlib.sha256(user.encode()).hexdigest()
        query, first, second = parse_rows(body)
        return f"{query}|{row_digest(first)}|{row_digest(second)}"

    def _respond(self, request: ChatRequest) -> str:
        query, first, second = parse_rows(request.body)
        self.calls.append({"query": query, "row1": row_digest(first), "row2": row_digest(second)})
        if self.policy == "first":
            choice = 1
        elif self.policy == "second":
            choice = 2
        else:
            bright = [np.mean([url_brightness(u) for u in row]) for row in (first, second)]
            choice = 1 if bright[0] >= bright[1] else 2
        return "Looking at both rows.\n" + json.dumps({a: choice for a in ASPECTS})

    def __enter__(self) -> RowJudgeServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def base_url(self) -> str:
        return self.server.base_url


def write_images(folder: Path, values: list[int], size: int = 24, prefix: str = "img") -> list[str]:
    """One small PNG per value: a flat grey of that value with a coloured square."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, value in enumerate(values):
        image = Image.new("RGB", (size, size), (value, value, value))
        image.paste((255 - value, (37 * i) % 256, (91 * i) % 256), (4, 4, 12, 12))
        path = folder / f"{prefix}_{i:03d}.png"
        image.save(path)
        paths.append(str(path))
    return paths


WORDS = [
    "dog",
    "cat",
    "bird",
    "fish",
    "horse",
    "tree",
    "flower",
    "house",
    "car",
    "boat",
    "train",
    "plane",
    "sun",
    "moon",
    "star",
    "apple",
    "guitar",
    "piano",
    "clock",
    "book",
    "red",
    "blue",
    "green",
    "yellow",
    "small",
    "big",
    "old",
    "new",
    "happy",
    "bright",
    "dark",
]


def write_imagefolder(folder: Path, n: int = 48, seed: int = 0) -> Path:
    """An imagefolder (``metadata.csv``: file_name, caption) of n synthetic images."""
    import csv

    rng = np.random.default_rng(seed)
    values = [int(v) for v in rng.integers(20, 235, n)]
    paths = write_images(folder, values, size=32)
    with (folder / "metadata.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "caption", "license"])
        for path in paths:
            words = " ".join(rng.choice(WORDS, 4))
            writer.writerow([Path(path).name, f"a drawing of a {words}", "CC0-1.0 (test data)"])
    return folder


def tiny_dual_encoder_dir(folder: Path, kind: str = "clip") -> Path:
    """A tiny RANDOM-WEIGHT CLIP or SigLIP with tokenizer and image processor, saved so
    that ``from_pretrained(folder)`` loads it like a Hub model (mechanics only)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS + ["a", "of"])}}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", model_max_length=16
    )
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=16,
    )
    vision = dict(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=2,
    )
    import torch

    torch.manual_seed(0)
    if kind == "clip":
        from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

        text.update(pad_token_id=0, bos_token_id=1, eos_token_id=1)
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        processor = CLIPImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    else:
        from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel

        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        processor = SiglipImageProcessor(size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
