"""Image-caption ingest (bad images reported and skipped), the embedded sample built from
packaged photos, and the dataset repo: it loads with ``datasets.load_dataset`` and its
images decode."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uaes_hf.data.embedded_images import (
    CAPTION_TABLE_COLUMNS,
    build_embedded_imagefolder,
    load_caption_table,
    resolve_source,
)
from uaes_hf.data.image_ingest import image_id, image_problem, read_image_captions, read_imagefolder
from uaes_hf.data.image_poem_text import RECORD_COLUMNS
from uaes_hf.images.dataset import build_image_poem_text_repo


def png_bytes(seed: int, size: tuple[int, int] = (20, 16)) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_folder(root: Path, fmt: str = "csv") -> Path:
    """3 good images, 1 truncated, 1 not an image, 1 missing, 1 without caption, 1 stray."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(3):
        (root / f"good{i}.png").write_bytes(png_bytes(i))
        rows.append({"file_name": f"good{i}.png", "caption": f"Picture {i}.", "license": "CC0-1.0"})
    data = png_bytes(9, (64, 64))
    (root / "truncated.png").write_bytes(data[: len(data) // 2])
    rows.append({"file_name": "truncated.png", "caption": "Cut off.", "license": "CC0-1.0"})
    (root / "text.jpg").write_bytes(b"this is not a jpeg")
    rows.append({"file_name": "text.jpg", "caption": "Not an image.", "license": "CC0-1.0"})
    rows.append({"file_name": "missing.png", "caption": "Gone.", "license": "CC0-1.0"})
    (root / "nocap.png").write_bytes(png_bytes(5))
    rows.append({"file_name": "nocap.png", "caption": "", "license": "CC0-1.0"})
    (root / "stray.png").write_bytes(png_bytes(6))  # on disk, not in the metadata
    if fmt == "csv":
        with (root / "metadata.csv").open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["file_name", "caption", "license"])
            writer.writeheader()
            writer.writerows(rows)
    else:
        (root / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_ingest_reports_and_skips_bad_images(tmp_path: Path, fmt: str) -> None:
    result = read_imagefolder(make_folder(tmp_path / "imgs", fmt))
    assert [it.file_name for it in result.items] == ["good0.png", "good1.png", "good2.png"]
    reasons = {s.file_name: s.reason for s in result.skipped}
    assert reasons["missing.png"] == "missing file"
    assert reasons["truncated.png"].startswith("unreadable image")
    assert reasons["text.jpg"].startswith("unreadable image")
    assert reasons["nocap.png"] == "empty caption"
    assert reasons["stray.png"] == "not in metadata"
    assert len(result.skipped) == 5
    assert "truncated.png" in result.report() and "3 images read, 5 skipped" in result.report()
    item = result.items[1]
    assert item.id == image_id(png_bytes(1)) and item.caption == "Picture 1."
    assert item.extra == {"license": "CC0-1.0"} and item.open_image().size == (20, 16)


def test_image_problem_catches_truncation_that_open_misses() -> None:
    data = png_bytes(3, (64, 64))
    cut = data[: len(data) - 40]
    Image.open(io.BytesIO(cut))  # opening alone does not notice
    assert image_problem(data) is None
    assert image_problem(cut) is not None and image_problem(b"") == "empty file"


def test_ingest_validates_the_layout(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no metadata.csv or metadata.jsonl"):
        read_imagefolder(tmp_path)
    (tmp_path / "metadata.csv").write_text("name,caption\na.png,x\n")
    with pytest.raises(ValueError, match="no file_name column"):
        read_imagefolder(tmp_path)
    (tmp_path / "metadata.csv").write_text("file_name,words\na.png,x\n")
    with pytest.raises(ValueError, match="no caption column"):
        read_imagefolder(tmp_path)
    assert read_imagefolder(tmp_path, caption_column="words").skipped[0].reason == "missing file"
    with pytest.raises(ValueError, match="neither a local folder nor a Hub dataset id"):
        read_image_captions("no-such-thing")


def test_caption_table_is_complete_and_its_files_exist() -> None:
    entries = load_caption_table()
    assert 30 <= len(entries) <= 60
    for entry in entries:
        assert resolve_source(entry).is_file(), entry.path_in_package
        sentences = [s for s in entry.caption.split(". ") if s.strip()]
        assert 2 <= len(sentences) <= 4, entry.caption
        assert entry.license and entry.credit
    assert set(CAPTION_TABLE_COLUMNS) == {
        "source_package",
        "path_in_package",
        "caption",
        "license",
        "credit",
    }


@pytest.mark.slow
def test_embedded_folder_loads_with_datasets_and_builds_a_repo(tmp_path: Path) -> None:
    from datasets import load_dataset

    from uaes_hf.images.scorers import ClassicalAestheticScorer

    result = build_embedded_imagefolder(tmp_path / "emb", max_side=96, progress=False)
    assert result.n_images == len(load_caption_table()) and not result.missing
    again = build_embedded_imagefolder(tmp_path / "emb", max_side=96, progress=False)
    assert not again.rebuilt  # finished folder is reused
    ds = load_dataset(str(result.folder), split="train")
    assert len(ds) == result.n_images
    for row in ds.select(range(5)):
        assert row["image"].mode == "RGB" and max(row["image"].size) <= 96
        assert row["caption"] and row["license"]

    class CaptionEcho:  # a stand-in poet: the repo builder is what is tested here
        name = "echo"

        def generate(self, images, captions):
            return [
                type("P", (), {"text": f"Echo:\n{c}", "source": "echo:test"})() for c in captions
            ]

    out = tmp_path / "repo"
    report = build_image_poem_text_repo(
        result.folder, out, poem_generator=CaptionEcho(), scorer=ClassicalAestheticScorer(),
        batch_size=16, progress=False,
    )  # fmt: skip
    assert report["records"] == result.n_images and report["level_mode"] == "quantile"
    repo = load_dataset(str(out), split="train")
    assert repo.column_names == list(RECORD_COLUMNS)
    assert repo[0]["image"].size == ds[0]["image"].size
    levels = repo["image_aesthetic_level"]
    assert set(levels) == {1, 2, 3, 4, 5}
    scores = repo["image_aesthetic_score"]
    order = np.argsort(scores, kind="stable")
    assert list(np.array(levels)[order]) == sorted(levels)  # levels follow scores
    assert all(src.startswith(("scikit-", "mate-", "ukui-")) for src in repo["source"])
    card = " ".join((out / "README.md").read_text().split())
    assert "heuristic baseline, not a human-aligned aesthetic score" in card
    assert "{{" not in card and "`scikit-image__astronaut.jpg` | Public domain (NASA)" in card


def test_repo_from_a_folder_with_bad_images(tmp_path: Path) -> None:
    from datasets import load_dataset

    from uaes_hf.images.scorers import ClassicalAestheticScorer

    class NoPoemForOne:
        name = "partial"

        def generate(self, images, captions):
            return [None if c == "Picture 0." else type("P", (), {"text": "x\ny", "source": "t"})()
                    for c in captions]  # fmt: skip

    out = tmp_path / "repo"
    report = build_image_poem_text_repo(
        make_folder(tmp_path / "imgs"), out, poem_generator=NoPoemForOne(),
        scorer=ClassicalAestheticScorer(), progress=False,
    )  # fmt: skip
    assert report["ingest"] == {**report["ingest"], "read": 3, "skipped": 5}
    assert report["dropped"] == [{"file_name": "good0.png", "reason": "no poem"}]
    assert report["level_mode"] == "fixed"  # fewer than 5 scores: no quantiles
    ds = load_dataset(str(out), split="train")
    assert len(ds) == 2 and sorted(ds["caption"]) == ["Picture 1.", "Picture 2."]
    assert all(img.size == (20, 16) for img in ds["image"])
    assert json.loads((out / "build_report.json").read_text())["records"] == 2
