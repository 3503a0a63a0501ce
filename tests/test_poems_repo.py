"""Dataset repo folder: write, load by config and by revision, branch cards, annotations."""

from __future__ import annotations

from pathlib import Path

import pytest
from datasets import load_dataset

from uaes_hf.data.annotations import Annotation, merge_annotations, read_annotations
from uaes_hf.data.records import PoemRecord, poem_features
from uaes_hf.data.repo import (
    ConfigData,
    branch_card,
    load_poems,
    materialize_branch,
    publish,
    publish_plan,
    repo_configs,
    split_front_matter,
    write_dataset_repo,
)


def _poem(i: int, score: int | None = None) -> PoemRecord:
    return PoemRecord(
        id=f"id{i}",
        title=f"T{i}",
        author="A",
        form="sonnet",
        form_category="formatted",
        text=f"poem {i}",
        n_words=2,
        n_lines=1,
        english_ratio=1.0,
        aesthetic_score=score,
        forms=("sonnet",),
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("repo")
    features = poem_features()
    configs = [
        ConfigData("main", [_poem(0, 4).as_row(), _poem(1).as_row()], features, default=True),
        ConfigData("large", [_poem(i).as_row() for i in range(5)], features),
        ConfigData("aligned_5", [_poem(2).as_row()] * 3, features),
        ConfigData("aligned_s", [_poem(3).as_row()], features),
    ]
    return write_dataset_repo(
        folder, configs, card_yaml={"license": "other", "language": ["en"]}, card_body="# Poems"
    )


def test_card_yaml_declares_configs_and_info(repo: Path) -> None:
    meta, body = split_front_matter((repo / "README.md").read_text())
    assert body.startswith("# Poems")
    assert [c["config_name"] for c in meta["configs"]] == [
        "main",
        "large",
        "aligned_5",
        "aligned_s",
    ]
    assert meta["configs"][0]["default"] is True
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert infos["large"]["splits"][0]["num_examples"] == 5
    assert infos["aligned_s"]["splits"][0]["num_examples"] == 1
    assert meta["size_categories"] == ["n<1K"] and meta["license"] == "other"
    assert repo_configs(repo) == (["main", "large", "aligned_5", "aligned_s"], "main")


def test_load_dataset_by_config_and_load_poems_by_revision(repo: Path) -> None:
    ds = load_dataset(str(repo), "aligned_5", split="train")
    assert ds["id"] == ["id2"] * 3
    assert load_dataset(str(repo), split="train")["id"] == ["id0", "id1"]  # default = main
    via_revision = load_poems(repo, revision="large", split="train")
    assert via_revision["id"] == [f"id{i}" for i in range(5)]
    main = load_poems(str(repo))["train"]
    assert main[0]["aesthetic_score"] == 4 and main[1]["aesthetic_score"] is None
    assert len(load_poems(repo, revision="aligned_s", split="train")) == 1


def test_unknown_revision_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown revision 'aligned_7'.*aligned_5"):
        load_poems(repo, revision="aligned_7")
    with pytest.raises(ValueError, match="disagree"):
        load_poems(repo, revision="main", config="large")
    with pytest.raises(ValueError, match="does not exist"):
        load_poems("./no/such/folder")


def test_branch_readme_makes_its_config_the_default(repo: Path, tmp_path: Path) -> None:
    plan = publish_plan(repo)
    assert [s.branch for s in plan] == ["large", "aligned_5", "aligned_s"]
    branch = materialize_branch(repo, "aligned_5", tmp_path / "branch")
    # what load_dataset(repo, revision="aligned_5") sees on the Hub: default = aligned_5
    assert load_dataset(str(branch), split="train")["id"] == ["id2"] * 3
    meta, body = split_front_matter(branch_card((repo / "README.md").read_text(), "large"))
    assert sum(bool(c.get("default")) for c in meta["configs"]) == 1
    assert "Branch `large`" in body
    with pytest.raises(ValueError, match="unknown config"):
        branch_card((repo / "README.md").read_text(), "nope")


def test_publish_needs_a_token(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(ValueError, match="HF_TOKEN"):
        publish(repo, "org/poems")


def test_write_repo_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        write_dataset_repo(tmp_path, [ConfigData("a", [{"x": 1}]), ConfigData("b", [{"x": 2}])])
    with pytest.raises(ValueError, match="no rows"):
        write_dataset_repo(tmp_path, [ConfigData("a", [], default=True)])
    with pytest.raises(ValueError, match="unique"):
        write_dataset_repo(
            tmp_path, [ConfigData("a", [{"x": 1}], default=True), ConfigData("a", [])]
        )


def test_image_feature_is_embedded(tmp_path: Path) -> None:
    from datasets import Features, Image, Value
    from PIL import Image as PILImage

    picture = tmp_path / "p.png"
    PILImage.new("RGB", (4, 3), (200, 10, 10)).save(picture)
    features = Features({"image": Image(), "caption": Value("string")})
    folder = write_dataset_repo(
        tmp_path / "repo",
        [
            ConfigData(
                "default", [{"image": str(picture), "caption": "red"}], features, default=True
            )
        ],
    )
    picture.unlink()  # the parquet must not depend on the original file
    row = load_dataset(str(folder), split="train")[0]
    assert row["image"].size == (4, 3) and row["caption"] == "red"


def test_annotations_csv_jsonl_callable(tmp_path: Path) -> None:
    csv_path = tmp_path / "r.csv"
    csv_path.write_text("id,score,rationale,annotator\nid0,4,vivid,gpt-4o\nghost,2,,\n")
    merged, stats = merge_annotations([_poem(0), _poem(1)], csv_path)
    assert stats == {"annotated": 1, "unannotated": 1, "unmatched": 1}
    assert merged[0].aesthetic_score == 4 and merged[0].annotator == "gpt-4o"
    assert merged[1].aesthetic_score is None  # never dropped for lacking a score
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"id": "id1", "aesthetic_score": 5.0, "aesthetic_rationale": "x"}\n')
    assert read_annotations(jsonl)["id1"] == Annotation(5, "x", None)
    judged, stats = merge_annotations(
        [_poem(0), _poem(1)],
        lambda p: {"score": 3, "annotator": "judge"} if p.id == "id1" else None,
    )
    assert [p.aesthetic_score for p in judged] == [None, 3] and stats["annotated"] == 1


@pytest.mark.parametrize("bad", ["6", "0", "3.5", "x", ""])
def test_annotation_scores_are_validated(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "r.csv"
    path.write_text(f"id,score\nid0,{bad}\n")
    with pytest.raises(ValueError, match=r"r\.csv row 2"):
        read_annotations(path)


def test_annotation_file_without_score_column(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("id,rating\nid0,4\n")
    with pytest.raises(ValueError, match="missing column 'score'"):
        read_annotations(path)
