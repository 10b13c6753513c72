"""Evaluation metrics as plain numpy functions.

* RMSE / MAE over test ratings (predictions clipped to the rating scale by the caller).
* precision@top-p% (NRP, Eq. 8): for each test user j with test items S_j, k_j = max(1, ceil(p·|S_j|));
  retrieved = the k_j items of S_j with the highest predicted rating (ties broken by the smaller item
  index); relevant = the items of S_j whose true rating is at least the k_j-th highest true rating of S_j
  (ties in the true rating are all relevant, since integer ratings tie heavily and the paper does not say
  how it ordered them); precision_j = |relevant ∩ retrieved| / k_j; the mean over test users.
* HR@K / NDCG@K from the 0-based rank of the held-out item among its candidates, where the rank counts
  candidates scored strictly higher plus those scored equal (pessimistic ties: a constant scorer gets no
  credit).
"""

from __future__ import annotations

import math

import numpy as np


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - p) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, np.float64) - p)))


def precision_at_top_p(users: np.ndarray, items: np.ndarray, y: np.ndarray, p: np.ndarray, frac: float) -> float:
    """Mean over users of |relevant ∩ retrieved| / k_j (see module docstring)."""
    users = np.asarray(users)
    order = np.lexsort((items, -p, users))  # by user, predicted desc, item asc
    u_s, y_s = users[order], np.asarray(y, np.float64)[order]
    starts = np.flatnonzero(np.r_[True, u_s[1:] != u_s[:-1]])
    ends = np.r_[starts[1:], len(u_s)]
    precisions = np.empty(len(starts))
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        size = b - a
        k = max(1, math.ceil(frac * size - 1e-9))
        true = y_s[a:b]
        threshold = np.sort(true)[::-1][k - 1]
        precisions[n] = np.count_nonzero(true[:k] >= threshold) / k
    return float(precisions.mean()) if len(precisions) else float("nan")


def rank_of_positive(pos_scores: np.ndarray, cand_scores: np.ndarray) -> np.ndarray:
    """0-based pessimistic rank of each row's positive among its candidate scores (n × c, NaN = excluded)."""
    higher = np.sum(cand_scores > pos_scores[:, None], axis=1)
    ties = np.sum(cand_scores == pos_scores[:, None], axis=1)
    return higher + ties


def hit_ratio(ranks: np.ndarray, k: int) -> float:
    return float(np.mean(ranks < k))


def ndcg(ranks: np.ndarray, k: int) -> float:
    gains = np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)
    return float(np.mean(gains))
