"""ALS-WR: each half-sweep equals the per-user (per-item) closed form solved with numpy, the training RMSE and the
weighted-λ objective fall over sweeps, the paper's initialisation, clipping and the cold-start global mean, bad
config values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.common.context import TrainContext
from tasks.common.errors import ConfigError
from tasks.training import build_model


def explicit_context(n_users: int = 8, n_items: int = 6, density: float = 0.5, seed: int = 0) -> TrainContext:
    """Low-rank ratings on a random mask; the last user and the last item have no training rating."""
    rng = np.random.default_rng(seed)
    truth = 3.0 + rng.normal(size=(n_users, 2)) @ rng.normal(size=(2, n_items))
    mask = rng.random((n_users, n_items)) < density
    mask[-1, :] = False
    mask[:, -1] = False
    mask[0, 0] = True
    users, items = np.nonzero(mask)
    ratings = np.clip(np.rint(truth[users, items]), 1, 5).astype(np.float32)
    return TrainContext(n_users, n_items, users.astype(np.int64), items.astype(np.int64), ratings, (1.0, 5.0))


def closed_form(other: np.ndarray, rows: np.ndarray, cols: np.ndarray, r: np.ndarray, n_rows: int, lam: float
                ) -> np.ndarray:  # fmt: skip
    """(O_uᵀ O_u + λ n_u I)⁻¹ O_uᵀ r_u, one numpy solve per row (float64); rows without entries get 0."""
    k = other.shape[1]
    out = np.zeros((n_rows, k))
    for u in range(n_rows):
        sel = rows == u
        if sel.any():
            o = other[cols[sel]].astype(np.float64)
            out[u] = np.linalg.solve(o.T @ o + lam * sel.sum() * np.eye(k), o.T @ r[sel])
    return out


def test_each_half_sweep_is_the_per_row_closed_form() -> None:
    ctx = explicit_context()
    torch.manual_seed(0)
    model = build_model("als-wr", {"factors": 3, "l2": 0.3, "init_std": 0.3}, ctx)
    q = model.q.detach().numpy().astype(np.float64)
    r = ctx.ratings.astype(np.float64)
    for _ in range(3):
        model.fit_epoch(np.random.default_rng(0))
        p = closed_form(q, ctx.users, ctx.items, r, ctx.n_users, 0.3)
        np.testing.assert_allclose(model.p.detach().numpy(), p, rtol=1e-3, atol=1e-4)
        q = closed_form(model.p.detach().numpy(), ctx.items, ctx.users, r, ctx.n_items, 0.3)
        np.testing.assert_allclose(model.q.detach().numpy(), q, rtol=1e-3, atol=1e-4)
        q = model.q.detach().numpy().astype(np.float64)


def test_blocks_do_not_change_the_solution() -> None:
    ctx = explicit_context(30, 20, 0.3, seed=4)
    torch.manual_seed(0)
    a = build_model("als-wr", {"factors": 4}, ctx)
    torch.manual_seed(0)
    b = build_model("als-wr", {"factors": 4, "block_rows": 3, "block_entries": 5}, ctx)
    for m in (a, b):
        m.fit_epoch(np.random.default_rng(0))
    torch.testing.assert_close(a.p, b.p, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a.q, b.q, rtol=1e-4, atol=1e-5)


def test_rmse_and_objective_decrease_over_sweeps() -> None:
    ctx = explicit_context(40, 30, 0.3, seed=1)
    torch.manual_seed(0)
    model = build_model("als-wr", {"factors": 4, "l2": 0.05}, ctx)
    logs = [model.fit_epoch(np.random.default_rng(0)) for _ in range(10)]
    rmse = [g["train_rmse"] for g in logs]
    obj = [g["objective"] for g in logs]
    assert all(b <= a * (1 + 1e-5) for a, b in itertools.pairwise(obj)), obj
    assert rmse[-1] < rmse[0] and rmse[-1] < 0.6, rmse
    # the logged RMSE is the model's own error on the training pairs
    pred = model.predict(ctx.users, ctx.items)
    raw = (model.p[ctx.users] * model.q[ctx.items]).sum(-1).detach().numpy()
    unclipped = np.sqrt(np.mean((raw - ctx.ratings) ** 2))
    assert rmse[-1] == pytest.approx(unclipped, rel=1e-4)
    assert np.sqrt(np.mean((pred - ctx.ratings) ** 2)) <= unclipped + 1e-6  # clipping can only help


def test_initial_q_holds_the_item_means_and_cold_rows_get_the_global_mean() -> None:
    ctx = explicit_context()
    model = build_model("als-wr", {"factors": 3}, ctx)
    means = np.array([ctx.ratings[ctx.items == i].mean() if (ctx.items == i).any() else ctx.global_mean
                      for i in range(ctx.n_items)])  # fmt: skip
    np.testing.assert_allclose(model.q[:, 0].detach().numpy(), means, rtol=1e-6)
    model.fit_epoch(np.random.default_rng(0))
    cold_u, cold_i = ctx.n_users - 1, ctx.n_items - 1
    got = model.predict(np.array([cold_u, 0, cold_u]), np.array([0, cold_i, cold_i]))
    np.testing.assert_allclose(got, ctx.global_mean, rtol=1e-6)
    with torch.no_grad():
        model.q.mul_(100.0)  # every known prediction far outside the scale
    pred = model.predict(ctx.users, ctx.items)
    assert pred.min() >= 1.0 and pred.max() <= 5.0
    users = np.array([0, 3, cold_u])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).numpy()
    pairs = model.predict(np.repeat(users, ctx.n_items), np.tile(np.arange(ctx.n_items), 3)).reshape(3, -1)
    np.testing.assert_allclose(full, pairs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("key", "value"), [("factors", 0), ("l2", 0.0), ("init_std", -1.0), ("block_rows", 0), ("block_entries", 0)]
)
def test_bad_config_values_name_the_parameter(key: str, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        build_model("als-wr", {key: value}, explicit_context())
    assert err.value.param == f"models.als-wr.{key}"
