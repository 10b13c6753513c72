"""Douban: the GC-MC 3000×3000 subset (``douban-gcmc``, a MATLAB v7.3 = HDF5 file) and the full Douban of Ma et al.
2011 (``douban``, text files): parsers on small files written in the exact published layouts, bad input, acquisition,
and the real ``training_test_dataset.mat`` from ../shared/datasets when present."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import tasks.datasets.douban as douban_mod
from tasks.acquire import verify
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.base import MISSING_TIMESTAMP
from tasks.datasets.douban import GCMC_SHA256, GCMC_URL, MAT_FILE, Douban, DoubanGCMC
from tests.conftest import go_offline

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
MAT_HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Feb 13 16:03:43 2017 HDF5 schema 1.00 ."

# ---------------------------------------------------------------------------------------------- writers
# A 6-user × 5-item matrix: user 4 and item 3 have no rating; (user, item, rating, part)
RATINGS = [
    (0, 0, 4, "train"),
    (0, 1, 5, "test"),
    (0, 4, 1, "train"),
    (1, 0, 3, "train"),
    (1, 2, 2, "train"),
    (2, 1, 4, "test"),
    (2, 4, 5, "train"),
    (3, 0, 1, "train"),
    (3, 2, 3, "test"),
    (5, 4, 2, "train"),
]
# friendships (symmetric), one with the unrated user 4, and a self-loop of user 5
FRIENDS = [(0, 1), (0, 2), (0, 4), (5, 5)]


def small_matrices() -> dict[str, np.ndarray]:
    m, tr, te = np.zeros((6, 5)), np.zeros((6, 5)), np.zeros((6, 5))
    for u, i, r, part in RATINGS:
        m[u, i] = r
        (tr if part == "train" else te)[u, i] = 1
    w = np.zeros((6, 6))
    for a, b in FRIENDS:
        w[a, b] = w[b, a] = 1
    return {"M": m, "Otraining": tr, "Otest": te, "W_users": w}


def write_mat(path: Path, mats: dict[str, np.ndarray], sparse: tuple[str, ...] = ()) -> Path:
    """A MAT-file v7.3 as MATLAB writes it: a 512-byte user block with the text header, then HDF5 where each dense
    matrix A (rows = users) is stored as A.T (column-major) and a sparse one as a group with data / ir / jc and
    the row count in the ``MATLAB_sparse`` attribute (the published file stores all four matrices dense)."""
    import h5py
    import scipy.sparse as sp

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, a in mats.items():
            if key in sparse:
                csc = sp.csc_matrix(a)
                g = f.create_group(key)
                g.attrs["MATLAB_class"] = np.bytes_(b"double")
                g.attrs["MATLAB_sparse"] = np.uint64(a.shape[0])
                g.create_dataset("data", data=csc.data.astype(np.float64))
                g.create_dataset("ir", data=csc.indices.astype(np.uint64))
                g.create_dataset("jc", data=csc.indptr.astype(np.uint64))
            else:
                ds = f.create_dataset(key, data=np.ascontiguousarray(np.asarray(a, dtype=np.float64).T))
                ds.attrs["MATLAB_class"] = np.bytes_(b"double")
    header = MAT_HEADER.ljust(116) + bytes(8) + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
    return path


def small_raw(dest: Path, sparse: tuple[str, ...] = (), **changes: np.ndarray) -> Path:
    mats = small_matrices()
    mats.update(changes)
    write_mat(dest / MAT_FILE, mats, sparse)
    return dest


# ---------------------------------------------------------------------------------------------- registry
def test_registered_with_their_public_spec() -> None:
    assert {"douban-gcmc", "douban"} <= set(dataset_names())
    g, d = get_dataset("douban-gcmc"), get_dataset("douban")
    assert isinstance(g, DoubanGCMC) and isinstance(d, Douban)
    for ds in (g, d):
        assert ds.rating_scale == (1.0, 5.0) and not ds.implicit and not ds.has_timestamps
        assert [(f.column, f.kind) for f in ds.user_side] == [("friends", "bag")] and ds.item_side == ()
        assert "timestamp" in ds.ordering_note
    assert g.predefined_split == "fixed" and d.predefined_split is None
    assert g.expected.ratings == (136_891, 136_891) and g.expected.items == (3_000, 3_000)
    assert g.expected.users == (2_999, 2_999)
    lo, hi = d.expected.ratings
    assert lo < 16_830_839 < hi and hi - lo < 0.05 * 16_830_839
    assert d.expected.users[0] < 129_490 < d.expected.users[1] and d.expected.items[0] < 58_541 < d.expected.items[1]
    assert GCMC_URL == "https://github.com/riannevdberg/gc-mc/raw/master/gcmc/data/douban/training_test_dataset.mat"
    assert GCMC_SHA256 == "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"


# ---------------------------------------------------------------------------------------------- douban-gcmc
def _friends_by_raw(tables) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    joined = tables.users.join(tables.user_ids, on="user_idx")
    return {r: sorted(f, key=int) for r, f in zip(joined["raw_id"], joined["friends"])}


def _check_small(tables) -> None:  # type: ignore[no-untyped-def]
    assert (tables.n_users, tables.n_items, tables.ratings.height) == (5, 4, 10)
    assert tables.user_ids["raw_id"].to_list() == ["0", "1", "2", "3", "5"]  # row index; user 4 unrated
    assert tables.item_ids["raw_id"].to_list() == ["0", "1", "2", "4"]  # column index; item 3 unrated
    assert (tables.ratings["timestamp"] == MISSING_TIMESTAMP).all()
    got = (
        tables.ratings.join(tables.user_ids.rename({"raw_id": "u"}), on="user_idx")
        .join(tables.item_ids.rename({"raw_id": "i"}), on="item_idx")
        .select(pl.col("u").cast(pl.Int64), pl.col("i").cast(pl.Int64), pl.col("rating").cast(pl.Int64))
        .sort("u", "i")
        .rows()
    )
    assert got == [(u, i, r) for u, i, r, _ in RATINGS]  # rows are users: the transpose is undone
    parts = (
        tables.predefined.join(tables.user_ids, on="user_idx")
        .join(tables.item_ids.rename({"raw_id": "i"}), on="item_idx")
        .select(pl.col("raw_id").cast(pl.Int64), pl.col("i").cast(pl.Int64), "part")
        .sort("raw_id", "i")
        .rows()
    )
    assert parts == [(u, i, p) for u, i, _, p in RATINGS]
    assert tables.predefined.columns == ["user_idx", "item_idx", "part"]
    assert _friends_by_raw(tables) == {"0": ["1", "2", "4"], "1": ["0"], "2": ["0"], "3": [], "5": []}
    n = tables.notes
    assert (n["predefined_train"], n["predefined_test"], n["m_nonzero_unmasked"]) == (7, 3, 0)
    assert (n["users_without_ratings"], n["items_without_ratings"], n["users_listed_unrated"]) == (1, 1, 1)
    assert (n["w_users_self_loops_dropped"], n["w_users_asymmetric_entries"], n["w_users_nonzero"]) == (1, 0, 7)


def test_parse_gcmc_small_dense(tmp_path: Path) -> None:
    _check_small(get_dataset("douban-gcmc").parse(small_raw(tmp_path / "raw")))


def test_parse_gcmc_matlab_sparse_matrices(tmp_path: Path) -> None:
    """MATLAB sparse matrices (ir/jc/data groups) are read as GC-MC reads them: no transpose, same tables."""
    dense = get_dataset("douban-gcmc").parse(small_raw(tmp_path / "dense"))
    for sparse in (("W_users",), ("M", "Otraining", "Otest", "W_users")):
        tables = get_dataset("douban-gcmc").parse(small_raw(tmp_path / "-".join(sparse), sparse))
        _check_small(tables)
        assert tables.ratings.equals(dense.ratings) and tables.predefined.sort("user_idx", "item_idx").equals(
            dense.predefined.sort("user_idx", "item_idx")
        )


def test_logical_masks_are_accepted(tmp_path: Path) -> None:
    import h5py

    raw = small_raw(tmp_path / "raw")
    mats = small_matrices()
    with h5py.File(raw / MAT_FILE, "r+") as f:
        for key in ("Otraining", "Otest"):
            del f[key]
            ds = f.create_dataset(key, data=mats[key].T.astype(np.uint8))
            ds.attrs["MATLAB_class"] = np.bytes_(b"logical")
    _check_small(get_dataset("douban-gcmc").parse(raw))


def test_rating_outside_both_masks_is_left_out_and_counted(tmp_path: Path) -> None:
    m = small_matrices()["M"]
    m[5, 0] = 3
    tables = get_dataset("douban-gcmc").parse(small_raw(tmp_path / "raw", M=m))
    assert tables.ratings.height == 10 and tables.notes["m_nonzero_unmasked"] == 1


def _raises(raw: Path) -> str:
    with pytest.raises(DataError) as ei:
        get_dataset("douban-gcmc").parse(raw)
    assert str(raw / MAT_FILE) in str(ei.value)
    return str(ei.value)


def test_missing_keys_are_named(tmp_path: Path) -> None:
    mats = small_matrices()
    del mats["W_users"], mats["Otest"]
    write_mat(tmp_path / "raw" / MAT_FILE, mats)
    msg = _raises(tmp_path / "raw")
    assert "missing MATLAB variable(s) ['Otest', 'W_users']" in msg and "'M', 'Otraining'" in msg


def test_not_hdf5_is_refused(tmp_path: Path) -> None:
    import scipy.io

    raw = tmp_path / "raw"
    raw.mkdir()
    scipy.io.savemat(raw / MAT_FILE, small_matrices())  # a MATLAB v5 MAT-file
    assert "a MATLAB v5 MAT-file" in _raises(raw) and "v7.3 (HDF5)" in _raises(raw)
    (raw / MAT_FILE).write_bytes(b"<html>404: Not Found</html>\n")
    assert "not an HDF5 file" in _raises(raw)
    (raw / MAT_FILE).unlink()
    assert "raw file missing" in _raises(raw)


def test_truncated_hdf5_is_a_data_error(tmp_path: Path) -> None:
    raw = small_raw(tmp_path / "raw")
    data = (raw / MAT_FILE).read_bytes()
    (raw / MAT_FILE).write_bytes(data[: len(data) // 2])
    _raises(raw)


@pytest.mark.parametrize(
    ("key", "shape", "needle"),
    [
        ("Otraining", (6, 4), "'Otraining': wrong shape (masks must have the shape of M): expected 6×5, found (6, 4)"),
        ("Otest", (5, 6), "'Otest': wrong shape"),
        ("W_users", (6, 5), "'W_users': wrong shape (users × users"),
    ],
)
def test_wrong_shapes(tmp_path: Path, key: str, shape: tuple[int, int], needle: str) -> None:
    assert needle in _raises(small_raw(tmp_path / "raw", **{key: np.zeros(shape)}))


@pytest.mark.parametrize(("value", "what"), [(6.0, "6.0"), (3.5, "3.5"), (-1.0, "-1.0"), (np.nan, "nan")])
def test_rating_outside_scale(tmp_path: Path, value: float, what: str) -> None:
    m = small_matrices()["M"]
    m[2, 4] = value
    msg = _raises(small_raw(tmp_path / "raw", M=m))
    assert "ratings outside 1–5 or not whole stars, the first at user 2, item 4 (0-based)" in msg
    assert f"found {what}" in msg


def test_bad_masks(tmp_path: Path) -> None:
    mats = small_matrices()
    te = mats["Otest"].copy()
    te[0, 0] = 1  # also in Otraining
    assert "Otraining and Otest overlap on 1 entries, the first at user 0, item 0" in _raises(
        small_raw(tmp_path / "a", Otest=te)
    )
    tr = mats["Otraining"].copy()
    tr[4, 3] = 1  # M is 0 there
    msg = _raises(small_raw(tmp_path / "b", Otraining=tr))
    assert "'Otraining': marks 1 entries where M is 0 (unknown), the first at user 4, item 3" in msg
    tr = mats["Otraining"].copy()
    tr[0, 0] = 2
    assert "'Otraining': not a 0/1 mask" in _raises(small_raw(tmp_path / "c", Otraining=tr))


# ---------------------------------------------------------------------------------------------- acquisition
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return go_offline(monkeypatch, tmp_path, douban_mod)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("sub", ["", "douban-gcmc", "douban"])
def test_gcmc_acquire_from_local(tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch, sub: str) -> None:
    src = small_raw(tmp_path / "src" / sub)
    monkeypatch.setattr(DoubanGCMC, "sha256", _sha(src / MAT_FILE))  # our small file stands in for the pinned one
    ds, dest = get_dataset("douban-gcmc"), tmp_path / "data" / "douban-gcmc"
    res = ds.acquire(dest, tmp_path / "src", 5)
    assert res.layout == "mat" and res.source == f"local directory {tmp_path / 'src'}" and ds.is_acquired(dest)
    _check_small(ds.parse(dest))
    shutil.rmtree(dest)
    assert ds.acquire(dest, src / MAT_FILE, 5).layout == "mat"  # the file itself named as the source


def test_gcmc_local_file_with_wrong_sha256_is_refused(tmp_path: Path, offline: Path) -> None:
    src = small_raw(tmp_path / "src")
    dest = tmp_path / "data" / "douban-gcmc"
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("douban-gcmc").acquire(dest, src, 5)
    assert f"sha256 mismatch: expected {GCMC_SHA256}, found {_sha(src / MAT_FILE)}" in str(ei.value)
    assert not dest.exists()


def test_gcmc_no_network_no_local_copy_says_what_to_download_where(tmp_path: Path, offline: Path) -> None:
    empty, dest = tmp_path / "empty", tmp_path / "data" / "douban-gcmc"
    empty.mkdir()
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("douban-gcmc").acquire(dest, empty, 5)
    msg = str(ei.value)
    assert f"local directory {empty}: {empty}: holds no {MAT_FILE}" in msg
    assert f"could not download {GCMC_URL}" in msg and "no network" in msg
    assert f"Download {GCMC_URL} (sha256 {GCMC_SHA256}) and put {MAT_FILE}" in msg
    assert "acquire.source_dir" in msg and str(dest) in msg and not dest.exists()


def test_gcmc_official_download_verified(tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    served = small_raw(tmp_path / "served") / MAT_FILE
    calls: list[str] = []

    def fake(url: str, dest: Path, checksum, timeout_s: float = 30.0) -> Path:  # type: ignore[no-untyped-def]
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(served, dest)
        verify(dest, checksum)
        return dest

    monkeypatch.setattr(douban_mod, "download", fake)
    dest = tmp_path / "data" / "douban-gcmc"
    with pytest.raises(AcquisitionError, match="sha256 mismatch"):  # the real pin ≠ our small file
        get_dataset("douban-gcmc").acquire(dest, None, 5)
    monkeypatch.setattr(DoubanGCMC, "sha256", _sha(served))
    res = get_dataset("douban-gcmc").acquire(dest, None, 5)
    assert res.source == GCMC_URL and calls == [GCMC_URL, GCMC_URL]
    assert (offline / "douban-gcmc" / MAT_FILE).is_file() and get_dataset("douban-gcmc").is_acquired(dest)


# ---------------------------------------------------------------------------------------------- douban (full)
def write_full(dest: Path, ratings: str = "uir.index", friends: str = "user_friend.txt", sep: str = "\t") -> Path:
    """Ma et al.'s text layout: ``user item rating`` and ``user friend [weight]`` lines."""
    dest.mkdir(parents=True, exist_ok=True)
    rows = [(u, 100 + i, 1 + (u * 7 + i) % 5) for u in range(1, 9) for i in range(u % 4, u % 4 + 5)]
    (dest / ratings).write_text("".join(f"{u}{sep}{i}{sep}{r}\n" for u, i, r in rows), encoding="ascii")
    links = [(1, 2, 1), (2, 1, 1), (1, 3, 1), (4, 4, 1), (5, 9, 1), (6, 7, 0), (3, 1, 1)]
    (dest / friends).write_text("".join(f"{a}{sep}{b}{sep}{w}\n" for a, b, w in links), encoding="ascii")
    return dest


