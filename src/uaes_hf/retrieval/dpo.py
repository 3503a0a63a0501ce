"""The ranked DPO loss for a retriever, and the combined fine-tuning objective.

A retriever is a policy over the candidate images of a query: ``pi(x | q) = softmax_x s(q, x)``
over the candidate set, with ``s(q, x) = scale * cos(f(q), g(x))``. In a preference pair
``(x_w, x_l)`` of the same query the log-partition cancels, so the DPO margin is

    m = beta * [(s(q, x_w) - s_ref(q, x_w)) - (s(q, x_l) - s_ref(q, x_l))]

with ``s_ref`` the frozen reference (the retriever before fine-tuning). The pair loss, with
label smoothing ``eps`` (the conservative DPO of Mitchell, 2023), is

    l = (1 - eps) * softplus(-m) + eps * softplus(m)          (softplus(z) = log(1 + e^z))

and the "ranked" DPO loss is its (optionally weighted) mean over the partial-order pairs of
the semantic x aesthetic grid (:mod:`uaes_hf.retrieval.preference`). The fine-tuning
objective adds ``contrastive_weight`` times the symmetric InfoNCE on image-caption pairs,
which keeps the retriever's semantics (the study's "pretraining loss" term).

Example:
    >>> import torch
    >>> loss = ranked_dpo_loss(torch.tensor([1.0]), torch.tensor([0.0]),
    ...                        torch.tensor([0.5]), torch.tensor([0.5]), beta=2.0)
    >>> round(float(loss), 6)  # softplus(-2) = log(1 + e^-2)
    0.126928
"""

from __future__ import annotations

from typing import Any

import torch

from uaes_hf.retrieval.lit import info_nce


def ranked_dpo_loss(
    policy_better: torch.Tensor,
    policy_worse: torch.Tensor,
    reference_better: torch.Tensor,
    reference_worse: torch.Tensor,
    *,
    beta: float = 1.0,
    label_smoothing: float = 0.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean (or weighted mean) DPO pair loss over P preference pairs (see the module doc).

    Args:
        policy_better, policy_worse: the trained retriever's scores ``s(q, x)`` (P values).
        reference_better, reference_worse: the frozen reference's scores (no gradient).
        beta: inverse temperature of the margin (> 0).
        label_smoothing: probability ``eps`` in [0, 0.5) that a pair's label is flipped.
        weights: optional non-negative weight per pair.
    """
    if beta <= 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    shapes = {
        tuple(t.shape) for t in (policy_better, policy_worse, reference_better, reference_worse)
    }
    if len(shapes) != 1 or len(next(iter(shapes))) != 1 or policy_better.numel() == 0:
        raise ValueError(f"the four score tensors must be equally long 1-D tensors, got {shapes}")
    margin = beta * (
        (policy_better - reference_better.detach()) - (policy_worse - reference_worse.detach())
    )
    losses = (1.0 - label_smoothing) * torch.nn.functional.softplus(-margin)
    if label_smoothing:
        losses = losses + label_smoothing * torch.nn.functional.softplus(margin)
    if weights is None:
        return losses.mean()
    weights = torch.as_tensor(weights, dtype=losses.dtype, device=losses.device)
    if weights.shape != losses.shape or bool((weights < 0).any()) or float(weights.sum()) <= 0:
        raise ValueError("weights must be one non-negative value per pair, with a positive sum")
    return (weights * losses).sum() / weights.sum()


def _unwrap(heads: Any) -> Any:
    return heads.module if hasattr(heads, "module") else heads  # DDP / Accelerate wrapper


def finetune_objective(
    heads: Any,
    reference: Any,
    batch: dict[str, torch.Tensor],
    *,
    beta: float,
    label_smoothing: float,
    contrastive_weight: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Ranked DPO on a batch of pairs + ``contrastive_weight`` x InfoNCE on caption pairs.

    ``batch`` holds base features: ``query``, ``better``, ``worse`` (P rows each), optional
    ``weights`` (P), and ``caption_text``, ``caption_image`` (M rows each, M may be 0).
    The trained heads run once per step on all texts and all images (one forward call, as
    DistributedDataParallel expects).
    """
    if contrastive_weight < 0:
        raise ValueError(f"contrastive_weight must be >= 0, got {contrastive_weight}")
    n_pairs = batch["query"].shape[0]
    texts = torch.cat([batch["query"], batch["caption_text"]])
    images = torch.cat([batch["better"], batch["worse"], batch["caption_image"]])
    text_emb, image_emb = heads(texts, images)
    scale = _unwrap(heads).scale()
    query = text_emb[:n_pairs]
    policy_w = scale * (query * image_emb[:n_pairs]).sum(-1)
    policy_l = scale * (query * image_emb[n_pairs : 2 * n_pairs]).sum(-1)
    with torch.no_grad():
        ref_text, ref_image = reference(
            batch["query"], torch.cat([batch["better"], batch["worse"]])
        )
        ref_scale = reference.scale()
        ref_w = ref_scale * (ref_text * ref_image[:n_pairs]).sum(-1)
        ref_l = ref_scale * (ref_text * ref_image[n_pairs:]).sum(-1)
    dpo = ranked_dpo_loss(
        policy_w,
        policy_l,
        ref_w,
        ref_l,
        beta=beta,
        label_smoothing=label_smoothing,
        weights=batch.get("weights"),
    )
    parts = {"dpo": float(dpo.detach())}
    total = dpo
    if batch["caption_text"].shape[0] > 1:
        contrastive = info_nce(image_emb[2 * n_pairs :], text_emb[n_pairs:], scale)
        total = total + contrastive_weight * contrastive
        parts["contrastive"] = float(contrastive.detach())
    else:  # keep every parameter in the graph (DDP), without changing the value
        total = total + 0.0 * scale
    with torch.no_grad():
        parts["pair_accuracy"] = float((policy_w > policy_l).float().mean())
    parts["loss"] = float(total.detach())
    return total, parts
