"""Published splits (``predefined`` / ``predefined-corrected``), missing timestamps in leave-one-out, ragged
sampled ranking, candidate-only items, implicit weights: the machinery the DeepCF / GC-MC / HetRec datasets use."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.errors import ConfigError, DataError
from tasks.datasets.base import MISSING_TIMESTAMP, ExpectedCounts, canonicalize, index_pairs
from tasks.evaluation.ranking import sampled_ranking
from tasks.splits import check_split, get_protocol

N_ITEMS = 30


def loo_tables() -> tuple[pl.DataFrame, dict[str, pl.DataFrame]]:
    """4 users; user 3 has only a test row (no training); negatives hold the dataset quirks:
    user 0 lists its own test positive, user 1 a training positive, user 2 a repeated entry."""
    train = {0: [1, 2, 3, 4], 1: [2, 5, 6], 2: [7, 8], 3: []}
    test = {0: 10, 1: 11, 2: 12, 3: 13}
    rows = [(u, i, "train") for u, items in train.items() for i in items] + [(u, i, "test") for u, i in test.items()]
    ratings = pl.DataFrame(
        {
            "user_idx": [r[0] for r in rows],
            "item_idx": [r[1] for r in rows],
            "rating": [1.0] * len(rows),
            "timestamp": [MISSING_TIMESTAMP] * len(rows),
        },
        schema={"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64},
    ).sort(["user_idx", "item_idx"])
    predefined = pl.DataFrame(
        {"user_idx": [r[0] for r in rows], "item_idx": [r[1] for r in rows], "part": [r[2] for r in rows]},
        schema={"user_idx": pl.Int32, "item_idx": pl.Int32, "part": pl.Utf8},
    )
    neg = {0: [20, 21, 10, 22], 1: [20, 5, 21, 22], 2: [20, 21, 21, 22], 3: [20, 21, 22, 23]}
    negatives = pl.DataFrame(
        {"user_idx": [u for u, items in neg.items() for _ in items], "item_idx": [i for v in neg.values() for i in v]},
        schema={"user_idx": pl.Int32, "item_idx": pl.Int32},
    ).with_row_index("line", offset=1)
    return ratings, {"predefined": predefined, "negatives": negatives}


def per_user(df: pl.DataFrame) -> dict[int, list[int]]:
    return {u: list(items) for u, items in df.group_by("user_idx", maintain_order=True).agg("item_idx").iter_rows()}


def test_predefined_as_published_keeps_the_lists_but_counts_each_candidate_once() -> None:
    ratings, extras = loo_tables()
    proto = get_protocol("predefined")
    res = proto.split(ratings, N_ITEMS, 0, extras=extras)
    assert sorted(res.test.select("user_idx", "item_idx").iter_rows()) == [(0, 10), (1, 11), (2, 12), (3, 13)]
    # validation: one random training interaction per user with at least two; user 3 has none
    assert sorted(res.valid["user_idx"].to_list()) == [0, 1, 2]
    assert res.train.height + res.valid.height == 9
    neg = per_user(res.negatives)
    assert neg[0] == [20, 21, 22]  # the listed test positive counts once (it is the positive)
    assert neg[1] == [20, 5, 21, 22]  # a training positive stays, as published
    assert neg[2] == [20, 21, 22]  # a repeated entry counts once
    assert neg[3] == [20, 21, 22, 23]
    info = res.info
    assert info["listed_negatives"] == 16 and info["listed_negatives_equal_to_test_positive"] == 1
    assert info["listed_negatives_rated_by_user"] == 1 and info["listed_negatives_repeated"] == 1
    report = check_split("predefined-s0", ratings, res, proto)  # rated negatives are counted, not rejected
    assert report["negatives_rated_by_their_user"] == 1 and report["test_rows_with_cold_user"] == 1


def test_predefined_corrected_replaces_every_bad_entry_deterministically() -> None:
    ratings, extras = loo_tables()
    proto = get_protocol("predefined-corrected")
    a = proto.split(ratings, N_ITEMS, 3, extras=extras)
    b = proto.split(ratings, N_ITEMS, 3, extras=extras)
    assert a.negatives is not None and a.negatives.equals(b.negatives)  # type: ignore[arg-type]
    assert a.info["replaced_negatives"] == 3
    rated = {(u, i) for u, i in ratings.select("user_idx", "item_idx").iter_rows()}
    for u, items in per_user(a.negatives).items():
        assert len(items) == 4 and len(set(items)) == 4  # as many as listed, distinct
        assert not any((u, i) in rated for i in items)
    assert per_user(a.negatives)[3] == [20, 21, 22, 23]  # nothing to correct: untouched, in file order
    check_split("predefined-corrected-s3", ratings, a, proto)  # corrected negatives must be unrated


def test_predefined_fixed_partition_holds_out_a_tenth_of_train_for_validation() -> None:
    rng = np.random.default_rng(0)
    pairs = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, 20, 600), rng.integers(0, 40, 600), strict=True)})
    parts = ["test" if k % 10 == 0 else "train" for k in range(len(pairs))]
    ratings = pl.DataFrame(
        {"user_idx": [p[0] for p in pairs], "item_idx": [p[1] for p in pairs], "rating": 3.0, "timestamp": -1},
        schema={"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64},
    )
    predefined = ratings.select("user_idx", "item_idx").with_columns(pl.Series("part", parts))
    proto = get_protocol("predefined")
    res = proto.split(ratings, 40, 0, extras={"predefined": predefined})
    n_train = parts.count("train")
    assert res.test.height == parts.count("test") and res.valid.height == round(0.1 * n_train)
    assert res.negatives is None and "of the published training rows" in str(res.info["validation"])
    check_split("predefined-s0", ratings, res, proto)


def test_predefined_needs_a_published_split() -> None:
    ratings, _ = loo_tables()
    with pytest.raises(ConfigError, match=r"split\.instances"):
        get_protocol("predefined").split(ratings, N_ITEMS, 0, extras={})


def test_predefined_rejects_ratings_without_a_part_and_test_users_without_negatives() -> None:
    ratings, extras = loo_tables()
    with pytest.raises(DataError, match="ratings without a predefined part"):
        get_protocol("predefined").split(ratings, N_ITEMS, 0, extras={**extras, "predefined": extras["predefined"][1:]})
    fewer = extras["negatives"].filter(pl.col("user_idx") != 3)
    with pytest.raises(DataError, match="test users without listed negatives"):
        get_protocol("predefined").split(ratings, N_ITEMS, 0, extras={**extras, "negatives": fewer})


def test_leave_one_out_with_missing_timestamps_uses_latest_known_else_a_seeded_random_item() -> None:
    # user 0: two dated interactions and three undated → the latest dated one is the test item
    # users 1..40: no timestamps at all → a seeded random test item
    rows = [(0, 1, 100), (0, 2, 50), (0, 3, -1), (0, 4, -1), (0, 5, -1)]
    rows += [(u, i, -1) for u in range(1, 41) for i in range(6)]
    ratings = pl.DataFrame(
        {
            "user_idx": [r[0] for r in rows],
            "item_idx": [r[1] for r in rows],
            "rating": 1.0,
            "timestamp": [r[2] for r in rows],
        },
        schema={"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64},
    )
    proto = get_protocol("leave-one-out", loo_negatives=5)
    a, b, c = (proto.split(ratings, 50, s) for s in (0, 0, 1))
    assert a.test.filter(pl.col("user_idx") == 0)["item_idx"].to_list() == [1]
    assert a.test.equals(b.test) and not a.test.equals(c.test)  # seeded, and the seed matters
    picked = a.test.filter(pl.col("user_idx") > 0)["item_idx"].to_list()
    assert len(set(picked)) >= 4  # not a fixed rule such as "largest item_idx"
    assert "users without any timestamp get a seeded random test item" in str(a.info["ordering"])
    assert a.info["rows_without_timestamp"] == 243


class FixedScores:
    """A stand-in model whose score for (u, i) is a fixed table entry."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.table[users, items]


