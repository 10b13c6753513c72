"""Evaluation breakdowns over groups of items and users (pure numpy; ``evaluate.py`` writes them to
``artifacts/breakdowns/<dataset>/<model>/<split>.json`` beside, not inside, the metrics record).

* Item popularity (CFN Table 2: "RMSE computed by clusters of items sorted by the number of ratings … the first
  cluster contains the 20% of items with the lowest number of ratings"): every item of the dataset is ranked by its
  TRAINING count ascending, ties by the smaller item_idx first; group g of G holds the items of rank r with
  ``floor(r · G / n_items) == g`` (sizes differ by at most one). Items without a training rating are in group 0.
* User activity (NCAE Table 4: users "with the number of ratings in (1, 5] (except [0, 1] on the first cluster)"):
  a user's TRAINING count c falls in bucket 0 when ``c <= edges[0]``, bucket b when ``edges[b-1] < c <= edges[b]``,
  and the last bucket when ``c > edges[-1]``; labels ``0-1``, ``1-5``, …, ``100+``.
* Cold test rows: a user or item with no training row.

Groups without a test row report ``n = 0`` and ``None`` for their metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

ACTIVITY_EDGES: tuple[int, ...] = (1, 5, 10, 20, 30, 50, 100)
N_POPULARITY_GROUPS = 5
POPULARITY_RULE = (
    "items ranked by training count ascending (ties: smaller item_idx first), cut into equal groups by rank "
    "(floor(rank * G / n_items)); items without a training rating are in the first group"
)
ACTIVITY_RULE = "training interactions per user: [0, e0], (e0, e1], ..., (e_last, inf)"


def popularity_groups(train_items: np.ndarray, n_items: int, n_groups: int = N_POPULARITY_GROUPS) -> np.ndarray:
    """Group (0 = least popular … n_groups-1) of every item, by training count with the documented tie rule."""
    counts = np.bincount(np.asarray(train_items, np.int64), minlength=n_items)
    order = np.lexsort((np.arange(n_items), counts))
    group = np.empty(n_items, dtype=np.int64)
    group[order] = (np.arange(n_items, dtype=np.int64) * n_groups) // max(n_items, 1)
    return group


def popularity_labels(n_groups: int = N_POPULARITY_GROUPS) -> list[str]:
    """``0.0-0.2``, ``0.2-0.4``, … (fractions of the items, as CFN Table 2 labels them)."""
    return [f"{g / n_groups:.1f}-{(g + 1) / n_groups:.1f}" for g in range(n_groups)]


def activity_buckets(train_users: np.ndarray, n_users: int, edges: Sequence[int] = ACTIVITY_EDGES) -> np.ndarray:
    """Bucket of every user by training count: ``searchsorted(edges, c, side="left")`` (right-closed buckets)."""
    counts = np.bincount(np.asarray(train_users, np.int64), minlength=n_users)
    return np.searchsorted(np.asarray(edges), counts, side="left").astype(np.int64)


def activity_labels(edges: Sequence[int] = ACTIVITY_EDGES) -> list[str]:
    """``0-1``, ``1-5``, …, ``<last>+`` for ``len(edges) + 1`` buckets."""
    lows = (0, *edges[:-1])
    return [f"{lo}-{hi}" for lo, hi in zip(lows, edges, strict=True)] + [f"{edges[-1]}+"]


def _none_if_nan(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def rating_error_by_group(y: np.ndarray, pred: np.ndarray, group: np.ndarray, n_groups: int) -> list[dict]:
    """Per group of test rows: n, RMSE, MAE (``group``: the group of each test row)."""
    y64, p64 = np.asarray(y, np.float64), np.asarray(pred, np.float64)
    n = np.bincount(group, minlength=n_groups)
    sq = np.bincount(group, weights=(y64 - p64) ** 2, minlength=n_groups)
    ab = np.bincount(group, weights=np.abs(y64 - p64), minlength=n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        rmse, mae = np.sqrt(sq / n), ab / n
    return [{"n": int(n[g]), "rmse": _none_if_nan(rmse[g]), "mae": _none_if_nan(mae[g])} for g in range(n_groups)]


def mean_by_group(values: Mapping[str, np.ndarray], group: np.ndarray, n_groups: int) -> list[dict]:
    """Per group of rows: n and the mean of every per-row value (HR, NDCG … per test user)."""
    n = np.bincount(group, minlength=n_groups)
    out: list[dict] = [{"n": int(n[g])} for g in range(n_groups)]
    for name, v in values.items():
        s = np.bincount(group, weights=np.asarray(v, np.float64), minlength=n_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
        for g in range(n_groups):
            out[g][name] = _none_if_nan(mean[g])
    return out


def group_table(labels: Sequence[str], rows: list[dict], key: str) -> list[dict]:
    return [{key: label, **row} for label, row in zip(labels, rows, strict=True)]


def popularity_table(
    train_items: np.ndarray, n_items: int, test_items: np.ndarray, y: np.ndarray, pred: np.ndarray,
    n_groups: int = N_POPULARITY_GROUPS,
) -> list[dict]:  # fmt: skip
    """CFN Table 2: per popularity group, the items in it, their training-count range, and the test RMSE/MAE."""
    group = popularity_groups(train_items, n_items, n_groups)
    counts = np.bincount(np.asarray(train_items, np.int64), minlength=n_items)
    rows = rating_error_by_group(y, pred, group[np.asarray(test_items, np.int64)], n_groups)
    for g, row in enumerate(rows):
        members = counts[group == g]
        row["items"] = len(members)
        row["train_count_min"] = int(members.min()) if len(members) else None
        row["train_count_max"] = int(members.max()) if len(members) else None
    return group_table(popularity_labels(n_groups), rows, "group")


def activity_table(
    train_users: np.ndarray, n_users: int, row_users: np.ndarray, values: Mapping[str, np.ndarray],
    edges: Sequence[int] = ACTIVITY_EDGES,
) -> list[dict]:  # fmt: skip
    """NCAE Table 4: per user-activity bucket, the number of rows (test users) and the mean of each value."""
    bucket = activity_buckets(train_users, n_users, edges)[np.asarray(row_users, np.int64)]
    return group_table(activity_labels(edges), mean_by_group(values, bucket, len(edges) + 1), "bucket")


def cold_counts(
    test_users: np.ndarray, test_items: np.ndarray, train_users: np.ndarray, train_items: np.ndarray,
    n_users: int, n_items: int,
) -> dict[str, int]:  # fmt: skip
    """Test rows (and distinct test users / items) whose user or item has no training row."""
    warm_u = np.bincount(np.asarray(train_users, np.int64), minlength=n_users) > 0
    warm_i = np.bincount(np.asarray(train_items, np.int64), minlength=n_items) > 0
    tu, ti = np.asarray(test_users, np.int64), np.asarray(test_items, np.int64)
    cu, ci = ~warm_u[tu], ~warm_i[ti]
    return {
        "test_rows": len(tu),
        "test_rows_with_cold_user": int(cu.sum()),
        "test_rows_with_cold_item": int(ci.sum()),
        "test_rows_with_cold_user_or_item": int((cu | ci).sum()),
        "test_users": len(np.unique(tu)),
        "cold_test_users": len(np.unique(tu[cu])),
        "test_items": len(np.unique(ti)),
        "cold_test_items": len(np.unique(ti[ci])),
    }
