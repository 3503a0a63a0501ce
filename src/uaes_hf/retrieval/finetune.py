"""Preference fine-tuning of a retriever's projection heads, under Accelerate, resumable.

Each step samples preference pairs (``query``, ``better``, ``worse`` as base features) and
image-caption pairs, and minimises ranked DPO against a frozen copy of the starting heads
plus a weighted contrastive term (:func:`uaes_hf.retrieval.dpo.finetune_objective`). The
loop runs under :class:`accelerate.Accelerator` (CPU or GPU; several processes shard the
pairs and average gradients).

Durability: every ``checkpoint_every`` steps the heads, the optimizer and the loss history
are written to ``<dir>/checkpoint.pt`` through a fsynced temporary file and an atomic
rename. Batches depend only on ``(seed, step, process)``, so a run killed at any line and
started again resumes at the last checkpoint and ends with the same weights as a run that
was never interrupted.

Run as a program (linear heads of the offline encoder)::

    python -m uaes_hf.retrieval.finetune --data prefs.npz --out DIR [--steps 300]
    accelerate launch -m uaes_hf.retrieval.finetune --data prefs.npz --out DIR

Example:
    >>> import numpy as np
    >>> data = toy_preference_data(n_images=20, n_queries=3, dim=4)
    >>> heads = data.initial_heads(dim=4)
    >>> import tempfile
    >>> tuned, history = finetune(heads, data, FinetuneConfig(steps=3, checkpoint_every=2),
    ...                           tempfile.mkdtemp(), progress=False)
    >>> len(history)
    3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uaes_hf.retrieval.cache import atomic_write_bytes
from uaes_hf.retrieval.dpo import finetune_objective
from uaes_hf.retrieval.heads import LinearProjections, ProjectionHeads, cpu_threads

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class FinetuneConfig:
    """Options of :func:`finetune`; all but ``step_delay_s`` change the numbers."""

    steps: int = 300
    lr: float = 2e-3
    beta: float = 1.0
    label_smoothing: float = 0.1
    contrastive_weight: float = 1.0
    pairs_per_step: int = 256
    captions_per_step: int = 256
    weight_by_distance: bool = False
    checkpoint_every: int = 50
    seed: int = 0
    # Seconds to sleep after each step: leaves CPU to others on a shared machine (and lets
    # tests kill a run mid-way). Never part of a cache key.
    step_delay_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("steps", "pairs_per_step", "checkpoint_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"finetune.{name} must be a positive integer, got {value!r}")
        if self.captions_per_step < 0 or self.lr <= 0 or self.step_delay_s < 0:
            raise ValueError("finetune.captions_per_step >= 0, lr > 0, step_delay_s >= 0")

    def key_dict(self) -> dict[str, Any]:
        """Everything that changes the result (for cache keys)."""
        values = asdict(self)
        values.pop("step_delay_s")
        return values


@dataclass
class PreferenceData:
    """Base features and index pairs for fine-tuning.

    Attributes:
        query_text: ``Q x D_t`` text base features of the training queries.
        image: ``N x D_i`` image base features of the corpus.
        pairs: ``P x 3`` int rows ``(query, better image, worse image)``.
        distance: ``P`` grid distances of the pairs (used with ``weight_by_distance``).
        caption_text: ``M x D_t`` caption features; ``caption_image``: their ``M`` images.
    """

    query_text: np.ndarray
    image: np.ndarray
    pairs: np.ndarray
    distance: np.ndarray
    caption_text: np.ndarray
    caption_image: np.ndarray

    def __post_init__(self) -> None:
        self.pairs = np.asarray(self.pairs, dtype=np.int64)
        if self.pairs.ndim != 2 or self.pairs.shape[1] != 3 or self.pairs.shape[0] == 0:
            raise ValueError(f"pairs must be a non-empty P x 3 array, got {self.pairs.shape}")
        if (
            self.pairs[:, 0].max() >= len(self.query_text)
            or self.pairs[:, 1:].max() >= len(self.image)
            or self.pairs.min() < 0
        ):
            raise ValueError("pairs refer to queries or images that do not exist")
        if len(self.distance) != len(self.pairs):
            raise ValueError("need one grid distance per pair")
        if len(self.caption_text) != len(self.caption_image):
            raise ValueError("need one image per caption")

    def save(self, path: str | Path) -> Path:
        """Write all arrays to one ``.npz`` file (atomically)."""
        buffer = io.BytesIO()
        np.savez(buffer, **{f.name: getattr(self, f.name) for f in fields(self)})
        return atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> PreferenceData:
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(**{f.name: data[f.name] for f in fields(cls)})
        except (OSError, KeyError, ValueError) as err:
            raise ValueError(f"{path} is not a preference-data file: {err}") from None

    def initial_heads(self, dim: int = 256, seed: int = 0) -> LinearProjections:
        """Fresh linear heads of matching sizes (standardised on this data's images)."""
        heads = LinearProjections(self.image.shape[1], self.query_text.shape[1], dim, seed)
        return heads.fit_standardization(torch.as_tensor(self.image, dtype=torch.float32))


def toy_preference_data(n_images: int = 40, n_queries: int = 5, dim: int = 8) -> PreferenceData:
    """Small random data for examples and tests of mechanics (no meaning)."""
    rng = np.random.default_rng(0)
    pairs = np.stack(
        [
            rng.integers(0, n_queries, 60),
            rng.integers(0, n_images, 60),
            rng.integers(0, n_images, 60),
        ],
        axis=1,
    )
    return PreferenceData(
        query_text=rng.normal(size=(n_queries, dim)).astype(np.float32),
        image=rng.normal(size=(n_images, dim)).astype(np.float32),
        pairs=pairs,
        distance=np.ones(60),
        caption_text=rng.normal(size=(n_images, dim)).astype(np.float32),
        caption_image=np.arange(n_images),
    )


def _batch(
    data: PreferenceData, config: FinetuneConfig, step: int, process: int, device: Any
) -> dict[str, torch.Tensor]:
    """The batch of ``step`` for ``process``: a function of (seed, step, process) only."""
    rng = np.random.default_rng([config.seed, step, process])
    rows = rng.integers(0, len(data.pairs), config.pairs_per_step)
    pairs = data.pairs[rows]
    m = min(config.captions_per_step, len(data.caption_text))
    captions = rng.choice(len(data.caption_text), m, replace=False) if m > 1 else np.zeros(0, int)

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32, device=device)

    batch = {
        "query": tensor(data.query_text[pairs[:, 0]]),
        "better": tensor(data.image[pairs[:, 1]]),
        "worse": tensor(data.image[pairs[:, 2]]),
        "caption_text": tensor(data.caption_text[captions]),
        "caption_image": tensor(data.image[data.caption_image[captions]]),
    }
    if config.weight_by_distance:
        batch["weights"] = tensor(data.distance[rows])
    return batch


