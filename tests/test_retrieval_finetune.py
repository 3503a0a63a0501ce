"""Preference fine-tuning: resumes after SIGKILL (real subprocess) to the same weights,
runs under `accelerate launch`, and learns the preferences it is given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from uaes_hf.retrieval.finetune import (
    FinetuneConfig,
    PreferenceData,
    finetune,
    load_checkpoint,
    toy_preference_data,
)

ARGS = [
    "--steps",
    "40",
    "--checkpoint-every",
    "5",
    "--pairs-per-step",
    "32",
    "--captions-per-step",
    "16",
    "--dim",
    "8",
    "--lr",
    "0.01",
]


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[1] / "src")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, *sys.path]), "OMP_NUM_THREADS": "1"}


def _heads(folder: Path) -> dict[str, np.ndarray]:
    with np.load(folder / "heads.npz") as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("prefs") / "prefs.npz"
    toy_preference_data(n_images=120, n_queries=12, dim=16).save(path)
    return path


@pytest.fixture(scope="module")
def uninterrupted(data_file, tmp_path_factory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("reference")
    cmd = [
        sys.executable,
        "-m",
        "uaes_hf.retrieval.finetune",
        "--data",
        str(data_file),
        "--out",
        str(out),
        *ARGS,
    ]
    subprocess.run(cmd, check=True, env=_env(), capture_output=True, timeout=300)
    return _heads(out)


@pytest.mark.slow
def test_resumes_after_sigkill_to_identical_weights(data_file, uninterrupted, tmp_path) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "uaes_hf.retrieval.finetune",
        "--data",
        str(data_file),
        "--out",
        str(out),
        *ARGS,
    ]
    proc = subprocess.Popen(
        [*cmd, "--step-delay-s", "0.2"],
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stdout:  # wait for the second durable checkpoint
            if line.startswith("checkpoint step 10"):
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(out)
    assert state is not None and 10 <= state["step"] < 40
    assert not (out / "heads.npz").exists()
    resumed = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed at step {state['step']}" in resumed.stdout
    assert "checkpoint step 5\n" not in resumed.stdout  # finished steps are not redone
    final = _heads(out)
    assert set(final) == set(uninterrupted)
    for name, value in uninterrupted.items():
        np.testing.assert_allclose(final[name], value, rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_runs_under_accelerate_launch(data_file, uninterrupted, tmp_path) -> None:
    launcher = Path(sys.executable).with_name("accelerate")
    out = tmp_path / "launched"
    cmd = [
        str(launcher),
        "launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "uaes_hf.retrieval.finetune",
        "--data",
        str(data_file),
        "--out",
        str(out),
        *ARGS,
    ]
    result = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    for name, value in uninterrupted.items():
        np.testing.assert_allclose(_heads(out)[name], value, rtol=0, atol=1e-6, err_msg=name)


def test_learns_to_rank_the_preferred_images(tmp_path) -> None:
    # Image j is preferred to image l whenever its first coordinate is larger.
    rng = np.random.default_rng(0)
    image = rng.normal(size=(60, 6)).astype(np.float32)
    pairs = [
        (q, j, m)
        for q in range(4)
        for j in range(60)
        for m in range(60)
        if image[j, 0] > image[m, 0] + 1.0
    ][:800]
    data = PreferenceData(
        query_text=rng.normal(size=(4, 5)).astype(np.float32),
        image=image,
        pairs=np.array(pairs),
        distance=np.ones(len(pairs)),
        caption_text=np.zeros((0, 5), np.float32),
        caption_image=np.zeros(0, np.int64),
    )
    heads = data.initial_heads(dim=4)
    config = FinetuneConfig(
        steps=60,
        lr=0.05,
        label_smoothing=0.0,
        pairs_per_step=128,
        captions_per_step=0,
        checkpoint_every=30,
    )
    tuned, history = finetune(heads, data, config, tmp_path, progress=False)
    assert history[0]["pair_accuracy"] < 0.6 and history[-1]["pair_accuracy"] > 0.9
    with torch.no_grad():
        assert torch.equal(tuned.image_head[0].mean, heads.image_head[0].mean)


def test_bad_files_and_options_are_value_errors(tmp_path) -> None:
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a preference-data file"):
        PreferenceData.load(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="steps"):
        FinetuneConfig(steps=0)
    with pytest.raises(ValueError, match="do not exist"):
        PreferenceData(
            np.zeros((2, 3)),
            np.zeros((4, 3)),
            np.array([[5, 0, 1]]),
            np.ones(1),
            np.zeros((0, 3)),
            np.zeros(0, int),
        )
