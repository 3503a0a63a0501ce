"""Every file name of a retrieval run folder (``uaes retrieval run --out DIR``), in one place.

The report writer, the searcher behind the results tab, the vote tab and the Space ask this
module for paths, as the main job's stages ask :mod:`uaes_hf.experiments.layout`.

Example:
    >>> layout = RetrievalLayout("retrieval_report")
    >>> layout.summary.as_posix(), layout.heads("finetuned").name
    ('retrieval_report/summary.json', 'heads_finetuned.npz')
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

FIGURES = ("tradeoff", "win_rates", "training", "examples")


@dataclass(frozen=True)
class RetrievalLayout:
    """The files of one retrieval run folder ``root``."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def index(self) -> Path:
        """The report page."""
        return self.root / "index.html"

    @property
    def summary(self) -> Path:
        """``summary.json``: n_queries, systems, the win rates of each compared pair."""
        return self.root / "summary.json"

    @property
    def figures_dir(self) -> Path:
        return self.root / "figures"

    def figure(self, name: str) -> Path:
        """One of :data:`FIGURES` as a PNG."""
        if name not in FIGURES:
            raise ValueError(f"unknown retrieval figure {name!r}; figures are {FIGURES}")
        return self.figures_dir / f"{name}.png"

    @property
    def per_query(self) -> Path:
        return self.root / "per_query.csv"

    @property
    def judgements(self) -> Path:
        return self.root / "judgements.jsonl"

    @property
    def vote_tasks(self) -> Path:
        """Original vs fine-tuned rows per held-out query, for the vote tab."""
        return self.root / "vote_tasks.jsonl"

    @property
    def votes(self) -> Path:
        """Where the Space's vote tab appends votes (``metrics/hpir`` scores them)."""
        return self.root / "votes.jsonl"

    @property
    def model_dir(self) -> Path:
        """What the results tab needs to search: heads, image features, the corpus."""
        return self.root / "model"

    @property
    def model_meta(self) -> Path:
        return self.model_dir / "meta.json"

    @property
    def corpus(self) -> Path:
        return self.model_dir / "corpus.csv"

    @property
    def image_features(self) -> Path:
        return self.model_dir / "image_features.npy"

    def heads(self, system: str) -> Path:
        """The trained projection heads of ``system`` (``original``, ``finetuned``)."""
        return self.model_dir / f"heads_{system}.npz"

    def is_finished(self) -> bool:
        """A run wrote its summary last: a folder without one is not a finished run."""
        return self.summary.is_file()
