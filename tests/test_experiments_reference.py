"""Reference mode through the experiment config (``configs/reference.yaml``: clamp,
first-maximum loop, every layer, the study's sizes, per-sample max) against the study's
semantics written out here, on stacks with massive-activation dimensions; and a run with
``align.n_permutations: 0``.

The study's semantics, from its code (read, not copied): every model's whole N x L x D
stack of the scored samples is clamped to [-v, v], v the mean over samples of each
sample's 0.95 quantile of |x| (``precise=False``; exact: the element at int(0.95 * numel)
of the sorted |x|); rows are L2-normalised; kNN by cosine with the diagonal excluded;
mutual kNN is the mean shared fraction. ``compute_alignment(x, y)`` calls
``compute_score(y, x)``, whose loop runs over y's layers outer and x's inner and keeps a
pair when its score is strictly greater than the best so far, from 0. ``mutual_knn_raw``
keeps, per sample, the max over every layer pair.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import Stage, run_stages
from uaes_hf.experiments.report import load_results
from uaes_hf.experiments.stages import ALIGN_KEYS, ANALYSE_KEYS
from uaes_hf.experiments.stages.align import run_align
from uaes_hf.experiments.stages.analyse import run_analyse
from uaes_hf.experiments.stages.report import run_report
from uaes_hf.features.fingerprint import table_fingerprint
from uaes_hf.features.store import FeatureStore

REPO = Path(__file__).resolve().parents[1]
MODELS = ["ma", "mb", "mc"]
N_POEMS, N_PLAIN, LAYERS, DIM = 64, 56, 4, 40


# -- the study's semantics, written out ----------------------------------------------------
def study_clamp(stack: np.ndarray, q: float = 0.95, exact: bool = False) -> np.ndarray:
    a = np.abs(stack)
    if exact:
        flat = np.sort(a.ravel())
        v = flat[int(q * flat.size)]
    else:
        per_row = a.reshape(a.shape[0], -1)
        v = np.mean([np.quantile(row, q) for row in per_row])  # linear, as torch.quantile
    return np.clip(stack, -v, v)


def study_knn(x: np.ndarray, k: int) -> np.ndarray:
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    sim = x @ x.T
    np.fill_diagonal(sim, -1e8)
    return np.argsort(-sim, axis=1, kind="stable")[:, :k]


def study_per_sample(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    a, b = study_knn(x, k), study_knn(y, k)
    return np.array([len(set(a[i]) & set(b[i])) / k for i in range(len(x))])


def study_compute_score(x_stack: np.ndarray, y_stack: np.ndarray, k: int):
    """compute_score(x_feats, y_feats): x's layers outer, strict > from 0."""
    best, where = 0.0, None
    for i in range(x_stack.shape[1]):
        for j in range(y_stack.shape[1]):
            score = study_per_sample(x_stack[:, i], y_stack[:, j], k).mean()
            if score > best:
                best, where = score, (i, j)
    return best, where


def study_pair(stack_i, stack_j, k, clamp=True, exact=False):
    """The study's score of models i < j: compute_alignment(x=i, y=j) -> compute_score(y, x)."""
    if clamp:
        stack_i, stack_j = study_clamp(stack_i, exact=exact), study_clamp(stack_j, exact=exact)
    score, (layer_j, layer_i) = study_compute_score(stack_j, stack_i, k)
    return score, layer_i, layer_j


def study_raw_max(stack_i, stack_j, k, exact=False):
    a, b = study_clamp(stack_i, exact=exact), study_clamp(stack_j, exact=exact)
    return np.max(
        [
            study_per_sample(a[:, p], b[:, q], k)
            for p in range(a.shape[1])
            for q in range(b.shape[1])
        ],
        axis=0,
    )


# -- a run on synthetic stacks with massive activations --------------------------------------
def _stacks(rng, n, strength):
    latent = rng.normal(size=(n, 5))
    out = {}
    for model in MODELS:
        layers = []
        for _ in range(LAYERS):
            x = strength * latent @ rng.normal(size=(5, DIM)) + rng.normal(size=(n, DIM))
            x[:, 0] = 300.0 * rng.normal(size=n)  # a massive dimension, unrelated across models
            layers.append(x.astype(np.float32))
        out[model] = np.stack(layers, axis=1)
    return out


