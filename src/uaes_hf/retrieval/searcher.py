"""Search a finished run (``uaes retrieval run --out DIR``) from its ``DIR/model`` files.

The run stores the image base features, the original and fine-tuned heads and the corpus
table; a :class:`RunSearcher` encodes a typed query with the run's text tower and searches
with either system's heads. It backs the results tab; :func:`load_vote_tasks` reads the
run's vote tasks for the vote tab.

Example:
    >>> searcher = RunSearcher("retrieval_report")  # doctest: +SKIP
    >>> [r["caption"] for r in searcher.search("a sailing boat", "finetuned", 3)]  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.retrieval.layout import RetrievalLayout
from uaes_hf.retrieval.votes import VoteTask


class RunSearcher:
    """Systems ``original`` and ``finetuned`` of a run, searchable by typed queries."""

    systems = ("original", "finetuned")

    def __init__(self, run_dir: str | Path, towers: Any = None) -> None:
        layout = RetrievalLayout(run_dir)
        needed = [layout.model_meta, layout.corpus, layout.image_features]
        needed += [layout.heads(s) for s in self.systems]
        missing = [path.name for path in needed if not path.is_file()]
        if missing:
            raise ValueError(
                f"{layout.model_dir} lacks {missing}; run `uaes retrieval run --out {run_dir}`"
            )
        self.meta = json.loads(layout.model_meta.read_text())
        with layout.corpus.open(encoding="utf-8", newline="") as handle:
            self.items = list(csv.DictReader(handle))
        image = np.load(layout.image_features)
        self.towers = towers if towers is not None else self._towers()
        self._embeddings: dict[str, Any] = {}
        self._heads: dict[str, Any] = {}
        for system in self.systems:
            with np.load(layout.heads(system)) as stored:
                arrays = {name: stored[name] for name in stored.files}
            self._heads[system] = self._make_heads(arrays)
            from uaes_hf.retrieval.index import ImageIndex
            from uaes_hf.retrieval.pipeline import _embed

            self._embeddings[system] = ImageIndex(_embed(self._heads[system], image, "image"))

    def _towers(self) -> Any:
        from uaes_hf.retrieval.config import EncoderSection
        from uaes_hf.retrieval.factories import make_towers

        return make_towers(EncoderSection(**self.meta["encoder"]))

    def _make_heads(self, arrays: dict[str, np.ndarray]) -> Any:
        from uaes_hf.retrieval.heads import LinearProjections, load_heads_arrays

        if self.meta["encoder"]["kind"] == "hf":
            heads = self.towers.initial_heads()
        else:
            image_dim = arrays["image_head.1.weight"].shape[1]
            text_dim = arrays["text_head.weight"].shape[1]
            dim = arrays["text_head.weight"].shape[0]
            heads = LinearProjections(image_dim, text_dim, dim)
        return load_heads_arrays(heads, arrays).eval()

    def image_roots(self) -> set[str]:
        """Folders holding the corpus images (for Gradio's ``allowed_paths``)."""
        return {str(Path(item["path"]).parent) for item in self.items}

    def search(self, query: str, system: str, k: int) -> list[dict[str, Any]]:
        """Top-``k`` images of ``system`` for ``query`` with similarity and aesthetic score."""
        from uaes_hf.retrieval.pipeline import _embed

        if system not in self.systems:
            raise ValueError(f"unknown system {system!r}; choose one of {list(self.systems)}")
        if not query or not query.strip():
            raise ValueError("the query is empty")
        text = _embed(self._heads[system], self.towers.text_features([query.strip()]), "text")
        found = self._embeddings[system].search(text, int(k))
        return [
            {
                "path": self.items[i]["path"],
                "caption": self.items[i]["caption"],
                "similarity": float(s),
                "aesthetic": float(self.items[i]["aesthetic"]),
            }
            for i, s in zip(found.indices[0], found.similarities[0], strict=True)
        ]


def load_vote_tasks(run_dir: str | Path) -> list[VoteTask]:
    """The vote tasks a run wrote (``vote_tasks.jsonl``: original vs fine-tuned rows)."""
    path = RetrievalLayout(run_dir).vote_tasks
    if not path.is_file():
        raise ValueError(f"{path} not found; run `uaes retrieval run --out {run_dir}` first")
    tasks = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            tasks.append(
                VoteTask(
                    row["query"],
                    tuple(row["group_a"]),
                    tuple(row["group_b"]),
                    row.get("system_a", ""),
                    row.get("system_b", ""),
                )
            )
    if not tasks:
        raise ValueError(f"{path} holds no vote tasks")
    return tasks
