"""The prepare stage reads the study's datasets through the study importers, with the
config's column maps, and lists what it substituted: parquet folders in the study's
schemas (read by the real ``datasets.load_dataset``), the real stage function."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import run_stages
from uaes_hf.experiments.stages import default_stages


def _write_repo(folder: Path, configs: dict[str, pa.Table]) -> Path:
    entries = []
    for i, (name, table) in enumerate(configs.items()):
        (folder / "data" / name).mkdir(parents=True)
        pq.write_table(table, folder / "data" / name / "train-00000-of-00001.parquet")
        entry = {
            "config_name": name,
            "data_files": [{"split": "train", "path": f"data/{name}/train-*.parquet"}],
        }
        if i == 0:
            entry["default"] = True
        entries.append(entry)
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump({'configs': entries})}---\n# x\n")
    return folder


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (6, 4), (value, 40, 90)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def study_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("study_data")
    # poems with a renamed text column (mapped in the config), one failed rating (0)
    poems = pa.table(
        {
            "body": [f"line {i} of a poem\nand its second line" for i in range(12)],
            "score": [4, 2, 0, 5, 3, 1, 4, 2, 3, 5, 1, 4],
            "form": ["sonnet", "free-verse"] * 6,
            "title": [f"t{i}" for i in range(12)],
        }
    )
    aligned = pa.table(
        {
            "body": ["short one", "short two", "short three"],
            "score": [3, 4, 2],
            "form": ["haiku"] * 3,
        }
    )
    prh = pa.table({"text": [[f"A caption number {i}.", "another"] for i in range(10)] + [[]]})
    image_text = pa.table(
        {
            "image": [{"bytes": _png(v), "path": f"i{v}.png"} for v in range(8)],
            "text": [f"A photo of thing {v}." for v in range(8)],
            "verse": [f"a verse for {v}" for v in range(8)],
            "score": [1, 2, 3, 4, 5, 3, 2, 9],
        }
    )
    # datasets caches a local folder by its name and config, not its path or content
    # (datasets 5.2): names no other test uses, so no other folder's cache is read back
    return {
        "poems": _write_repo(root / "stats_prepare_poems", {"main": poems, "aligned_s": aligned}),
        "prh": _write_repo(root / "stats_prepare_prh", {"wit_1024": prh}),
        "image_text": _write_repo(root / "stats_prepare_image_text", {"main": image_text}),
    }


def _config(study_data, **data):
    return load_config(
        overrides={
            "data": {
                "poems": str(study_data["poems"]),
                "poems_revision": "main",
                "aligned_poems": "aligned_s",
                "plain_texts": str(study_data["prh"]),
                "plain_texts_revision": "wit_1024",
                "image_text": str(study_data["image_text"]),
                "n_poems": 0,
                "n_plain_texts": 0,
                "n_images": 6,
                "poems_columns": {"text": "body"},
                "image_text_columns": {"poem": "verse"},
                **data,
            }
        }
    )


def test_prepare_imports_the_study_schemas_with_the_config_column_maps(study_data, tmp_path):
    cfg = _config(study_data)
    (result,) = run_stages(default_stages()[:1], cfg, tmp_path, show_progress=False)
    layout = RunLayout({"prepare": result.directory})
    poems = pd.read_parquet(layout.prepared_poems)
    assert len(poems) == 12 and poems["text"].iloc[0] == "line 0 of a poem\nand its second line"
    scores = poems["aesthetic_score"].tolist()
    assert np.isnan(scores[2]) and scores[:2] == [4, 2]  # 0 = a failed rating -> null
    assert set(poems["form_category"]) == {"formatted", "free_verse"}
    aligned = pd.read_parquet(layout.aligned_poems)
    assert aligned["text"].tolist() == ["short one", "short two", "short three"]
    plain = pd.read_parquet(layout.plain_texts)
    assert sorted(plain["text"]) == sorted(f"A caption number {i}." for i in range(10))
    images = pd.read_parquet(layout.image_text)
    assert len(images) == 6  # n_images drawn from the 8 rows
    assert set(images["poem"]) <= {f"a verse for {v}" for v in range(8)}
    assert images["image"].map(bytes).isin([_png(v) for v in range(8)]).all()
    levels = images["image_aesthetic_level"]
    assert set(levels.dropna().astype(int)) <= {1, 2, 3, 4, 5}
    found = result.summary["substitutions"]
    details = " | ".join(f"{s['what']}: {s['detail']}" for s in found)
    assert "text <- body" in details and "poem <- verse" in details
    assert "score 0 (rating failed) -> null score: 1 of 12 rows" in details
    assert "no text -> row skipped: 1 of 11 rows" in details
    assert "level missing or outside 1-5 -> null level" in details


def test_a_dataset_without_a_mapped_column_stops_with_the_columns_found(study_data, tmp_path):
    cfg = _config(study_data, poems_columns={"text": "content"})
    with pytest.raises(ValueError) as err:
        run_stages(default_stages()[:1], cfg, tmp_path, show_progress=False)
    assert "'content'" in str(err.value) and "body" in str(err.value)


@pytest.mark.slow
def test_an_image_set_without_poems_or_levels_is_built_and_recorded(study_data, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for v in range(3):
        (folder / f"p{v}.png").write_bytes(_png(40 * v))
    pd.DataFrame(
        {"file_name": [f"p{v}.png" for v in range(3)], "caption": ["the sea", "a cat", "hills"]}
    ).to_csv(folder / "metadata.csv", index=False)
    cfg = _config(study_data, image_text=str(folder), n_images=3)
    (result,) = run_stages(default_stages()[:1], cfg, tmp_path / "work", show_progress=False)
    images = pd.read_parquet(RunLayout({"prepare": result.directory}).image_text)
    assert len(images) == 3 and images["poem"].str.len().gt(0).all()
    found = [s for s in result.summary["substitutions"] if s["what"] == "image poems and levels"]
    assert len(found) == 1 and "retrieval" in found[0]["detail"]
