"""Ranking metrics over sets of relevant items: known values, pessimistic ties, chunk-size invariance, and
agreement with the single-positive rank."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from tasks.evaluation.metrics import rank_of_positive, relevant_positions, set_ranking_metrics
from tasks.evaluation.ranking import full_ranking


def test_known_values_with_two_relevant_items() -> None:
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]])
    rel = torch.tensor([[False, True, False, True, False]])
    m = set_ranking_metrics(relevant_positions(scores, rel), (2, 4))
    assert float(m["hr@2"][0]) == 1.0
    assert float(m["recall@2"][0]) == 0.5 and float(m["precision@2"][0]) == 0.5
    ideal2 = 1 + 1 / math.log2(3)
    assert float(m["ndcg@2"][0]) == pytest.approx((1 / math.log2(3)) / ideal2)
    assert float(m["ndcg@4"][0]) == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / ideal2)
    assert float(m["mrr"][0]) == pytest.approx(0.5)


def test_ties_are_pessimistic() -> None:
    scores = torch.zeros(1, 6)  # a constant scorer gets no credit
    rel = torch.tensor([[True, False, False, False, False, True]])
    m = set_ranking_metrics(relevant_positions(scores, rel), (4,))
    assert float(m["hr@4"][0]) == 0.0 and float(m["mrr"][0]) == pytest.approx(1 / 5)


def test_single_positive_matches_rank_of_positive() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(40, 30)).astype(np.float64)  # many ties
    pos_col = rng.integers(0, 30, 40)
    rel = np.zeros_like(scores, dtype=bool)
    rel[np.arange(40), pos_col] = True
    ranked = relevant_positions(torch.as_tensor(scores), torch.as_tensor(rel))
    first = ranked.to(torch.int8).argmax(1).numpy()
    others = scores.copy()
    pos = scores[np.arange(40), pos_col]
    others[np.arange(40), pos_col] = np.nan
    np.testing.assert_array_equal(first, rank_of_positive(pos, others))


class _RandomScores(torch.nn.Module):
    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.table = torch.randint(0, 4, (n_users, n_items), generator=g).float()  # ties on purpose
        self.n_users, self.n_items, self.device = n_users, n_items, torch.device("cpu")

    def scoring(self):  # type: ignore[no-untyped-def]
        import contextlib

        return contextlib.nullcontext()

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users].clone()


def test_full_ranking_does_not_depend_on_the_chunk_size() -> None:
    rng = np.random.default_rng(1)
    n_users, n_items = 37, 25
    pairs = np.unique(rng.integers(0, n_users * n_items, 300))
    frame = pl.DataFrame({"user_idx": pairs // n_items, "item_idx": pairs % n_items}).cast(pl.Int32)
    relevant, known = frame[::3], frame.filter(pl.int_range(pl.len()) % 3 != 0)
    model = _RandomScores(n_users, n_items)
    a = full_ranking(model, relevant, known, (5, 10), chunk=4)  # type: ignore[arg-type]
    b = full_ranking(model, relevant, known, (5, 10), chunk=1000)  # type: ignore[arg-type]
    assert a == b
    assert a["n_users"] == relevant["user_idx"].n_unique()
    assert 0 < a["ndcg@10"] < 1 and 0 < a["recall@10"] <= 1
