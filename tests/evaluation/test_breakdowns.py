"""Evaluation breakdowns: popularity quintiles (tie rule), user-activity buckets (right-closed), per-group RMSE and
means, cold counts, all against hand computations; and ``evaluate_test`` agreeing with the overall metrics."""

from __future__ import annotations

import contextlib
import math

import numpy as np
import polars as pl
import pytest
import torch

from models.common.context import TrainContext
from tasks.common.config import EvaluateParams
from tasks.common.manifest import DatasetManifest
from tasks.evaluation import breakdowns as bd
from tasks.evaluation.evaluate import evaluate_test, known_pairs, rating_metrics
from tasks.evaluation.ranking import full_ranking, sampled_ranking
from tasks.splits.base import SplitResult
from tasks.training.data import RunData


def test_popularity_groups_rank_items_by_training_count_ties_by_index() -> None:
    counts = [3, 0, 1, 1, 5, 0, 2, 2, 2, 4]
    train_items = np.repeat(np.arange(10), counts)
    group = bd.popularity_groups(train_items, 10)
    # ranked: 1,5 (0) | 2,3 (1) | 6,7 (2) | 8 (2), 0 (3) | 9 (4), 4 (5): two items per quintile
    np.testing.assert_array_equal(group, [3, 0, 1, 1, 4, 0, 2, 2, 3, 4])
    assert bd.popularity_labels() == ["0.0-0.2", "0.2-0.4", "0.4-0.6", "0.6-0.8", "0.8-1.0"]
    uneven = bd.popularity_groups(np.zeros(0, np.int64), 7)  # 7 items: sizes 2,1,2,1,1 by floor(rank*5/7)
    np.testing.assert_array_equal(np.bincount(uneven, minlength=5), [2, 1, 2, 1, 1])


def test_activity_buckets_are_right_closed() -> None:
    counts = [0, 1, 2, 5, 6, 10, 11, 100, 101]
    users = np.repeat(np.arange(len(counts)), counts)
    np.testing.assert_array_equal(bd.activity_buckets(users, len(counts)), [0, 0, 1, 1, 2, 2, 3, 6, 7])
    assert bd.activity_labels() == ["0-1", "1-5", "5-10", "10-20", "20-30", "30-50", "50-100", "100+"]
    assert bd.activity_labels((2, 4)) == ["0-2", "2-4", "4+"]


def test_rating_error_by_group_by_hand() -> None:
    rows = bd.rating_error_by_group(np.array([1.0, 2, 3, 4]), np.array([2.0, 2, 5, 4]), np.array([0, 0, 1, 1]), 3)
    assert rows[0] == {"n": 2, "rmse": pytest.approx(math.sqrt(0.5)), "mae": 0.5}
    assert rows[1] == {"n": 2, "rmse": pytest.approx(math.sqrt(2.0)), "mae": 1.0}
    assert rows[2] == {"n": 0, "rmse": None, "mae": None}


def test_popularity_table_by_hand() -> None:
    train_items = np.array([0, 0, 0, 1, 1, 2])  # counts 3, 2, 1, 0 over 4 items; 2 groups: {3, 2} and {1, 0}
    table = bd.popularity_table(train_items, 4, np.array([3, 0, 0]), np.array([4.0, 5, 3]), np.array([3.0, 4, 4]), 2)
    assert table[0] == {"group": "0.0-0.5", "n": 1, "rmse": 1.0, "mae": 1.0, "items": 2, "train_count_min": 0,
                        "train_count_max": 1}  # fmt: skip
    assert table[1]["n"] == 2 and table[1]["rmse"] == 1.0 and table[1]["train_count_min"] == 2


def test_mean_by_group_and_activity_table() -> None:
    out = bd.mean_by_group({"hr": np.array([1.0, 0, 1, 1])}, np.array([0, 0, 2, 2]), 3)
    assert out == [{"n": 2, "hr": 0.5}, {"n": 0, "hr": None}, {"n": 2, "hr": 1.0}]
    train_users = np.array([0, 1, 1, 1, 1, 1, 1])  # user 0: 1 row, user 1: 6 rows, user 2: none
    table = bd.activity_table(train_users, 3, np.array([0, 1, 2]), {"hr": np.array([1.0, 0.0, 1.0])}, (1, 5))
    assert table == [{"bucket": "0-1", "n": 2, "hr": 1.0}, {"bucket": "1-5", "n": 0, "hr": None},
                     {"bucket": "5+", "n": 1, "hr": 0.0}]  # fmt: skip


def test_cold_counts_by_hand() -> None:
    got = bd.cold_counts(np.array([0, 2, 2, 1]), np.array([2, 0, 1, 2]), np.array([0, 1]), np.array([0, 1]), 3, 3)
    assert got == {"test_rows": 4, "test_rows_with_cold_user": 2, "test_rows_with_cold_item": 2,
                   "test_rows_with_cold_user_or_item": 4, "test_users": 3, "cold_test_users": 1, "test_items": 3,
                   "cold_test_items": 1}  # fmt: skip


