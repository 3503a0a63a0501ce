"""The ranked DPO loss against hand-derived values and gradients."""

from __future__ import annotations

import math

import pytest
import torch

from uaes_hf.retrieval.dpo import finetune_objective, ranked_dpo_loss
from uaes_hf.retrieval.heads import LinearProjections


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_single_pair_value_and_gradient_by_hand() -> None:
    # policy scores 1.0 (better) and 0.0 (worse); reference 0.5 for both; beta = 2.
    # margin m = 2 * ((1.0 - 0.5) - (0.0 - 0.5)) = 2
    # loss = softplus(-m) = log(1 + e^-2) = 0.12692801104297263
    # dloss/dpolicy_better = -beta * sigmoid(-m) = -2 * 0.11920292202211755
    # dloss/dpolicy_worse  = +beta * sigmoid(-m)
    better = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    worse = torch.tensor([0.0], dtype=torch.float64, requires_grad=True)
    reference = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    loss = ranked_dpo_loss(better, worse, reference, reference.clone(), beta=2.0)
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.12692801104297263, abs=1e-7)
    assert float(better.grad) == pytest.approx(-0.2384058440442351, abs=1e-7)
    assert float(worse.grad) == pytest.approx(0.2384058440442351, abs=1e-7)
    assert reference.grad is None  # the reference is never trained


def test_label_smoothing_value_and_gradient_by_hand() -> None:
    # Same pair, eps = 0.1: loss = 0.9 softplus(-2) + 0.1 softplus(2)
    #   = 0.9 * 0.12692801 + 0.1 * 2.12692801 = 0.32692801
    # dloss/dbetter = beta * (-(1 - eps) sigmoid(-m) + eps sigmoid(m))
    m, beta, eps = 2.0, 2.0, 0.1
    expected = (1 - eps) * math.log1p(math.exp(-m)) + eps * math.log1p(math.exp(m))
    expected_grad = beta * (-(1 - eps) * _sigmoid(-m) + eps * _sigmoid(m))
    better = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    loss = ranked_dpo_loss(
        better,
        torch.tensor([0.0], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
        torch.tensor([0.5], dtype=torch.float64),
        beta=beta,
        label_smoothing=eps,
    )
    loss.backward()
    assert float(loss.detach()) == pytest.approx(0.3269280110429726, abs=1e-7)
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-12)
    assert float(better.grad) == pytest.approx(expected_grad, abs=1e-7)
    assert float(better.grad) == pytest.approx(-0.0384058440442351, abs=1e-7)


def test_weighted_mean_over_pairs_by_hand() -> None:
    # Two pairs with margins 0 and 1 (beta = 1, zero reference), weights 1 and 3:
    # (1 * log 2 + 3 * log(1 + e^-1)) / 4
    loss = ranked_dpo_loss(
        torch.tensor([0.0, 1.0]),
        torch.zeros(2),
        torch.zeros(2),
        torch.zeros(2),
        weights=torch.tensor([1.0, 3.0]),
    )
    assert float(loss.detach()) == pytest.approx((math.log(2) + 3 * math.log1p(math.exp(-1))) / 4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": 0.0}, "beta"),
        ({"label_smoothing": 0.5}, "label_smoothing"),
        ({"weights": torch.tensor([-1.0])}, "weights"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, message) -> None:
    one = torch.ones(1)
    with pytest.raises(ValueError, match=message):
        ranked_dpo_loss(one, one, one, one, **kwargs)


def test_shape_mismatch_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="1-D"):
        ranked_dpo_loss(torch.ones(2), torch.ones(3), torch.ones(2), torch.ones(2))


def test_objective_starts_at_log2_plus_contrastive_and_moves_pairs() -> None:
    # At the start the policy equals the reference: every margin is 0 and the DPO term is
    # log 2 (no label smoothing), whatever the data.
    torch.manual_seed(0)
    heads = LinearProjections(6, 4, 3)
    reference = heads.frozen_copy()
    batch = {
        "query": torch.randn(8, 4),
        "better": torch.randn(8, 6),
        "worse": torch.randn(8, 6),
        "caption_text": torch.zeros(0, 4),
        "caption_image": torch.zeros(0, 6),
    }
    loss, parts = finetune_objective(
        heads, reference, batch, beta=1.0, label_smoothing=0.0, contrastive_weight=1.0
    )
    assert parts["dpo"] == pytest.approx(math.log(2), abs=1e-6)
    assert "contrastive" not in parts
    optimizer = torch.optim.SGD(heads.parameters(), lr=0.5)
    for _ in range(30):
        loss, parts = finetune_objective(
            heads, reference, batch, beta=1.0, label_smoothing=0.0, contrastive_weight=1.0
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert parts["dpo"] < 0.5 and parts["pair_accuracy"] == 1.0
