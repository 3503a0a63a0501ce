"""Experiment config: defaults, validation errors that name the key, stage-key hashing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from uaes_hf.experiments.config import (
    COMPARISONS,
    default_config_text,
    dump_config,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]


def test_embedded_default_is_valid_and_sized_for_a_laptop():
    cfg = load_config()
    assert cfg.name == "embedded-default"
    assert cfg.extract.text_models == [
        "smollm2-135m",
        "gemma3-270m",
        "all-minilm-l6-v2",
        "all-mpnet-base-v2",
    ]
    assert cfg.extract.vision_models == ["efficientnet-lite0", "dinov2-vits14-onnx"]
    assert 100 <= cfg.data.n_poems <= 400 and 100 <= cfg.data.n_plain_texts <= 400
    assert set(cfg.analyse.comparisons) == set(COMPARISONS)
    assert "n_poems" in default_config_text()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"align": {"kk": 3}}, "unknown config key 'align.kk'"),
        ({"colour": 1}, "unknown config key 'colour'"),
        ({"align": {"k": "ten"}}, "'align.k' must be an integer"),
        ({"align": {"k": True}}, "'align.k' must be an integer"),
        ({"align": {"ci_level": "x"}}, "'align.ci_level' must be a number"),
        ({"align": {"ci_level": 1.5}}, "'align.ci_level' must be in (0, 1)"),
        ({"align": {"layers": "middle"}}, "'align.layers' must be one of"),
        ({"extract": {"text_models": "gpt2"}}, "'extract.text_models' must be a list"),
        ({"extract": {"text_models": ["a", 3]}}, "'extract.text_models[1]' must be a string"),
        ({"report": {"tsne": "yes"}}, "'report.tsne' must be true or false"),
        ({"data": "all"}, "data must be a mapping"),
        ({"analyse": {"comparisons": ["poems_vs_prose"]}}, "unknown comparison 'poems_vs_prose'"),
        ({"align": {"k": 0}}, "'align.k' must be >= 1"),
        ({"analyse": {"reference_model": "gpt2"}}, "'analyse.reference_model'"),
        ({"align": {"layers": "fixed"}}, "'align.fixed_layers' needs a layer"),
        ({"align": {"fixed_layers": {"a": "last"}}}, "'align.fixed_layers.a' must be an integer"),
        ({"analyse": {"capability": {"m": {"ifeval": "high"}}}}, "'analyse.capability.m.ifeval'"),
        ({"align": {"outlier_quantile": 1.5}}, "'align.outlier_quantile' must be in (0, 1]"),
        ({"align": {"outlier_quantile": 0}}, "'align.outlier_quantile' must be in (0, 1]"),
        (
            {"align": {"outlier_quantile": None, "outlier_exact": True}},
            "'align.outlier_exact' is true but",
        ),
        ({"align": {"calibration": "rank"}}, "'align.calibration' must be one of"),
        ({"align": {"layer_selection": "last"}}, "'align.layer_selection' must be one of"),
        ({"analyse": {"per_sample_layers": "mean"}}, "'analyse.per_sample_layers' must be one"),
        ({"analyse": {"distribution_model": "gpt2"}}, "'analyse.distribution_model' is 'gpt2'"),
        ({"analyse": {"text_permutations": -1}}, "'analyse.text_permutations' must be >= 0"),
        ({"data": {"poems_columns": {"text": 3}}}, "'data.poems_columns.text' must be a string"),
        ({"data": {"poems_columns": ["text"]}}, "'data.poems_columns' must be a mapping"),
    ],
)
def test_invalid_values_raise_value_errors_naming_the_key(overrides, message):
    with pytest.raises(ValueError) as err:
        load_config(overrides=overrides)
    assert message in str(err.value)


def test_user_file_overrides_only_the_keys_it_names(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: mine\nalign:\n  k: 5\n")
    cfg = load_config(path)
    assert cfg.name == "mine" and cfg.align.k == 5
    assert cfg.align.n_permutations == load_config().align.n_permutations


def test_bad_files_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("align: [1, 2\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping at the top"):
        load_config(listy)


def test_dump_round_trips(tmp_path):
    cfg = load_config(overrides={"align": {"k": 7}})
    path = tmp_path / "dumped.yaml"
    path.write_text(dump_config(cfg))
    assert load_config(path) == cfg


def test_section_hash_changes_only_with_its_keys():
    base = load_config()
    other = load_config(overrides={"align": {"k": 5}})
    assert base.section_hash("data") == other.section_hash("data")
    assert base.section_hash("align") != other.section_hash("align")
    assert base.section_hash("extract.text_models") == other.section_hash("extract.text_models")
    with pytest.raises(ValueError, match="unknown config key"):
        base.section_hash("align.nope")


def test_study_config_validates_and_dry_run_prints_the_plan():
    study = REPO / "configs" / "study.yaml"
    cfg = load_config(study)
    from uaes_hf.extract.registry import MODEL_SETS, resolve_model

    # the named sets expand to the study's 7 LLMs and 7 ViTs, each known to the registry
    assert cfg.extract.text_models == list(MODEL_SETS["study-llms"])
    assert cfg.extract.vision_models == list(MODEL_SETS["study-vits"])
    assert len(set(cfg.extract.text_models)) == 7 and len(set(cfg.extract.vision_models)) == 7
    assert resolve_model("llama3-8b").source == "meta-llama/Meta-Llama-3-8B"
    assert cfg.analyse.reference_model in cfg.extract.text_models
    assert cfg.data.plain_texts == "minhuh/prh" and cfg.data.plain_texts_revision == "wit_1024"
    assert cfg.annotate.backend == "openai"
    out = subprocess.run(
        [sys.executable, "-m", "uaes_hf.cli", "run", "--config", str(study), "--dry-run"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert "text models (7)" in out.stdout and "config is valid" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "uaes_hf.cli", "run", "--config", str(study), "--limit", "0"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert bad.returncode == 2


def test_base_files_are_merged_in_order_and_cycles_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nalign:\n  k: 3\n  n_bootstrap: 7\n")
    (tmp_path / "b.yaml").write_text("align:\n  k: 4\n")
    (tmp_path / "c.yaml").write_text("base: [a.yaml, b.yaml]\nname: c\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.name, cfg.align.k, cfg.align.n_bootstrap) == ("c", 4, 7)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ValueError, match="its own base"):
        load_config(tmp_path / "loop.yaml")
    (tmp_path / "bad.yaml").write_text("base: 3\n")
    with pytest.raises(ValueError, match="'base' must be"):
        load_config(tmp_path / "bad.yaml")


def test_reference_presets_turn_every_deviation_back():
    ref = load_config(REPO / "configs" / "reference.yaml")
    assert ref.extract.text_models == load_config().extract.text_models  # embedded data
    assert (ref.align.outlier_quantile, ref.align.outlier_exact) == (0.95, False)
    assert ref.align.layer_selection == "reference" and ref.align.max_layers_per_model == 0
    assert ref.align.match_sizes is False and ref.align.exclude_embedding_layer is False
    assert ref.analyse.per_sample_layers == "max"
    study = load_config(REPO / "configs" / "study.yaml")
    both = load_config(REPO / "configs" / "study_reference.yaml")
    assert study.align.outlier_quantile == 0.95  # the study's clamp, also outside reference
    assert both.data == study.data and both.extract == study.extract
    assert both.align.layer_selection == "reference" and both.analyse.per_sample_layers == "max"
    assert both.align.n_permutations == study.align.n_permutations


def test_dry_run_of_the_study_config_prints_every_models_token_cap():
    """Offline (HF_HUB_OFFLINE=1): the caps come from local configs or the registry."""
    import os

    from uaes_hf.extract.registry import MODEL_SETS

    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "uaes_hf.cli",
            "run",
            "--config",
            str(REPO / "configs" / "study.yaml"),
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=300,
    )
    lines = {
        line.strip().split(":")[0]: line.strip()
        for line in out.stdout.splitlines()
        if line.startswith("    ") and ": " in line
    }
    for model in MODEL_SETS["study-llms"]:
        assert lines[model].startswith(f"{model}: 1024 tokens"), lines.get(model)
    for model in MODEL_SETS["study-vits"]:
        assert "no token cap" in lines[model]
    assert lines["all-minilm-l6-v2"].startswith("all-minilm-l6-v2: 512 tokens (asked 1024")
    assert lines["gpt2"].startswith("gpt2: 1024 tokens")
    assert "offline: local configs, else the registry" in out.stdout
    assert "outlier clamp q=0.95" in out.stdout
