"""Every file name of a run, in one place: stage folders, stage outputs, the report folder.

A run is a set of stage folders under the work dir (``$UAES_HOME/runs`` by default)::

    <work>/<stage>/<key[:16]>/          one finished stage (``_manifest.json`` written last)
        prepare/   poems.parquet, plain_texts.parquet, image_text.parquet,
                   poems_aligned.parquet (when the config names a length-aligned set)
        annotate/  poems.parquet (with aesthetic_score)
        extract/   features/ (a feature store: one entry per dataset x model),
                   perplexity.parquet
        align/     convergence.csv, subsets.json, cluster_labels.npy
        analyse/   results/*.csv, results/summary.json
        report/    a report folder (below)
    <work>/model_features/               per-model checkpoints: a feature store

and a report folder (``uaes run --out``, default ``./report``)::

    index.html, figures/*.png, results/*.csv, results/summary.json (with stage_dirs),
    results/figures.json, results/timings.csv

Stages, analysis, report and the Space ask :class:`RunLayout` and :class:`ReportLayout`
for paths; no other module spells these names.

Example:
    >>> from pathlib import Path
    >>> run = RunLayout({"prepare": Path("p"), "annotate": Path("a")})
    >>> run.prepared_poems.as_posix(), run.annotated_poems.as_posix()
    ('p/poems.parquet', 'a/poems.parquet')
    >>> ReportLayout(Path("report")).summary.as_posix()
    'report/results/summary.json'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "_manifest.json"
CHECKPOINTS = "model_features"

# The datasets of a run's feature store (entries of the extract stage's ``features/``).
POEMS = "poems"
PLAIN_TEXTS = "plain_texts"
ALIGNED_POEMS = "poems_aligned"  # the length-aligned poems, when the config names a set
IMAGE_TEXT = "image_text"  # columns: caption and poem (text models), image (vision models)
TEXT_DATASETS = (POEMS, PLAIN_TEXTS)

_PARQUET = ".parquet"
_POEMS_FILE = f"{POEMS}{_PARQUET}"


@dataclass(frozen=True)
class ResultsLayout:
    """The files of a results folder (a report's ``results/``, or the analyse stage's)."""

    folder: Path

    TIMINGS = "timings"

    @property
    def summary(self) -> Path:
        return self.folder / "summary.json"

    @property
    def figures_list(self) -> Path:
        return self.folder / "figures.json"

    @property
    def timings(self) -> Path:
        return self.folder / f"{self.TIMINGS}.csv"

    def table(self, name: str) -> Path:
        """``<name>.csv``."""
        return self.folder / f"{name}.csv"

    def tables(self) -> dict[str, Path]:
        """Every results table on disk (``name -> path``), the timings left out."""
        found = sorted(self.folder.glob("*.csv"))
        return {path.stem: path for path in found if path.stem != self.TIMINGS}

    @classmethod
    def of(cls, path: str | Path) -> ResultsLayout:
        """The results of ``path``: its ``results/`` when it is a report folder, else itself.

        Example:
            >>> ResultsLayout.of("nowhere").folder.as_posix()
            'nowhere'
        """
        report = ReportLayout(Path(path))
        return report.results if report.is_report() else cls(Path(path))


@dataclass(frozen=True)
class ReportLayout:
    """The files of one report folder (``uaes run --out``, or the report stage's folder)."""

    root: Path

    FIGURES = "figures"

    @property
    def index(self) -> Path:
        return self.root / "index.html"

    @property
    def figures_dir(self) -> Path:
        return self.root / self.FIGURES

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def results(self) -> ResultsLayout:
        return ResultsLayout(self.results_dir)

    @property
    def summary(self) -> Path:
        return self.results.summary

    @property
    def space_run(self) -> Path:
        """Where the Space records the stage folders of a run it computed itself."""
        return self.root / "space_run.json"

    @classmethod
    def figure_file(cls, name: str) -> str:
        """The path of a figure relative to the report folder (``figures/<name>.png``)."""
        return f"{cls.FIGURES}/{name}.png"

    def is_report(self) -> bool:
        """Whether ``results/summary.json`` is there."""
        return self.summary.is_file()


@dataclass(frozen=True)
class RunLayout:
    """The output files of one run's stages, given the stage folders known so far.

    ``stage_dirs`` maps stage names to folders (a stage function's inputs plus its own
    output folder, or the ``stage_dirs`` a published report records). Asking for a file of
    a stage that is not known raises a ValueError that names it.
    """

    stage_dirs: Mapping[str, Path] = field(default_factory=dict)

    @classmethod
    def for_stage(cls, ctx: Any) -> RunLayout:
        """The layout seen by a running stage: its inputs and its own output folder."""
        return cls({**dict(ctx.inputs), ctx.name: Path(ctx.out_dir)})

    @staticmethod
    def stage_dir(work_dir: str | Path, stage: str, key: str) -> Path:
        """``<work>/<stage>/<key[:16]>``: where a stage with this cache key is kept."""
        return Path(work_dir) / stage / key[:16]

    @staticmethod
    def manifest(stage_dir: str | Path) -> Path:
        """The file whose presence marks a finished stage folder."""
        return Path(stage_dir) / MANIFEST

    @staticmethod
    def checkpoint_dir(work_dir: str | Path) -> Path:
        """The feature store of per-model checkpoints under the work dir."""
        return Path(work_dir) / CHECKPOINTS

    def folder(self, stage: str) -> Path:
        """The folder of ``stage`` in this run."""
        if stage not in self.stage_dirs:
            known = ", ".join(sorted(self.stage_dirs)) or "none"
            raise ValueError(f"the run's {stage} stage folder is unknown (known: {known})")
        return Path(self.stage_dirs[stage])

    # -- prepare ------------------------------------------------------------------------------
    @property
    def prepared_poems(self) -> Path:
        return self.folder("prepare") / _POEMS_FILE

    @property
    def plain_texts(self) -> Path:
        return self.folder("prepare") / f"{PLAIN_TEXTS}{_PARQUET}"

    @property
    def image_text(self) -> Path:
        return self.folder("prepare") / f"{IMAGE_TEXT}{_PARQUET}"

    @property
    def aligned_poems(self) -> Path:
        return self.folder("prepare") / f"{ALIGNED_POEMS}{_PARQUET}"

    def prepared_table(self, dataset: str) -> Path:
        """The prepared table of a feature dataset (``poems``, ``poems_aligned`` ...)."""
        return self.folder("prepare") / f"{dataset}{_PARQUET}"

    # -- annotate -----------------------------------------------------------------------------
    @property
    def annotated_poems(self) -> Path:
        return self.folder("annotate") / _POEMS_FILE

    @property
    def poems(self) -> Path:
        """The annotated poems when the annotate stage is known, else the prepared ones."""
        if "annotate" in self.stage_dirs and self.annotated_poems.is_file():
            return self.annotated_poems
        return self.prepared_poems

    # -- extract ------------------------------------------------------------------------------
    @property
    def feature_store(self) -> Path:
        """The extract stage's feature store (one entry per dataset x model)."""
        return self.folder("extract") / "features"

    @property
    def perplexity(self) -> Path:
        return self.folder("extract") / f"perplexity{_PARQUET}"

    # -- align --------------------------------------------------------------------------------
    @property
    def convergence(self) -> Path:
        return self.folder("align") / "convergence.csv"

    @property
    def subsets(self) -> Path:
        return self.folder("align") / "subsets.json"

    @property
    def cluster_labels(self) -> Path:
        return self.folder("align") / "cluster_labels.npy"

    # -- analyse and report -------------------------------------------------------------------
    @property
    def results(self) -> ResultsLayout:
        """The analyse stage's ``results/`` folder (tables and summary)."""
        return ReportLayout(self.folder("analyse")).results

    @property
    def report(self) -> ReportLayout:
        return ReportLayout(self.folder("report"))


def default_work_dir() -> Path:
    """Where stage folders live: ``$UAES_HOME/runs`` (created)."""
    from uaes_hf.paths import cache_dir

    return cache_dir("runs")


def checkpoint_store_dir() -> Path:
    """The per-model checkpoints: ``$UAES_HOME/runs/model_features`` (a feature store)."""
    from uaes_hf.paths import cache_dir

    return cache_dir("runs", CHECKPOINTS)


def record_stage_dirs(report_dir: str | Path, stage_dirs: Mapping[str, Path]) -> None:
    """Add ``"stage_dirs"`` (stage -> output folder) to a published report's summary.json.

    Only the published copy gets them: they are paths on this machine, so they stay out of
    the analyse stage's content (and its cache key). The Space reads them to find the run's
    poems, images and features.

    Example:
        >>> import tempfile
        >>> report = ReportLayout(Path(tempfile.mkdtemp()))
        >>> report.results_dir.mkdir(); _ = report.summary.write_text("{}")
        >>> record_stage_dirs(report.root, {"extract": Path("/x")})
        >>> json.loads(report.summary.read_text())["stage_dirs"]
        {'extract': '/x'}
    """
    path = ReportLayout(Path(report_dir)).summary
    summary = json.loads(path.read_text("utf-8"))
    summary["stage_dirs"] = {name: str(Path(d).resolve()) for name, d in stage_dirs.items()}
    path.write_text(json.dumps(summary, indent=2, sort_keys=True), "utf-8")


def stage_dirs_of(report_dir: str | Path) -> dict[str, Path]:
    """The stage folders a report records (the Space's sidecar first, then summary.json).

    Only folders that still exist are returned.

    Raises:
        FileNotFoundError: none is recorded, or none exists any more.
    """
    report = ReportLayout(Path(report_dir))
    if report.space_run.is_file():
        dirs = json.loads(report.space_run.read_text("utf-8"))
    else:
        summary = ResultsLayout.of(report.root).summary
        if not summary.is_file():
            raise FileNotFoundError(f"{report.root} is not a uaes report (no results/summary.json)")
        dirs = json.loads(summary.read_text("utf-8")).get("stage_dirs") or {}
    found = {name: Path(path) for name, path in dirs.items() if Path(path).is_dir()}
    if not found:
        raise FileNotFoundError(f"the stage folders of the run behind {report.root} are unknown")
    return found


def latest_results(cwd: str | Path = ".", home: str | Path | None = None) -> Path | None:
    """Where the latest results are: ``./report`` if it is a report, else the newest
    finished report stage under ``$UAES_HOME/runs`` (None when there is none).

    Example:
        >>> import tempfile
        >>> latest_results(tempfile.mkdtemp(), home=tempfile.mkdtemp()) is None
        True
    """
    local = ReportLayout(Path(cwd) / "report")
    if local.is_report():
        return local.root
    if home is None:
        from uaes_hf.paths import uaes_home

        home = uaes_home()
    finished = [
        folder
        for folder in (Path(home) / "runs" / "report").glob("*")
        if RunLayout.manifest(folder).is_file() and ReportLayout(folder).is_report()
    ]
    if not finished:
        return None
    return max(finished, key=lambda folder: RunLayout.manifest(folder).stat().st_mtime)
