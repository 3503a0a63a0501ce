"""The command line: a real 2-process `accelerate launch` (CPU, gloo) vs a single process,
a dataset repo folder read through `datasets.load_dataset`, and the changed-dataset error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import extract_helpers
import numpy as np
import pandas as pd
import pytest
from extract_helpers import TEXTS, write_parquet_repo

from uaes_hf.cli import main as uaes_main
from uaes_hf.extract.run import load_features
from uaes_hf.extract.store import FeatureStore, FingerprintMismatchError

tiny_llama_dir = extract_helpers.tiny_llama_dir  # shared fixture

MORE_TEXTS = [
    *TEXTS,
    *(f"{t} and the {w}" for t, w in zip(TEXTS[:3], ["sea", "sky", "rose"], strict=True)),
]


def extract_args(repo: Path, model: Path, out: Path) -> list[str]:
    return [
        "--dataset",
        str(repo),
        "--config",
        "aligned_5",
        "--models",
        str(model),
        "--out",
        str(out),
        "--shard-size",
        "3",
        "--batch-size",
        "2",
        "--no-progress",
    ]


def offline_env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "ACCELERATE_USE_CPU": "true",
        "OMP_NUM_THREADS": "1",
    }


@pytest.mark.slow
def test_two_process_accelerate_run_equals_single_process(tmp_path, tiny_llama_dir):
    repo = write_parquet_repo(tmp_path / "repo", MORE_TEXTS)
    accelerate = Path(sys.executable).with_name("accelerate")
    command = [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "uaes_hf.extract",
        *extract_args(repo, tiny_llama_dir, tmp_path / "multi"),
    ]
    done = subprocess.run(command, env=offline_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    # both ranks really ran and split the 4 shards between them
    assert "[rank 0/2]" in done.stderr and "[rank 1/2]" in done.stderr
    assert "computing 2 of 2 shards" in done.stderr

    assert (
        uaes_main(
            ["extract", *extract_args(repo, tiny_llama_dir, tmp_path / "single"), "--no-accelerate"]
        )
        == 0
    )
    model = str(tiny_llama_dir)
    multi = FeatureStore(tmp_path / "multi").load(f"{repo}@aligned_5:train", model)
    single = FeatureStore(tmp_path / "single").load(f"{repo}@aligned_5:train", model)
    assert multi.meta["world_size"] == 2 and single.meta["world_size"] == 1
    assert multi.features.shape == (len(MORE_TEXTS), 4, 32)
    np.testing.assert_allclose(multi.features, single.features, rtol=1e-5, atol=1e-6)
    # the row ids of the dataset are kept, so features can be matched to records
    assert multi.ids == single.ids == [f"p{i}" for i in range(len(MORE_TEXTS))]

    # a rerun under accelerate finds everything done and recomputes nothing
    again = subprocess.run(command, env=offline_env(), capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and "already stored" in again.stderr


def test_cli_reads_a_repo_folder_and_detects_a_changed_dataset(tmp_path, tiny_llama_dir, capsys):
    repo = write_parquet_repo(tmp_path / "repo", TEXTS)
    out = tmp_path / "features"
    args = extract_args(repo, tiny_llama_dir, out)
    assert uaes_main(["extract", *args, "--no-accelerate", "--storage-dtype", "float16"]) == 0
    stored = load_features(str(repo), str(tiny_llama_dir), out, config="aligned_5")
    assert stored.features.dtype == np.float16 and stored.features.shape[0] == len(TEXTS)
    assert stored.meta["dataset_config"] == "aligned_5" and stored.meta["dataset_column"] == "text"

    # the poems change on disk: loading must refuse the stale features
    frame = pd.DataFrame({"id": ["x"], "text": ["a brand new poem"]})
    frame.to_parquet(repo / "data" / "aligned_5" / "train-00000-of-00001.parquet")
    with pytest.raises(FingerprintMismatchError, match="changed since extraction"):
        load_features(str(repo), str(tiny_llama_dir), out, config="aligned_5")

    # user errors are one clear line and exit code 2, not a traceback
    assert uaes_main(["extract", *args, "--no-accelerate", "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    bad_column = uaes_main(["extract", *args, "--no-accelerate", "--column", "poem"])
    assert bad_column == 2 and "no column 'poem'" in capsys.readouterr().err


def launch_command(repo: Path, model: Path, out: Path) -> list[str]:
    accelerate = Path(sys.executable).with_name("accelerate")
    return [
        str(accelerate),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "uaes_hf.extract",
        *extract_args(repo, model, out),
    ]


@pytest.mark.slow
def test_the_readme_launch_without_accelerate_use_cpu_splits_the_shards(tmp_path, tiny_llama_dir):
    """Issue 13.6: `accelerate launch --multi_gpu --num_processes 2` on a CPU machine, without
    ACCELERATE_USE_CPU: the two ranks join one gloo group and split the 4 shards (before, each
    said "world size 1" and computed all of them)."""
    repo = write_parquet_repo(tmp_path / "repo", MORE_TEXTS)
    env = {k: v for k, v in offline_env().items() if k != "ACCELERATE_USE_CPU"}
    env["CUDA_VISIBLE_DEVICES"] = ""  # this machine's case, also on a GPU machine
    done = subprocess.run(
        launch_command(repo, tiny_llama_dir, tmp_path / "multi"),
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "world size 2" in done.stderr and "world size 1" not in done.stderr
    assert "[rank 0/2]" in done.stderr and "[rank 1/2]" in done.stderr
    assert done.stderr.count("computing 2 of 2 shards") == 2  # each rank its own half
    args = extract_args(repo, tiny_llama_dir, tmp_path / "single")
    assert uaes_main(["extract", *args, "--no-accelerate"]) == 0
    key, model = f"{repo}@aligned_5:train", str(tiny_llama_dir)
    multi = FeatureStore(tmp_path / "multi").load(key, model)
    single = FeatureStore(tmp_path / "single").load(key, model)
    assert multi.meta["world_size"] == 2
    np.testing.assert_allclose(multi.features, single.features, rtol=1e-5, atol=1e-6)


def test_a_launch_that_cannot_be_split_stops_before_any_work(tmp_path, tiny_llama_dir):
    """Under a launcher's WORLD_SIZE=2, --no-accelerate would make each process compute every
    shard: it exits 2 with a message saying what to change, and writes nothing."""
    repo = write_parquet_repo(tmp_path / "repo", TEXTS)
    env = {**offline_env(), "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    args = [*extract_args(repo, tiny_llama_dir, tmp_path / "out"), "--no-accelerate"]
    done = subprocess.run(
        [sys.executable, "-m", "uaes_hf.extract", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--no-accelerate under a launcher that started 2 processes" in done.stderr
    assert "drop --no-accelerate" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    bad = subprocess.run(
        [sys.executable, "-m", "uaes_hf.extract", *args],
        env={**env, "WORLD_SIZE": "two"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "WORLD_SIZE must be a positive integer, got 'two'" in bad.stderr


def test_a_group_smaller_than_the_launch_is_refused():
    from uaes_hf.extract.distributed import check_world, launcher_world_size

    check_world(1, 1)
    check_world(4, 4)
    with pytest.raises(
        ValueError,
        match=r"started 2 processes \(WORLD_SIZE=2\) but this one "
        r"joined a group of 1.*ACCELERATE_USE_CPU=true",
    ):
        check_world(2, 1)
    assert launcher_world_size({"WORLD_SIZE": "3"}) == 3 and launcher_world_size({}) == 1
    with pytest.raises(ValueError, match="WORLD_SIZE must be a positive integer, got '0'"):
        launcher_world_size({"WORLD_SIZE": "0"})