def _friends(tables) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    return {k: v for k, v in _friends_by_raw(tables).items() if v}


def test_parse_full_small(tmp_path: Path) -> None:
    tables = get_dataset("douban").parse(write_full(tmp_path / "raw"))
    assert (tables.n_users, tables.n_items, tables.ratings.height) == (8, 8, 40)
    assert (tables.ratings["timestamp"] == MISSING_TIMESTAMP).all() and tables.predefined is None
    # mutual, each once; the self-link (4, 4) and the weight-0 line (6, 7) are not friendships; user 9 has no rating
    assert _friends(tables) == {"1": ["2", "3"], "2": ["1"], "3": ["1"], "5": ["9"]}
    assert tables.users.height == 8
    n = tables.notes
    assert (n["friend_lines"], n["friend_pairs"], n["friend_lines_repeating_a_pair"]) == (7, 3, 2)
    assert (n["friend_self_links_dropped"], n["friend_lines_weight_not_positive"]) == (1, 1)
    assert n["friend_file_users_without_ratings"] == 1 and n["rated_users_with_friends"] == 4


@pytest.mark.parametrize(
    ("ratings", "friends", "sep"),
    [("ratings.txt", "socialnet.txt", " "), ("uir.index", "friends.txt", "\t"), ("uir.index", "user_friend", " ")],
)
def test_full_file_names_and_separators(tmp_path: Path, ratings: str, friends: str, sep: str) -> None:
    ref = get_dataset("douban").parse(write_full(tmp_path / "ref"))
    tables = get_dataset("douban").parse(write_full(tmp_path / "raw", ratings, friends, sep))
    assert tables.ratings.equals(ref.ratings) and tables.users.equals(ref.users)
    assert tables.notes["ratings_file"] == ratings and tables.notes["friends_file"] == friends


