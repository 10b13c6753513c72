from __future__ import annotations

import numpy as np
import pytest

from tasks.evaluation.metrics import (
    hit_ratio,
    mae,
    ndcg,
    precision_at_top_p,
    precision_at_top_p_ties,
    rank_of_positive,
    rmse,
)


def test_rmse_mae() -> None:
    y = np.array([1.0, 2.0, 3.0])
    p = np.array([1.0, 3.0, 5.0])
    assert rmse(y, p) == pytest.approx(np.sqrt(5 / 3))
    assert mae(y, p) == pytest.approx(1.0)


def test_precision_top_p_expects_over_random_order_of_tied_true_ratings() -> None:
    # one user, 10 test items: top 10% = 1 item; true ratings 5, 5, 4, ...
    users = np.zeros(10, dtype=int)
    items = np.arange(10)
    y = np.array([5, 5, 4, 4, 3, 3, 2, 2, 1, 1], dtype=float)
    # predicted best is item 1 (true 5, tied with item 0): relevant with probability 1/2
    p = np.array([4.0, 4.5, 3.0, 3.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0])
    assert precision_at_top_p(users, items, y, p, 0.1) == pytest.approx(0.5)
    assert precision_at_top_p_ties(users, items, y, p, 0.1) == 1.0
    # predicted best is item 2 (true 4): never relevant
    p2 = p.copy()
    p2[2] = 5.0
    assert precision_at_top_p(users, items, y, p2, 0.1) == 0.0
    assert precision_at_top_p_ties(users, items, y, p2, 0.1) == 0.0
    # 25% of 10 -> k = 3: relevant = both 5s + one of the two 4s; retrieved {2, 1, 0} -> (1/2 + 1 + 1) / 3
    assert precision_at_top_p(users, items, y, p2, 0.25) == pytest.approx(2.5 / 3)
    assert precision_at_top_p_ties(users, items, y, p2, 0.25) == 1.0


def test_precision_of_a_perfect_ranking_is_one_and_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20), 12)
    items = np.tile(np.arange(12), 20)
    y = rng.integers(1, 6, len(users)).astype(float)
    distinct = rng.permutation(len(y)).astype(float)
    assert precision_at_top_p(users, items, distinct, distinct, 0.25) == pytest.approx(1.0)
    # brute force: average the strict precision over many random orders of the true ratings
    p = rng.normal(size=len(users))
    sims = []
    for _ in range(3000):
        jitter = rng.random(len(y)) * 1e-6
        total = 0.0
        for u in range(20):
            m = users == u
            k = 3
            rel = set(np.argsort(-(y[m] + jitter[m]), kind="stable")[:k])
            ret = set(np.argsort(-p[m], kind="stable")[:k])
            total += len(rel & ret) / k
        sims.append(total / 20)
    assert precision_at_top_p(users, items, y, p, 0.25) == pytest.approx(np.mean(sims), abs=0.01)


def test_rank_is_pessimistic_on_ties_and_metrics() -> None:
    pos = np.array([0.9, 0.5, 0.1])
    cand = np.array([[0.1, 0.2, 0.3], [0.5, 0.5, 0.1], [0.2, 0.3, 0.4]])
    ranks = rank_of_positive(pos, cand)
    assert ranks.tolist() == [0, 2, 3]
    assert hit_ratio(ranks, 1) == pytest.approx(1 / 3)
    assert hit_ratio(ranks, 3) == pytest.approx(2 / 3)
    assert ndcg(ranks, 3) == pytest.approx((1.0 + 1 / np.log2(4)) / 3)


def test_constant_scorer_gets_no_credit() -> None:
    pos = np.full(5, 3.0)
    cand = np.full((5, 99), 3.0)
    assert hit_ratio(rank_of_positive(pos, cand), 10) == 0.0