def load_checkpoint(folder: str | Path) -> dict[str, Any] | None:
    """The last durable checkpoint in ``folder`` (``None`` if there is none)."""
    path = Path(folder) / CHECKPOINT
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def finetune(
    heads: ProjectionHeads,
    data: PreferenceData,
    config: FinetuneConfig,
    checkpoint_dir: str | Path,
    *,
    progress: bool = True,
    log: Any = None,
) -> tuple[ProjectionHeads, list[dict[str, float]]]:
    """Fine-tune ``heads`` (in place) and return them with the per-step loss history.

    Resumes from ``checkpoint_dir/checkpoint.pt`` when present; the folder must belong to
    this data and config (callers key it by both).
    """
    threads = cpu_threads(1) if not torch.cuda.is_available() else contextlib.nullcontext()
    with threads:
        return _finetune(heads, data, config, Path(checkpoint_dir), progress, log)


def _finetune(
    heads: ProjectionHeads,
    data: PreferenceData,
    config: FinetuneConfig,
    folder: Path,
    progress: bool,
    log: Any,
) -> tuple[ProjectionHeads, list[dict[str, float]]]:
    from accelerate import Accelerator

    folder.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    reference = heads.frozen_copy().to(accelerator.device)
    optimizer = torch.optim.AdamW(
        [p for p in heads.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0
    )
    history: list[dict[str, float]] = []
    start = 0
    state = load_checkpoint(folder)
    if state is not None:
        heads.load_state_dict(state["heads"])
        reference.load_state_dict(state["reference"])
        optimizer.load_state_dict(state["optimizer"])
        history = list(state["history"])
        start = int(state["step"])
        _say(log, f"resumed at step {start} from {folder / CHECKPOINT}")
    model, optimizer = accelerator.prepare(heads, optimizer)
    model.train()
    from tqdm.auto import tqdm

    bar = tqdm(
        total=config.steps,
        initial=start,
        desc="preference fine-tuning",
        disable=not progress or not accelerator.is_main_process,
    )
    for step in range(start, config.steps):
        batch = _batch(data, config, step, accelerator.process_index, accelerator.device)
        loss, parts = finetune_objective(
            model,
            reference,
            batch,
            beta=config.beta,
            label_smoothing=config.label_smoothing,
            contrastive_weight=config.contrastive_weight,
        )
        optimizer.zero_grad()
        accelerator.backward(loss)
        optimizer.step()
        history.append(parts)
        bar.update(1)
        done = step + 1
        if done % config.checkpoint_every == 0 or done == config.steps:
            _checkpoint(accelerator, model, reference, optimizer, history, done, folder)
            _say(log, f"checkpoint step {done}")
        if config.step_delay_s:
            time.sleep(config.step_delay_s)
    bar.close()
    tuned = accelerator.unwrap_model(model).eval()
    return tuned, history


def _checkpoint(
    accelerator: Any,
    model: Any,
    reference: Any,
    optimizer: Any,
    history: list[dict[str, float]],
    step: int,
    folder: Path,
) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        state = {
            "step": step,
            "heads": accelerator.unwrap_model(model).state_dict(),
            "reference": reference.state_dict(),
            "optimizer": optimizer.state_dict(),
            "history": history,
        }
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(folder / CHECKPOINT, buffer.getvalue())
    accelerator.wait_for_everyone()


def _say(log: Any, message: str) -> None:
    if log is not None:
        from tqdm.auto import tqdm

        tqdm.write(message, file=log)  # keeps a progress bar on the same stream intact
        log.flush()


def main(argv: list[str] | None = None) -> int:
    """Command line: fine-tune fresh or stored linear heads on a preference-data file."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="PreferenceData .npz")
    parser.add_argument("--out", required=True, help="checkpoint/result folder")
    parser.add_argument("--init", help="initial heads .npz (default: fresh linear heads)")
    parser.add_argument("--dim", type=int, default=256, help="joint dimension of fresh heads")
    for field in fields(FinetuneConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type in ("bool", bool):
            parser.add_argument(flag, action="store_true")
        else:
            parser.add_argument(flag, type=type(field.default), default=field.default)
    args = parser.parse_args(argv)
    try:
        data = PreferenceData.load(args.data)
        config = FinetuneConfig(**{f.name: getattr(args, f.name) for f in fields(FinetuneConfig)})
        heads = data.initial_heads(dim=args.dim, seed=args.seed)
        if args.init:
            from uaes_hf.retrieval.heads import load_heads_arrays

            with np.load(args.init, allow_pickle=False) as stored:
                load_heads_arrays(heads, {name: stored[name] for name in stored.files})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tuned, history = finetune(heads, data, config, args.out, progress=False, log=sys.stdout)
    from uaes_hf.retrieval.heads import heads_to_arrays

    buffer = io.BytesIO()
    np.savez(buffer, **heads_to_arrays(tuned))
    atomic_write_bytes(Path(args.out) / "heads.npz", buffer.getvalue())
    summary = {"steps": len(history), "final": history[-1] if history else None}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