def test_full_good_files_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Path, *args: object) -> pl.DataFrame:
        raise AssertionError(f"slow path taken for {path}")

    monkeypatch.setattr(douban_mod, "_slow_whitespace_table", boom)
    assert get_dataset("douban").parse(write_full(tmp_path / "raw")).ratings.height == 40


def test_full_irregular_whitespace_and_optional_weight(tmp_path: Path) -> None:
    ref = get_dataset("douban").parse(write_full(tmp_path / "ref"))
    raw = write_full(tmp_path / "raw")
    text = (raw / "uir.index").read_text().replace("\t", "  \t ")
    (raw / "uir.index").write_text("\n" + text.replace("\n", "\r\n", 3) + "\n\n")
    (raw / "user_friend.txt").write_text("1 2\n1\t3 1\n\n5  9\n6 7 0\n")
    tables = get_dataset("douban").parse(raw)
    assert tables.ratings.equals(ref.ratings)
    assert _friends(tables) == {"1": ["2", "3"], "2": ["1"], "3": ["1"], "5": ["9"]}


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("3 999", "wrong number of fields"),
        ("3 999 4 1288000000", "wrong number of fields"),
        ("3 999 four", "non-numeric or missing rating"),
        ("u3 999 4", "non-numeric or missing user_id"),
        ("3 999 6", "rating out of the dataset's scale: expected a rating in [1.0, 5.0], found 6.0"),
        ("3 999 0", "rating out of the dataset's scale"),
        ("3 999 2.5", "rating is not a whole star"),
        ("3 999 4\n3 999 5", "duplicate (user, item) pair (3, 999)"),
    ],
)
def test_full_bad_rating_line_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    raw = write_full(tmp_path / "raw", sep=" ")
    lines = (raw / "uir.index").read_text().splitlines()
    lines[6:6] = line.split("\n")
    (raw / "uir.index").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as ei:
        get_dataset("douban").parse(raw)
    where = 8 if needle.startswith("duplicate") else 7
    assert f"{raw / 'uir.index'}, line {where}: " in str(ei.value) and needle in str(ei.value)


