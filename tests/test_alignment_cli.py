"""``uaes align`` end to end: real files, the real console script, brute-force expectations."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from uaes_hf.cli import main


def brute_force_mutual_knn(a, b, k):
    """Full cosine matrices and Python sets (independent of the library)."""

    def neighbour_sets(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return [set(np.argsort(-row, kind="stable")[:k].tolist()) for row in sim]

    sa, sb = neighbour_sets(a), neighbour_sets(b)
    return np.array([len(sa[i] & sb[i]) / k for i in range(len(a))])


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("align_cli")
    rng = np.random.default_rng(0)
    a = rng.normal(size=(120, 16))
    b = np.tanh(a @ rng.normal(size=(16, 9))) + 0.4 * rng.normal(size=(120, 9))
    np.save(folder / "a.npy", a)
    np.save(folder / "b.npy", b)
    np.savetxt(folder / "b.csv", b, delimiter=",", header=",".join(f"f{i}" for i in range(9)))
    from safetensors.numpy import save_file

    save_file({"hidden": b.astype(np.float32)}, str(folder / "b.safetensors"))
    return folder, a, b


def run_json(capsys, *argv):
    code = main(["align", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_score_chance_and_calibration_match_brute_force(pair, capsys):
    folder, a, b = pair
    expected = brute_force_mutual_knn(a, b, 10)
    result = run_json(capsys, folder / "a.npy", folder / "b.npy", "-k", "10")
    assert result["score"] == pytest.approx(expected.mean(), abs=1e-12)
    assert result["chance_level"] == pytest.approx(10 / 119)
    assert result["n_samples"] == 120 and result["k"] == 10
    for other in ("b.csv", "b.safetensors"):  # same numbers from every format
        again = run_json(capsys, folder / "a.npy", folder / other, "--k", "10")
        assert again["score"] == pytest.approx(expected.mean(), abs=1e-12)
    calibrated = run_json(
        capsys, folder / "a.npy", folder / "b.npy", "-k", "10", "--permutations", "99"
    )
    assert calibrated["p_value"] == pytest.approx(0.01)
    assert 0 < calibrated["calibrated_score"] <= 1
    assert calibrated["n_permutations"] == 99


def test_per_sample_csv_and_other_metrics(pair, capsys, tmp_path):
    folder, a, b = pair
    out = tmp_path / "per_sample.csv"
    run_json(capsys, folder / "a.npy", folder / "b.npy", "-k", "5", "--per-sample", out)
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_allclose(table[:, 1], brute_force_mutual_knn(a, b, 5), atol=1e-6)
    cka = run_json(capsys, folder / "a.npy", folder / "b.npy", "--metric", "cka")
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    an, bn = an - an.mean(0), bn - bn.mean(0)
    expected = np.linalg.norm(an.T @ bn) ** 2 / (
        np.linalg.norm(an.T @ an) * np.linalg.norm(bn.T @ bn)
    )
    assert cka["score"] == pytest.approx(expected, rel=1e-9)
    # CKA's permutation-null mean in closed form: tr(HKH) tr(HLH) / ((N - 1) ||HKH|| ||HLH||)
    n = len(a)
    gram_a, gram_b = an @ an.T, bn @ bn.T
    chance = (
        np.trace(gram_a)
        * np.trace(gram_b)
        / ((n - 1) * np.linalg.norm(gram_a) * np.linalg.norm(gram_b))
    )
    assert cka["chance_level"] == pytest.approx(chance, rel=1e-9)


def make_store_entry(folder: Path, layers: list[np.ndarray]) -> Path:
    """A feature-store entry as `uaes extract` writes it (features.safetensors + meta.json)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    widths = {layer.shape[1] for layer in layers}
    if len(widths) == 1:
        tensors = {"features": np.stack(layers, axis=1).astype(np.float32)}
    else:
        tensors = {f"layer_{i:03d}": x.astype(np.float32) for i, x in enumerate(layers)}
    save_file(tensors, str(folder / "features.safetensors"))
    meta = {"n": len(layers[0]), "n_layers": len(layers), "dim": None}
    (folder / "meta.json").write_text(json.dumps(meta))
    return folder


