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
from uaes_hf.experiments.layout import RunLayout
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

    @classmethod
    def load(cls, ctx: Any) -> AnalysisInputs:
        import pandas as pd

        layout = RunLayout.for_stage(ctx)
        perplexity = None
        if layout.perplexity.is_file():
            perplexity = pd.read_parquet(layout.perplexity)
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

    def layers(self, dataset: str, model: str, column: str | None = None) -> list[np.ndarray]:
        """``model``'s layers on ``dataset``, one row per record of its table (by id)."""
        tables = {"poems": self.poems, "plain_texts": self.plain, "image_text": self.images}
        return run_layers(self.layout, dataset, model, tables[dataset], column)

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
