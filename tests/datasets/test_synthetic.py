"""Synthetic data: determinism, exact counts, canonical form, power-law popularity, a learnable signal in the
ratings and in the side features, the SPEC.json round trip, and speed at 1M ratings."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.errors import DataError
from tasks.datasets import get_dataset
from tasks.datasets.base import canonicalize
from tasks.datasets.synthetic import GENRES, SPEC_FILE, Synthetic, SyntheticImplicit, SyntheticSpec, generate
from tasks.features import bag_of_words

SMALL = SyntheticSpec(n_users=300, n_items=400, n_ratings=12_000, seed=3)


@pytest.fixture(scope="module")
def small():  # type: ignore[no-untyped-def]
    return generate(SMALL)


def test_deterministic_for_a_seed(small) -> None:  # type: ignore[no-untyped-def]
    again, _ = generate(SMALL)
    for name, frame in small[0].as_dict().items():
        assert frame.equals(again.as_dict()[name]), name
    other, _ = generate(SyntheticSpec(n_users=300, n_items=400, n_ratings=12_000, seed=4))
    assert not other.ratings.equals(small[0].ratings)


def test_exact_counts_and_canonical_form(small) -> None:  # type: ignore[no-untyped-def]
    t, _ = small
    r = t.ratings
    assert (t.n_users, t.n_items, r.height) == (300, 400, 12_000)
    assert r.schema == pl.Schema(
        {"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64}
    )
    assert r["user_idx"].n_unique() == 300 and r["item_idx"].n_unique() == 400  # every user and item rated
    assert r.select(pl.struct("user_idx", "item_idx").is_unique().all()).item()
    assert r.select(pl.struct("user_idx", "item_idx")).to_series().is_sorted()
    assert t.users["user_idx"].to_list() == list(range(300)) and t.items["item_idx"].to_list() == list(range(400))
    assert t.notes["users_listed_unrated"] == 0 and t.notes["spec"]["n_ratings"] == 12_000
    # exactly what canonicalize makes of the same ratings under their raw ids
    raw = (
        r.join(t.user_ids, on="user_idx")
        .join(t.item_ids, on="item_idx", suffix="_i")
        .select(pl.col("raw_id").alias("user_id"), pl.col("raw_id_i").alias("item_id"), "rating", "timestamp")
        .with_row_index("line", 1)
    )
    c = canonicalize(raw, None, None, ratings_file="x", scale=(1.0, 5.0))
    assert c.ratings.equals(r) and c.user_ids.equals(t.user_ids) and c.item_ids.equals(t.item_ids)


def test_ratings_scale_histogram_and_timestamps(small) -> None:  # type: ignore[no-untyped-def]
    r = small[0].ratings
    hist = dict(r.group_by("rating").len().iter_rows())
    assert set(hist) == {1.0, 2.0, 3.0, 4.0, 5.0}
    shares = np.array([hist[k] for k in (1.0, 2.0, 3.0, 4.0, 5.0)]) / r.height
    assert np.allclose(shares, SMALL.rating_histogram, atol=0.01)
    assert SMALL.t_start <= r["timestamp"].min() and r["timestamp"].max() < SMALL.t_end  # type: ignore[operator]


def test_power_law_popularity() -> None:
    t, _ = generate(SyntheticSpec(n_users=2000, n_items=5000, n_ratings=60_000, seed=1))
    per_item = np.sort(np.bincount(t.ratings["item_idx"].to_numpy()))[::-1]
    per_user = np.sort(np.bincount(t.ratings["user_idx"].to_numpy()))[::-1]
    assert per_item[:50].sum() / per_item.sum() > 0.15  # top 1% of items: > 15x their uniform share
    assert np.median(per_item) <= 0.5 * per_item.mean()  # long tail
    assert per_user[:20].sum() / per_user.sum() > 0.08
    assert per_item.min() >= 1 and per_user.min() >= 1


def test_ratings_follow_the_low_rank_signal(small) -> None:  # type: ignore[no-untyped-def]
    t, lat = small
    u, i = t.ratings["user_idx"].to_numpy(), t.ratings["item_idx"].to_numpy()
    truth = (lat.user_factors[u] * lat.item_factors[i]).sum(1) + lat.user_bias[u] + lat.item_bias[i]
    assert np.corrcoef(t.ratings["rating"].to_numpy(), truth)[0, 1] > 0.7


def test_signal_is_learnable_from_observed_data_and_side_features(small) -> None:  # type: ignore[no-untyped-def]
    t, lat = small
    # side features carry the item factor: the genres explain much of Q (primary genre = argmax of a projection)
    onehot = np.zeros((t.n_items, len(GENRES)))
    for row, genres in enumerate(t.items["genres"].to_list()):
        onehot[row, [GENRES.index(g) for g in genres]] = 1
    x = np.hstack([onehot, np.ones((t.n_items, 1))])
    coef, *_ = np.linalg.lstsq(x, lat.item_factors, rcond=None)
    r2 = 1 - ((lat.item_factors - x @ coef) ** 2).sum() / ((lat.item_factors - lat.item_factors.mean(0)) ** 2).sum()
    assert r2 > 0.3
    # ... and user side features carry the user factor (occupation = argmax of a projection)
    occ = t.users["occupation"].to_numpy()
    groups = [lat.user_factors[occ == o] for o in np.unique(occ)]
    within = sum(((g - g.mean(0)) ** 2).sum() for g in groups)
    assert within / ((lat.user_factors - lat.user_factors.mean(0)) ** 2).sum() < 0.85
    # from the observed ratings alone, a rank-8 ALS beats biases, which beat the global mean (held-out 20%)
    u, i = t.ratings["user_idx"].to_numpy(), t.ratings["item_idx"].to_numpy()
    r = t.ratings["rating"].to_numpy().astype(np.float64)
    test = np.arange(len(r)) % 5 == 0
    tr = ~test
    mu = r[tr].mean()
    bu, bi = np.zeros(t.n_users), np.zeros(t.n_items)
    for _ in range(10):
        bi = np.bincount(i[tr], r[tr] - mu - bu[u[tr]], t.n_items) / (np.bincount(i[tr], minlength=t.n_items) + 5)
        bu = np.bincount(u[tr], r[tr] - mu - bi[i[tr]], t.n_users) / (np.bincount(u[tr], minlength=t.n_users) + 5)
    res = r - mu - bu[u] - bi[i]
    k, lam = 8, 5.0
    rng = np.random.default_rng(0)
    p, q = rng.normal(0, 0.1, (t.n_users, k)), rng.normal(0, 0.1, (t.n_items, k))
    rows_u = [np.flatnonzero(tr & (u == x)) for x in range(t.n_users)]
    rows_i = [np.flatnonzero(tr & (i == x)) for x in range(t.n_items)]
    for _ in range(6):
        for x, rows in enumerate(rows_u):
            a = q[i[rows]]
            p[x] = np.linalg.solve(a.T @ a + lam * np.eye(k), a.T @ res[rows])
        for x, rows in enumerate(rows_i):
            a = p[u[rows]]
            q[x] = np.linalg.solve(a.T @ a + lam * np.eye(k), a.T @ res[rows])

    def rmse(pred: np.ndarray) -> float:
        return float(np.sqrt(((pred - r[test]) ** 2).mean()))

    base = mu + bu[u[test]] + bi[i[test]]
    rmse_mean, rmse_bias = rmse(np.full(test.sum(), mu)), rmse(base)
    rmse_als = rmse(base + (p[u[test]] * q[i[test]]).sum(1))
    assert rmse_bias < 0.95 * rmse_mean and rmse_als < 0.97 * rmse_bias, (rmse_mean, rmse_bias, rmse_als)


def test_side_tables_feed_the_bag_of_words(small) -> None:  # type: ignore[no-untyped-def]
    t, _ = small
    ds = get_dataset("synthetic")
    for table, idx, n, fields in ((t.users, "user_idx", 300, ds.user_side), (t.items, "item_idx", 400, ds.item_side)):
        assert {f.column for f in fields} <= set(table.columns)
        bow, vocab = bag_of_words(table, idx, n, fields, age_encoding="bucket")
        assert bow.shape == (n, len(vocab)) and bow.getnnz(axis=1).min() >= 2
    assert t.users["age"].dtype == pl.Int32 and set(t.users["gender"].unique()) == {"F", "M"}
    assert t.items["tags"].list.len().max() > 0 and t.items["genres"].list.len().min() >= 1


def test_implicit_variant() -> None:
    ds = get_dataset("synthetic-implicit")
    assert isinstance(ds, SyntheticImplicit) and ds.implicit and ds.rating_scale == (0.0, 1.0)
    t, _ = generate(SyntheticSpec(n_users=100, n_items=150, n_ratings=3000, implicit=True))
    assert t.ratings.height == 3000 and set(t.ratings["rating"].unique().to_list()) == {1.0}


# ---------------------------------------------------------------------------------------------- SPEC.json
def test_acquire_writes_spec_and_parse_regenerates(tmp_path: Path) -> None:
    ds = get_dataset("synthetic")
    dest = tmp_path / "data" / "synthetic"
    assert not ds.is_acquired(dest)
    res = ds.acquire(dest, None, 5)
    assert res.source == "generated" and ds.is_acquired(dest)
    spec = json.loads((dest / SPEC_FILE).read_text())
    assert spec == SyntheticSpec().to_dict() and spec["implicit"] is False
    t = ds.parse(dest)
    assert (t.n_users, t.n_items, t.ratings.height) == (1000, 1000, 50_000)
    assert (ds.expected.users, ds.expected.items, ds.expected.ratings) == ((1000, 1000), (1000, 1000), (50_000, 50_000))
    assert t.ratings.equals(generate(SyntheticSpec())[0].ratings)


def test_spec_overrides_from_source_dir(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / SPEC_FILE).write_text(json.dumps({"n_users": 120, "n_items": 90, "n_ratings": 2000, "seed": 7}))
    ds = get_dataset("synthetic")
    dest = tmp_path / "raw"
    assert "spec from" in ds.acquire(dest, src, 5).detail
    written = json.loads((dest / SPEC_FILE).read_text())
    assert (written["n_users"], written["seed"], written["rank"]) == (120, 7, SyntheticSpec().rank)
    t = get_dataset("synthetic").parse(dest)
    assert (t.n_users, t.n_items, t.ratings.height) == (120, 90, 2000)
    assert Synthetic().expected_for(dest).ratings == (2000, 2000)
    ds.acquire(tmp_path / "raw2", src / SPEC_FILE, 5)  # naming the JSON file itself works too
    assert json.loads((tmp_path / "raw2" / SPEC_FILE).read_text()) == written
    # editing SPEC.json in the raw dir changes the data
    written["n_ratings"] = 2500
    (dest / SPEC_FILE).write_text(json.dumps(written))
    assert get_dataset("synthetic").parse(dest).ratings.height == 2500


@pytest.mark.parametrize(
    ("content", "snippet"),
    [
        ({"n_user": 5}, "unknown synthetic spec keys ['n_user']"),
        ({"n_users": "many"}, "synthetic spec key 'n_users': expected int, found 'many'"),
        ({"implicit": 1}, "synthetic spec key 'implicit': expected bool"),
        ({"n_ratings": 10}, "n_ratings >= max(n_users, n_items)"),
        ({"n_ratings": 600_000}, "room to sample without replacement"),
        ({"rating_histogram": [0.5, 0.5]}, "rating_histogram: 5 positive shares"),
        ({"implicit": True}, "which is the dataset 'synthetic-implicit', not 'synthetic'"),
        ([1, 2], "synthetic spec must be a JSON object"),
    ],
)
def test_bad_spec_is_a_data_error_naming_the_file(tmp_path: Path, content: object, snippet: str) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / SPEC_FILE).write_text(json.dumps(content))
    with pytest.raises(DataError) as ei:
        get_dataset("synthetic").parse(raw)
    assert str(raw / SPEC_FILE) in str(ei.value) and snippet in str(ei.value)
    with pytest.raises(DataError, match="synthetic spec missing"):
        get_dataset("synthetic").parse(tmp_path / "nothing")


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / SPEC_FILE).write_text('{\n  "n_users": 10,\n  oops\n}\n')
    with pytest.raises(DataError) as ei:
        get_dataset("synthetic").parse(raw)
    assert ei.value.line == 3 and "not valid JSON" in str(ei.value)


# ---------------------------------------------------------------------------------------------- scale
def test_one_million_ratings_quickly() -> None:
    spec = SyntheticSpec(n_users=10_000, n_items=3_000, n_ratings=1_000_000, seed=1)
    start = time.perf_counter()
    t, _ = generate(spec)
    elapsed = time.perf_counter() - start
    assert (t.n_users, t.n_items, t.ratings.height) == (10_000, 3_000, 1_000_000)
    assert elapsed < 3.0, f"{elapsed:.2f} s for 1M ratings"