def test_store_folders_search_the_best_layer_pair(pair, capsys, tmp_path):
    _, a, b = pair
    rng = np.random.default_rng(1)
    layers_a = [rng.normal(size=(120, 16)), a, a + 0.3 * rng.normal(size=(120, 16))]
    layers_b = [rng.normal(size=(120, 9)), rng.normal(size=(120, 5)), b]  # ragged widths
    entry_a = make_store_entry(tmp_path / "model_a" / "mean", layers_a)
    entry_b = make_store_entry(tmp_path / "model_b" / "mean", layers_b)
    grid_csv = tmp_path / "grid.csv"
    result = run_json(capsys, entry_a, entry_b, "-k", "8", "--permutations", "49")
    expected = np.array(
        [[brute_force_mutual_knn(x, y, 8).mean() for y in layers_b] for x in layers_a]
    )
    np.testing.assert_allclose(result["grid"], expected, atol=1e-6)
    best = np.unravel_index(expected.argmax(), expected.shape)
    assert (result["best_layer_a"], result["best_layer_b"]) == tuple(int(i) for i in best)
    assert result["layers_a"] == 3 and result["layers_b"] == 3
    assert result["p_value"] == pytest.approx(1 / 50)
    main(["align", str(entry_a), str(entry_b), "-k", "8", "--grid", str(grid_csv)])
    capsys.readouterr()
    np.testing.assert_allclose(np.loadtxt(grid_csv, delimiter=","), expected, atol=1e-6)
    # picking one layer of each gives that pair's score; a stack file works like a folder
    picked = run_json(capsys, entry_a, entry_b, "-k", "8", "--layer-a", "0", "--layer-b", "-1")
    assert picked["score"] == pytest.approx(expected[0, 2], abs=1e-6)
    np.save(tmp_path / "stack_a.npy", np.stack(layers_a, axis=1))
    from_file = run_json(capsys, tmp_path / "stack_a.npy", entry_b, "-k", "8")
    assert from_file["score"] == pytest.approx(result["score"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["a.npy", "short.npy"], "A has 120 rows but B has 50"),
        (["a.npy", "missing.npy"], "missing.npy: no such file"),
        (["a.npy", "b.npy", "-k", "120"], "N <= k"),
        (["a.npy", "b.npy", "-k", "0"], "k must be an integer >= 1"),
        (["a.npy", "bad.txt"], "unsupported file type '.txt'"),
        (["a.npy", "nan.npy"], "NaN or Inf"),
        (["a.npy", "b.npy", "--metric", "cka", "--per-sample", "o.csv"], "per-sample metric"),
        (["a.npy", "b.npy", "--outlier-quantile", "1.5"], "must be a number in (0, 1]"),
        (["a.npy", "b.npy", "--metric", "svcca", "--cca-dim", "50"], "cca_dim=50 is larger"),
        (["stack.npy", "b.npy", "--layer-a", "5"], "--layer-a 5 is out of range"),
        (["a.npy", "b.npy", "--grid", "g.csv"], "--grid needs a layer search"),
        (["a.npy", "."], "must be a feature-store entry"),
    ],
)
def test_errors_exit_2_with_a_message(pair, capsys, argv, message, monkeypatch):
    folder, a, b = pair
    monkeypatch.chdir(folder)
    np.save("short.npy", b[:50])
    np.save("stack.npy", np.stack([a, a], axis=1))
    nan = a.copy()
    nan[3, 3] = np.nan
    np.save("nan.npy", nan)
    Path("bad.txt").write_text("1,2\n")
    assert main(["align", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("uaes align: error:") and message in err


def test_console_script_help_and_run(pair):
    folder, a, b = pair
    script = shutil.which("uaes", path=str(Path(sys.executable).parent)) or shutil.which("uaes")
    assert script, "the `uaes` console script is not installed"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    shown = subprocess.run(
        [script, "align", "--help"], capture_output=True, text=True, env=env, check=True
    )
    assert "-k K, --k K" in shown.stdout and "feature-store" in shown.stdout
    done = subprocess.run(
        [script, "align", str(folder / "a.npy"), str(folder / "b.npy"), "-k", "10"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    score = float(next(line for line in done.stdout.splitlines() if "score" in line).split()[-1])
    assert score == pytest.approx(brute_force_mutual_knn(a, b, 10).mean(), abs=1e-6)


def test_metric_choices_are_the_library_metrics():
    from uaes_hf.alignment import METRICS
    from uaes_hf.commands.align import METRIC_CHOICES

    assert sorted(METRIC_CHOICES) == sorted(METRICS)


def test_every_metric_and_its_options_from_the_command_line(pair, capsys, tmp_path):
    from alignment_references import REFERENCES, cka, lcs_knn_rows

    folder, a, b = pair
    for metric in ("cycle_knn", "lcs_knn", "edit_distance_knn", "cknna", "unbiased_cka"):
        result = run_json(capsys, folder / "a.npy", folder / "b.npy", "-k", "6", "--metric", metric)
        assert result["score"] == pytest.approx(REFERENCES[metric][0](a, b, 6), rel=1e-6)
    rbf = run_json(capsys, folder / "a.npy", folder / "b.npy", "--metric", "cka",
                   "--kernel", "rbf", "--rbf-sigma", "0.7")  # fmt: skip
    assert rbf["score"] == pytest.approx(cka(a, b, "rbf", 0.7), rel=1e-9)
    assert rbf["options"] == {"kernel": "rbf", "rbf_sigma": 0.7}
    lcs = run_json(capsys, folder / "a.npy", folder / "b.npy", "--metric", "lcs_knn",
                   "--normalize-lcs", "-k", "5")  # fmt: skip
    assert lcs["score"] == pytest.approx(lcs_knn_rows(a, b, 5, normalize_by_k=True).mean())
    svcca = run_json(capsys, folder / "a.npy", folder / "b.npy", "--metric", "svcca",
                     "--cca-dim", "3", "--permutations", "19", "--calibration",
                     "order-statistic", "--bootstrap", "0")  # fmt: skip
    assert svcca["score"] == pytest.approx(REFERENCES["svcca"][0](a, b, 0), rel=1e-8)
    assert svcca["calibration"] == "order-statistic" and 0 <= svcca["calibrated_score"] <= 1
    ci = run_json(capsys, folder / "a.npy", folder / "b.npy", "--bootstrap", "200")
    assert ci["ci_low"] <= ci["score"] <= ci["ci_high"]


def test_unreadable_and_unwritable_files_give_one_line(pair, capsys, tmp_path):
    folder, _, _ = pair
    locked = tmp_path / "locked.npy"
    locked.write_bytes((folder / "a.npy").read_bytes())
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: use a path that is a folder
        locked = tmp_path / "folder.npy"
        locked.mkdir()
    code = main(["align", str(locked), str(folder / "b.npy")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("uaes align: error:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code = main(["align", str(folder / "a.npy"), str(folder / "b.npy"),
                 "--per-sample", str(tmp_path / "missing" / "dir" / "out.csv")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "No such file or directory" in err and len(err.strip().splitlines()) == 1
