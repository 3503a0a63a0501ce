"""`uaes prepare images` builds the embedded imagefolder that `datasets` loads."""

from __future__ import annotations

import csv
from pathlib import Path

from uaes_hf.cli import main
from uaes_hf.data.embedded_images import load_caption_table


def test_prepare_images_writes_a_loadable_imagefolder(tmp_path: Path, capsys) -> None:
    from datasets import load_dataset

    out = tmp_path / "images"
    argv = ["prepare", "images", "--out", str(out), "--max-side", "64", "--quiet"]
    assert main(argv) == 0
    with (out / "metadata.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    captions = {entry.file_name: entry.caption for entry in load_caption_table()}
    assert rows and all(captions[row["file_name"]] == row["caption"] for row in rows)
    assert all(row["license"] for row in rows)
    assert f"({len(rows)} photos)" in capsys.readouterr().out

    ds = load_dataset(str(out), split="train")
    assert len(ds) == len(rows)
    assert max(ds[0]["image"].size) <= 64

    assert main(argv) == 0  # a finished folder is reused, not rebuilt
    assert f"({len(rows)} photos)" in capsys.readouterr().out
