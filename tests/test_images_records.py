"""Image-poem-text rows are built in one place (uaes_hf.images.records.image_text_rows): the
experiment's rows and the published dataset's rows come from it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from uaes_hf.images.classical import ClassicalAestheticScorer
from uaes_hf.images.dataset import build_image_poem_text_repo
from uaes_hf.images.poems import GeneratedPoem, RetrievalPoemBaseline, StanzaPool
from uaes_hf.images.records import IMAGE_TEXT_COLUMNS, image_text_rows, sample_rows


def folder_of_images(root: Path, n: int, extra: dict[str, list] | None = None) -> Path:
    root.mkdir()
    rng = np.random.default_rng(5)
    rows = {"file_name": [], "caption": []}
    for i in range(n):
        size = (24 + 4 * i, 20 + 2 * i, 3)
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(root / f"im{i}.png")
        rows["file_name"].append(f"im{i}.png")
        rows["caption"].append(f"A {'sea' if i % 2 else 'cat'} picture, number {i}.")
    pd.DataFrame({**rows, **(extra or {})}).to_csv(root / "metadata.csv", index=False)
    return root


class Toy:
    """A stand-in sentence encoder: counts two words (the retrieval logic is the real one)."""

    def encode(self, texts, batch_size=64):
        return np.array([[t.lower().count("sea"), t.lower().count("cat") + 0.1] for t in texts])


def toy_baseline() -> RetrievalPoemBaseline:
    pool = StanzaPool.from_texts(["The sea, the sea\nis grey", "A cat\non a mat"])
    return RetrievalPoemBaseline(pool=pool, encoder=Toy(), cache_embeddings=False)


@pytest.mark.slow
def test_rows_of_the_embedded_images_do_not_depend_on_the_batch_size() -> None:
    one_batch = image_text_rows("embedded", n_images=12, seed=7, batch_size=32)
    new = image_text_rows("embedded", n_images=12, seed=7, batch_size=5)
    pd.testing.assert_frame_equal(one_batch, new, check_exact=True)
    assert list(new.columns) == list(IMAGE_TEXT_COLUMNS) and len(new) == 12
    assert new["scorer"].unique().tolist() == ["classical-heuristic-v1"]
    assert sorted(new["image_aesthetic_level"].value_counts()) == [2, 2, 2, 3, 3]  # quintiles


def test_a_set_with_poems_and_levels_is_used_as_it_is(tmp_path: Path) -> None:
    extra = {
        "poem": [f"poem {i}\nline" for i in range(6)],
        "image_aesthetic_level": [1, 2, 3, 4, 5, 3],
        "image_aesthetic_score": [1.5, 4.2, 5.5, 6.1, 7.7, 5.0],
        "poem_source": ["gpt-4o"] * 6,
    }
    folder = folder_of_images(tmp_path / "set", 6, extra)
    rows = image_text_rows(folder, n_images=4, seed=3)
    assert rows["poem_source"].tolist() == ["gpt-4o"] * 4 and rows["scorer"].isna().all()
    picked = [int(i) for i in sample_rows(6, 4, seed=3)]
    assert rows["image_aesthetic_level"].tolist() == [
        extra["image_aesthetic_level"][i] for i in picked
    ]
    assert rows["poem"].tolist() == [extra["poem"][i] for i in picked]
    assert rows["image_aesthetic_score"].tolist() == [
        extra["image_aesthetic_score"][i] for i in picked
    ]


def test_sizes_missing_poems_and_missing_scores(tmp_path: Path) -> None:
    folder = folder_of_images(tmp_path / "set", 7)
    empty = image_text_rows(folder, n_images=0)
    assert empty.empty and list(empty.columns) == list(IMAGE_TEXT_COLUMNS)
    assert image_text_rows(folder, n_images=99, poem_backend=toy_baseline())["id"].tolist() == (
        image_text_rows(folder, n_images=None, poem_backend=toy_baseline())["id"].tolist()
    )
    with pytest.raises(ValueError, match="n_images"):
        image_text_rows(folder, n_images=-1)

    def number(image) -> int:  # image i is 24 + 4 i pixels high
        return (image.height - 24) // 4

    class HalfBlind:  # a VLM that never answered usably for two images
        name = "half-blind"

        def score(self, images):
            return [math.nan if number(im) in (1, 4) else 2.0 + number(im) for im in images]

        def level(self, score):
            return 1 + int(score > 5)

    class Silent:
        name = "silent"

        def generate(self, images, captions):
            poems = [GeneratedPoem(f"p{number(im)}", "x") for im in images]
            return [None if number(im) == 0 else p for im, p in zip(images, poems, strict=True)]

    rows = image_text_rows(folder, scorer=HalfBlind(), poem_backend=Silent(), batch_size=3)
    assert rows["poem"].tolist()[:2] == ["", "p1"] and rows["poem_source"].tolist()[0] == ""
    assert rows["image_aesthetic_level"].isna().tolist() == [i in (1, 4) for i in range(7)]
    assert rows["image_aesthetic_level"].dropna().tolist() == [1, 1, 1, 2, 2]
    assert rows["scorer"].unique().tolist() == ["half-blind"]


def test_the_dataset_builder_publishes_these_rows(tmp_path: Path) -> None:
    from datasets import load_dataset

    folder = folder_of_images(tmp_path / "set", 8)
    expected = image_text_rows(folder, poem_backend=toy_baseline())
    report = build_image_poem_text_repo(
        folder,
        tmp_path / "repo",
        poem_generator=toy_baseline(),
        scorer=ClassicalAestheticScorer(),
        progress=False,
    )
    published = load_dataset(str(tmp_path / "repo"), split="train").to_pandas()
    assert report["records"] == 8 and report["level_mode"] == "quantile"
    for column in ("id", "caption", "poem", "poem_source", "image_aesthetic_level", "scorer"):
        assert published[column].tolist() == expected[column].tolist(), column
    assert np.allclose(
        published["image_aesthetic_score"], expected["image_aesthetic_score"], atol=1e-4
    )
    assert [row["bytes"] for row in published["image"]] == expected["image"].tolist()
