"""Importers of the study's datasets, on parquet folders built here in the study's schemas.

Each folder is what a Hub dataset repo holds (README with YAML ``configs:``, parquet under
``data/<config>/``) and is read by the real ``datasets.load_dataset``. The schemas follow
the study's code: poems (``content``, ``score``, ``form``, ... as its loader and rating
script wrote them), Image-Text (``image``, ``text``, ``poem``, ``score``), and
``minhuh/prh`` (``text`` as a list of captions).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from uaes_hf.data.study_import import (
    import_plain_texts,
    import_study_image_text,
    import_study_poems,
    load_image_text_frame,
    load_plain_texts_frame,
    load_poems_frame,
)

POEMS_MAIN = [
    # title, content, author, is_translation, form, filename, score
    ("Dawn", "The light\nbreaks slow\n\nover hills", "Ann Lee", False, "sonnet", "a.txt", 4),
    ("Dusk", "Night falls on the quiet town", "Bo Chen", False, "free-verse", "b.txt", 2),
    ("Sea", "Waves, waves,\nand the grey gull", "Cy Dee", True, "elegy", "c.txt", 5),
    ("Err", "A poem whose rating failed to parse", "Di Eve", False, "haiku", "d.txt", 0),
    ("Dup", "Night falls on the quiet town", "Bo Chen", False, "lyric", "e.txt", 3),
]
POEMS_ALIGNED = [("Short", "Two words", "Ed Fox", False, "limerick", "f.txt", 1)]


def _write_repo(folder: Path, configs: dict[str, pa.Table]) -> Path:
    """A dataset repo folder by hand: one parquet per config and the README's configs."""
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


def _poem_table(rows: list[tuple]) -> pa.Table:
    names = ["title", "content", "author", "is_translation", "form", "filename", "score"]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


