"""Adapters from the library's loaders to what the Space shows (one place to change if a
loader moves). Every path of a run comes from :mod:`uaes_hf.experiments.layout`.

Example:
    >>> import tempfile
    >>> load_convergence_table(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: no convergence results: ... is not a uaes report: no results/summary.json ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Columns of the tidy convergence table the Space reads (docs/architecture.md).
RESULT_COLUMNS = ("subset", "model_a", "model_b", "metric", "k", "score", "chance", "calibrated")


def _is_location(value: Any) -> bool:
    return isinstance(value, str) or hasattr(value, "__fspath__")


def load_poem_table(source: Any, revision: str | None = None) -> Any:
    """Poems from data passed in, ``"embedded"``, a dataset folder or a Hub repo id."""
    if not _is_location(source):
        return source  # already data (Dataset / DataFrame / records)
    from uaes_hf.data.repo import load_poems

    if str(source) == "embedded":
        source = embedded_poems_repo()
    return load_poems(str(source), revision=revision, split="train")


def embedded_poems_repo() -> Any:
    """The embedded poems repo folder, built once under the cache (offline, public domain)."""
    from uaes_hf.paths import cache_dir

    repo = cache_dir("data", "embedded") / "poems"
    if not (repo / "README.md").is_file():
        from uaes_hf.data.pipeline import prepare_embedded_data

        repo = prepare_embedded_data(progress=False).poems_repo
    return repo


def load_image_records(source: Any) -> Any:
    """Image-poem-text records from data passed in, a dataset folder or a Hub repo id."""
    if not _is_location(source):
        return source
    from uaes_hf.data.repo import load_dataset_repo

    return load_dataset_repo(str(source), split="train")


def run_stage_dirs(results_dir: Any) -> dict[str, Any]:
    """Stage folders of the run that wrote a report (its summary, or the Space's sidecar)."""
    from uaes_hf.experiments.layout import stage_dirs_of

    return stage_dirs_of(results_dir)


def read_run_poems(stages: dict[str, Any]) -> Any:
    """The run's poems, annotated when the annotate stage ran (rows match features by id)."""
    import pandas as pd

    from uaes_hf.experiments.layout import RunLayout

    try:
        path = RunLayout(stages).poems
    except ValueError:
        raise FileNotFoundError("the run has no poems") from None
    if not path.is_file():
        raise FileNotFoundError(f"the run has no poems ({path})")
    return pd.read_parquet(path)


def read_run_images(stages: dict[str, Any]) -> Any:
    """The run's image-text pairs (image bytes, caption, poem, aesthetic score and level)."""
    import pandas as pd

    from uaes_hf.experiments.layout import RunLayout

    path = RunLayout(stages).image_text if "prepare" in stages else None
    if path is None or not path.is_file():
        raise FileNotFoundError("the run has no image-text pairs")
    frame = pd.read_parquet(path)
    if frame.empty:
        raise FileNotFoundError("the run used no images (data.n_images = 0)")
    frame["image"] = [
        cell if isinstance(cell, dict) else {"bytes": cell} for cell in frame["image"]
    ]
    return frame


def load_report(results_dir: Any) -> Any:
    """The report's results (:class:`uaes_hf.experiments.report.results.Results`)."""
    from uaes_hf.experiments.report.results import load_results

    if not Path(results_dir).is_dir():
        raise FileNotFoundError(f"results folder {results_dir} does not exist")
    try:
        return load_results(results_dir)
    except ValueError as err:
        raise FileNotFoundError(str(err)) from None


def load_convergence_table(results_dir: Any) -> Any:
    """The main job's tidy convergence table from a report folder (``uaes run``'s output)."""
    try:
        results = load_report(results_dir)
        table = results["convergence"]
    except (FileNotFoundError, KeyError) as err:
        text = str(err.args[0]) if err.args else str(err)
        raise ValueError(f"no convergence results: {text}") from None
    missing = [c for c in RESULT_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"the convergence table in {results_dir} lacks columns {missing}")
    if table.empty:
        raise ValueError(f"the convergence table in {results_dir} is empty")
    return table


def measured_seconds(results_dir: Any) -> float | None:
    """Compute time of the run behind a report, from its timings table (the ``total`` row's
    ``compute_seconds``: what a cold run of the same configuration takes); None if unknown.

    Example:
        >>> measured_seconds("nowhere") is None
        True
    """
    import pandas as pd

    from uaes_hf.experiments.layout import ResultsLayout

    path = ResultsLayout.of(results_dir).timings
    try:
        timings = pd.read_csv(path)
    except (OSError, ValueError):
        return None
    if "stage" not in timings or "compute_seconds" not in timings:
        return None
    total = timings[timings["stage"].astype(str) == "total"]
    if total.empty:
        return None
    seconds = float(total["compute_seconds"].iloc[0])
    return seconds if seconds > 0 else None


def duration_text(seconds: float) -> str:
    """Seconds for people: ``about 6 minutes``, ``about 40 seconds``, ``about 1.5 hours``.

    Example:
        >>> duration_text(350.5), duration_text(42), duration_text(5400)
        ('about 6 minutes', 'about 40 seconds', 'about 1.5 hours')
    """
    if seconds < 90:
        return f"about {max(10, round(seconds, -1)):.0f} seconds"
    if seconds < 5400:
        return f"about {round(seconds / 60):.0f} minutes"
    return f"about {seconds / 3600:.1f} hours"


def run_default_experiment(report_dir: Any) -> None:
    """Run the embedded default experiment (``uaes run``) and write its report to
    ``report_dir`` (the run records its stage folders in the report's summary). The
    pipeline's tqdm bars are what the Space shows as progress."""
    from uaes_hf.experiments import load_config, run_experiment

    run_experiment(load_config(), Path(report_dir), show_progress=True)
