"""LiT-style training of the offline encoder's projections, and caption retrieval recall.

Both towers stay frozen ("locked"); only two linear heads and the temperature learn, with
the symmetric InfoNCE loss of CLIP: in a batch of B image-caption pairs, each image must pick
its caption among the B captions and each caption its image. Each image has several caption
views (full caption, title, "a drawing of <title>"); every epoch draws one view per image,
so short queries at search time look like something seen in training.

Example:
    >>> import torch
    >>> img = torch.nn.functional.normalize(torch.eye(3), dim=1)
    >>> round(float(info_nce(img, img, torch.tensor(100.0))), 4)
    0.0
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from uaes_hf.retrieval.heads import LinearProjections, cpu_threads

CAPTION_VIEWS = ("caption", "title", "drawing of title")


@dataclass(frozen=True)
class LiTConfig:
    """Options of :func:`train_lit` (all of them are part of the cache key)."""

    dim: int = 512
    epochs: int = 10
    lr: float = 1e-2
    weight_decay: float = 0.05
    batch_size: int = 256
    held_out: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"lit.{name} must be a positive integer, got {value!r}")
        if self.held_out < 0:
            raise ValueError(f"lit.held_out must be >= 0, got {self.held_out}")
        if self.lr <= 0 or self.weight_decay < 0:
            raise ValueError("lit.lr must be > 0 and lit.weight_decay >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def info_nce(image_emb: torch.Tensor, text_emb: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of matching rows (row i of each is a pair); inputs are normalised."""
    if image_emb.shape != text_emb.shape or image_emb.ndim != 2:
        raise ValueError(
            f"image and text embeddings must be matching B x D, got {tuple(image_emb.shape)} "
            f"and {tuple(text_emb.shape)}"
        )
    logits = scale * image_emb @ text_emb.T
    target = torch.arange(logits.shape[0], device=logits.device)
    return 0.5 * (
        torch.nn.functional.cross_entropy(logits, target)
        + torch.nn.functional.cross_entropy(logits.T, target)
    )


def caption_views(captions: Sequence[str], titles: Sequence[str]) -> list[list[str]]:
    """The text views of each item, one list per view in :data:`CAPTION_VIEWS` order.

    Example:
        >>> caption_views(["A red apple. Category: food."], ["red apple"])
        [['A red apple. Category: food.'], ['red apple'], ['a drawing of red apple']]
    """
    if len(captions) != len(titles):
        raise ValueError(f"{len(captions)} captions but {len(titles)} titles")
    titles = [t.strip() or c for t, c in zip(titles, captions, strict=True)]
    return [list(captions), titles, [f"a drawing of {t}" for t in titles]]


def split_held_out(n: int, held_out: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic (train, held-out) index split; both sorted.

    Example:
        >>> train, test = split_held_out(10, 3)
        >>> len(train), len(test), sorted(set(train) | set(test)) == list(range(10))
        (7, 3, True)
    """
    if not 0 <= held_out < n:
        raise ValueError(f"held_out must be in [0, {n}) for {n} items, got {held_out}")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[held_out:]), np.sort(order[:held_out])


def train_lit(
    image_features: np.ndarray,
    text_views: np.ndarray,
    train_index: np.ndarray,
    config: LiTConfig = LiTConfig(),
    progress: bool = False,
) -> tuple[LinearProjections, list[float]]:
    """Train linear heads with symmetric InfoNCE on the rows ``train_index``.

    Args:
        image_features: ``N x D_i`` frozen image features.
        text_views: ``V x N x D_t`` frozen text features of V caption views.
        train_index: rows used for training.

    Returns:
        The trained heads and the mean loss of each epoch.
    """
    image = torch.as_tensor(np.asarray(image_features), dtype=torch.float32)
    views = torch.as_tensor(np.asarray(text_views), dtype=torch.float32)
    if image.ndim != 2 or views.ndim != 3 or views.shape[1] != image.shape[0]:
        raise ValueError(
            f"need N x D_i image features and V x N x D_t text views, got {tuple(image.shape)} "
            f"and {tuple(views.shape)}"
        )
    train = torch.as_tensor(np.asarray(train_index), dtype=torch.long)
    if train.numel() < 2:
        raise ValueError("need at least 2 training pairs")
    with cpu_threads(1):
        return _train(image, views, train, config, progress)


def _train(
    image: torch.Tensor,
    views: torch.Tensor,
    train: torch.Tensor,
    config: LiTConfig,
    progress: bool,
) -> tuple[LinearProjections, list[float]]:
    heads = LinearProjections(image.shape[1], views.shape[2], config.dim, seed=config.seed)
    heads.fit_standardization(image[train])
    optimizer = torch.optim.AdamW(
        heads.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator().manual_seed(config.seed)
    history: list[float] = []
    epochs: Any = range(config.epochs)
    if progress:
        from tqdm.auto import tqdm

        epochs = tqdm(epochs, desc="train projections (LiT)", unit="epoch")
    for _ in epochs:
        order = train[torch.randperm(train.numel(), generator=generator)]
        view = torch.randint(views.shape[0], (train.numel(),), generator=generator)
        losses = []
        for start in range(0, order.numel(), config.batch_size):
            rows = order[start : start + config.batch_size]
            if rows.numel() < 2:
                continue
            texts = views[view[start : start + rows.numel()], rows]
            loss = info_nce(heads.image(image[rows]), heads.text(texts), heads.scale())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
        history.append(float(np.mean(losses)))
    return heads.eval(), history


def recall_at_k(text_emb: Any, image_emb: Any, ks: Sequence[int] = (1, 5, 10)) -> dict[int, float]:
    """Text-to-image recall: the share of rows i whose image i is among the top k for text i.

    The rank of image i is the number of gallery images strictly more similar to text i.

    Example:
        >>> import numpy as np
        >>> recall_at_k(np.eye(4), np.eye(4), ks=(1,))
        {1: 1.0}
    """
    t = np.asarray(text_emb, dtype=np.float64)
    v = np.asarray(image_emb, dtype=np.float64)
    if t.shape != v.shape or t.ndim != 2:
        raise ValueError(f"need matching N x D arrays, got {t.shape} and {v.shape}")
    t = t / np.linalg.norm(t, axis=1, keepdims=True).clip(1e-12)
    v = v / np.linalg.norm(v, axis=1, keepdims=True).clip(1e-12)
    sims = t @ v.T
    rank = (sims > np.diag(sims)[:, None]).sum(axis=1)
    return {int(k): float(np.mean(rank < k)) for k in ks}
