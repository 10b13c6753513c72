"""Models that compute their own gradients (``analytic_gradients``, BiasedMF / MF): the closed-form gradient is
autograd's gradient of the same objective, repeated users and items in a batch are summed, full-batch optimizers
accumulate it over minibatches, and a training epoch through the loop moves the weights as autograd would."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.common.context import TrainContext
from tasks.training import build_model
from tasks.training.loop import _epoch

N_U, N_I = 12, 9


def ctx() -> TrainContext:
    rng = np.random.default_rng(0)
    pairs = rng.choice(N_U * N_I, 60, replace=False)
    users, items = (pairs // N_I).astype(np.int64), (pairs % N_I).astype(np.int64)
    return TrainContext(N_U, N_I, users, items, rng.integers(1, 6, len(pairs)).astype(np.float32), (1.0, 5.0))


def build(biases: bool, **cfg: object) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model("biased-mf", {"factors": 4, "biases": biases, "init_std": 0.5, "l2": 0.3, **cfg}, ctx())
    assert m.analytic_gradients
    return m


def autograd_objective(m: torch.nn.Module, users: torch.Tensor, items: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """The BiasedMF objective written out independently: mean of (μ + b_j + b_k + p_j·q_k − r)² + λ(‖p_j‖² + ‖q_k‖²
    + b_j² + b_k²)."""
    k = m.k
    pu, qi = m.P.weight[users], m.Q.weight[items]
    if m.cfg.biases:
        score = m.mu + pu[:, k] + qi[:, k] + (pu[:, :k] * qi[:, :k]).sum(-1)
    else:
        score = (pu * qi).sum(-1)
    reg = pu.pow(2).sum(-1) + qi.pow(2).sum(-1)
    return ((score - r).pow(2) + m.cfg.l2 * reg).mean()


@pytest.mark.parametrize("biases", [True, False])
def test_analytic_gradient_is_autograds(biases: bool) -> None:
    m = build(biases)
    users = torch.tensor([0, 3, 3, 7, 0, 11])  # repeated users and items: their rows' gradients add up
    items = torch.tensor([1, 1, 4, 8, 2, 1])
    r = torch.tensor([4.0, 2.0, 5.0, 1.0, 3.0, 4.0])
    from models.common.samplers import PairBatch

    m.zero_grad(set_to_none=True)
    step = m.batch_loss(PairBatch(users, items, r))
    ours = {n: p.grad.clone() for n, p in m.named_parameters()}
    assert not step.objective.requires_grad
    m.zero_grad(set_to_none=True)
    ref = autograd_objective(m, users, items, r)
    ref.backward()
    assert torch.allclose(step.objective, ref.detach(), rtol=1e-6)
    for n, p in m.named_parameters():
        assert torch.allclose(ours[n], p.grad, rtol=1e-5, atol=1e-7), n
        assert ours[n].abs().sum() > 0, n
    untouched = torch.ones(N_U, dtype=torch.bool)
    untouched[users] = False
    assert (ours["P.weight"][untouched] == 0).all()


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rprop"])
def test_an_epoch_moves_the_weights_as_autograd_would(optimizer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One loop epoch with the analytic path, then the same epoch with the objective differentiated by autograd
    (``analytic_gradients`` off, ``batch_loss`` replaced by the independent objective): the same weights."""
    cfg = {"optimizer": optimizer, "batch_size": 16, "lr": 0.05}
    if optimizer == "rprop":
        cfg["full_batch_steps"] = 3
    start = build(True, **cfg).state_dict()
    fast = build(True, **cfg)
    _epoch(fast, fast.make_optimizer(), np.random.default_rng(1))

    slow = build(True, **cfg)
    from models.common.base import StepLoss

    def batch_loss(batch):  # type: ignore[no-untyped-def]
        obj = autograd_objective(slow, batch.users, batch.items, batch.ratings)
        return StepLoss(obj, {}, weight=len(batch.users))

    monkeypatch.setattr(slow, "batch_loss", batch_loss)
    monkeypatch.setattr(type(slow), "analytic_gradients", False)
    _epoch(slow, slow.make_optimizer(), np.random.default_rng(1))
    moved = False
    for (n, a), (_, b) in zip(fast.named_parameters(), slow.named_parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), n
        moved |= not torch.equal(a, start[n])
    assert moved
