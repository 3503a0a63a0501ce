"""Projection heads: the trainable part of a dual encoder, on top of frozen towers.

A dual encoder here is two frozen towers (image, text) whose outputs ("base features") go
through two small heads into one joint space, where a query and an image are compared by
cosine similarity. For the offline encoder the heads are linear maps trained LiT-style; for
a Hub CLIP they are the model's own ``visual_projection`` / ``text_projection`` (for SigLIP
the text ``head``; its image tower already ends in the joint space). Training, preference
fine-tuning and the index all work on base features and heads, so the towers run once.

Example:
    >>> import torch
    >>> heads = LinearProjections(image_dim=6, text_dim=4, dim=3)
    >>> heads.image(torch.ones(2, 6)).shape, float(heads.text(torch.ones(1, 4)).detach().norm())
    (torch.Size([2, 3]), 1.0)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn


@contextlib.contextmanager
def cpu_threads(n: int = 1) -> Iterator[None]:
    """Run torch CPU ops on ``n`` threads inside the block, then restore the setting.

    Training the heads multiplies small matrices: one thread is about as fast alone, and on
    a shared machine a second OpenMP thread mostly spins (measured here under load: 5x the
    wall time and 6x the CPU time for the same numbers; 2-3x for the packaged CNN and LM).

    Example:
        >>> import torch
        >>> before = torch.get_num_threads()
        >>> with cpu_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class Standardize(nn.Module):
    """``(x - mean) / std`` with stored (non-trainable) statistics."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, features: torch.Tensor) -> Standardize:
        """Set the statistics from a ``N x D`` sample (std floored at 1e-6)."""
        self.mean.copy_(features.mean(dim=0))
        self.std.copy_(features.std(dim=0).clamp_min(1e-6))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class ProjectionHeads(nn.Module):
    """An image head, a text head and a learnable temperature (``logit_scale``, as in CLIP).

    ``image``/``text`` return L2-normalised joint embeddings.
    """

    def __init__(
        self,
        image_head: nn.Module,
        text_head: nn.Module,
        logit_scale: float = math.log(1 / 0.07),
    ) -> None:
        super().__init__()
        self.image_head = image_head
        self.text_head = text_head
        self.logit_scale = nn.Parameter(torch.tensor(float(logit_scale)))

    def forward(
        self, text_base: torch.Tensor, image_base: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Joint embeddings of a batch of texts and a batch of images (one call, for DDP)."""
        return self.text(text_base), self.image(image_base)

    def image(self, base: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.image_head(base), dim=-1)

    def text(self, base: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.text_head(base), dim=-1)

    def scale(self, max_scale: float = 100.0) -> torch.Tensor:
        """exp(logit_scale), clamped like CLIP's."""
        return self.logit_scale.exp().clamp(max=max_scale)

    def frozen_copy(self) -> ProjectionHeads:
        """A deep copy with gradients off (the DPO reference)."""
        clone = copy.deepcopy(self)
        for parameter in clone.parameters():
            parameter.requires_grad_(False)
        return clone.eval()


class LinearProjections(ProjectionHeads):
    """LiT-style heads for the offline encoder: standardise, then one linear map per side."""

    def __init__(self, image_dim: int, text_dim: int, dim: int = 256, seed: int = 0) -> None:
        for name, value in (("image_dim", image_dim), ("text_dim", text_dim), ("dim", dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)  # deterministic initial weights, whatever the caller's RNG
        try:
            image_head = nn.Sequential(Standardize(image_dim), nn.Linear(image_dim, dim))
            text_head = nn.Linear(text_dim, dim)
        finally:
            torch.random.set_rng_state(generator_state)
        super().__init__(image_head, text_head)
        self.config = {"image_dim": image_dim, "text_dim": text_dim, "dim": dim, "seed": seed}

    def fit_standardization(self, image_features: torch.Tensor) -> LinearProjections:
        """Set the image standardisation from training features."""
        self.image_head[0].fit(image_features)
        return self


def heads_to_arrays(heads: nn.Module) -> dict[str, np.ndarray]:
    """The heads' state as numpy arrays (for the artifact cache).

    Example:
        >>> sorted(heads_to_arrays(LinearProjections(2, 2, 2)))[:2]
        ['image_head.0.mean', 'image_head.0.std']
    """
    return {name: t.detach().cpu().numpy() for name, t in heads.state_dict().items()}


def load_heads_arrays(heads: nn.Module, arrays: Mapping[str, Any]) -> nn.Module:
    """Load arrays produced by :func:`heads_to_arrays` into ``heads`` (shapes must match)."""
    state = {name: torch.as_tensor(np.asarray(value)) for name, value in arrays.items()}
    try:
        heads.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"stored heads do not fit this encoder: {str(err)[:300]}") from None
    return heads
