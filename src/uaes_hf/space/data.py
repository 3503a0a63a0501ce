"""Where one Space's data comes from, loaded lazily and kept for the app.

The results are the main job's report: the folder given, else the latest one
(:func:`uaes_hf.experiments.layout.latest_results`: ``./report``, else the newest finished
run under ``$UAES_HOME``), else the Space's own folder (``$UAES_HOME/space/report``, where
the Convergence tab can compute the embedded default run). The poems, images and features
default to those of the run behind the results (:func:`uaes_hf.experiments.layout.
stage_dirs_of` and :class:`~uaes_hf.experiments.layout.RunLayout`); features are read
through the feature format's reader API and joined to poems by id.

Example:
    >>> import tempfile
    >>> from uaes_hf.space.sources import SpaceSources
    >>> empty = tempfile.mkdtemp()
    >>> data = SpaceData(SpaceSources(cwd=empty), home=empty)
    >>> data.has_results(), data.stored_models()
    (False, [])
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.space import loaders
from uaes_hf.space.feature_sets import RunFeatureSet, StoredFeatureSet
from uaes_hf.space.neighbours import NeighbourView, neighbour_view
from uaes_hf.space.poems import id_from_label, poem_label, with_poem_fields
from uaes_hf.space.sources import SpaceSources


def default_results_dir(home: Any = None) -> Path:
    """Where the Space keeps the embedded default run's report: ``$UAES_HOME/space/report``."""
    from uaes_hf.paths import uaes_home

    return Path(home or uaes_home()) / "space" / "report"


