from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.errors import ConfigError, DataError, UnknownNameError
from tasks.datasets import get_dataset
from tasks.splits import check_split, get_protocol
from tasks.splits.base import SplitResult


@pytest.fixture
def ratings(ml100k_small: Path) -> tuple[pl.DataFrame, int]:
    t = get_dataset("ml-100k").parse(ml100k_small)
    return t.ratings, t.n_items


def test_random_split_is_deterministic_and_proportional(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    proto = get_protocol("random-80-10-10")
    a, b, c = proto.split(r, n_items, 0), proto.split(r, n_items, 0), proto.split(r, n_items, 1)
    for part in ("train", "valid", "test"):
        assert a.part(part).equals(b.part(part))
    assert not a.test.equals(c.test)
    report = check_split("random-80-10-10-s0", r, a, proto)
    assert report["counts"]["train"] == round(0.8 * r.height)
    assert sum(report["counts"].values()) == r.height


def test_leave_one_out_holds_out_latest_and_samples_unrated_negatives(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    proto = get_protocol("leave-one-out", loo_negatives=20)
    res = proto.split(r, n_items, 3)
    check_split("leave-one-out-s3", r, res, proto)
    latest = r.sort(["user_idx", "timestamp", "item_idx"]).group_by("user_idx").last()
    got = res.test.join(latest, on="user_idx", suffix="_latest")
    assert (got["item_idx"] == got["item_idx_latest"]).all()
    assert res.valid.height == r["user_idx"].n_unique()
    assert res.negatives is not None
    per_user = res.negatives.group_by("user_idx").len()
    assert (per_user["len"] == 20).all()
    assert res.negatives.join(r, on=["user_idx", "item_idx"], how="inner").is_empty()
    again = proto.split(r, n_items, 3)
    assert again.negatives is not None and again.negatives.equals(res.negatives)


def test_empty_test_set_is_refused(ratings) -> None:  # type: ignore[no-untyped-def]
    r, _ = ratings
    proto = get_protocol("random-80-10-10")
    bad = SplitResult(r, r.clear(), r.clear())
    with pytest.raises(DataError, match="empty test set"):
        check_split("random-80-10-10-s0", r, bad, proto)


def test_overlapping_parts_are_refused(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    proto = get_protocol("random-80-10-10")
    res = proto.split(r, n_items, 0)
    bad = SplitResult(res.train, res.valid, pl.concat([res.test, res.train.head(1)]))
    with pytest.raises(DataError, match="overlap"):
        check_split("random-80-10-10-s0", r, bad, proto)


def test_unknown_protocol_lists_valid_names() -> None:
    with pytest.raises(UnknownNameError, match="leave-one-out"):
        get_protocol("temporal-split")
    with pytest.raises(ConfigError):
        get_protocol("random-80-10-5")


def test_too_many_negatives_is_a_config_error(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    with pytest.raises(ConfigError, match="loo_negatives"):
        get_protocol("leave-one-out", loo_negatives=n_items).split(r, n_items, 0)


def test_real_ml100k_random_split_counts(shared_ml100k: Path) -> None:
    t = get_dataset("ml-100k").parse(shared_ml100k)
    res = get_protocol("random-80-10-10").split(t.ratings, t.n_items, 0)
    assert (res.train.height, res.valid.height, res.test.height) == (80_000, 10_000, 10_000)
    assert np.isclose(res.train["rating"].mean(), t.ratings["rating"].mean(), atol=0.02)
