"""What the analyses read: the run's tables, the align stage's outputs and its features.

Feature rows are joined to the tables by id (:func:`uaes_hf.experiments.run_features.run_layers`);
so are the perplexity rows (:meth:`AnalysisInputs.poem_perplexity`).

Example:
    >>> from uaes_hf.experiments.config import load_config
    >>> reference_model(load_config())
    'gemma3-270m'
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from uaes_hf.experiments.config import ExperimentConfig
from uaes_hf.experiments.layout import ALIGNED_POEMS, IMAGE_TEXT, PLAIN_TEXTS, POEMS, RunLayout
from uaes_hf.experiments.run_features import run_layers
from uaes_hf.features.rows import match_rows


def reference_model(cfg: ExperimentConfig) -> str | None:
    """The configured reference model, else the last text model."""
    text_models = list(cfg.extract.text_models)
    return cfg.analyse.reference_model or (text_models[-1] if text_models else None)


@dataclass
class AnalysisInputs:
    """The analyse stage's inputs, loaded once."""

    cfg: ExperimentConfig
    layout: RunLayout
    poems: Any
    plain: Any
    images: Any
    convergence: Any
    plan: dict[str, Any]
    labels: np.ndarray
    perplexity: Any  # the extract stage's perplexity table, or None
    aligned: Any = None  # the length-aligned poems, when the run has them
    stage_summaries: dict[str, Any] | None = None  # each input stage's manifest summary

    @classmethod
    def load(cls, ctx: Any) -> AnalysisInputs:
        import pandas as pd

        layout = RunLayout.for_stage(ctx)
        perplexity = None
        if layout.perplexity.is_file():
            perplexity = pd.read_parquet(layout.perplexity)
        aligned = None
        if layout.aligned_poems.is_file():
            aligned = pd.read_parquet(layout.aligned_poems)
        summaries = {}
        for stage, folder in ctx.inputs.items():
            manifest = RunLayout.manifest(folder)
            if manifest.is_file():
                summaries[stage] = json.loads(manifest.read_text("utf-8")).get("summary", {})
        return cls(
            cfg=ctx.config,
            layout=layout,
            poems=pd.read_parquet(layout.annotated_poems),
            plain=pd.read_parquet(layout.plain_texts),
            images=pd.read_parquet(layout.image_text),
            convergence=pd.read_csv(layout.convergence),
            plan=json.loads(layout.subsets.read_text()),
            labels=np.load(layout.cluster_labels),
            perplexity=perplexity,
            aligned=aligned,
            stage_summaries=summaries,
        )

    @property
    def text_models(self) -> list[str]:
        return list(self.cfg.extract.text_models)

    @property
    def vision_models(self) -> list[str]:
        """The vision models, when there are enough images for k neighbours."""
        enough = len(self.images) > self.cfg.align.k + 1
        return list(self.cfg.extract.vision_models) if enough else []

    @property
    def reference(self) -> str | None:
        return reference_model(self.cfg)

    def table(self, dataset: str) -> Any:
        """The table of a feature dataset (``poems``, ``plain_texts``, ``poems_aligned``,
        ``image_text``)."""
        tables = {
            POEMS: self.poems,
            PLAIN_TEXTS: self.plain,
            IMAGE_TEXT: self.images,
            ALIGNED_POEMS: self.aligned,
        }
        if tables.get(dataset) is None:
            raise ValueError(f"the run has no table for dataset {dataset!r}")
        return tables[dataset]

    def layers(self, dataset: str, model: str, column: str | None = None) -> list[np.ndarray]:
        """``model``'s layers on ``dataset``, one row per record of its table (by id)."""
        return run_layers(self.layout, dataset, model, self.table(dataset), column)

    def texts(self, side: dict[str, Any]) -> list[str]:
        """The texts of one compared side (``{"dataset", "rows"}`` of the align stage)."""
        column = self.table(side["dataset"])["text"].astype(str).to_numpy()
        return list(column[np.asarray(side["rows"], dtype=int)])

    def scores(self) -> np.ndarray:
        """The poems' aesthetic scores as floats (NaN where missing)."""
        import pandas as pd

        return pd.to_numeric(self.poems["aesthetic_score"], errors="coerce").to_numpy(float)

    def perplexity_rows(self, dataset: str, table: Any) -> tuple[Any, np.ndarray]:
        """The perplexity rows of ``dataset`` and, for each, its row in ``table`` (by id)."""
        part = self.perplexity[self.perplexity["dataset"] == dataset]
        return part, match_rows(part, table).right

    def poem_perplexity(self) -> np.ndarray:
        """Each poem's perplexity, in the poems' order (joined by id)."""
        part = self.perplexity[self.perplexity["dataset"] == "poems"]
        return part["perplexity"].to_numpy(float)[match_rows(self.poems, part).right]
