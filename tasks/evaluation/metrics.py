"""Evaluation metrics as plain numpy functions.

* RMSE / MAE over test ratings (predictions clipped to the rating scale by the caller).
* precision@top-p% (NRP, Eq. 8): for each test user j with test items S_j, k_j = max(1, ceil(p·|S_j|));
  retrieved = the k_j items of S_j with the highest predicted rating (ties broken by the smaller item
  index; predictions are ranked unclipped); relevant = the k_j items of S_j with the highest TRUE rating.
  Integer ratings tie heavily and the paper does not say how it ordered them, so ``precision_at_top_p``
  returns the exact expectation over a uniformly random order of tied true ratings: an item rated above
  the k_j-th highest true rating is relevant, and each of the t items tied at that rating is relevant with
  probability m/t, where m is the number of relevant places left for them. precision_j = |relevant ∩
  retrieved| / k_j; the mean over test users. ``precision_at_top_p_ties`` is the generous variant where
  every item tied at the k_j-th true rating counts as relevant (reported as ``precision@p%_ties``).
* HR@K / NDCG@K from the 0-based rank of the held-out item among its candidates, where the rank counts
  candidates scored strictly higher plus those scored equal (pessimistic ties: a constant scorer gets no
  credit).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def rmse(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - p) ** 2)))


def mae(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y, np.float64) - p)))


def _precision(users: np.ndarray, items: np.ndarray, y: np.ndarray, p: np.ndarray, frac: float, ties: bool) -> float:
    users = np.asarray(users)
    order = np.lexsort((items, -np.asarray(p, np.float64), users))  # by user, predicted desc, item asc
    u_s, y_s = users[order], np.asarray(y, np.float64)[order]
    starts = np.flatnonzero(np.r_[True, u_s[1:] != u_s[:-1]])
    ends = np.r_[starts[1:], len(u_s)]
    precisions = np.empty(len(starts))
    for n, (a, b) in enumerate(zip(starts, ends, strict=True)):
        true = y_s[a:b]
        k = max(1, math.ceil(frac * (b - a) - 1e-9))
        threshold = np.sort(true)[::-1][k - 1]
        retrieved = true[:k]
        if ties:
            hits = float(np.count_nonzero(retrieved >= threshold))
        else:
            above = np.count_nonzero(true > threshold)
            tied = np.count_nonzero(true == threshold)
            hits = np.count_nonzero(retrieved > threshold) + np.count_nonzero(retrieved == threshold) * (
                (k - above) / tied
            )
        precisions[n] = hits / k
    return float(precisions.mean()) if len(precisions) else float("nan")


def precision_at_top_p(users: np.ndarray, items: np.ndarray, y: np.ndarray, p: np.ndarray, frac: float) -> float:
    """Mean over users of |relevant ∩ retrieved| / k_j, relevant = top k_j by true rating (random tie order)."""
    return _precision(users, items, y, p, frac, ties=False)


def precision_at_top_p_ties(users: np.ndarray, items: np.ndarray, y: np.ndarray, p: np.ndarray, frac: float) -> float:
    """As ``precision_at_top_p`` but every item tied at the k_j-th true rating counts as relevant."""
    return _precision(users, items, y, p, frac, ties=True)


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


# --- ranking over sets (torch, on the model's device) ------------------------------------------------


def relevant_positions(scores: torch.Tensor, relevant: torch.Tensor) -> torch.Tensor:
    """For each row, the items' relevance flags in ranked order (b × n bool).

    Rank order is by score descending; among tied scores the non-relevant items come first (the pessimistic
    tie rule: a tied rival always ranks ahead). NaN scores count as −inf. ``relevant``: b × n bool.
    """
    s = torch.nan_to_num(scores.float(), nan=-math.inf)
    perm = torch.argsort(relevant.to(torch.int8), dim=1, stable=True)  # non-relevant first
    order = torch.argsort(s.gather(1, perm), dim=1, descending=True, stable=True)
    return relevant.gather(1, perm).gather(1, order)


def set_ranking_metrics(ranked: torch.Tensor, ks: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """Per-row HR@K, NDCG@K, recall@K (hits / |relevant|), precision@K (hits / K) and MRR from
    ``relevant_positions``; rows without any relevant item must be removed by the caller."""
    n_rel = ranked.sum(1).float()
    width = ranked.shape[1]
    out: dict[str, torch.Tensor] = {}
    disc = 1.0 / torch.log2(torch.arange(width, device=ranked.device, dtype=torch.float64) + 2.0)
    rel = ranked.to(torch.float64)
    for k in ks:
        kk = min(k, width)
        hits = rel[:, :kk].sum(1)
        dcg = (rel[:, :kk] * disc[:kk]).sum(1)
        ideal = torch.cumsum(disc[:kk], 0)[(n_rel.clamp(max=kk) - 1).long().clamp(min=0)]
        out[f"hr@{k}"] = (hits > 0).double()
        out[f"ndcg@{k}"] = dcg / ideal
        out[f"recall@{k}"] = hits / n_rel.double()
        out[f"precision@{k}"] = hits / k
    first = ranked.to(torch.int8).argmax(1).double()
    out["mrr"] = 1.0 / (first + 1.0)
    return out


def mrr(ranks: np.ndarray) -> float:
    """Mean reciprocal rank of single positives from 0-based ranks."""
    return float(np.mean(1.0 / (np.asarray(ranks, np.float64) + 1.0)))
