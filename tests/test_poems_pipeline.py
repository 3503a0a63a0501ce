"""End to end: the embedded sample through `datasets_scripts/poems.py` and `uaes prepare`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from datasets import load_dataset

from uaes_hf.data.ingest import read_poems_folder
from uaes_hf.data.plain_texts import (
    HubUnavailableError,
    build_wordnet_plain_texts,
    load_prh_captions,
)
from uaes_hf.data.repo import load_poems

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "datasets_scripts" / "poems.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PIP_FIND_LINKS": "", "TQDM_DISABLE": "1"}


def _run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def embedded_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("embedded") / "raw"
    done = _run(str(SCRIPT), "embedded", str(out), "--max-per-source", "15")
    assert done.returncode == 0, done.stderr
    return out


def test_embedded_sample_has_kaggle_layout(embedded_raw: Path) -> None:
    forms = {p.name for p in (embedded_raw / "forms").iterdir()}
    assert {"sonnet", "epic", "blank-verse", "free-verse", "lyric", "ballad", "couplet"} <= forms
    assert (embedded_raw / "forms/sonnet/Sonnet1PoembyWilliamShakespeare.txt").is_file()
    assert (embedded_raw / "topics/beauty/Sonnet1PoembyWilliamShakespeare.txt").is_file()
    result = read_poems_folder(embedded_raw)
    assert not result.bad
    sonnet1 = next(p for p in result.poems if p.title == "Sonnet 1")
    assert sonnet1.author == "William Shakespeare" and sonnet1.forms == ("sonnet",)
    assert len([line for line in sonnet1.text.split("\n") if line]) == 14


def test_build_script_end_to_end(embedded_raw: Path, tmp_path: Path) -> None:
    # a dirty copy: one copyright notice, one non-English poem, one binary file
    raw = tmp_path / "raw"
    subprocess.run(["cp", "-r", str(embedded_raw), str(raw)], check=True)
    whitman = next((raw / "forms/free-verse").iterdir())
    whitman.write_text(whitman.read_text() + "\nCopyright \u00a9 Nobody | 2017\nmore noise\n")
    (raw / "forms/lyric/ChansonPoembyAndreChenier.txt").write_text(
        "Ne vous étonnez pas, objets sacrés et doux,\nSi quelqu'air de tristesse obscurcit mon "
        "visage.\nQuand un savant crayon dessinait cette image\nJ'attendais l'échafaud et je "
        "pensais à vous.\n"
    )
    (raw / "forms/lyric/BrokenPoembyX.txt").write_bytes(b"\x00\x01\x02")
    lengths = tmp_path / "lengths.txt"
    lengths.write_text("n_words\n" + "\n".join(str(n) for n in [20, 30, 40, 50, 60, 80, 100] * 20))
    out = tmp_path / "repo"
    done = _run(
        str(SCRIPT),
        "build",
        str(raw),
        str(out),
        "--reference-lengths",
        str(lengths),
        "--bins",
        "5",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    report = json.loads((out / "build_report.json").read_text())
    assert printed["configs"] == {n: c["rows"] for n, c in report["configs"].items()}
    assert report["read"]["bad_inputs"] == 1
    assert "binary" in report["read"]["bad"][0]["reason"]
    manifest = json.loads((raw / "embedded_sources.json").read_text())
    # Milton sits in two form folders, some sonnets and two poems also in topic folders
    assert manifest["n_files"] - manifest["n_poems"] >= 15
    assert report["duplicates"]["merged"] == manifest["n_files"] - manifest["n_poems"]
    assert report["copyright_cut"]["poems_cut"] == 1
    assert report["english"]["non_english_dropped"] >= 1
    assert any("Chenier" in d["file"] for d in report["english"]["dropped_examples"])
    assert report["forms"]["ambiguous_forms_seen"] == ["blank-verse"]
    assert set(report["forms"]["per_category"]) <= {"formatted", "free_verse", "ambiguous"}
    assert report["reference_lengths"]["n"] == 140
    for name in ("aligned_5", "aligned_s"):
        align = report["alignment"][name]
        assert align["ks_after"] < align["ks_before"]
    assert report["alignment"]["aligned_5"]["sampled"] <= 140
    assert (out / "length_histogram_aligned_5.png").is_file()

    aligned = load_dataset(str(out), "aligned_5", split="train")
    assert len(aligned) == report["configs"]["aligned_5"]["rows"]
    via_revision = load_poems(out, revision="aligned_5", split="train")
    assert via_revision["id"] == aligned["id"]
    main = load_poems(out, split="train")
    assert len(main) == report["configs"]["main"]["rows"] == report["english"]["kept"]
    cut = [row for row in main if row["copyright_cut"]]
    assert (
        len(cut) == 1 and "Copyright" not in cut[0]["text"] and "more noise" not in cut[0]["text"]
    )
    with pytest.raises(ValueError, match="available"):
        load_poems(out, revision="aligned_9")
    card = (out / "README.md").read_text()
    assert "config_name: aligned_s" in card and "{{" not in card


def test_build_with_annotations_makes_main_the_annotated_set(
    embedded_raw: Path, tmp_path: Path
) -> None:
    from uaes_hf.data.pipeline import build_poems_repo

    first = build_poems_repo(
        embedded_raw, tmp_path / "a", reference_lengths=[30] * 50, progress=False, n_bins=3
    )
    ids = load_poems(tmp_path / "a", revision="large", split="train")["id"][:4]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(
        "id,score,rationale,annotator\n"
        + "".join(f"{i},{k + 1},r{k},judge\n" for k, i in enumerate(ids))
    )
    report = build_poems_repo(
        embedded_raw,
        tmp_path / "b",
        annotations=ratings,
        reference_lengths=[30] * 50,
        progress=False,
        n_bins=3,
    )
    assert report["configs"]["main"]["rows"] == 4 and report["configs"]["main"]["annotated"] == 4
    assert report["configs"]["large"]["rows"] == first["configs"]["large"]["rows"]  # none dropped
    assert report["configs"]["large"]["annotated"] == 4
    scores = sorted(s for s in load_poems(tmp_path / "b", split="train")["aesthetic_score"])
    assert scores == [1, 2, 3, 4]


def test_english_table_command(embedded_raw: Path) -> None:
    done = _run(str(SCRIPT), "english-table", str(embedded_raw), "--quiet", "--tolerance", "0.1")
    assert done.returncode == 0, done.stderr
    assert "proportion 1.00" in done.stdout and "poems at or above 0.8" in done.stdout


def test_bad_raw_dir_is_reported_not_a_traceback(tmp_path: Path) -> None:
    done = _run(str(SCRIPT), "build", str(tmp_path / "nope"), str(tmp_path / "out"))
    assert (
        done.returncode == 2 and "does not exist" in done.stderr and "Traceback" not in done.stderr
    )


@pytest.mark.slow
def test_uaes_prepare_embedded(tmp_path: Path) -> None:
    done = _run(
        "-m",
        "uaes_hf.cli",
        "prepare",
        "embedded",
        "--out",
        str(tmp_path),
        "--max-poems",
        "80",
        "--plain-texts",
        "200",
        "--quiet",
    )
    assert done.returncode == 0, done.stderr
    assert load_dataset(str(tmp_path / "plain_texts"), split="train").num_rows == 200
    assert len(load_poems(tmp_path / "poems", revision="aligned_5", split="train")) > 0


def test_wordnet_plain_texts_are_descriptive_and_seeded() -> None:
    texts = build_wordnet_plain_texts(50, seed=1)
    assert texts == build_wordnet_plain_texts(50, seed=1)
    assert len({t.id for t in texts}) == 50
    assert all(t.text.endswith(".") and t.n_words == len(t.text.split()) for t in texts)
    assert all(t.text.startswith(("A ", "An ")) for t in texts)


def test_prh_loader_fails_clearly_offline() -> None:
    assert os.environ.get("HF_HUB_OFFLINE") == "1" or pytest.fail("run tests with HF_HUB_OFFLINE=1")
    with pytest.raises(
        HubUnavailableError, match=r"minhuh/prh@wit_1024.*build_wordnet_plain_texts"
    ):
        load_prh_captions()