class _TableModel(torch.nn.Module):
    """Scores from a fixed users × items table (ties on purpose)."""

    def __init__(self, table: np.ndarray, task: str) -> None:
        super().__init__()
        self.table = torch.as_tensor(table, dtype=torch.float32)
        self.n_users, self.n_items = table.shape
        self.task, self.device = task, torch.device("cpu")

    def scoring(self):  # type: ignore[no-untyped-def]
        return contextlib.nullcontext()

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.table[users].clone()

    def predict(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        return self.table.numpy()[np.asarray(u), np.asarray(i)]


def _run_data(task: str, implicit: bool, seed: int = 0) -> tuple[RunData, _TableModel]:
    rng = np.random.default_rng(seed)
    n_users, n_items = 30, 40
    pairs = np.sort(rng.choice(n_users * n_items, 500, replace=False))
    frame = pl.DataFrame({"user_idx": pairs // n_items, "item_idx": pairs % n_items}).cast(pl.Int32)
    ratings = np.ones(len(pairs)) if implicit else rng.integers(1, 6, len(pairs)).astype(float)
    frame = frame.with_columns(pl.Series("rating", ratings, dtype=pl.Float32), pl.lit(0, pl.Int64).alias("timestamp"))
    part = rng.integers(0, 10, len(pairs))
    test = frame.filter(pl.Series(part == 0)).unique("user_idx", keep="first", maintain_order=True)
    rest = frame.join(test, on=["user_idx", "item_idx"], how="anti")
    train, valid = rest.filter(pl.int_range(pl.len()) % 7 != 0), rest.filter(pl.int_range(pl.len()) % 7 == 0)
    rated = set(frame.select("user_idx", "item_idx").iter_rows())
    neg = [(u, i) for u in test["user_idx"].to_list() for i in range(n_items) if (u, i) not in rated][: 8 * 1000]
    negatives = pl.DataFrame(neg, schema={"user_idx": pl.Int32, "item_idx": pl.Int32}, orient="row")
    scale = (1.0, 1.0) if implicit else (1.0, 5.0)
    manifest = DatasetManifest("tiny", scale, implicit, False, False, None, (), (), n_users, n_items, frame.height)
    ctx = TrainContext(n_users, n_items, train["user_idx"].to_numpy().astype(np.int64),
                       train["item_idx"].to_numpy().astype(np.int64), train["rating"].to_numpy(), scale,
                       implicit=implicit)  # fmt: skip
    split = SplitResult(train, valid, test, negatives=negatives)
    data = RunData(ctx, split, manifest, task, valid, test, ranking_protocol=True)
    return data, _TableModel(rng.integers(0, 6, (n_users, n_items)).astype(np.float32), task)


class _Params:
    evaluate = EvaluateParams(full_k=(5, 10))


def test_evaluate_test_breakdowns_agree_with_the_overall_metrics() -> None:
    data, model = _run_data("ranking", implicit=True)
    out = evaluate_test(model, data, _Params())  # type: ignore[arg-type]
    sampled = sampled_ranking(model, data.test, data.split.negatives, 10)  # type: ignore[arg-type]
    assert out.metrics["hr@10_sampled"] == sampled["hr@10"] and out.metrics["mrr_sampled"] == sampled["mrr"]
    full = full_ranking(model, data.test, data.known("train", "valid"), (5, 10))  # type: ignore[arg-type]
    assert out.metrics["ndcg@10_full"] == full["ndcg@10"] and out.metrics["recall@5_full"] == full["recall@5"]
    for kind, metric in (("sampled", "ndcg@10"), ("full", "hr@5")):
        table = out.breakdowns["ranking_by_user_activity"][kind]
        assert sum(row["n"] for row in table) == data.test.height
        weighted = sum(row["n"] * row[metric] for row in table if row["n"]) / data.test.height
        assert weighted == pytest.approx(out.metrics[f"{metric}_{kind}"])
    assert out.breakdowns["cold"]["test_rows"] == data.test.height
    assert "rating_by_item_popularity" not in out.breakdowns


def test_evaluate_test_rating_breakdowns_recompose_the_rmse() -> None:
    data, model = _run_data("rating", implicit=False, seed=1)
    data.ranking_protocol = False
    out = evaluate_test(model, data, _Params())  # type: ignore[arg-type]
    assert out.metrics["rmse"] == rating_metrics(model, data.test, (1.0, 5.0), (0.1, 0.25))["rmse"]  # type: ignore[arg-type]
    for key in ("rating_by_item_popularity", "rating_by_user_activity"):
        table = out.breakdowns[key]
        n = sum(row["n"] for row in table)
        assert n == data.test.height
        mse = sum(row["n"] * row["rmse"] ** 2 for row in table if row["n"]) / n
        assert math.sqrt(mse) == pytest.approx(out.metrics["rmse"])
    assert sum(row["items"] for row in out.breakdowns["rating_by_item_popularity"]) == model.n_items


def test_unused_training_rows_are_masked_in_full_ranking() -> None:
    data, _ = _run_data("ranking", implicit=True)
    unused = data.split.train.head(5)
    data.split = SplitResult(data.split.train.slice(5), data.split.valid, data.split.test, unused=unused)
    known = known_pairs(data)
    assert known.height == data.split.train.height + data.split.valid.height + 5
    assert unused.select("user_idx", "item_idx").join(known, on=["user_idx", "item_idx"], how="anti").is_empty()
