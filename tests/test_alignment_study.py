"""The study's reference mode: outlier clamp, first-maximum layer pair, per-sample max.

The study (its fork of platonic-rep: ``prepare_features`` -> ``remove_outliers(q=0.95)``,
then ``compute_score`` over every layer pair) is re-implemented here from its semantics, on
layer stacks with massive-activation dimensions where the clamp moves the score by more
than 0.1; ``uaes align`` must give its numbers to 1e-6.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from uaes_hf.alignment import remove_outliers
from uaes_hf.cli import main


def massive_stacks(seed, n=160, layers=(4, 3), d=48, n_massive=2):
    """Stacks sharing a latent structure, plus a few huge dimensions unrelated between the
    two models (the massive activations of LLM hidden states)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8))
    out = []
    for count in layers:
        stack = np.empty((n, count, d), dtype=np.float32)
        for layer in range(count):
            x = np.tanh(z @ rng.normal(size=(8, d)) * (0.3 + 0.2 * layer))
            x = x + 0.6 * rng.normal(size=(n, d))
            dims = rng.choice(d, n_massive, replace=False)
            signs = rng.choice([-1.0, 1.0], size=n_massive)
            x[:, dims] = signs * (40 + 20 * np.abs(rng.normal(size=(n, n_massive))))
            stack[:, layer] = x
        out.append(stack)
    return out


# ---------------------------------------------------------------- the study, re-implemented


def study_clamp(stack, q, exact):
    """v from the whole sorted |x| (exact) or the mean of per-row torch quantiles."""
    x = torch.from_numpy(np.ascontiguousarray(stack, dtype=np.float32))
    if q == 1:
        return x.numpy()
    if exact:
        v = torch.sort(x.abs().flatten()).values[int(q * x.numel())]
    else:
        v = torch.quantile(x.abs().reshape(x.shape[0], -1), q, dim=1).mean()
    return torch.clamp(x, -v, v).numpy()


def study_neighbours(x, k):
    x = x.astype(np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = x @ x.T
    np.fill_diagonal(sims, -1e8)
    return [set(row[:k]) for row in np.argsort(-sims, axis=1, kind="stable")]


def study_alignment(stack_a, stack_b, k):
    """compute_score(A, B): strict > from 0 over rows of A's layers then B's, and the
    element-wise max of per-sample scores over all pairs (its mutual_knn_raw)."""
    best, best_pair = 0.0, None
    per_sample_max = np.zeros(stack_a.shape[0])
    for i in range(stack_a.shape[1]):
        na = study_neighbours(stack_a[:, i], k)
        for j in range(stack_b.shape[1]):
            nb = study_neighbours(stack_b[:, j], k)
            rows = np.array([len(na[r] & nb[r]) / k for r in range(len(na))])
            if rows.mean() > best:
                best, best_pair = rows.mean(), (i, j)
            per_sample_max = np.maximum(per_sample_max, rows)
    return best, best_pair, per_sample_max


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    a, b = massive_stacks(0)
    np.save(folder / "A.npy", a)
    np.save(folder / "B.npy", b)
    return folder, a, b


def run_json(capsys, *argv):
    assert main(["align", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# ---------------------------------------------------------------- tests


def test_the_clamp_changes_the_study_score_a_lot(files):
    _, a, b = files
    raw = study_alignment(a, b, 10)[0]
    clamped = study_alignment(study_clamp(a, 0.95, False), study_clamp(b, 0.95, False), 10)[0]
    assert clamped - raw > 0.1  # the premise of the tests below


@pytest.mark.parametrize("exact", [False, True])
def test_uaes_align_gives_the_study_score(files, capsys, exact):
    folder, a, b = files
    expected, pair, _ = study_alignment(
        study_clamp(a, 0.95, exact), study_clamp(b, 0.95, exact), 10
    )
    argv = [folder / "A.npy", folder / "B.npy", "--outlier-quantile", "0.95"]
    result = run_json(capsys, *argv, *(["--outlier-exact"] if exact else []))
    assert result["score"] == pytest.approx(expected, abs=1e-6)
    assert (result["best_layer_a"], result["best_layer_b"]) == pair
    assert result["outlier_quantile"] == 0.95 and result["outlier_exact"] is exact
    unclamped = run_json(capsys, folder / "A.npy", folder / "B.npy")
    assert unclamped["score"] == pytest.approx(study_alignment(a, b, 10)[0], abs=1e-6)


def test_per_sample_max_reproduces_the_study_and_is_labelled_inflated(files, capsys, tmp_path):
    folder, a, b = files
    _, _, expected = study_alignment(study_clamp(a, 0.95, False), study_clamp(b, 0.95, False), 10)
    out = tmp_path / "per_sample.csv"
    result = run_json(
        capsys,
        folder / "A.npy",
        folder / "B.npy",
        "--outlier-quantile",
        "0.95",
        "--per-sample",
        out,
        "--per-sample-layers",
        "max",
    )
    table = np.loadtxt(out, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], np.arange(len(expected)))
    np.testing.assert_allclose(table[:, 1], expected, rtol=0, atol=1e-6)
    assert result["per_sample_inflated"] is True and "INFLATED" in result["per_sample_note"]
    # the chance level under the same max is far above a single pair's k / (N - 1)
    assert result["per_sample_chance"] > 2 * result["chance_level"]
    assert result["per_sample_mean"] == pytest.approx(expected.mean(), abs=1e-6)


# ---------------------------------------------------------------- the clamp itself


@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.999])
def test_remove_outliers_matches_the_study_clamp(exact, q):
    a, _ = massive_stacks(1, n=30)
    np.testing.assert_allclose(remove_outliers(a, q, exact), study_clamp(a, q, exact), rtol=1e-6)
    matrix = a[:, 1]
    np.testing.assert_allclose(
        remove_outliers(matrix, q, exact), study_clamp(matrix, q, exact), rtol=1e-6
    )
    as_list = remove_outliers([a[:, i] for i in range(a.shape[1])], q, exact)
    np.testing.assert_allclose(np.stack(as_list, axis=1), study_clamp(a, q, exact), rtol=1e-6)
    tensor = remove_outliers(torch.from_numpy(a), q, exact)
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_allclose(tensor.numpy(), study_clamp(a, q, exact), rtol=1e-6)


def test_remove_outliers_definition_on_a_small_example():
    x = np.array([[1.0, -8.0, 3.0, 4.0], [5.0, 6.0, -7.0, 2.0]], dtype=np.float32)
    # exact: position int(0.5 * 8) = 4 of the sorted |x| (1..8) is 5
    assert remove_outliers(x, 0.5, exact=True).tolist() == [[1, -5, 3, 4], [5, 5, -5, 2]]
    # per-row medians of |x| are 3.5 and 5.5 (linear interpolation); their mean is 4.5
    assert np.abs(remove_outliers(x, 0.5)).max() == 4.5
    assert remove_outliers(x, 1.0) is x  # q = 1: unchanged
    assert remove_outliers(x, 0.5).dtype == np.float32
    for bad, message in [
        (1.5, r"must be a number in \(0, 1\]"),
        (0.0, r"must be a number in \(0, 1\]"),
        ("0.9", r"must be a number in \(0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            remove_outliers(x, bad)
    nan = x.copy()
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        remove_outliers(nan, 0.9)
    with pytest.raises(ValueError, match="N x D matrix, an N x L x D stack"):
        remove_outliers(np.zeros(5), 0.9)