@pytest.mark.parametrize(
    ("line", "needle"),
    [("1", "wrong number of fields"), ("1 x", "non-numeric or missing friend_id"), ("1 2 w", "non-numeric weight")],
)
def test_full_bad_friend_line_names_file_and_line(tmp_path: Path, line: str, needle: str) -> None:
    raw = write_full(tmp_path / "raw")
    (raw / "user_friend.txt").write_text(f"1 2\n{line}\n")
    with pytest.raises(DataError) as ei:
        get_dataset("douban").parse(raw)
    assert f"{raw / 'user_friend.txt'}, line 2: " in str(ei.value) and needle in str(ei.value)


def test_full_missing_files(tmp_path: Path) -> None:
    raw = write_full(tmp_path / "raw")
    (raw / "user_friend.txt").unlink()
    assert not get_dataset("douban").is_acquired(raw)
    with pytest.raises(DataError, match=re.escape("user_friend.txt or user_friend or socialnet.txt")):
        get_dataset("douban").parse(raw)
    (raw / "uir.index").write_text("")
    (raw / "friends.txt").write_text("1 2\n")
    with pytest.raises(DataError, match="no ratings"):
        get_dataset("douban").parse(raw)


def test_full_acquire_local_or_says_where_to_put_the_files(tmp_path: Path) -> None:
    ds, dest = get_dataset("douban"), tmp_path / "data" / "douban"
    write_full(tmp_path / "src" / "douban", "ratings.txt", "socialnet.txt")
    res = ds.acquire(dest, tmp_path / "src", 5)
    assert res.layout == "text" and sorted(p.name for p in dest.iterdir()) == ["ratings.txt", "socialnet.txt"]
    assert ds.parse(dest).ratings.height == 40
    empty = tmp_path / "empty"
    empty.mkdir()
    for source in (empty, None):
        with pytest.raises(AcquisitionError) as ei:
            ds.acquire(tmp_path / "data2", source, 5)
        msg = str(ei.value)
        assert "Recommender systems with social regularization" in msg and "WSDM 2011" in msg
        assert "no official download URL" in msg and "data/douban" in msg and str(tmp_path / "data2") in msg
        assert "uir.index or ratings.txt" in msg and "socialnet.txt" in msg
        assert (f"{empty}: holds no ratings file" in msg) == (source is not None)


