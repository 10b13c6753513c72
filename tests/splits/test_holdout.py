"""``random-<train>-<test>-v<valid>`` and ``<protocol>-d<D>``: parts disjoint and covering, seeded, nested training
fractions with test / validation / negatives unchanged, and malformed names refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.errors import ConfigError, UnknownNameError
from tasks.datasets import get_dataset
from tasks.splits import check_split, get_protocol, load_split, write_split
from tasks.splits.holdout import kept_rows

KEY = ["user_idx", "item_idx"]


@pytest.fixture
def ratings(ml100k_small: Path) -> tuple[pl.DataFrame, int]:
    t = get_dataset("ml-100k").parse(ml100k_small)
    return t.ratings, t.n_items


def _pairs(frame: pl.DataFrame) -> set[tuple[int, int]]:
    return set(frame.select(KEY).iter_rows())


def test_holdout_counts_cover_and_seeds(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    proto = get_protocol("random-90-10-v10")
    a, b, c = (proto.split(r, n_items, s) for s in (0, 0, 1))
    rep = check_split("random-90-10-v10-s0", r, a, proto)
    n = r.height
    assert rep["counts"] == {"train": n - round(0.1 * n) - round(0.09 * n), "valid": round(0.09 * n),
                             "test": round(0.1 * n)}  # fmt: skip
    for part in ("train", "valid", "test"):
        assert a.part(part).equals(b.part(part))
    assert not a.test.equals(c.test)
    assert a.info["seed"] == 0 and "10%" in str(a.info["validation"])


def test_holdout_test_part_does_not_depend_on_the_validation_share(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    v10 = get_protocol("random-90-10-v10").split(r, n_items, 4)
    v20 = get_protocol("random-90-10-v20").split(r, n_items, 4)
    assert v10.test.equals(v20.test)
    assert _pairs(v10.valid) < _pairs(v20.valid)  # the same order, a longer prefix


@pytest.mark.parametrize(
    "name",
    ["random-90-20-v10", "random-90-10-v0", "random-90-10-v100", "random-90-10-v010", "random-090-10-v10",
     "random-100-0-v10"],
)  # fmt: skip
def test_malformed_holdout_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match=r"split\.instances") as exc:
        get_protocol(name)
    assert "train + test = 100" in str(exc.value)


@pytest.mark.parametrize(
    "name", ["leave-one-out-d0", "leave-one-out-d101", "leave-one-out-d040", "random-90-10-v10-d40-d60"]
)
def test_malformed_fractions_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match=r"split\.instances") as exc:
        get_protocol(name)
    assert "-d<D>" in str(exc.value)


def test_unknown_names_list_the_patterns() -> None:
    for name in ("grouplens-u6", "temporal-d40", "random-90-10-x10"):
        with pytest.raises(UnknownNameError) as exc:
            get_protocol(name)
        assert "random-<train>-<test>-v<valid>" in exc.value.valid and "<protocol>-d<D>" in exc.value.valid
        assert "grouplens-u1" in exc.value.valid


@pytest.mark.parametrize("base", ["random-90-10-v10", "leave-one-out"])
def test_training_fractions_are_nested_and_keep_test_and_validation(ratings, base: str) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    full = get_protocol(base, 20).split(r, n_items, 2)
    trains = []
    for d in (40, 60, 80, 100):
        proto = get_protocol(f"{base}-d{d}", 20)
        res = proto.split(r, n_items, 2)
        rep = check_split(f"{base}-d{d}-s2", r, res, proto)  # disjoint, covering (unused counted), proportions
        assert res.unused is not None and rep["counts"]["unused"] == res.unused.height
        assert res.test.equals(full.test) and res.valid.equals(full.valid)
        if full.negatives is not None:
            assert res.negatives is not None and res.negatives.equals(full.negatives)
        assert _pairs(res.train) | _pairs(res.unused) == _pairs(full.train)
        assert res.info["train_fraction"] == d / 100 and res.info["protocol"] == f"{base}-d{d}"
        trains.append(_pairs(res.train))
    assert trains[0] < trains[1] < trains[2] <= trains[3] == _pairs(full.train)
    other = get_protocol(f"{base}-d40", 20).split(r, n_items, 3)
    assert _pairs(other.train) != trains[0]


def test_leave_one_out_fraction_keeps_a_share_of_every_user(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    full = get_protocol("leave-one-out", 20).split(r, n_items, 0)
    res = get_protocol("leave-one-out-d40", 20).split(r, n_items, 0)
    before = full.train.group_by("user_idx").len().sort("user_idx")
    after = res.train.group_by("user_idx").len().sort("user_idx")
    assert after["user_idx"].equals(before["user_idx"])  # no user lost its training part
    expected = np.maximum(1, np.floor(0.4 * before["len"].to_numpy() + 0.5)).astype(int)
    np.testing.assert_array_equal(after["len"].to_numpy(), expected)


def test_random_fraction_is_a_uniform_share_of_all_training_rows(ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    full = get_protocol("random-90-10-v10").split(r, n_items, 0)
    res = get_protocol("random-90-10-v10-d30").split(r, n_items, 0)
    assert res.train.height == (2 * 30 * full.train.height + 100) // 200


def test_kept_rows_by_hand() -> None:
    users = np.array([0, 0, 0, 0, 0, 1, 1, 2, 0, 1])  # user 0: 6 rows, user 1: 3, user 2: 1
    for pct, quota in ((10, (1, 1, 1)), (25, (2, 1, 1)), (50, (3, 2, 1)), (100, (6, 3, 1))):
        keep = kept_rows(users, pct, seed=7, per_user=True)
        assert tuple(np.bincount(users[keep], minlength=3)) == quota  # max(1, round half up(pct% of n_u))
    assert kept_rows(users, 25, seed=7, per_user=False).sum() == 3  # round half up(2.5)
    assert kept_rows(users, 24, seed=7, per_user=False).sum() == 2
    small = kept_rows(users, 30, seed=7, per_user=False)
    assert not (small & ~kept_rows(users, 70, seed=7, per_user=False)).any()  # nested


def test_unused_rows_round_trip_through_disk(tmp_path: Path, ratings) -> None:  # type: ignore[no-untyped-def]
    r, n_items = ratings
    proto = get_protocol("random-80-10-10-d50")
    res = proto.split(r, n_items, 0)
    write_split(tmp_path / "s", res, check_split("random-80-10-10-d50-s0", r, res, proto))
    back = load_split(tmp_path / "s")
    assert back.unused is not None and back.unused.equals(res.unused)
    assert back.info["train_fraction"] == 0.5 and back.info["counts"]["unused"] == res.unused.height  # type: ignore[index, union-attr]
