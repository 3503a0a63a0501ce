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


def plan_lines(cfg: ExperimentConfig, work_dir: Path | None = None) -> list[str]:
    """What a run would do: models, sizes, and each stage with the config keys it hashes."""
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
        f"  mutual kNN k={cfg.align.k}, layers={cfg.align.layers} "
        f"(<= {cfg.align.max_layers_per_model or 'all'} candidates/model), "
        f"{cfg.align.n_permutations} permutations, {cfg.align.n_bootstrap} bootstrap",
        f"  comparisons: {', '.join(cfg.analyse.comparisons)}",
        f"  per-sample layers: {cfg.analyse.per_sample_layers}; reference model: "
        f"{cfg.analyse.reference_model}",
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