def _stages() -> list[Stage]:
    def prepare(ctx):
        rng = np.random.default_rng(0)
        poems = pd.DataFrame(
            {
                "id": [f"p{i}" for i in range(N_POEMS)],
                "text": [f"poem {i} " + "rose " * (i % 7) for i in range(N_POEMS)],
                "n_words": rng.integers(10, 90, N_POEMS),
                "aesthetic_score": np.r_[np.full(20, 5.0), np.full(N_POEMS - 20, 2.0)],
                "form_category": "formatted",
            }
        )
        plain = pd.DataFrame(
            {
                "id": [f"t{i}" for i in range(N_PLAIN)],
                "text": [f"text {i} " + "stone " * (i % 5) for i in range(N_PLAIN)],
                "n_words": rng.integers(5, 40, N_PLAIN),
            }
        )
        images = pd.DataFrame(columns=["id", "caption", "poem", "image", "image_aesthetic_level"])
        layout = RunLayout.for_stage(ctx)
        poems.to_parquet(layout.prepared_poems)
        plain.to_parquet(layout.plain_texts)
        images.to_parquet(layout.image_text)
        return {"substitutions": [{"stage": "prepare", "what": "test data", "detail": "made"}]}

    def annotate(ctx):
        layout = RunLayout.for_stage(ctx)
        pd.read_parquet(layout.prepared_poems).to_parquet(layout.annotated_poems)
        return {}

    def extract(ctx):
        layout = RunLayout.for_stage(ctx)
        store = FeatureStore(layout.feature_store)
        rng = np.random.default_rng(1)
        for dataset, table_path, strength in (
            ("poems", layout.prepared_poems, 1.5),
            ("plain_texts", layout.plain_texts, 0.7),
        ):
            table = pd.read_parquet(table_path)
            ids = [str(i) for i in table["id"]]
            for model, stack in _stacks(rng, len(ids), strength).items():
                store.write(
                    dataset=dataset,
                    fingerprint=table_fingerprint({}, ids),
                    model=model,
                    pooling="mean",
                    layers=[stack[:, layer] for layer in range(LAYERS)],
                    ids=ids,
                    options={"column": "text"},
                )
        return {}

    return [
        Stage("prepare", ("data",), (), prepare),
        Stage("annotate", ("annotate",), ("prepare",), annotate),
        Stage("extract", ("extract",), ("prepare",), extract),
        Stage("align", ALIGN_KEYS, ("prepare", "annotate", "extract"), run_align),
        Stage("analyse", ANALYSE_KEYS, ("prepare", "annotate", "extract", "align"), run_analyse),
        Stage("report", ("report.dpi",), ("analyse",), run_report),
    ]


def _config(path: Path | None, **align):
    return load_config(
        path,
        overrides={
            "data": {"n_poems": 0, "n_plain_texts": 0, "n_images": 0, "aligned_poems": None},
            "annotate": {"backend": "existing"},
            "extract": {"text_models": MODELS, "vision_models": [], "perplexity_model": None},
            "align": {"k": 5, "n_permutations": 19, "n_bootstrap": 0, "min_subset_size": 12}
            | align,
            "analyse": {
                "comparisons": ["poems_vs_plain", "high_vs_low"],
                "cluster_model": "mc",
                "reference_model": "mc",
                "text_permutations": 9,
                "text_subsamples": 9,
            },
            "report": {"tsne": False, "wordclouds": False, "dpi": 40},
        },
    )


@pytest.fixture(scope="module")
def stacks():
    """The stacks the synthetic extract stage writes (same seed, same order)."""
    rng = np.random.default_rng(1)
    return {
        "poems": _stacks(rng, N_POEMS, 1.5),
        "plain_texts": _stacks(rng, N_PLAIN, 0.7),
    }


@pytest.fixture(scope="module", params=[False, True], ids=["approximate", "exact"])
def reference_run(request, tmp_path_factory):
    cfg = _config(REPO / "configs" / "reference.yaml", outlier_exact=request.param)
    work = tmp_path_factory.mktemp("reference")
    results = run_stages(_stages(), cfg, work, show_progress=False)
    dirs = {r.name: r.directory for r in results}
    plan = json.loads(RunLayout(dirs).subsets.read_text())
    return cfg, dirs, plan, load_results(RunLayout(dirs).report.root)


