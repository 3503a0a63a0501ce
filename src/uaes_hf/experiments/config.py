"""Experiment configuration: a YAML file validated against typed sections, with defaults.

The embedded default (``experiments/default.yaml``, a package resource) is the base; a user
file only overrides the keys it names. Unknown keys and wrong types raise a ``ValueError``
that names the key (``align.k``), so a typo never silently falls back to a default.

Example:
    >>> from uaes_hf.experiments.config import load_config
    >>> cfg = load_config()  # the embedded default
    >>> cfg.align.k
    10
    >>> load_config(overrides={"align": {"kk": 3}})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'align.kk'; expected one of: ...
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from uaes_hf.typed_config import build_dataclass

COMPARISONS: tuple[str, ...] = (
    "poems_vs_plain",
    "high_vs_low",
    "formatted_vs_free",
    "short_vs_long",
    "length_aligned",
    "distribution_aligned",
    "plain_random_vs_aligned",
    "clusters",
)
STAGES: tuple[str, ...] = ("prepare", "annotate", "extract", "align", "analyse", "report")


@dataclass(frozen=True)
class DataConfig:
    """Where the poems, plain texts and image-text pairs come from, and how many to use."""

    poems: str = "embedded"
    poems_config: str = "main"
    poems_revision: str | None = None
    plain_texts: str = "embedded"
    plain_texts_config: str | None = None
    plain_texts_revision: str | None = None
    image_text: str = "embedded"
    image_text_revision: str | None = None
    n_poems: int = 240
    n_plain_texts: int = 240
    n_images: int = 48
    # The poems repo's length-aligned set (the study's ``aligned_s`` branch: poems drawn,
    # without replacement, to follow the plain texts' length distribution). ``None``: draw
    # the length-aligned poems from the sampled poems instead (few when lengths differ).
    aligned_poems: str | None = "aligned_s"
    # Column maps for the study importers (uaes_hf.data.study_import): record field -> a
    # column name, a list of candidates (the first present wins) or null (absent). Empty:
    # the importers' defaults (the study's names); a dataset in the suite's format passes.
    poems_columns: dict[str, str | list[str] | None] = field(default_factory=dict)
    plain_texts_columns: dict[str, str | list[str] | None] = field(default_factory=dict)
    image_text_columns: dict[str, str | list[str] | None] = field(default_factory=dict)


@dataclass(frozen=True)
class AnnotateConfig:
    """The aesthetic judge for poems that have no score yet."""

    backend: Literal["existing", "local", "openai"] = "local"
    model: str = "smollm2-135m"
    base_url: str | None = None
    keep_existing: bool = True
    max_concurrency: int = 4
    max_prompt_tokens: int = 448
    rescale: Literal["none", "quantile"] = "none"


@dataclass(frozen=True)
class ExtractConfig:
    """Which models embed the data (all layers, pooled) and which one measures perplexity."""

    text_models: list[str] = field(default_factory=list)
    vision_models: list[str] = field(default_factory=list)
    pooling: Literal["mean", "last"] = "mean"
    vision_pooling: Literal["cls", "mean"] = "cls"
    batch_size: int = 8
    max_tokens: int = 160
    device: str = "auto"
    perplexity_model: str | None = None
    # > 1: text features are extracted by `accelerate launch --num_processes N -m
    # uaes_hf.extract` (one process per GPU); 1: in this process, as before.
    num_processes: int = 1


@dataclass(frozen=True)
class AlignConfig:
    """Mutual-kNN settings and the statistics around every score."""

    metric: Literal["mutual_knn"] = "mutual_knn"
    k: int = 10
    layers: Literal["best", "last", "fixed"] = "best"
    fixed_layers: dict[str, int] = field(default_factory=dict)
    max_layers_per_model: int = 6
    n_permutations: int = 200
    n_bootstrap: int = 200
    ci_level: float = 0.95
    min_subset_size: int = 20
    # The study's outlier clamp (uaes_hf.alignment.remove_outliers) on every feature stack
    # (all layers of the scored rows) before any neighbour search; null: no clamp.
    outlier_quantile: float | None = None
    outlier_exact: bool = False
    calibration: Literal["quantile", "order-statistic"] = "quantile"
    # best: numpy's first maximum; reference: the study's loop (strict > from 0, the second
    # model's layers outer, as its compute_alignment(x, y) calls compute_score(y, x)).
    layer_selection: Literal["best", "reference"] = "best"
    # Leave layer 0 (the mean-pooled input embeddings, a bag of words) out of the search.
    exclude_embedding_layer: bool = False
    # true: every side of a comparison is subsampled to the smallest side's N (chance is
    # k/(N-1), so scores are comparable only at equal N); false: the study's sizes (each
    # filtered subset whole; poems vs plain texts cut to the first min(N) rows).
    match_sizes: bool = True


@dataclass(frozen=True)
class AnalyseConfig:
    """Which comparisons to run and the settings of the derived analyses."""

    comparisons: list[str] = field(default_factory=lambda: list(COMPARISONS))
    cluster_model: str = "all-minilm-l6-v2"
    n_clusters: int = 2
    reference_model: str | None = None
    capability: dict[str, dict[str, float]] = field(default_factory=dict)
    # heldout | fixed | max (the study's element-wise max over every layer pair: inflated;
    # the report labels it and shows the chance level under the same max)
    per_sample_layers: Literal["heldout", "fixed", "max"] = "heldout"
    n_sign_flips: int = 10000
    # The model whose last-layer features the distribution-aligned plain texts are fitted
    # in (the study: Llama-3-8B); null: the reference model.
    distribution_model: str | None = None
    # The headline test over texts: random splits of the two sides' pooled texts (p-value)
    # and half-samples of each side (interval), every neighbour set recomputed; 0 = off.
    text_permutations: int = 200
    text_subsamples: int = 200
    # candidate layers per model in that test (evenly spaced incl. the last; 0 = all;
    # null = align.max_layers_per_model, the headline's search)
    text_test_max_layers: int | None = None
    # TF-IDF over the texts scored against every model (how much agreement is lexical),
    # and the headline with the embedding layer out of (or, if excluded, in) the search.
    lexical_baseline: bool = True
    embedding_layer_check: bool = True
    tsne_model: str | None = None
    tsne_perplexity: float = 20.0


@dataclass(frozen=True)
class ReportConfig:
    """How the report looks."""

    title: str = "Do models agree on beautiful things?"
    tsne: bool = True
    wordclouds: bool = True
    dpi: int = 110


@dataclass(frozen=True)
class ExperimentConfig:
    """One experiment: data, judge, models, alignment statistics, analyses, report."""

    name: str = "experiment"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    align: AlignConfig = field(default_factory=AlignConfig)
    analyse: AnalyseConfig = field(default_factory=AnalyseConfig)
    report: ReportConfig = field(default_factory=ReportConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (YAML/JSON-serialisable)."""
        return dataclasses.asdict(self)

    def section_hash(self, *sections: str) -> str:
        """Stable content hash of the named sections or dotted keys (and ``seed``).

        Example:
            >>> len(load_config().section_hash("align", "extract.text_models"))
            64
        """
        full = self.to_dict()
        picked: dict[str, Any] = {"seed": full["seed"]}
        for name in sections:
            value: Any = full
            for part in name.split("."):
                if not isinstance(value, dict) or part not in value:
                    raise ValueError(f"unknown config key {name!r} in a stage's cache key")
                value = value[part]
            picked[name] = value
        text = json.dumps(picked, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Validation


def _check_semantics(cfg: ExperimentConfig) -> None:
    """Checks that span keys or ranges (types are already checked)."""

    def positive(key: str, value: float, minimum: float = 1) -> None:
        if value < minimum:
            raise ValueError(f"config key {key!r} must be >= {minimum}, got {value}")

    positive("data.n_poems", cfg.data.n_poems, 0)
    positive("data.n_plain_texts", cfg.data.n_plain_texts, 0)
    positive("data.n_images", cfg.data.n_images, 0)
    positive("extract.batch_size", cfg.extract.batch_size)
    positive("extract.max_tokens", cfg.extract.max_tokens, 8)
    positive("extract.num_processes", cfg.extract.num_processes)
    positive("align.k", cfg.align.k)
    positive("align.max_layers_per_model", cfg.align.max_layers_per_model, 0)
    positive("align.n_permutations", cfg.align.n_permutations, 0)
    positive("align.n_bootstrap", cfg.align.n_bootstrap, 0)
    positive("align.min_subset_size", cfg.align.min_subset_size, cfg.align.k + 2)
    positive("analyse.n_clusters", cfg.analyse.n_clusters, 2)
    positive("analyse.n_sign_flips", cfg.analyse.n_sign_flips, 0)
    positive("analyse.text_permutations", cfg.analyse.text_permutations, 0)
    positive("analyse.text_subsamples", cfg.analyse.text_subsamples, 0)
    if cfg.analyse.text_test_max_layers is not None:
        positive("analyse.text_test_max_layers", cfg.analyse.text_test_max_layers, 0)
    quantile = cfg.align.outlier_quantile
    if quantile is not None and not 0.0 < quantile <= 1.0:
        raise ValueError(f"config key 'align.outlier_quantile' must be in (0, 1], got {quantile}")
    if cfg.align.outlier_exact and quantile is None:
        raise ValueError(
            "config key 'align.outlier_exact' is true but align.outlier_quantile is null; "
            "set a quantile (the study: 0.95)"
        )
    positive("report.dpi", cfg.report.dpi, 30)
    if not 0.0 < cfg.align.ci_level < 1.0:
        raise ValueError(f"config key 'align.ci_level' must be in (0, 1), got {cfg.align.ci_level}")
    for name in cfg.analyse.comparisons:
        if name not in COMPARISONS:
            raise ValueError(
                f"config key 'analyse.comparisons' has unknown comparison {name!r}; "
                f"expected some of {list(COMPARISONS)}"
            )
    if len(cfg.extract.text_models) != len(set(cfg.extract.text_models)):
        raise ValueError("config key 'extract.text_models' lists a model twice")
    if len(cfg.extract.vision_models) != len(set(cfg.extract.vision_models)):
        raise ValueError("config key 'extract.vision_models' lists a model twice")
    ref = cfg.analyse.reference_model
    if ref is not None and cfg.extract.text_models and ref not in cfg.extract.text_models:
        raise ValueError(
            f"config key 'analyse.reference_model' is {ref!r}, which is not in "
            f"extract.text_models {cfg.extract.text_models}"
        )
    dist = cfg.analyse.distribution_model
    extracted = [*cfg.extract.text_models, cfg.analyse.cluster_model]
    if dist is not None and cfg.extract.text_models and dist not in extracted:
        raise ValueError(
            f"config key 'analyse.distribution_model' is {dist!r}, which is not extracted; "
            f"use one of extract.text_models or analyse.cluster_model {extracted}"
        )
    if cfg.align.layers == "fixed":
        missing = [m for m in cfg.extract.text_models if m not in cfg.align.fixed_layers]
        if missing:
            raise ValueError(
                f"config key 'align.fixed_layers' needs a layer for every text model when "
                f"align.layers is 'fixed'; missing {missing}"
            )


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)  # sections merge key by key
        else:
            merged[key] = value
    return merged


