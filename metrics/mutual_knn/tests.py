"""Tests of the mutual_knn evaluate module, loaded the way users load it (offline)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def metric():
    import evaluate

    return evaluate.load(str(HERE))


def brute_force_mutual_knn(a, b, k):
    """Full N x N cosine matrices and Python sets, as in the reference code."""

    def neighbours(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k]) for row in sim]

    na, nb = neighbours(a), neighbours(b)
    return [len(na[i] & nb[i]) / k for i in range(len(a))]


def test_compute_matches_brute_force(metric):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(150, 24))
    b = np.tanh(a @ rng.normal(size=(24, 12))) + 0.5 * rng.normal(size=(150, 12))
    result = metric.compute(predictions=a, references=b, k=7, per_sample=True)
    expected = brute_force_mutual_knn(a.astype(np.float32), b.astype(np.float32), 7)
    assert result["mutual_knn"] == pytest.approx(np.mean(expected), abs=1e-12)
    assert result["per_sample"] == pytest.approx(expected)
    assert result["chance_level"] == pytest.approx(7 / 149)
    assert set(result) == {"mutual_knn", "chance_level", "per_sample"}


def test_calibration_outputs(metric):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 8))
    related = metric.compute(predictions=a, references=a * 3, k=10, permutations=99)
    assert related["mutual_knn"] == 1.0
    assert related["p_value"] == 0.01
    assert related["calibrated_score"] == 1.0
    unrelated = metric.compute(
        predictions=a, references=rng.normal(size=(200, 8)), k=10, permutations=200
    )
    assert abs(unrelated["calibrated_score"]) < 0.05
    assert unrelated["p_value"] > 0.05


def test_batches_accumulate_and_torch_input(metric):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(120, 10)), rng.normal(size=(120, 6))
    for start in range(0, 120, 50):
        metric.add_batch(predictions=a[start : start + 50], references=b[start : start + 50])
    batched = metric.compute(k=5)
    whole = metric.compute(predictions=torch.from_numpy(a), references=b.tolist(), k=5)
    assert batched == whole


def test_errors_name_the_problem(metric):
    x = np.random.default_rng(3).normal(size=(20, 4))
    with pytest.raises(ValueError, match="N <= k"):
        metric.compute(predictions=x, references=x, k=20)
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        metric.compute(predictions=bad, references=x, k=3)


@pytest.mark.slow
def test_gradio_app_end_to_end(tmp_path):
    import importlib.util

    from gradio_client import Client

    spec = importlib.util.spec_from_file_location("mutual_knn_app", HERE / "app.py")
    app = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app)
    rng = np.random.default_rng(4)
    a = rng.normal(size=(60, 5))
    np.save(tmp_path / "a.npy", a)
    np.savetxt(tmp_path / "b.csv", 2 * a, delimiter=",")
    demo = app.build_demo()
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    try:
        from gradio_client import handle_file

        client = Client(demo.local_url, verbose=False)
        summary, raw = client.predict(
            handle_file(str(tmp_path / "a.npy")),
            handle_file(str(tmp_path / "b.csv")),
            5,
            0,
            api_name="/compute",
        )
    finally:
        demo.close()
    assert "**Mutual kNN** = 1.0000" in summary
    assert '"chance_level"' in raw


@pytest.mark.slow
def test_load_by_relative_path_from_the_repo_root_offline(tmp_path):
    """What the README tells users to type, in a fresh process with the Hub switched off."""
    import subprocess
    import sys

    script = (
        "import json, numpy as np, evaluate\n"
        "m = evaluate.load('metrics/mutual_knn')\n"
        "x = np.random.default_rng(0).normal(size=(80, 6))\n"
        "print(json.dumps(m.compute(predictions=x, references=2 * x, k=5)))\n"
    )
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),  # an empty cache: nothing can come from it
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=HERE.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    import json

    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"mutual_knn": 1.0, "chance_level": pytest.approx(5 / 79)}