def test_reference_config_is_the_study_semantics(reference_run, stacks):
    cfg, dirs, plan, res = reference_run
    exact = cfg.align.outlier_exact
    assert cfg.align.layer_selection == "reference" and cfg.align.max_layers_per_model == 0
    conv = res["convergence"]
    moved = []
    for side in plan["subsets"]:
        rows = np.asarray(side["rows"])
        part = conv[conv["subset"] == f"{side['comparison']}/{side['side']}"]
        assert len(part) == 3
        for row in part.itertuples():
            a = stacks[side["dataset"]][row.model_a][rows]
            b = stacks[side["dataset"]][row.model_b][rows]
            score, layer_a, layer_b = study_pair(a, b, 5, exact=exact)
            assert row.score == pytest.approx(score, abs=1e-6)
            assert (row.layer_a, row.layer_b) == (layer_a, layer_b)
            assert row.n_layer_pairs == LAYERS * LAYERS  # every layer pair
            moved.append(abs(score - study_pair(a, b, 5, clamp=False)[0]))
    assert max(moved) > 0.1  # the stacks are ones where the clamp matters


def test_reference_sizes_are_the_studys(reference_run):
    _, _, plan, res = reference_run
    sides = {(s["comparison"], s["side"]): s["rows"] for s in plan["subsets"]}
    # two datasets: the first min(N) rows of each; filtered subsets: whole
    assert sides[("poems_vs_plain", "poems")] == list(range(N_PLAIN))
    assert sides[("poems_vs_plain", "plain_texts")] == list(range(N_PLAIN))
    assert len(sides[("high_vs_low", "high_score")]) == 20
    assert len(sides[("high_vs_low", "low_score")]) == N_POEMS - 20
    assert res.summary["match_sizes"] is False
    headline = {h["comparison"]: h for h in res.summary["headline"]}
    assert (headline["high_vs_low"]["n"], headline["high_vs_low"]["n_b"]) == (20, 44)


def test_reference_per_sample_is_the_study_max_labelled_inflated(reference_run, stacks):
    cfg, dirs, _, res = reference_run
    exact = cfg.align.outlier_exact  # the study's per-sample run: approximate; exact too
    per_sample = res["per_sample"]
    slopes = res["per_sample_slopes"]
    poems = stacks["poems"]
    for (a, b), part in per_sample.groupby(["model_a", "model_b"]):
        part = part.set_index("sample").loc[[f"p{i}" for i in range(N_POEMS)]]
        np.testing.assert_allclose(
            part["score"], study_raw_max(poems[a], poems[b], 5, exact), atol=1e-6
        )
    chance = slopes["chance"].to_numpy()
    one_pair = 5 / (N_POEMS - 1)
    assert (slopes["mode"] == "max").all() and slopes["inflated"].all()
    assert (chance > 2 * one_pair).all()  # the chance of a max over 16 pairs, not k/(N-1)
    assert res.summary["per_sample_inflated"] is True
    page = (RunLayout(dirs).report.root / "index.html").read_text()
    assert "INFLATED" in page and "What was substituted" in page
    assert "test data" in page  # the prepare stage's substitution reached the report
    caption = next(
        f["caption"] for f in res.figures if f["file"].endswith("per_sample_n_words.png")
    )
    assert "INFLATED" in caption and f"{chance.mean():.3f}" in caption


def test_a_run_without_permutations_uses_raw_differences(tmp_path, stacks):
    cfg = _config(None, n_permutations=0, outlier_quantile=None)  # default choices, no clamp
    results = run_stages(_stages(), cfg, tmp_path, show_progress=False)
    res = load_results(RunLayout({r.name: r.directory for r in results}).report.root)
    conv = res["convergence"]
    assert conv["calibrated"].isna().all() and conv["p_value"].isna().all()
    tests = res["comparison_tests"]
    assert set(tests["quantity"]) == {"difference"}  # no test of calibrated differences
    assert {h["comparison"] for h in res.summary["headline"]} == {"poems_vs_plain", "high_vs_low"}
    text = res["text_tests"].set_index("comparison")
    assert np.isfinite(text.loc["poems_vs_plain", "p_value"])
    # the text test's statistic at full N is the headline's mean difference (no clamp here)
    headline = {h["comparison"]: h for h in res.summary["headline"]}
    for comparison in ("poems_vs_plain", "high_vs_low"):
        assert text.loc[comparison, "observed"] == pytest.approx(
            headline[comparison]["mean_difference"], abs=1e-9
        )
    what = [s["what"] for s in res.summary["substituted"]]
    assert "calibrated scores" in what
    # the lexical baseline and the embedding-layer variant sit next to the headline
    variants = set(res["headline_variants"]["variant"])
    assert "lexical: each model vs TF-IDF" in variants
    assert "without the embedding layer (layer 0)" in variants
    assert set(res["lexical"]["model"]) == set(MODELS)