def default_config_text() -> str:
    """The embedded default YAML (package resource ``uaes_hf/experiments/default.yaml``)."""
    return resources.files("uaes_hf.experiments").joinpath("default.yaml").read_text("utf-8")


def expand_model_sets(models: list[str]) -> list[str]:
    """Replace named model sets of the extract registry by their members.

    Example:
        >>> expand_model_sets(["packaged-llms", "all-minilm-l6-v2"])
        ['smollm2-135m', 'gemma3-270m', 'all-minilm-l6-v2']
    """
    from uaes_hf.extract.registry import MODEL_SETS  # plain data, no model is loaded

    out: list[str] = []
    for name in models:
        out.extend(MODEL_SETS.get(name, (name,)))
    return out


def config_from_dict(data: dict[str, Any]) -> ExperimentConfig:
    """Validate a complete nested dict (no defaults merged) into an ``ExperimentConfig``.

    Named model sets (``study-llms``, ``study-vits``, ``packaged-llms`` ...) in
    ``extract.text_models`` / ``extract.vision_models`` are expanded to their members.
    """
    cfg = build_dataclass(ExperimentConfig, data, "")
    extract = dataclasses.replace(
        cfg.extract,
        text_models=expand_model_sets(cfg.extract.text_models),
        vision_models=expand_model_sets(cfg.extract.vision_models),
    )
    cfg = dataclasses.replace(cfg, extract=extract)
    _check_semantics(cfg)
    return cfg


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> ExperimentConfig:
    """Load the embedded default, overlay the YAML at ``path`` and then ``overrides``.

    A file may start from other files: ``base: other.yaml`` (or a list, applied in order;
    paths relative to the file) is loaded first and the file's own keys are laid over it,
    e.g. ``configs/study_reference.yaml`` is ``base: [study.yaml, reference.yaml]``.

    Args:
        path: a YAML file; ``None`` uses the embedded default alone.
        overrides: a nested dict applied last (e.g. from ``--limit``).

    Raises:
        ValueError: a missing or malformed file, an unknown key or a wrong type (the message
            names the key).

    Example:
        >>> load_config(overrides={"align": {"k": 5}}).align.k
        5
    """
    import yaml

    base = yaml.safe_load(default_config_text())
    if path is not None:
        base = _deep_merge(base, _read_file(Path(path), ()))
    if overrides:
        base = _deep_merge(base, overrides)
    return config_from_dict(base)


def _read_file(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """A config file's mapping, with its ``base`` files merged under it."""
    import yaml

    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} does not exist")
    if path.resolve() in seen:
        raise ValueError(f"config file {str(path)!r} is its own base (a cycle of 'base' keys)")
    try:
        user = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"config file {str(path)!r} is not valid YAML: {err}") from err
    if user is None:
        user = {}
    if not isinstance(user, dict):
        raise ValueError(
            f"config file {str(path)!r} must hold a mapping at the top, got {type(user).__name__}"
        )
    bases = user.pop("base", None)
    if bases is None:
        return user
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ValueError(f"config file {str(path)!r}: 'base' must be a file name or a list of them")
    merged: dict[str, Any] = {}
    for name in bases:
        merged = _deep_merge(merged, _read_file(path.parent / name, (*seen, path.resolve())))
    return _deep_merge(merged, user)


def dump_config(cfg: ExperimentConfig) -> str:
    """The config as YAML (what a run used, stored with its results)."""
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