# ---------------------------------------------------------------------------------------------- real data
def _shared_mat() -> Path:
    path = SHARED / "douban-gcmc"
    if not (path / MAT_FILE).is_file():
        pytest.skip("../shared/datasets/douban-gcmc not present")
    return path


@pytest.mark.realdata
def test_real_gcmc_counts_split_and_friends() -> None:
    raw = _shared_mat()
    assert _sha(raw / MAT_FILE) == GCMC_SHA256
    tables = get_dataset("douban-gcmc").parse(raw)
    assert tables.ratings.height == 136_891
    parts = dict(tables.predefined.group_by("part").len().iter_rows())
    assert parts == {"train": 123_202, "test": 13_689}
    assert (tables.n_users, tables.n_items) == (2_999, 3_000)
    assert tables.notes["users_without_ratings"] == 1 and tables.notes["items_without_ratings"] == 0
    assert tables.user_ids.filter(pl.col("raw_id") == "2997").is_empty()  # the one user without a rating
    hist = dict(tables.ratings.group_by("rating").len().iter_rows())
    assert hist == {1.0: 1_876, 2.0: 8_338, 3.0: 47_811, 4.0: 50_748, 5.0: 28_118}  # PROVENANCE.md
    # W_users: 2,690 nonzeros = 1,344 undirected pairs × 2 + 2 self-loops (dropped)
    assert tables.users["friends"].list.len().sum() == 2_688
    assert tables.notes["w_users_self_loops_dropped"] == 2 and tables.notes["w_users_asymmetric_entries"] == 0
    assert tables.notes["m_nonzero_unmasked"] == 0
