"""End to end on synthetic stage inputs: the real align, analyse and report stages, the
report's figures and captions, load_results, caching of the whole run, `uaes report`."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import Stage
from uaes_hf.experiments.report import load_results
from uaes_hf.experiments.run import run_experiment
from uaes_hf.experiments.stages import ALIGN_KEYS, ANALYSE_KEYS
from uaes_hf.experiments.stages.align import run_align
from uaes_hf.experiments.stages.analyse import run_analyse
from uaes_hf.experiments.stages.report import run_report
from uaes_hf.features.fingerprint import table_fingerprint
from uaes_hf.features.store import FeatureStore

WORDS = [
    "rose",
    "moon",
    "light",
    "river",
    "stone",
    "wind",
    "heart",
    "night",
    "sea",
    "fire",
    "gold",
    "bird",
    "tree",
    "rain",
    "snow",
    "road",
    "house",
    "table",
    "chair",
    "machine",
    "paper",
    "metal",
    "engine",
    "wire",
    "glass",
    "water",
]
TEXT_MODELS = ["ma", "mb", "mc"]
VISION_MODELS = ["va", "vb"]


def synthetic_config(**align):
    return load_config(
        overrides={
            "name": "synthetic",
            "data": {"n_poems": 0, "n_plain_texts": 0, "n_images": 40},
            "annotate": {"backend": "existing"},
            "extract": {
                "text_models": TEXT_MODELS,
                "vision_models": VISION_MODELS,
                "perplexity_model": "ma",
            },
            "align": {
                "k": 5,
                "n_permutations": 20,
                "n_bootstrap": 20,
                "max_layers_per_model": 2,
                "min_subset_size": 12,
                **align,
            },
            "analyse": {
                "cluster_model": "mc",
                "reference_model": "mc",
                "tsne_perplexity": 10.0,
                "n_sign_flips": 2000,
                "capability": {
                    "ma": {"ifeval": 20.0, "average": 30.0, "params_millions": 100},
                    "mb": {"ifeval": 40.0, "average": 45.0, "params_millions": 700},
                },
            },
            "report": {"title": "Synthetic check", "dpi": 50},
        }
    )


def _texts(rng, n, lo, hi):
    return [" ".join(rng.choice(WORDS, rng.integers(lo, hi))) for _ in range(n)]


def _png(rng) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def synthetic_stages(calls: Counter) -> list[Stage]:
    def prepare(ctx):
        calls["prepare"] += 1
        rng = np.random.default_rng(0)
        poems = pd.DataFrame(
            {"id": [f"p{i}" for i in range(120)], "text": _texts(rng, 120, 20, 90)}
        )
        poems["n_words"] = [len(t.split()) for t in poems["text"]]
        poems["aesthetic_score"] = rng.integers(1, 6, 120).astype(float)
        poems["form_category"] = rng.choice(["formatted", "free_verse", "ambiguous"], 120)
        plain = pd.DataFrame({"id": [f"t{i}" for i in range(110)], "text": _texts(rng, 110, 8, 40)})
        plain["n_words"] = [len(t.split()) for t in plain["text"]]
        images = pd.DataFrame(
            {
                "id": [f"i{i}" for i in range(40)],
                "caption": _texts(rng, 40, 5, 12),
                "poem": _texts(rng, 40, 10, 30),
                "image": [_png(rng) for _ in range(40)],
                "image_aesthetic_level": rng.integers(1, 6, 40),
            }
        )
        aligned = pd.DataFrame({"id": [f"a{i}" for i in range(30)], "text": _texts(rng, 30, 8, 40)})
        aligned["n_words"] = [len(t.split()) for t in aligned["text"]]
        layout = RunLayout.for_stage(ctx)
        poems.to_parquet(layout.prepared_poems)
        aligned.to_parquet(layout.aligned_poems)
        plain.to_parquet(layout.plain_texts)
        images.to_parquet(layout.image_text)
        return {}

    def annotate(ctx):
        calls["annotate"] += 1
        layout = RunLayout.for_stage(ctx)
        pd.read_parquet(layout.prepared_poems).to_parquet(layout.annotated_poems)
        return {}

    def extract(ctx):
        """Features with a known structure, stored as the real stage stores them (one entry
        per dataset x model, ids of its table) but with their rows in a shuffled order: the
        readers must join them by id."""
        calls["extract"] += 1
        rng = np.random.default_rng(1)
        layout = RunLayout.for_stage(ctx)
        store = FeatureStore(layout.feature_store)
        tables = {
            "poems": pd.read_parquet(layout.prepared_poems),
            "plain_texts": pd.read_parquet(layout.plain_texts),
            "poems_aligned": pd.read_parquet(layout.aligned_poems),
            "image_text": pd.read_parquet(layout.image_text),
        }

        def write(dataset, column, model, layers):
            ids = [str(i) for i in tables[dataset]["id"]]
            order = rng.permutation(len(ids))
            store.write(
                dataset=dataset,
                fingerprint=table_fingerprint({}, ids),
                model=model,
                pooling="mean",
                layers=[layer[order] for layer in layers],
                ids=[ids[i] for i in order],
                options={"column": column},
            )

        sides = [
            ("poems", "text"),
            ("plain_texts", "text"),
            ("image_text", "caption"),
            ("image_text", "poem"),
            ("poems_aligned", "text"),
        ]
        for dataset, column in sides:
            n = len(tables[dataset])
            shared = rng.normal(size=(n, 8))
            strength = 1.0 if dataset == "poems" else 0.5
            for model in TEXT_MODELS:
                layers = [
                    strength * shared @ rng.normal(size=(8, 16)) + rng.normal(size=(n, 16))
                    for _ in range(3)
                ]
                write(dataset, column, model, layers)
            if column == "caption":
                image_shared = shared
        for model in VISION_MODELS:
            layers = [
                image_shared @ rng.normal(size=(8, 12)) + rng.normal(size=(40, 12)),
                rng.normal(size=(40, 6)),
            ]  # ragged widths, like CNN stages
            write("image_text", "image", model, layers)
        ppl = pd.concat(
            [
                pd.DataFrame(
                    {
                        "dataset": d,
                        "row": np.arange(len(tables[d])),
                        "id": tables[d]["id"].astype(str),
                        "perplexity": np.exp(rng.normal(3, 0.4, len(tables[d]))),
                        "bits_per_byte": rng.uniform(0.5, 1.5, len(tables[d])),
                    }
                )
                for d in ("poems", "plain_texts")
            ],
            ignore_index=True,
        )
        ppl.to_parquet(layout.perplexity)
        return {}

    def counted(name, fn):
        def run(ctx):
            calls[name] += 1
            return fn(ctx)

        return run

    return [
        Stage("prepare", ("data",), (), prepare),
        Stage("annotate", ("annotate",), ("prepare",), annotate),
        Stage("extract", ("extract",), ("prepare",), extract),
        Stage("align", ALIGN_KEYS, ("prepare", "annotate", "extract"), counted("align", run_align)),
        Stage(
            "analyse",
            ANALYSE_KEYS,
            ("prepare", "annotate", "extract", "align"),
            counted("analyse", run_analyse),
        ),
        Stage("report", ("report.dpi",), ("analyse",), counted("report", run_report)),
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    calls: Counter = Counter()
    cfg = synthetic_config()
    index, results = run_experiment(
        cfg,
        base / "report",
        work_dir=base / "work",
        show_progress=False,
        stages=synthetic_stages(calls),
    )
    return base, cfg, index, results, calls


@pytest.mark.slow
def test_report_references_only_existing_figures_with_numeric_captions(finished):
    base, _, index, _, _ = finished
    page = index.read_text()
    sources = re.findall(r"<img src='([^']+)'", page)
    assert len(sources) >= 15
    for src in sources:
        assert (index.parent / src).is_file(), src
    res = load_results(base / "report")
    assert {f["file"] for f in res.figures} == set(sources)
    conv = res["convergence"]
    poems = conv[conv["subset"] == "poems_vs_plain/poems"]
    caption = next(f["caption"] for f in res.figures if f["file"].endswith("convergence_poems.png"))
    assert f"{poems['score'].min():.3f}" in caption and f"{poems['score'].max():.3f}" in caption
    assert (
        f"N={int(poems['n'].iloc[0])}" in caption
        and f"chance {poems['chance'].iloc[0]:.3f}" in caption
    )
    test_row = (
        res["comparison_tests"]
        .query("comparison == 'poems_vs_plain' and quantity == 'difference'")
        .iloc[0]
    )
    cap = next(f["caption"] for f in res.figures if "compare_poems_vs_plain" in f["file"])
    assert f"{test_row['mean_difference']:+.4f}" in cap
    for f in res.figures:
        assert re.search(r"\d", f["caption"]), f["file"]  # every caption carries numbers
    assert "Run timings" in page and "Headline comparisons" in page


@pytest.mark.slow
def test_results_cover_the_study_and_matched_n(finished):
    base, cfg, _, _, _ = finished
    res = load_results(base / "report")
    conv = res["convergence"]
    for comparison, part in conv.groupby("comparison"):
        assert part["n"].nunique() == 1, comparison
    assert {
        "poems_vs_plain",
        "high_vs_low",
        "formatted_vs_free",
        "short_vs_long",
        "length_aligned",
        "clusters",
        "crossmodal",
    } <= set(conv["comparison"])
    cross = conv[conv["comparison"] == "crossmodal"]
    assert set(cross["model_a"]) == set(TEXT_MODELS) and set(cross["model_b"]) == set(VISION_MODELS)
    assert len(cross) == 2 * len(TEXT_MODELS) * len(VISION_MODELS)
    slopes = res["per_sample_slopes"]
    assert set(slopes["covariate"]) >= {
        "n_words",
        "perplexity",
        "aesthetic_score",
        "image_aesthetic_level",
    }
    assert (slopes["mode"] == "heldout").all()
    assert res.summary["per_sample_mode"] == "heldout"
    poems_vs_plain = (
        res["comparison_tests"]
        .query("comparison == 'poems_vs_plain' and quantity == 'difference'")
        .iloc[0]
    )
    assert poems_vs_plain["n_a_greater"] == 3  # poems have the stronger shared structure
    assert len(res["cluster_similarity"]) == 4
    # the length-aligned side is the given aligned set (30 poems), matched by 30 plain texts
    assert res.summary["sampling_notes"]["length_aligned"]["sampled"] == 30
    assert set(conv[conv["comparison"] == "length_aligned"]["n"]) == {30}
    lengths = res["lengths"]
    assert (lengths["group"] == "poems (length-aligned)").sum() == 30
    assert set(res["capability"]["model"]) == {"ma", "mb"}
    assert res.timings is not None and "total" in set(res.timings["stage"])
    # the published summary names every stage's folder, and the Space finds the run with it
    from uaes_hf.space import RunFeatureSet, read_run_poems, run_stage_dirs

    stage_dirs = res.summary["stage_dirs"]
    assert set(stage_dirs) == {"prepare", "annotate", "extract", "align", "analyse", "report"}
    assert all(
        Path(d).is_dir() and Path(d).parent.parent == (base / "work").resolve()
        for d in stage_dirs.values()
    )
    found = run_stage_dirs(base / "report")
    assert {name: str(path) for name, path in found.items()} == stage_dirs
    assert len(read_run_poems(found)) == 120
    features = RunFeatureSet(found["extract"], "poems")
    assert features.models() == sorted(TEXT_MODELS)
    # the stored rows are shuffled; the Space joins them to the poems by id
    joined = features.rows_as_poems(read_run_poems(found))
    stored_ids = features.row_ids()
    assert stored_ids != [f"p{i}" for i in range(120)]  # really shuffled
    assert sorted(joined["id"]) == sorted(f"p{i}" for i in range(120))
    assert [stored_ids[r] for r in joined["_row"]] == joined["id"].tolist()
    # round trip: the CSV on disk is what load_results returns
    pd.testing.assert_frame_equal(
        conv, pd.read_csv(base / "report" / "results" / "convergence.csv")
    )


@pytest.mark.slow
def test_headline_carries_the_test_over_texts_and_its_lexical_variants(finished):
    base, cfg, index, _, _ = finished
    res = load_results(base / "report")
    tests = res["text_tests"].set_index("comparison")
    headline = {h["comparison"]: h for h in res.summary["headline"]}
    assert set(tests.index) == set(headline)
    for comparison, row in headline.items():
        t = tests.loc[comparison]
        assert row["p_text"] == pytest.approx(t["p_value"])
        assert 1 / (cfg.analyse.text_permutations + 1) <= row["p_text"] <= 1
        assert row["ci_low"] <= t["observed"] <= row["ci_high"]
        # the same layer search as the headline; the clamp (on by default) is computed on
        # the pooled texts there, on each side here: close, not equal (equal without the
        # clamp: test_experiments_reference.py)
        assert t["observed"] == pytest.approx(row["mean_difference"], abs=0.02)
    # poems carry the stronger shared structure in the synthetic features
    assert headline["poems_vs_plain"]["ci_low"] > 0 and headline["poems_vs_plain"]["p_text"] < 0.05
    variants = res["headline_variants"]
    assert set(variants["comparison"]) == set(headline)
    lexical = res["lexical"]
    assert (
        set(lexical["model"]) == set(TEXT_MODELS) and lexical["score_vs_tfidf"].between(0, 1).all()
    )
    # the random plain texts are a draw from the whole pool, recorded as such
    notes = res.summary["sampling_notes"]["plain_random"]
    assert (
        notes["pool"] == 110
        and notes["n"] == res.summary["sampling_notes"]["distribution_aligned"]["n"]
    )
    assert res.summary["distribution_alignment_model"] == "mc"  # the reference model
    page = index.read_text()
    assert "What was substituted" in page
    files = {f["file"] for f in res.figures}
    assert "figures/headline_text_test.png" in files and "figures/capability_scores.png" in files
    cap = next(f["caption"] for f in res.figures if f["file"] == "figures/capability_scores.png")
    assert "IFEval" in cap and "leaderboard" in cap.lower() and "40.00" in cap


@pytest.mark.slow
def test_rerun_is_all_cached_and_a_changed_key_reruns_from_its_stage(finished):
    base, cfg, _, _, calls = finished
    calls.clear()
    _, results = run_experiment(
        cfg,
        base / "report2",
        work_dir=base / "work",
        show_progress=False,
        stages=synthetic_stages(calls),
    )
    assert sum(calls.values()) == 0 and all(r.cached for r in results)
    assert (base / "report2" / "index.html").is_file()
    calls.clear()
    _, results = run_experiment(
        synthetic_config().__class__(
            **{
                **{
                    f: getattr(cfg, f)
                    for f in ("name", "seed", "data", "annotate", "extract", "align", "analyse")
                },
                "report": cfg.report.__class__(title="Synthetic check", dpi=40),
            }
        ),
        base / "report3",
        work_dir=base / "work",
        show_progress=False,
        stages=synthetic_stages(calls),
    )
    assert dict(calls) == {"report": 1}


@pytest.mark.slow
def test_uaes_report_rerenders_from_results(finished, tmp_path):
    base = finished[0]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "uaes_hf.cli",
            "report",
            str(base / "report" / "results"),
            "--out",
            str(tmp_path / "again"),
            "--dpi",
            "40",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "poems_vs_plain" in out.stdout
    again = load_results(tmp_path / "again")
    first = load_results(base / "report")
    assert [f["file"] for f in again.figures] == [f["file"] for f in first.figures]
    assert all((tmp_path / "again" / f["file"]).is_file() for f in again.figures)
    with pytest.raises(ValueError, match="not a uaes report"):
        load_results(tmp_path)
    bad = subprocess.run(
        [sys.executable, "-m", "uaes_hf.cli", "report", str(tmp_path / "none")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "not a uaes report" in bad.stderr


def test_module_is_light_to_import():
    code = (
        "import sys, uaes_hf.experiments, uaes_hf.experiments.config; "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert Path(__file__).name.startswith("test_experiments_")
