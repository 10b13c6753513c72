"""Side information: binary bag of words aligned with the indices, SVD Y = U_k Σ_k^{1/2}, real dims."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tasks.common.io import read_json
from tasks.datasets import get_dataset
from tasks.datasets.base import CanonicalTables
from tasks.features import (
    AGE_BUCKETS,
    PAPER_DIMS,
    bag_of_words,
    build_features,
    load_dims,
    load_side_info,
    svd_reduce,
)

DS = get_dataset("ml-100k")


@pytest.fixture
def small(ml100k_small: Path) -> CanonicalTables:
    return DS.parse(ml100k_small)


def _fields(vocab: list[str]) -> Counter[str]:
    return Counter(t.split("=", 1)[0] for t in vocab)


def _row_tokens(x, vocab: list[str], row: int) -> set[str]:  # type: ignore[no-untyped-def]
    return {vocab[j] for j in x[row].indices}


def test_user_bow_rows_aligned_binary_and_prefixed(small: CanonicalTables) -> None:
    shuffled = small.users.sample(fraction=1.0, shuffle=True, seed=3)  # table order must not matter
    assert not shuffled["user_idx"].is_sorted()
    x, vocab = bag_of_words(shuffled, "user_idx", small.n_users, DS.user_side)
    assert x.shape == (small.n_users, len(vocab))
    assert x.dtype == np.float32 and set(np.unique(x.data)) == {1.0}
    assert vocab == sorted(vocab) and len(set(vocab)) == len(vocab)
    assert set(_fields(vocab)) == {"age", "gender", "occupation", "zip"}
    users = small.users
    assert _fields(vocab) == {
        "age": users["age"].n_unique(),
        "gender": 2,
        "occupation": 4,
        "zip": users["zip"].n_unique(),
    }
    for row in users.iter_rows(named=True):
        expected = {
            f"age={row['age']}",
            f"gender={row['gender']}",
            f"occupation={row['occupation']}",
            f"zip={row['zip']}",
        }
        assert _row_tokens(x, vocab, row["user_idx"]) == expected
    assert (x.sum(axis=1) == 4).all()


def test_item_bow_title_words_and_genres(small: CanonicalTables) -> None:
    x, vocab = bag_of_words(small.items, "item_idx", small.n_items, DS.item_side)
    assert x.shape == (small.n_items, len(vocab))
    assert set(np.unique(x.data)) == {1.0}
    assert set(_fields(vocab)) == {"title", "genres"}
    idx = small.items.join(small.item_ids, on="item_idx").filter(pl.col("raw_id") == "1")["item_idx"][0]
    # "Café Movie 1 (1990)", genre Action: lower-cased unicode words, prefixed by field
    assert _row_tokens(x, vocab, idx) == {"title=café", "title=movie", "title=1", "title=1990", "genres=Action"}
    idx2 = small.items.join(small.item_ids, on="item_idx").filter(pl.col("raw_id") == "2")["item_idx"][0]
    assert _row_tokens(x, vocab, idx2) == {"title=movie", "title=number", "title=2", "title=1981", "genres=Adventure"}


def test_entities_missing_from_the_side_table_get_empty_rows(small: CanonicalTables) -> None:
    partial = small.users.filter(pl.col("user_idx") != 7)
    x, _ = bag_of_words(partial, "user_idx", small.n_users, DS.user_side)
    assert x.shape[0] == small.n_users
    assert x[7].nnz == 0 and x[6].nnz == 4 and x[8].nnz == 4


def test_age_bucket_encoding_gives_fewer_age_tokens(small: CanonicalTables) -> None:
    _, raw_vocab = bag_of_words(small.users, "user_idx", small.n_users, DS.user_side, age_encoding="raw")
    xb, vocab = bag_of_words(small.users, "user_idx", small.n_users, DS.user_side, age_encoding="bucket")
    raw_age, bucket_age = _fields(raw_vocab)["age"], _fields(vocab)["age"]
    assert bucket_age < raw_age
    assert raw_age == small.users["age"].n_unique() == 50  # ages 18..67
    labels = {label for _, _, label in AGE_BUCKETS}
    assert {t.removeprefix("age=") for t in vocab if t.startswith("age=")} == labels - {"under-18"}
    assert _fields(vocab) - Counter(age=bucket_age) == _fields(raw_vocab) - Counter(age=raw_age)
    assert (xb.sum(axis=1) == 4).all()


def test_build_features_writes_bow_vocab_svd_and_dims(small: CanonicalTables, tmp_path: Path) -> None:
    out = tmp_path / "features"
    out.mkdir()
    dims = build_features(
        DS, small.users, small.items, small.n_users, small.n_items, out, age_encoding="raw", min_df=1, svd_k=4, seed=0
    )
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "dims.json",
        "item_bow.npz",
        "item_bow_vocab.json",
        "item_svd.npy",
        "user_bow.npz",
        "user_bow_vocab.json",
        "user_svd.npy",
    ]  # no .tmp files left
    side = load_side_info(out)
    ub, uv = bag_of_words(small.users, "user_idx", small.n_users, DS.user_side)
    assert read_json(out / "user_bow_vocab.json") == uv
    assert (side.user_bow != ub).nnz == 0
    assert side.user_svd.shape == (small.n_users, 4) and side.item_svd.shape == (small.n_items, 4)
    assert side.item_bow.shape == (small.n_items, len(read_json(out / "item_bow_vocab.json")))
    assert load_dims(out) == dims
    assert dims["user_bow"] == len(uv) and dims["user_svd"] == 4
    assert dims["user_fields"] == dict(_fields(uv)) and dims["user_bow_nnz_per_row"] == 4.0
    assert dims["paper"] == PAPER_DIMS["ml-100k"]


def test_svd_reduce_is_u_sqrt_sigma(small: CanonicalTables) -> None:
    x, _ = bag_of_words(small.users, "user_idx", small.n_users, DS.user_side)
    k = 4
    xd = x.toarray().astype(np.float64)
    u, s, _ = np.linalg.svd(xd, full_matrices=False)
    assert s[k - 1] - s[k] > 1.0  # a clear gap: the top-k subspace is unique
    y = svd_reduce(x, k, seed=0)
    assert y.shape == (small.n_users, k) and y.dtype == np.float32
    y64 = y.astype(np.float64)
    gram = y64 @ y64.T
    # Y Yᵀ = U_k Σ_k U_kᵀ (the best rank-k approximation of (X Xᵀ)^{1/2}), so (Y Yᵀ)² = U_k Σ_k² U_kᵀ,
    # the best rank-k approximation of X Xᵀ.
    np.testing.assert_allclose(gram, (u[:, :k] * s[:k]) @ u[:, :k].T, atol=1e-4)
    np.testing.assert_allclose(gram @ gram, (u[:, :k] * s[:k] ** 2) @ u[:, :k].T, atol=1e-3)
    # columns orthogonal with squared norms σ_1..σ_k
    np.testing.assert_allclose(y64.T @ y64, np.diag(s[:k]), atol=1e-4)
    np.testing.assert_array_equal(svd_reduce(x, k, seed=0), y)  # deterministic
    assert svd_reduce(x, 10_000, seed=0).shape == (small.n_users, min(x.shape) - 1)  # k capped


# ------------------------------------------------------------------ real data
@pytest.fixture(scope="module")
def real(shared_ml100k: Path) -> CanonicalTables:
    return DS.parse(shared_ml100k)


@pytest.mark.realdata
def test_real_user_bow_dims(real: CanonicalTables) -> None:
    x, vocab = bag_of_words(real.users, "user_idx", real.n_users, DS.user_side)
    assert x.shape == (943, 879)
    assert _fields(vocab) == {"age": 61, "gender": 2, "occupation": 21, "zip": 795}
    assert (x.sum(axis=1) == 4).all()


@pytest.mark.realdata
def test_real_item_bow_dims(real: CanonicalTables) -> None:
    x, vocab = bag_of_words(real.items, "item_idx", real.n_items, DS.item_side)
    assert x.shape == (1682, 2478)
    assert _fields(vocab) == {"title": 2459, "genres": 19}
    toy_story = _row_tokens(x, vocab, 0)
    assert toy_story == {
        "title=toy",
        "title=story",
        "title=1995",
        "genres=Animation",
        "genres=Children's",
        "genres=Comedy",
    }


def test_bag_fields_count_occurrences_and_get_their_own_svd(tmp_path: Path) -> None:
    """A tag relation (CFN's T_ij = occurrences of tag j on item i) beside a binary multilabel field."""
    from tasks.datasets.base import AcquireResult, Dataset, ExpectedCounts, SideField
    from tasks.features import build_features, load_side_info

    class Tagged(Dataset):
        name = "tagged"
        rating_scale = (1.0, 5.0)
        expected = ExpectedCounts((1, 9), (1, 9), (1, 99))
        item_side = (SideField("genres", "multilabel"), SideField("tags", "bag"))

        def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
            raise NotImplementedError

        def parse(self, raw_dir: Path) -> CanonicalTables:
            raise NotImplementedError

    items = pl.DataFrame(
        {
            "item_idx": pl.Series([0, 1, 2, 3], dtype=pl.Int32),
            "genres": [["Drama", "Drama"], ["Comedy"], [], ["Drama"]],
            "tags": [["paris", "paris", "love"], ["space"], [], ["paris"]],
        }
    )
    users = pl.DataFrame({"user_idx": pl.Series([0], dtype=pl.Int32)})
    bow, vocab = bag_of_words(items, "item_idx", 4, Tagged.item_side)
    assert vocab == sorted(vocab) and set(vocab) == {
        "genres=Comedy", "genres=Drama", "tags=love", "tags=paris", "tags=space"
    }  # fmt: skip
    dense = bow.toarray()
    assert dense[0, vocab.index("genres=Drama")] == 1.0  # multilabel stays binary
    assert dense[0, vocab.index("tags=paris")] == 2.0 and dense[3, vocab.index("tags=paris")] == 1.0  # bag counts
    dims = build_features(Tagged(), users, items, 1, 4, tmp_path / "f", age_encoding="raw", min_df=1, svd_k=2, seed=0)
    assert dims["item_bow"] == 5 and dims["item_tags_svd"] == 2
    side = load_side_info(tmp_path / "f")
    tags = dense[:, [j for j, t in enumerate(vocab) if t.startswith("tags=")]]
    y = side.item_relations["tags"]
    assert y.shape == (4, 2) and side.user_relations == {}
    u, s, _ = np.linalg.svd(tags)  # Y = P_K' D_K'^{1/2}, so Y Yᵀ = P_K' D_K' P_K'ᵀ (sign-free)
    expected = (u[:, :2] * s[:2]) @ u[:, :2].T
    assert np.allclose(y @ y.T, expected, atol=1e-4)