def test_sampled_ranking_with_different_numbers_of_negatives_per_user() -> None:
    scores = np.zeros((2, 10))
    scores[0] = [0, 9, 1, 2, 3, 0, 0, 0, 0, 0]  # user 0: positive 1 beats its 3 negatives → rank 0
    scores[1] = [5, 6, 7, 1, 0, 0, 0, 0, 0, 0]  # user 1: positive 3 loses to 2 of its 3 negatives → rank 2
    test = pl.DataFrame({"user_idx": [0, 1], "item_idx": [1, 3]}, schema={"user_idx": pl.Int32, "item_idx": pl.Int32})
    neg = pl.DataFrame(
        {"user_idx": [0, 0, 0, 1, 1], "item_idx": [2, 3, 4, 0, 1]}, schema={"user_idx": pl.Int32, "item_idx": pl.Int32}
    )
    out = sampled_ranking(FixedScores(scores), test, neg, 2)  # type: ignore[arg-type]
    assert out["hr@2"] == 0.5 and out["n_candidates"] == 4 and out["n_candidates_min"] == 3
    assert out["ndcg@2"] == pytest.approx(0.5)
    assert out["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    out1 = sampled_ranking(FixedScores(scores), test, neg, 3)  # type: ignore[arg-type]
    assert out1["hr@3"] == 1.0 and out1["ndcg@3"] == pytest.approx((1 + 1 / np.log2(4)) / 2)


def test_candidate_only_items_get_an_index_and_weights_are_kept() -> None:
    raw = pl.DataFrame(
        {"user_id": [10, 10, 11], "item_id": [5, 7, 5], "rating": 1.0, "timestamp": -1, "weight": [3.0, 1.0, 8.0]}
    ).with_row_index("line", offset=1)
    for ratings in (raw, raw.with_columns(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))):
        t = canonicalize(ratings, None, None, ratings_file="r.tsv", scale=(1.0, 1.0), extra_items=pl.Series([9, 5]))
        assert t.item_ids["raw_id"].to_list() == ["5", "7", "9"]
        assert t.ratings.columns == ["user_idx", "item_idx", "rating", "timestamp", "weight"]
        assert t.ratings["weight"].to_list() == [3.0, 1.0, 8.0] and t.ratings.schema["weight"] == pl.Float32
        pairs = pl.DataFrame({"user_id": ["11", "10"], "item_id": ["9", "7"], "line": [4, 5]})
        mapped = index_pairs(pairs, t, "x.negative")
        assert mapped.rows() == [(1, 2, 4), (0, 1, 5)]  # file order kept
        with pytest.raises(DataError, match=r"x\.negative, line 7: user_id '12' is not in the ratings"):
            index_pairs(pl.DataFrame({"user_id": ["12"], "item_id": ["9"], "line": [7]}), t, "x.negative")
        assert replace(t, negatives=mapped).as_dict().keys() >= {"ratings", "negatives"}


