"""eALS: the vectorised element-wise ALS sweep equals a naive loop over the paper's Eq. 12-13, the objective falls
monotonically over sweeps and equals its dense definition, the popularity weights, bad config values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from models.common.context import TrainContext
from models.factorization.eals import popularity_weights
from tasks.common.errors import ConfigError
from tasks.training import build_model


def implicit_context(n_users: int, n_items: int, density: float, seed: int, weights: bool = False) -> TrainContext:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < density
    dense[0, :2] = True  # no empty corner case by chance: every size has a user with >= 2 items
    users, items = np.nonzero(dense)
    w = rng.uniform(0.5, 3.0, len(users)).astype(np.float32) if weights else None
    return TrainContext(n_users, n_items, users.astype(np.int64), items.astype(np.int64),
                        np.ones(len(users), np.float32), (1.0, 1.0), implicit=True, weights=w)  # fmt: skip


def dense_parts(ctx: TrainContext, weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    obs = np.zeros((ctx.n_users, ctx.n_items), dtype=bool)
    obs[ctx.users, ctx.items] = True
    w = np.zeros((ctx.n_users, ctx.n_items))
    w[ctx.users, ctx.items] = ctx.weights if weighted else 1.0
    return obs, w


def naive_sweep(p: np.ndarray, q: np.ndarray, obs: np.ndarray, w: np.ndarray, c: np.ndarray, lam: float
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """He et al. 2016, Algorithm 1 with explicit loops: every user's K coordinates (Eq. 12), then every item's
    (Eq. 13), r̂ recomputed from the current factors at each step."""
    p, q = p.astype(np.float64).copy(), q.astype(np.float64).copy()
    m, n = obs.shape
    k_dim = p.shape[1]
    s_q = sum(c[i] * np.outer(q[i], q[i]) for i in range(n))
    for u in range(m):
        for f in range(k_dim):
            num, den = 0.0, 0.0
            for i in range(n):
                if obs[u, i]:
                    r_f = p[u] @ q[i] - p[u, f] * q[i, f]
                    num += (w[u, i] - (w[u, i] - c[i]) * r_f) * q[i, f]
                    den += (w[u, i] - c[i]) * q[i, f] ** 2
            for k in range(k_dim):
                if k != f:
                    num -= p[u, k] * s_q[k, f]
            p[u, f] = num / (den + s_q[f, f] + lam)
    s_p = sum(np.outer(p[u], p[u]) for u in range(m))
    for i in range(n):
        for f in range(k_dim):
            num, den = 0.0, 0.0
            for u in range(m):
                if obs[u, i]:
                    r_f = p[u] @ q[i] - p[u, f] * q[i, f]
                    num += (w[u, i] - (w[u, i] - c[i]) * r_f) * p[u, f]
                    den += (w[u, i] - c[i]) * p[u, f] ** 2
            for k in range(k_dim):
                if k != f:
                    num -= c[i] * q[i, k] * s_p[k, f]
            q[i, f] = num / (den + c[i] * s_p[f, f] + lam)
    return p, q


def dense_objective(p: np.ndarray, q: np.ndarray, obs: np.ndarray, w: np.ndarray, c: np.ndarray, lam: float) -> float:
    pred = p.astype(np.float64) @ q.astype(np.float64).T
    loss = np.where(obs, w * (1.0 - pred) ** 2, c[None, :] * pred**2).sum()
    return float(loss + lam * ((p.astype(np.float64) ** 2).sum() + (q.astype(np.float64) ** 2).sum()))


@pytest.mark.parametrize("weighted", [False, True])
def test_vectorised_sweep_equals_naive_loops(weighted: bool) -> None:
    ctx = implicit_context(6, 5, 0.4, seed=3, weights=weighted)
    cfg = {"factors": 3, "c0": 2.0, "omega": 0.5, "l2": 0.05, "init_std": 0.5, "weighted": weighted}
    torch.manual_seed(0)
    model = build_model("eals", cfg, ctx)
    p0, q0 = model.p.detach().numpy().copy(), model.q.detach().numpy().copy()
    obs, w = dense_parts(ctx, weighted)
    c = popularity_weights(obs.sum(0), 2.0, 0.5)
    for _ in range(2):
        p0, q0 = naive_sweep(p0, q0, obs, w, c, 0.05)
        model.fit_epoch(np.random.default_rng(0))
        np.testing.assert_allclose(model.p.detach().numpy(), p0, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.q.detach().numpy(), q0, rtol=1e-4, atol=1e-5)


def test_objective_decreases_monotonically_and_matches_its_dense_definition() -> None:
    ctx = implicit_context(40, 30, 0.15, seed=1)
    torch.manual_seed(0)
    model = build_model("eals", {"factors": 8, "c0": 16.0}, ctx)
    obs, w = dense_parts(ctx, False)
    c = popularity_weights(obs.sum(0), 16.0, 0.5)
    values = [dense_objective(model.p.detach().numpy(), model.q.detach().numpy(), obs, w, c, 0.05)]
    for _ in range(8):
        logged = model.fit_epoch(np.random.default_rng(0))["objective"]
        values.append(dense_objective(model.p.detach().numpy(), model.q.detach().numpy(), obs, w, c, 0.05))
        assert logged == pytest.approx(values[-1], rel=1e-4)
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(values)), values
    assert values[-1] < 0.8 * values[0]
    # observed entries end up scored above the unobserved ones on average
    scores = model.p.detach().numpy() @ model.q.detach().numpy().T
    assert scores[obs].mean() > scores[~obs].mean() + 0.1


def test_popularity_weights() -> None:
    counts = np.array([9, 4, 1, 0])
    c = popularity_weights(counts, 512.0, 0.5)
    assert c.sum() == pytest.approx(512.0)
    np.testing.assert_allclose(c, 512.0 * np.array([3, 2, 1, 0]) / 6)
    np.testing.assert_allclose(popularity_weights(counts, 8.0, 0.0), [2.0, 2.0, 2.0, 2.0])
    assert not popularity_weights(np.zeros(3), 8.0, 0.5).any()


def test_full_ranking_is_the_dot_product() -> None:
    ctx = implicit_context(10, 8, 0.3, seed=2)
    model = build_model("eals", {"factors": 4}, ctx)
    model.fit_epoch(np.random.default_rng(0))
    users = np.array([0, 4, 9])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).numpy()
    pairs = model.predict(np.repeat(users, 8), np.tile(np.arange(8), 3)).reshape(3, 8)
    np.testing.assert_allclose(full, pairs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("key", "value"), [("factors", 0), ("c0", -1.0), ("omega", -0.5), ("l2", 0.0), ("init_std", 0.0)]
)
def test_bad_config_values_name_the_parameter(key: str, value: float) -> None:
    ctx = implicit_context(6, 5, 0.4, seed=0)
    with pytest.raises(ConfigError) as err:
        build_model("eals", {key: value}, ctx)
    assert err.value.param == f"models.eals.{key}"