@pytest.fixture(scope="module")
def study_poems(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("poem_aesthetic_eval")
    return _write_repo(
        folder, {"main": _poem_table(POEMS_MAIN), "aligned_s": _poem_table(POEMS_ALIGNED)}
    )


def test_study_poems_map_columns_and_keep_scores(study_poems: Path) -> None:
    result = import_study_poems(study_poems, revision="main")
    records = result.records
    assert result.n_rows == 5 and len(records) == 5
    assert result.columns["text"] == "content" and result.columns["aesthetic_score"] == "score"
    assert [r.text for r in records] == [row[1] for row in POEMS_MAIN]  # exact, in row order
    assert [r.title for r in records] == [row[0] for row in POEMS_MAIN]
    assert [r.author for r in records] == [row[2] for row in POEMS_MAIN]
    assert [r.is_translation for r in records] == [row[3] for row in POEMS_MAIN]
    assert [r.files for r in records] == [(row[5],) for row in POEMS_MAIN]
    # scores kept; the study's 0 (failed rating) becomes null and is reported
    assert [r.aesthetic_score for r in records] == [4, 2, 5, None, 3]
    assert any("score 0" in note and "1 of 5" in note for note in result.notes)
    assert records[0].annotator and records[3].annotator is None
    # lengths as the study counts them: len(content.split()); non-empty lines
    assert [r.n_words for r in records] == [6, 6, 6, 7, 6]
    assert records[0].n_lines == 3 and records[2].n_lines == 2
    # the study's form lists: sonnet formatted, free-verse free, elegy in both lists
    assert [r.form_category for r in records[:3]] == ["formatted", "free_verse", "ambiguous"]
    assert all(math.isnan(r.english_ratio) for r in records)
    # a repeated text keeps its row, with a distinct id
    assert len({r.id for r in records}) == 5 and records[4].id == records[1].id + "-2"
    assert all(r.source.endswith("@main") for r in records)


def test_study_poems_branch_by_revision(study_poems: Path) -> None:
    aligned = import_study_poems(study_poems, revision="aligned_s")
    assert [(r.text, r.aesthetic_score) for r in aligned.records] == [("Two words", 1)]
    with pytest.raises(ValueError, match="aligned_x.*aligned_s"):
        import_study_poems(study_poems, revision="aligned_x")


def test_missing_column_lists_the_columns_found(tmp_path: Path) -> None:
    table = pa.table({"poem_text": ["a b"], "rating": [3], "kind": ["ode"]})
    folder = _write_repo(tmp_path / "other", {"main": table})
    with pytest.raises(ValueError) as err:
        import_study_poems(folder)
    message = str(err.value)
    assert "'text'" in message and all(c in message for c in ("poem_text", "rating", "kind"))
    # the mapping is configuration: the same folder imports once mapped
    result = import_study_poems(
        folder, columns={"text": "poem_text", "aesthetic_score": "rating", "form": "kind"}
    )
    assert [(r.text, r.aesthetic_score, r.form) for r in result.records] == [("a b", 3, "ode")]
    with pytest.raises(ValueError, match="'nope'.*poem_text"):
        import_study_poems(folder, columns={"text": "nope"})
    with pytest.raises(ValueError, match="unknown field"):
        import_study_poems(folder, columns={"txt": "poem_text"})


def test_nested_evaluation_struct_as_the_rating_script_wrote_it(tmp_path: Path) -> None:
    evaluation = [{"thinking": "vivid", "score": 4}, {"thinking": "flat", "score": 2}]
    table = pa.table({"content": ["x y", "z"], "evaluation": evaluation})
    result = import_study_poems(_write_repo(tmp_path / "nested", {"main": table}))
    assert result.columns["aesthetic_score"] == "evaluation.score"
    assert [(r.aesthetic_score, r.aesthetic_rationale) for r in result.records] == [
        (4, "vivid"),
        (2, "flat"),
    ]


def test_poems_frame_imports_the_study_and_passes_the_suite_through(
    study_poems: Path, tmp_path: Path
) -> None:
    frame = load_poems_frame(study_poems, "main")
    assert list(frame["aesthetic_score"].astype("Float64")) == [4, 2, 5, pd_na(), 3]
    assert {"id", "text", "form_category", "n_words"} <= set(frame.columns)
    assert frame.attrs["uaes_import"]["format"] == "imported"
    suite = pa.table(
        {
            "id": ["s1"],
            "text": ["kept as is"],
            "form_category": ["formatted"],
            "n_words": [3],
            "aesthetic_score": [5],
        }
    )
    passed = load_poems_frame(_write_repo(tmp_path / "suite", {"main": suite}))
    assert passed["id"].tolist() == ["s1"] and passed.attrs["uaes_import"]["format"] == "suite"


def pd_na() -> object:
    import pandas as pd

    return pd.NA


def test_prh_schema_first_caption_kept_as_the_study_read_it(tmp_path: Path) -> None:
    captions = [["A red bus on a bridge.", "second"], [" A cat sleeps. "], []]
    folder = _write_repo(tmp_path / "prh", {"wit_1024": pa.table({"text": captions})})
    result = import_plain_texts(folder, "wit_1024")
    assert [r.text for r in result.records] == ["A red bus on a bridge.", " A cat sleeps. "]
    assert [r.n_words for r in result.records] == [6, 3]
    assert any("no text" in note and "1 of 3" in note for note in result.notes)
    second = import_plain_texts(folder, "wit_1024", caption_index=1)
    assert [r.text for r in second.records] == ["second"]
    frame = load_plain_texts_frame(folder, "wit_1024")
    assert frame.columns.tolist() == ["id", "text", "n_words", "source"] and len(frame) == 2


def _png(value: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3), (value, 10, 20)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def study_image_text(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datasets import Dataset, Features, Image, Value

    rows = {
        "image": [{"bytes": _png(v), "path": f"img{v}.png"} for v in (1, 2, 3, 4)],
        "text": ["A cable car climbs.", "A dog runs.", "", "Snowy peaks."],
        "poem": ["i love the wind", "run run", "lost", "white silence"],
        "score": [4, 2, 3, 7],
    }
    features = Features(
        {
            "image": Image(),
            "text": Value("string"),
            "poem": Value("string"),
            "score": Value("int64"),
        }
    )
    dataset = Dataset.from_dict(rows, features=features)
    folder = tmp_path_factory.mktemp("image_text")
    (folder / "data" / "main").mkdir(parents=True)
    dataset.to_parquet(str(folder / "data" / "main" / "train-00000-of-00001.parquet"))
    meta = {
        "configs": [
            {
                "config_name": "main",
                "default": True,
                "data_files": [{"split": "train", "path": "data/main/train-*.parquet"}],
            }
        ]
    }
    (folder / "README.md").write_text(f"---\n{yaml.safe_dump(meta)}---\n")
    return folder


def test_study_image_text_keeps_images_captions_poems_levels(study_image_text: Path) -> None:
    result = import_study_image_text(study_image_text)
    assert (
        result.columns["caption"] == "text" and result.columns["image_aesthetic_level"] == "score"
    )
    records = result.records
    assert [r.caption for r in records] == ["A cable car climbs.", "A dog runs.", "Snowy peaks."]
    assert [r.poem for r in records] == ["i love the wind", "run run", "white silence"]
    assert [r.image_aesthetic_level for r in records] == [4, 2, None]  # 7 is not a level
    assert [r.image_aesthetic_score for r in records] == [4.0, 2.0, 7.0]
    assert [r.image["bytes"] for r in records] == [_png(1), _png(2), _png(4)]
    assert any("empty caption" in n for n in result.notes)
    assert any("outside 1-5" in n for n in result.notes)
    frame = load_image_text_frame(study_image_text)
    assert frame["image"].tolist() == [_png(1), _png(2), _png(4)]
    assert {"id", "caption", "poem", "image_aesthetic_level"} <= set(frame.columns)


def test_image_text_without_poems_names_the_columns(tmp_path: Path) -> None:
    table = pa.table({"image": [{"bytes": _png(9), "path": "x.png"}], "text": ["cap"]})
    with pytest.raises(ValueError) as err:
        import_study_image_text(_write_repo(tmp_path / "nopoem", {"main": table}))
    assert "'poem'" in str(err.value) and "['image', 'text']" in str(err.value)


def test_study_config_reads_the_studys_own_datasets() -> None:
    from uaes_hf.experiments.config import load_config

    data = load_config(Path(__file__).resolve().parents[1] / "configs" / "study.yaml").data
    assert (data.poems, data.poems_revision, data.aligned_poems) == (
        "SHENJJ1017/poem_aesthetic_eval",
        "main",
        "aligned_s",
    )
    assert (data.plain_texts, data.plain_texts_revision) == ("minhuh/prh", "wit_1024")
    assert data.image_text == "SHENJJ1017/Image-Text"