class SpaceData:
    """Loads each data source once, on first use, and keeps it for this app.

    A lock makes concurrent first requests load a source once; errors are not cached, so
    fixing the data (or computing the results) and retrying works without a restart.
    """

    def __init__(self, sources: SpaceSources, *, home: Any = None) -> None:
        self.sources = sources
        self.home = home
        self._lock = threading.RLock()
        self._cache: dict[str, Any] = {}

    def _get(self, name: str, load: Any) -> Any:
        with self._lock:
            if name not in self._cache:
                self._cache[name] = load()
            return self._cache[name]

    # -- the main job's run -------------------------------------------------------------------
    def results_dir(self) -> Path:
        """The report folder in use (see the module docstring)."""
        if self.sources.results_dir is not None:
            return Path(self.sources.results_dir)
        if "results_dir" in self._cache:
            return self._cache["results_dir"]
        from uaes_hf.experiments.layout import latest_results

        found = latest_results(self.sources.working_dir(), home=self.home)
        return found if found is not None else default_results_dir(self.home)

    def has_results(self) -> bool:
        """Whether the results folder holds a readable convergence table."""
        if "results" in self._cache:
            return True
        try:
            self.results()
        except (FileNotFoundError, ValueError):
            return False
        return True

    def results(self) -> Any:
        """The tidy convergence table (DataFrame) of the main job."""
        with self._lock:
            if "results" not in self._cache:
                folder = self.results_dir()
                self._cache["results"] = loaders.load_convergence_table(folder)
                self._cache["results_dir"] = folder  # later reads stay on this run
            return self._cache["results"]

    def stage_dirs(self) -> dict[str, Any]:
        """Stage folders (prepare, annotate, extract ...) of the run behind the results."""
        return self._get("stage_dirs", lambda: loaders.run_stage_dirs(self.results_dir()))

    def measured_seconds(self) -> float | None:
        """Compute time of the run behind the results (or of the latest run), if measured."""
        seconds = loaders.measured_seconds(self.results_dir())
        if seconds is None:
            from uaes_hf.experiments.layout import latest_results

            latest = latest_results(self.sources.working_dir(), home=self.home)
            seconds = None if latest is None else loaders.measured_seconds(latest)
        return seconds

    def results_status(self) -> str:
        table = self.results()
        seconds = self.measured_seconds()
        timing = (
            ""
            if seconds is None
            else f" The run behind them took {loaders.duration_text(seconds)} of compute "
            "(measured, from its timings)."
        )
        return (
            f"Results from `{self.results_dir()}`: {len(table)} rows over "
            f"{table['subset'].nunique()} subset(s).{timing} Each cell shows the score and "
            "the calibrated score (0 at the permutation null's 95% quantile, 1 for identical "
            "neighbourhoods); the chance level is in the title and the table."
        )

    def missing_results_message(self) -> str:
        seconds = self.measured_seconds()
        how_long = (
            f"{loaders.duration_text(seconds)} on this machine at the last measured run"
            if seconds is not None
            else "minutes on a CPU; no run has been timed here yet"
        )
        return (
            f"No convergence results yet in `{self.results_dir()}`. Run `uaes run` (or "
            "`make run`) where the Space starts, so that `./report` exists, or press "
            "**Compute the embedded default results now** to run the embedded default "
            f"experiment here (packaged models and data; {how_long}; progress is shown), or "
            "set `UAES_RESULTS_DIR` to a report folder."
        )

    def compute_results(self) -> None:
        """Run the embedded default experiment into the results folder (once; a no-op when
        results exist)."""
        with self._lock:
            if self.has_results():
                return
            loaders.run_default_experiment(self.results_dir())
            self._cache.clear()

    # -- poems and images ---------------------------------------------------------------------
    def poems(self) -> Any:
        """The poems (DataFrame): the given source, else the run's annotated poems."""
        return self._get("poems", lambda: with_poem_fields(self._load_poems()))

    def _load_poems(self) -> Any:
        if self.sources.poems is not None:
            return loaders.load_poem_table(self.sources.poems, self.sources.poems_revision)
        stages = self._stage_dirs_or_none()
        if stages is not None:
            return loaders.read_run_poems(stages)
        return loaders.load_poem_table("embedded", None)  # not annotated: scores are empty

    def _stage_dirs_or_none(self) -> dict[str, Any] | None:
        try:
            return self.stage_dirs()
        except (FileNotFoundError, ValueError):
            return None

    def images(self) -> Any:
        """The image-poem-text records: the given source, else the run's image-text pairs."""
        return self._get("images", self._load_images)

    def _load_images(self) -> Any:
        if self.sources.images is not None:
            return loaders.load_image_records(self.sources.images)
        stages = self._stage_dirs_or_none()
        if stages is None:
            raise FileNotFoundError(
                "no image-poem-text data: compute the default results (Convergence tab) or "
                "start the Space with UAES_IMAGES set to a dataset folder or Hub repo id"
            )
        return loaders.read_run_images(stages)

    # -- features -----------------------------------------------------------------------------
    def feature_set(self) -> StoredFeatureSet:
        """Stored poem features: a feature store if given, else the run's extracted features."""
        return self._get("features", self._open_features)

    def _open_features(self) -> StoredFeatureSet:
        if self.sources.features_root is not None:
            return StoredFeatureSet.open(self.sources.features_root, self.sources.features_dataset)
        stages = self._stage_dirs_or_none()
        if stages is None or "extract" not in stages:
            raise FileNotFoundError(
                "no stored features: compute the default results (Convergence tab) or start "
                "the Space with UAES_FEATURES set to a feature store (`uaes extract` output)"
            )
        from uaes_hf.experiments.layout import POEMS

        return RunFeatureSet(stages["extract"], self.sources.features_dataset or POEMS)

    def stored_models(self) -> list[str]:
        try:
            return self.feature_set().models()
        except FileNotFoundError:
            return []

    # -- neighbours ---------------------------------------------------------------------------
    def neighbour_poems(self) -> Any:
        """The poems with a feature row under every stored model, in the poems' order."""
        return self._get(
            "neighbour_poems", lambda: self.feature_set().poems_with_features(self.poems())
        )

    def neighbour_poem_labels(self) -> list[str]:
        return [poem_label(row) for row in self.neighbour_poems().to_dict("records")]

    def neighbours(self, label: str, model_a: str, model_b: str, k: int) -> NeighbourView:
        """One poem's k nearest poems under two models; rows are numbered in the poems'
        order, and each model's rows are joined to the poems by id."""
        poems = self.neighbour_poems()
        poem_id = id_from_label(label)
        where = np.flatnonzero(poems["id"].astype(str).to_numpy() == poem_id)
        if where.size == 0:
            raise ValueError(f"poem {poem_id!r} has no stored features")
        features = self.feature_set()
        labels = [poem_label(row) for row in poems.to_dict("records")]
        return neighbour_view(
            features.rows_for(poems, model_a),
            features.rows_for(poems, model_b),
            int(where[0]),
            k,
            labels,
            model_a=model_a,
            model_b=model_b,
        )
