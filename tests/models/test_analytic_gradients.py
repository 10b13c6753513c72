"""Models that compute their own gradients (``analytic_gradients``: BiasedMF / MF, BPR with and without item
biases): the closed-form gradient is autograd's gradient of the same objective written out independently here,
repeated users and items in a batch are summed, and a training epoch through the loop (minibatch and full-batch
optimizers) moves the weights exactly as autograd's gradient would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.common.base import StepLoss
from models.common.samplers import PairBatch, TripleBatch
from tasks.training import build_model
from tasks.training.loop import _epoch
from tests.models.test_sparse_updates import N_U, ctx  # the same tiny random ratings (30 × 20)


def mf_objective(m: torch.nn.Module, b: PairBatch) -> torch.Tensor:
    """BiasedMF: mean of (μ + b_j + b_k + p_j·q_k − r)² + λ(‖p_j‖² + ‖q_k‖² + b_j² + b_k²) (MF: no biases)."""
    k = m.k
    pu, qi = m.P.weight[b.users], m.Q.weight[b.items]
    if m.cfg.biases:
        score = m.mu + pu[:, k] + qi[:, k] + (pu[:, :k] * qi[:, :k]).sum(-1)
    else:
        score = (pu * qi).sum(-1)
    return ((score - b.ratings).pow(2) + m.cfg.l2 * (pu.pow(2).sum(-1) + qi.pow(2).sum(-1))).mean()


def bpr_objective(m: torch.nn.Module, b: TripleBatch) -> torch.Tensor:
    """BPR: −mean ln σ(x̂_ui − x̂_uj) + λ mean(‖p_u‖² + ‖q_i‖² + ‖q_j‖² (+ b_i² + b_j²))."""
    p, qi, qj = m.p.weight[b.users], m.q.weight[b.pos_items], m.q.weight[b.neg_items]
    x = (p * qi).sum(-1) - (p * qj).sum(-1)
    reg = p.pow(2).sum(-1) + qi.pow(2).sum(-1) + qj.pow(2).sum(-1)
    if m.b is not None:
        bi, bj = m.b.weight[b.pos_items, 0], m.b.weight[b.neg_items, 0]
        x = x + bi - bj
        reg = reg + bi.pow(2) + bj.pow(2)
    return -F.logsigmoid(x).mean() + m.cfg.l2 * reg.mean()


# (model, config, implicit data, independent objective, a batch with repeated users and items)
CASES: dict[str, tuple[str, dict, bool, Callable, object]] = {
    "biased-mf": ("biased-mf", {"factors": 4, "biases": True}, False, mf_objective,
                  PairBatch(torch.tensor([0, 3, 3, 7, 0, 11]), torch.tensor([1, 1, 4, 8, 2, 1]),
                            torch.tensor([4.0, 2.0, 5.0, 1.0, 3.0, 4.0]))),
    "mf": ("biased-mf", {"factors": 4, "biases": False}, False, mf_objective,
           PairBatch(torch.tensor([0, 3, 3, 7, 0, 11]), torch.tensor([1, 1, 4, 8, 2, 1]),
                     torch.tensor([4.0, 2.0, 5.0, 1.0, 3.0, 4.0]))),
    "bpr": ("bpr", {"factors": 4}, True, bpr_objective,
            TripleBatch(torch.tensor([0, 3, 3, 7, 0]), torch.tensor([1, 1, 4, 8, 2]), torch.tensor([2, 5, 1, 1, 6]))),
    "bpr-bias": ("bpr", {"factors": 4, "item_bias": True}, True, bpr_objective,
                 TripleBatch(torch.tensor([0, 3, 3, 7, 0]), torch.tensor([1, 1, 4, 8, 2]),
                             torch.tensor([2, 5, 1, 1, 6]))),
}  # fmt: skip


def build(case: str, **cfg: object) -> torch.nn.Module:
    name, base, implicit, _, _ = CASES[case]
    torch.manual_seed(0)
    m = build_model(name, {**base, "init_std": 0.5, "l2": 0.3, **cfg}, ctx(implicit))
    if name == "bpr" and m.b is not None:
        with torch.no_grad():
            m.b.weight.normal_(0.0, 0.5)  # non-zero biases, so that their terms count
    assert m.analytic_gradients
    return m


@pytest.mark.parametrize("case", sorted(CASES))
def test_analytic_gradient_is_autograds(case: str) -> None:
    _, _, _, objective, batch = CASES[case]
    m = build(case)
    m.zero_grad(set_to_none=True)
    step = m.batch_loss(batch)
    ours = {n: p.grad.clone() for n, p in m.named_parameters()}
    assert not step.objective.requires_grad
    m.zero_grad(set_to_none=True)
    ref = objective(m, batch)
    ref.backward()
    assert torch.allclose(step.objective, ref.detach(), rtol=1e-6)
    for n, p in m.named_parameters():
        assert torch.allclose(ours[n], p.grad, rtol=1e-5, atol=1e-7), n
        assert ours[n].abs().sum() > 0, n
    users = batch.users
    untouched = torch.ones(N_U, dtype=torch.bool)
    untouched[users] = False
    first = next(iter(ours))  # the user table
    assert (ours[first][untouched] == 0).all()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rprop"])
def test_an_epoch_moves_the_weights_as_autograd_would(case: str, optimizer: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """One loop epoch with the analytic path, then the same epoch with the independent objective differentiated by
    autograd (``analytic_gradients`` off): the same weights."""
    objective = CASES[case][3]
    cfg: dict = {"optimizer": optimizer, "batch_size": 16, "lr": 0.05}
    if optimizer == "rprop":
        cfg["full_batch_steps"] = 3
    start = build(case, **cfg).state_dict()
    fast = build(case, **cfg)
    opt = fast.make_optimizer()
    if optimizer == "adam":
        assert opt.defaults["fused"] is True  # analytic-gradient models step Adam as the fused kernel
    _epoch(fast, opt, np.random.default_rng(1))

    # the independent objective goes through the loop's batch steps (not BiasedMF's compiled CPU epoch)
    slow = build(case, **cfg, **({"cpu_kernel": False} if CASES[case][0] == "biased-mf" else {}))
    monkeypatch.setattr(slow, "batch_loss", lambda b: StepLoss(objective(slow, b), {}, weight=len(b.users)))
    monkeypatch.setattr(type(slow), "analytic_gradients", False)
    _epoch(slow, slow.make_optimizer(), np.random.default_rng(1))
    moved = False
    for (n, a), (_, b) in zip(fast.named_parameters(), slow.named_parameters(), strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), n
        moved |= not torch.equal(a, start[n])
    assert moved


@pytest.mark.parametrize("case", ["biased-mf", "mf"])
def test_the_compiled_cpu_epoch_is_the_tensor_paths_epoch(case: str, tmp_path: Path) -> None:
    """BiasedMF's ``cpu_kernel`` (numba) against its tensor path (``batch_loss`` + torch's fused Adam): three loop
    epochs from the same start with the same order give the same tables, Adam moments, step count and logged
    scalars to float32 rounding; a kernel epoch resumes from a tensor-path checkpoint (model and optimizer state)."""
    cfg = {"batch_size": 16, "lr": 0.05}
    runs = {}
    for kernel in (False, True):
        m = build(case, **cfg, cpu_kernel=kernel)
        opt = m.make_optimizer()
        rng = np.random.default_rng(3)
        logs = [_epoch(m, opt, rng) for _ in range(3)]
        runs[kernel] = (m, opt, logs)
    (a, oa, la), (b, ob, lb) = runs[False], runs[True]
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5)
        sa, sb = oa.state[pa], ob.state[pb]
        assert float(sa["step"]) == float(sb["step"]) == 3 * -(-len(a.ctx.interactions) // 16)  # 3 × batches
        assert torch.allclose(sa["exp_avg"], sb["exp_avg"], rtol=1e-4, atol=1e-7)
        assert torch.allclose(sa["exp_avg_sq"], sb["exp_avg_sq"], rtol=1e-4, atol=1e-9)
    for ea, eb in zip(la, lb, strict=True):
        assert ea.keys() == eb.keys() == {"loss", "mse", "reg"}
        for key in ea:
            assert ea[key] == pytest.approx(eb[key], rel=1e-5)
    assert la[0]["loss"] > la[2]["loss"]

    # resume across paths: 2 tensor epochs + 1 kernel epoch from the saved state = 3 kernel epochs
    m = build(case, **cfg, cpu_kernel=False)
    opt = m.make_optimizer()
    rng = np.random.default_rng(3)
    for _ in range(2):
        _epoch(m, opt, rng)
    torch.save({"model": m.state_dict(), "opt": opt.state_dict()}, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    r = build(case, **cfg, cpu_kernel=True)
    r.load_state_dict(state["model"])
    ropt = r.make_optimizer()
    ropt.load_state_dict(state["opt"])
    _epoch(r, ropt, rng)
    for pa, pb in zip(b.parameters(), r.parameters(), strict=True):
        assert torch.allclose(pa, pb, rtol=1e-4, atol=1e-5)


def test_the_compiled_cpu_epoch_applies_to_adam_on_cpu_only() -> None:
    """Other optimizers (and CUDA, by the same check) step through ``batch_loss``: ``fused_epoch`` declines."""
    rng = np.random.default_rng(0)
    for optimizer in ("sgd", "adagrad", "rprop"):
        m = build("biased-mf", optimizer=optimizer)
        assert m.fused_epoch(m.make_optimizer(), rng) is None
    off = build("biased-mf", cpu_kernel=False)
    assert off.fused_epoch(off.make_optimizer(), rng) is None
    on = build("biased-mf")
    assert on.fused_epoch(on.make_optimizer(), rng) is not None
