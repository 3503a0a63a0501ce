"""A whole experiment run: every stage (cached), then the published report folder.

``uaes run`` calls :func:`run_experiment`; ``uaes run --dry-run`` prints :func:`plan_lines`.

Example:
    >>> from uaes_hf.experiments.config import load_config
    >>> plan_lines(load_config())[0]
    "experiment 'embedded-default' (seed 0)"
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from uaes_hf.experiments.config import ExperimentConfig
from uaes_hf.experiments.layout import default_work_dir, record_stage_dirs
from uaes_hf.experiments.pipeline import Stage
from uaes_hf.experiments.stages import default_stages


def token_cap_lines(cfg: ExperimentConfig, from_hub: bool | None = None) -> list[str]:
    """Every model's token cap for ``extract.max_tokens`` (no weights loaded).

    ``from_hub`` defaults to reading Hub configs unless ``HF_HUB_OFFLINE`` is set; offline,
    the registry's recorded limits stand in.

    Example:
        >>> from uaes_hf.experiments.config import load_config
        >>> token_cap_lines(load_config(), from_hub=False)[1].strip().split(":")[0]
        'smollm2-135m'
    """
    import os

    from uaes_hf.extract.token_limits import effective_token_caps, format_token_caps

    if from_hub is None:
        from_hub = os.environ.get("HF_HUB_OFFLINE", "0").strip().lower() in ("", "0", "false")
    ex = cfg.extract
    models = [*ex.text_models, cfg.analyse.cluster_model]
    if ex.perplexity_model:
        models.append(ex.perplexity_model)
    models += ex.vision_models
    lines = [
        f"  token caps (extract.max_tokens={ex.max_tokens}; "
        f"{'Hub configs read' if from_hub else 'offline: local configs, else the registry'}):"
    ]
    for model in dict.fromkeys(models):
        try:
            lines += format_token_caps(
                effective_token_caps([model], ex.max_tokens, from_hub=from_hub)
            )
        except ValueError as err:
            lines.append(f"  {model}: cap unknown ({err})")
    return ["  " + line if i else line for i, line in enumerate(lines)]


def plan_lines(cfg: ExperimentConfig, work_dir: Path | None = None) -> list[str]:
    """What a run would do: models and their token caps, sizes, the statistics, and each
    stage with the config keys it hashes."""
    al, an = cfg.align, cfg.analyse
    clamp = (
        "none"
        if al.outlier_quantile is None
        else f"q={al.outlier_quantile}" + (" exact" if al.outlier_exact else "")
    )
    lines = [
        f"experiment {cfg.name!r} (seed {cfg.seed})",
        f"  data: poems={cfg.data.poems} (config {cfg.data.poems_config}, revision "
        f"{cfg.data.poems_revision}), plain texts={cfg.data.plain_texts} "
        f"(revision {cfg.data.plain_texts_revision}), image-text={cfg.data.image_text}",
        f"  sizes: {cfg.data.n_poems or 'all'} poems, {cfg.data.n_plain_texts or 'all'} plain "
        f"texts, {cfg.data.n_images or 'no'} images",
        f"  judge: {cfg.annotate.backend} ({cfg.annotate.model})",
        f"  text models ({len(cfg.extract.text_models)}): {', '.join(cfg.extract.text_models)}",
        f"  vision models ({len(cfg.extract.vision_models)}): "
        f"{', '.join(cfg.extract.vision_models) or 'none'}",
        f"  perplexity: {cfg.extract.perplexity_model}; device {cfg.extract.device}; "
        f"{cfg.extract.num_processes} extraction process(es)",
        *token_cap_lines(cfg),
        f"  mutual kNN k={al.k}, layers={al.layers} (rule {al.layer_selection}; "
        f"<= {al.max_layers_per_model or 'all'} candidates/model; embedding layer "
        f"{'excluded' if al.exclude_embedding_layer else 'searched'}), outlier clamp {clamp}, "
        f"{al.n_permutations} permutations ({al.calibration}), {al.n_bootstrap} bootstrap, "
        f"sides {'matched in N' if al.match_sizes else 'at the study sizes'}",
        f"  comparisons: {', '.join(an.comparisons)}",
        f"  headline test over texts: {an.text_permutations} random splits, "
        f"{an.text_subsamples} half-samples; lexical baseline "
        f"{'on' if an.lexical_baseline else 'off'}",
        f"  per-sample layers: {an.per_sample_layers}"
        + (" (INFLATED: chance under the same max shown)" if an.per_sample_layers == "max" else "")
        + f"; reference model: {an.reference_model}; distribution alignment in "
        f"{an.distribution_model or an.reference_model or 'the reference model'}",
        "  stages:",
    ]
    for stage in default_stages():
        lines.append(
            f"    {stage.name:<9} keys: {', '.join(stage.sections)}; after: "
            f"{', '.join(stage.depends_on) or '-'}"
            + (f"; output format {stage.revision}" if stage.revision else "")
        )
    if work_dir is not None:
        lines.append(f"  stage cache: {work_dir}")
    return lines


def run_experiment(
    cfg: ExperimentConfig,
    out_dir: str | Path = "report",
    *,
    force: tuple[str, ...] | list[str] = (),
    work_dir: str | Path | None = None,
    show_progress: bool = True,
    stages: list[Stage] | None = None,
) -> tuple[Path, list[Any]]:
    """Run (or reuse) every stage and write the report folder ``out_dir``.

    Returns:
        ``(index.html path, stage results)``. The report's timings table is this run's.

    The stage folders are recorded in the report's ``results/summary.json``
    (``stage_dirs``), where the Space finds the run's poems, images and features.
    """
    from uaes_hf.experiments.pipeline import run_stages
    from uaes_hf.experiments.report import publish_report, stored_figures

    started = time.perf_counter()
    work = Path(work_dir) if work_dir is not None else default_work_dir()
    results = run_stages(
        stages or default_stages(), cfg, work, force=force, show_progress=show_progress
    )
    report_dir = results[-1].directory
    publish_started = time.perf_counter()
    timings = [r.as_row() for r in results]
    timings.append(
        {"stage": "publish", "cached": False, "seconds": 0.0, "compute_seconds": 0.0, "key": ""}
    )
    index = publish_report(
        report_dir,
        out_dir,
        timings=timings,
        figures=stored_figures(report_dir),
        figures_from=report_dir,
    )
    record_stage_dirs(Path(out_dir), {r.name: r.directory for r in results})
    timings[-1]["seconds"] = round(time.perf_counter() - publish_started, 3)
    timings.append(
        {
            "stage": "total",
            "cached": all(r.cached for r in results),
            "seconds": round(time.perf_counter() - started, 3),
            "compute_seconds": round(sum(r.compute_seconds for r in results), 3),
            "key": "",
        }
    )
    index = publish_report(
        Path(out_dir),
        out_dir,
        timings=timings,
        figures=stored_figures(Path(out_dir)),
        figures_from=Path(out_dir),
    )
    return index, results
