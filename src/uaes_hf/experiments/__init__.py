"""Experiments: configs, convergence matrices, comparisons, analyses, plots and the report.

``uaes run`` drives :func:`uaes_hf.experiments.run.run_experiment` over the stages of
:mod:`uaes_hf.experiments.stages` (one module each); every file name of a run is in
:mod:`uaes_hf.experiments.layout`; the Gradio Space reads a finished report with
:func:`uaes_hf.experiments.report.load_results`. Nothing heavy is imported here. Stages,
run layout, cache keys and concurrency: ``docs/architecture.md`` ("A run").

Example:
    >>> from uaes_hf.experiments import load_config
    >>> load_config().align.k
    10
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "load_config": "uaes_hf.experiments.config",
    "ExperimentConfig": "uaes_hf.experiments.config",
    "run_experiment": "uaes_hf.experiments.run",
    "RunLayout": "uaes_hf.experiments.layout",
    "ReportLayout": "uaes_hf.experiments.layout",
    "latest_results": "uaes_hf.experiments.layout",
    "diff_results": "uaes_hf.experiments.report",
    "load_results": "uaes_hf.experiments.report",
    "publish_report": "uaes_hf.experiments.report",
    "convergence_rows": "uaes_hf.experiments.convergence",
    "sign_flip_test": "uaes_hf.experiments.comparisons",
    "per_sample_alignment": "uaes_hf.experiments.per_sample",
}


__getattr__ = lazy_exports("uaes_hf.experiments", _LAZY)


__all__ = sorted(_LAZY)