def test_a_published_split_dataset_runs_through_every_stage(tmp_path: Path) -> None:
    """DeepCF-format files → acquire → ingest → GX validation → features → predefined splits → train → evaluate:
    ranking metrics over the published candidates, no rating errors (implicit data)."""
    from tasks.acquire import acquire_dataset
    from tasks.common.config import load_params
    from tasks.common.paths import Layout
    from tasks.datasets import get_dataset
    from tasks.evaluation.evaluate import evaluate_run
    from tasks.features import build_features
    from tasks.ingest import ingest_dataset, load_tables
    from tasks.splits.stage import make_splits
    from tasks.training import RunId, train_run
    from tasks.validate import raise_on_failure, validate_tables
    from tests.conftest import small_params, write_params
    from tests.datasets.test_datasets_deepcf import write_deepcf

    rng = np.random.default_rng(0)
    train, test, negatives = [], [], []
    for u in range(30):
        items = [int(i) for i in rng.choice(60, 12, replace=False)]
        train += [(u, i, 5) for i in items[:11]]
        test.append((u, items[11], 4))
        neg = [int(i) for i in rng.choice([i for i in range(60) if i not in items], 20, replace=False)]
        if u == 0:
            neg[0] = items[11]  # the test positive among its own negatives
        if u == 1:
            neg[0] = items[0]  # a training positive listed as a negative
        negatives.append((u, items[11], neg))
    src = write_deepcf(tmp_path / "src", "AMusic", train=train, test=test, negatives=negatives)
    ds = "deepcf-amusic"
    raw = small_params(src, instances=["predefined-s0", "predefined-corrected-s0"], models=["biased-mf"])
    root = write_params(tmp_path / "proj", {**raw, "dataset": ds})
    layout, params = Layout(root), load_params(root / "params.yaml")
    acquire_dataset(layout, ds, params.acquire.source_dir, 5)
    stats = ingest_dataset(layout, ds)
    assert stats["listed_negatives"]["rows"] == 600 and stats["predefined_split"] == {"train": 330, "test": 30}
    t = load_tables(layout, ds)
    dataset = get_dataset(ds, raw_dir=layout.raw(ds))
    dataset.expected = ExpectedCounts((30, 30), (60, 60), (360, 360))  # type: ignore[misc]  # not AMusic's size
    raise_on_failure(validate_tables(t, dataset, None))
    build_features(dataset, t["users"], t["items"], 30, t["item_ids"].height, layout.features(ds),
                   age_encoding="raw", min_df=1, svd_k=8, seed=0)  # fmt: skip
    reports = {r["split_id"]: r for r in make_splits(layout, params, ds)}
    assert reports["predefined-s0"]["listed_negatives_equal_to_test_positive"] == 1
    assert reports["predefined-corrected-s0"]["replaced_negatives"] == 2
    for split_id, n_min in (("predefined-s0", 20), ("predefined-corrected-s0", 21)):
        run = RunId(ds, "biased-mf", split_id)
        train_run(layout, params, run, progress=lambda s: None)
        result = evaluate_run(layout, params, run)
        assert "rmse" not in result.metrics and 0.0 <= result.metrics["hr@10_sampled"] <= 1.0
        assert result.n_candidates == 21 and result.n_candidates_min == n_min
        assert result.negatives.startswith("as published" if split_id == "predefined-s0" else "corrected")
