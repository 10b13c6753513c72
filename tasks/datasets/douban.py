"""Douban (Ma et al., WSDM 2011, "Recommender systems with social regularization"): movie ratings 1–5 plus the
users' friendship graph. Two registered datasets.

``douban-gcmc`` — the 3000×3000 subset of Monti, Bronstein & Bresson (NIPS 2017) that GC-MC (van den Berg,
Kipf & Welling, 2017) redistributes: one file ``training_test_dataset.mat``, a MATLAB v7.3 MAT-file (= HDF5, read
with ``h5py``) holding four 3000×3000 matrices: ``M`` (ratings, 0 = unknown), ``Otraining`` / ``Otest`` (0/1 masks
of the published split) and ``W_users`` (the user–user friendship graph). Each matrix is read as GC-MC's
``load_matlab_file`` reads it: a dense dataset is transposed back to MATLAB's orientation
(``np.asarray(ds).T``), a MATLAB sparse matrix (an HDF5 group with ``ir`` / ``jc`` / ``data`` and the row count
in the ``MATLAB_sparse`` attribute) is rebuilt as the column-compressed matrix it is. Rows are users, columns
items; raw ids are the 0-based row / column indices.

* ratings: every nonzero of ``M`` that ``Otraining`` or ``Otest`` marks (136,891 = 123,202 train + 13,689 test);
  no timestamps (``MISSING_TIMESTAMP``). A nonzero of ``M`` that neither mask marks is left out and counted in
  ``notes["m_nonzero_unmasked"]`` (0 in the published file).
* ``predefined``: part "train" where ``Otraining`` is set, "test" where ``Otest`` is set (a fixed partition).
* users side: ``friends`` (a ``bag``): the raw ids (as strings) of the nonzero columns of the user's row of
  ``W_users``, the diagonal (2 self-loops in the published file) left out and counted.
* Only users / items with at least one rating get an index: 2,999 users (user 2997 has no rating) and 3,000
  items; ``notes`` records how many of the matrix rows / columns have none.
* Errors (``DataError`` naming the file): not an HDF5 file (a MATLAB v5 file says so), a missing variable, a
  matrix of another shape than ``M`` (masks U×I, ``W_users`` U×U), a mask value other than 0/1, masks that overlap
  or mark an unknown (0) entry of ``M``, a rating outside 1–5 or not a whole star (with its 0-based position).

Acquisition: a local directory holding ``training_test_dataset.mat`` (directly, or under ``douban-gcmc/`` or
``douban/``; or the file itself named as the source) → the GC-MC repository's copy (sha256 pinned, from
``../shared/datasets/douban-gcmc/PROVENANCE.md``; both verified) → an error naming the URL and where to put it.

``douban`` — the full Douban of Ma et al. 2011 that CFN uses (129,490 users, 58,541 movies, 16,830,839 ratings
1–5, plus user friendships). No official URL with a checksum exists (the authors distributed it from their CUHK
data page), so the files must be placed by hand into ``data/douban`` (or a directory named by
``acquire.source_dir``, directly or under ``douban/``). Accepted file names, first match wins:

* ratings: ``uir.index`` or ``ratings.txt``: ``user_id item_id rating`` per line, whitespace- or tab-separated,
  integer ids, whole-star ratings 1–5;
* friendships: ``user_friend.txt``, ``user_friend``, ``socialnet.txt``, ``socialnet`` or ``friends.txt``:
  ``user_id friend_id`` per line, optionally followed by a numeric weight (a line with weight ≤ 0 is not a link:
  dropped and counted). Friendship is mutual: a pair listed in either direction (or both) makes each user a
  friend of the other once; self-links and repeated pairs are dropped and counted in ``notes``.

Users side: ``friends`` (``bag``), the friend ids as strings; a rated user without friends gets an empty list.
No timestamps. A bad line (wrong number of fields, a non-numeric id or rating, a rating outside 1–5 or not a
whole star, a repeated (user, item) pair) raises ``DataError`` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl

import tasks.acquire as acquire_mod
from tasks.acquire import Checksum, copy_files, download, staged_dir, try_sources, verify
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import register
from tasks.datasets._movielens_csv import check_rating_step
from tasks.datasets.base import (
    MISSING_TIMESTAMP,
    AcquireResult,
    CanonicalTables,
    Dataset,
    ExpectedCounts,
    SideField,
    canonicalize,
    index_pairs,
)
from tasks.datasets.rawio import clip, exc_summary, read_lines, split_fields, to_number

log = logging.getLogger(__name__)

SCALE = (1.0, 5.0)
NO_TIMESTAMP_NOTE = (
    "Douban ships no timestamps: every rating counts as undated, so leave-one-out picks a seeded random rating "
    "per user as its 'latest'"
)

# ---------------------------------------------------------------------------------------------- douban-gcmc
MAT_FILE = "training_test_dataset.mat"
GCMC_URL = "https://github.com/riannevdberg/gc-mc/raw/master/gcmc/data/douban/training_test_dataset.mat"
# ../shared/datasets/douban-gcmc/PROVENANCE.md: gc-mc @ 722f37dd, git blob 6621666438f4...; 2,778,554 bytes
GCMC_SHA256 = "1f4476321cbfe0f606e7e35d0695ca15447a1b0b2c811df130109b6cb9a067ae"
MAT_KEYS = ("M", "Otraining", "Otest", "W_users")
MAT_V5_MAGIC = b"MATLAB 5.0 MAT-file"


def _matrix_error(path: Path, key: str, message: str, **kw: Any) -> DataError:
    return DataError(path, f"MATLAB variable {key!r}: {message}", **kw)


def _read_matrix(obj: Any, path: Path, key: str) -> Any:
    """One MATLAB matrix in MATLAB's orientation: a dense ndarray (h5py's array transposed, as GC-MC does) or,
    for a MATLAB sparse matrix (group with ``ir``/``jc``/``data``), a ``scipy.sparse.csc_matrix``."""
    import h5py
    import scipy.sparse as sp

    if isinstance(obj, h5py.Group):
        if "jc" not in obj:
            raise _matrix_error(path, key, "an HDF5 group that is not a MATLAB sparse matrix (no 'jc')")
        jc = np.asarray(obj["jc"], dtype=np.int64).ravel()
        ir = np.asarray(obj["ir"], dtype=np.int64).ravel() if "ir" in obj else np.zeros(0, np.int64)
        data = np.asarray(obj["data"]).ravel() if "data" in obj else np.ones(len(ir))
        if data.dtype.kind not in "biuf":
            raise _matrix_error(
                path, key, "non-numeric sparse data", expected="a numeric matrix", found=str(data.dtype)
            )
        n_rows = obj.attrs.get("MATLAB_sparse")
        n_rows = int(np.asarray(n_rows).ravel()[0]) if n_rows is not None else (int(ir.max()) + 1 if len(ir) else 0)
        ok = (
            len(jc) >= 1
            and len(ir) == len(data)
            and jc[0] == 0
            and jc[-1] == len(ir)
            and bool(np.all(np.diff(jc) >= 0))
            and (len(ir) == 0 or (int(ir.min()) >= 0 and int(ir.max()) < n_rows))
        )
        if not ok:
            raise _matrix_error(
                path,
                key,
                "corrupt MATLAB sparse matrix",
                expected="ir/jc/data of a column-compressed matrix",
                found=f"{len(ir)} ir, {len(jc)} jc, {len(data)} data, {n_rows} rows",
            )
        return sp.csc_matrix((data.astype(np.float64), ir, jc), shape=(n_rows, len(jc) - 1))
    if not isinstance(obj, h5py.Dataset):
        raise _matrix_error(path, key, "not a matrix", expected="an HDF5 dataset or sparse group", found=type(obj))
    if obj.attrs.get("MATLAB_empty"):
        raise _matrix_error(path, key, "empty matrix", expected="a 2-D numeric matrix", found="[]")
    if obj.dtype.kind not in "biuf":
        raise _matrix_error(path, key, "non-numeric matrix", expected="a numeric matrix", found=str(obj.dtype))
    if obj.ndim != 2:
        raise _matrix_error(path, key, "not 2-D", expected="a 2-D matrix", found=f"shape {obj.shape}")
    return np.asarray(obj, dtype=np.float64).T


def read_mat(path: Path) -> dict[str, Any]:
    """The four matrices of a GC-MC/Monti MAT-file (v7.3 = HDF5), each as ``_read_matrix`` returns it."""
    import h5py

    if not path.is_file():
        raise DataError(path, "raw file missing", expected=f"{MAT_FILE} (MATLAB v7.3 / HDF5)", found="nothing")
    if not h5py.is_hdf5(path):
        with open(path, "rb") as fh:
            head = fh.read(128)
        if head.startswith(MAT_V5_MAGIC):
            what = "a MATLAB v5 MAT-file (saved with -v7 or older), not the v7.3 (HDF5) MAT-file GC-MC ships"
        else:
            what = "not an HDF5 file (a MATLAB v7.3 MAT-file is HDF5)"
        raise DataError(path, what, expected="a MATLAB v7.3 (HDF5) MAT-file", found=head[:40])
    try:
        fh5 = h5py.File(path, "r")
    except OSError as exc:
        raise DataError(path, f"unreadable HDF5 file: {exc_summary(exc)}") from exc
    with fh5:
        try:
            return _read_matrices(fh5, path)
        except (OSError, KeyError, RuntimeError, ValueError, TypeError) as exc:  # h5py on a corrupt file
            raise DataError(path, f"unreadable HDF5 data: {exc_summary(exc)}") from exc


def _read_matrices(fh5: Any, path: Path) -> dict[str, Any]:
    missing = [k for k in MAT_KEYS if k not in fh5]
    if missing:
        raise DataError(
            path,
            f"missing MATLAB variable(s) {missing}",
            expected=f"variables {list(MAT_KEYS)}",
            found=clip(sorted(k for k in fh5 if not k.startswith("#"))),
        )
    return {k: _read_matrix(fh5[k], path, k) for k in MAT_KEYS}


def _nonzeros(mat: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the nonzero entries (NaN counts as nonzero), in row-major order."""
    if isinstance(mat, np.ndarray):
        r, c = np.nonzero(mat)
        return r.astype(np.int64), c.astype(np.int64), mat[r, c]
    coo = mat.tocoo()
    keep = coo.data != 0
    r, c, v = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    order = np.lexsort((c, r))
    return r[order], c[order], v[order]


def _check_shape(path: Path, key: str, found: tuple[int, ...], expected: tuple[int, int], why: str) -> None:
    if tuple(found) != expected:
        raise _matrix_error(path, key, f"wrong shape ({why})", expected=f"{expected[0]}×{expected[1]}", found=found)


def _mask_keys(path: Path, key: str, mat: Any, n_items: int) -> np.ndarray:
    r, c, v = _nonzeros(mat)
    bad = np.flatnonzero(v != 1)
    if len(bad):
        k = bad[0]
        raise _matrix_error(
            path,
            key,
            f"not a 0/1 mask: {len(bad)} entries hold another value, the first at user {r[k]}, item {c[k]} (0-based)",
            expected="0 or 1",
            found=float(v[k]),
        )
    return r * n_items + c


def parse_gcmc(path: Path) -> CanonicalTables:
    """``training_test_dataset.mat`` → canonical tables with ``predefined`` and the users' ``friends``."""
    mats = read_mat(path)
    m = mats["M"]
    n_u, n_i = m.shape
    for key in ("Otraining", "Otest"):
        _check_shape(path, key, mats[key].shape, (n_u, n_i), "masks must have the shape of M")
    _check_shape(path, "W_users", mats["W_users"].shape, (n_u, n_u), "users × users, as many users as rows of M")

    mr, mc, mv = _nonzeros(m)
    bad = np.flatnonzero(~((mv >= SCALE[0]) & (mv <= SCALE[1]) & (np.round(mv) == mv)))
    if len(bad):
        k = bad[0]
        raise _matrix_error(
            path,
            "M",
            f"{len(bad)} ratings outside 1–5 or not whole stars, the first at user {mr[k]}, item {mc[k]} (0-based)",
            expected="a whole-star rating in [1, 5] (0 = unknown)",
            found=float(mv[k]),
        )
    km = mr * n_i + mc
    ktr, kte = _mask_keys(path, "Otraining", mats["Otraining"], n_i), _mask_keys(path, "Otest", mats["Otest"], n_i)
    both = np.intersect1d(ktr, kte)
    if len(both):
        raise DataError(
            path,
            f"Otraining and Otest overlap on {len(both)} entries, the first at user {both[0] // n_i}, "
            f"item {both[0] % n_i} (0-based)",
            expected="disjoint train / test masks",
            found=len(both),
        )
    for key, keys in (("Otraining", ktr), ("Otest", kte)):
        unknown = np.setdiff1d(keys, km)
        if len(unknown):
            raise _matrix_error(
                path,
                key,
                f"marks {len(unknown)} entries where M is 0 (unknown), the first at user {unknown[0] // n_i}, "
                f"item {unknown[0] % n_i} (0-based)",
                expected="a mask only on ratings of M",
                found=len(unknown),
            )
    in_train, in_test = np.isin(km, ktr), np.isin(km, kte)
    used = in_train | in_test
    ratings = pl.DataFrame(
        {
            "user_id": mr[used],
            "item_id": mc[used],
            "rating": mv[used],
            "timestamp": pl.Series(np.full(int(used.sum()), MISSING_TIMESTAMP, dtype=np.int64)),
            "line": np.arange(1, int(used.sum()) + 1, dtype=np.int64),  # row-major position among the ratings
        }
    )
    if ratings.is_empty():
        raise _matrix_error(path, "M", "no rating marked by Otraining or Otest", expected="at least one", found=0)
    users, friend_notes = _gcmc_friends(path, mats["W_users"], n_u)
    tables = canonicalize(ratings, users, None, ratings_file=path, scale=SCALE)
    parts = pl.DataFrame(
        {
            "user_id": mr[used],
            "item_id": mc[used],
            "part": np.where(in_train[used], "train", "test"),
        }
    )
    predefined = index_pairs(parts, tables, path)
    tables.notes.update(
        raw_layout="gcmc-mat-v7.3",
        matrix_shape=[int(n_u), int(n_i)],
        m_nonzero=len(km),
        m_nonzero_unmasked=int((~used).sum()),
        predefined_train=int(in_train.sum()),
        predefined_test=int(in_test.sum()),
        users_without_ratings=int(n_u - tables.n_users),
        items_without_ratings=int(n_i - tables.n_items),
        **friend_notes,
    )
    return dataclasses.replace(tables, predefined=predefined)


def _gcmc_friends(path: Path, w: Any, n_users: int) -> tuple[pl.DataFrame, dict[str, object]]:
    """users table (every row of the matrix) with ``friends``: the nonzero columns of the user's row of W."""
    r, c, v = _nonzeros(w)
    if not np.all(np.isfinite(v)):
        k = np.flatnonzero(~np.isfinite(v))[0]
        raise _matrix_error(
            path, "W_users", f"non-finite weight at user {r[k]}, user {c[k]} (0-based)", expected="finite", found=v[k]
        )
    keys = r * n_users + c
    notes: dict[str, object] = {
        "w_users_nonzero": len(v),
        "w_users_self_loops_dropped": int((r == c).sum()),
        "w_users_asymmetric_entries": int((~np.isin(c * n_users + r, keys)).sum()),
        "w_users_non_binary_entries": int((v != 1).sum()),
    }
    off = r != c
    edges = pl.DataFrame({"user_id": r[off], "friend": c[off]})
    notes["users_with_friends"] = edges["user_id"].n_unique()
    friends = edges.group_by("user_id").agg(pl.col("friend").sort().cast(pl.Utf8).alias("friends"))
    users = (
        pl.DataFrame({"user_id": np.arange(n_users, dtype=np.int64)})
        .join(friends, on="user_id", how="left")
        .with_columns(pl.col("friends").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))))
    )
    return users, notes


@register
class DoubanGCMC(Dataset):
    name = "douban-gcmc"
    rating_scale = SCALE
    # the published file exactly: 3000×3000 matrix, but user 2997 has no rating, so 2,999 users get an index
    expected = ExpectedCounts(users=(2_999, 2_999), items=(3_000, 3_000), ratings=(136_891, 136_891))
    user_side = (SideField("friends", "bag"),)
    has_timestamps = False
    predefined_split = "fixed"
    ordering_note = NO_TIMESTAMP_NOTE

    url: ClassVar[str] = GCMC_URL
    sha256: ClassVar[str] = GCMC_SHA256
    folders: ClassVar[tuple[str, ...]] = ("douban-gcmc", "douban")

    def is_acquired(self, raw_dir: Path) -> bool:
        return (raw_dir / MAT_FILE).is_file()

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        attempts = []
        if source_dir is not None:
            attempts.append((f"local directory {source_dir}", lambda: self._from_local(Path(source_dir), dest)))
        attempts.append((self.url, lambda: self._from_official(dest, timeout_s)))
        how = (
            f"Download {self.url} (sha256 {self.sha256}) and put {MAT_FILE} into a directory named by "
            f"acquire.source_dir (or HYBRIDREC_SOURCE_DIR), directly or under {' or '.join(self.folders)}/; "
            f"or put it into {dest}."
        )
        label, layout = try_sources(self.name, attempts, how)
        return AcquireResult(dest, label, str(layout))

    def _from_local(self, source_dir: Path, dest: Path) -> str:
        cands = [source_dir] if source_dir.is_file() else [source_dir / MAT_FILE]
        cands += [source_dir / f / MAT_FILE for f in self.folders]
        for cand in cands:
            if cand.is_file():
                verify(cand, Checksum("sha256", self.sha256))
                _copy_as(cand, dest, MAT_FILE, Checksum("sha256", self.sha256))
                return "mat"
        raise AcquisitionError(
            f"{source_dir}: holds no {MAT_FILE} (directly or under {' or '.join(f + '/' for f in self.folders)})"
        )

    def _from_official(self, dest: Path, timeout_s: float) -> str:
        target = Path(acquire_mod.DEFAULT_CACHE) / self.name / MAT_FILE
        checksum = Checksum("sha256", self.sha256)
        _copy_as(download(self.url, target, checksum, timeout_s), dest, MAT_FILE, checksum)
        return "mat"

    def parse(self, raw_dir: Path) -> CanonicalTables:
        return parse_gcmc(raw_dir / MAT_FILE)


def _copy_as(src: Path, dest: Path, name: str, checksum: Checksum) -> None:
    """Copy ``src`` into ``dest`` as ``name``; the copy is verified before it replaces ``dest``."""
    with staged_dir(dest, (name,), {name: checksum}, origin=src) as tmp:
        shutil.copyfile(src, tmp / name)


# ---------------------------------------------------------------------------------------------- douban (full)
RATING_FILES = ("uir.index", "ratings.txt")
FRIEND_FILES = ("user_friend.txt", "user_friend", "socialnet.txt", "socialnet", "friends.txt")
PAPER = 'H. Ma et al., "Recommender systems with social regularization", WSDM 2011'
# where the authors distributed it; the address has moved over the years and no checksum was published
PAPER_DATA_PAGE = "the authors' Douban data page at CUHK (Irwin King's group)"
FULL_COUNTS = (129_490, 58_541, 16_830_839)  # Ma et al. 2011 / CFN (Strub et al. 2016): users, items, ratings


def _bounds(n: int, rel: float = 0.02) -> tuple[int, int]:
    return int(n * (1 - rel)), int(n * (1 + rel)) + 1


def _first(raw_dir: Path, names: tuple[str, ...]) -> Path | None:
    return next((raw_dir / n for n in names if (raw_dir / n).is_file()), None)


def read_whitespace_table(
    path: Path, names: list[str], dtypes: dict[str, pl.DataType], *, min_fields: int | None = None
) -> pl.DataFrame:
    """Whitespace- or tab-separated numeric columns → ``names`` (cast to ``dtypes``) plus the 1-based ``line``.

    Fast path: one typed ``pl.read_csv`` with the separator of the first line (tab, else space); used only when it
    yields exactly one row per line without nulls. Anything else (runs of spaces, blank lines, CRLF, a bad row)
    takes the line-checked path, which names the file and line of the first bad row.
    """
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    data = path.read_bytes()
    first = data[: data.find(b"\n")] if b"\n" in data else data
    sep = "\t" if b"\t" in first else " "
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    lo = len(names) if min_fields is None else min_fields
    for n in range(len(names), lo - 1, -1):  # with optional trailing columns: the longest layout first
        cols = names[:n]
        try:
            df = pl.read_csv(
                data, separator=sep, has_header=False, quote_char=None, schema={c: dtypes[c] for c in cols}
            )
        except (pl.exceptions.PolarsError, OSError):
            continue
        if df.height == n_lines and df.height > 0 and all(df[c].null_count() == 0 for c in cols):
            extra = [pl.lit(None, dtype=dtypes[c]).alias(c) for c in names[n:]]
            return df.with_columns(*extra, pl.int_range(1, df.height + 1, dtype=pl.Int64).alias("line")).select(
                *names, "line"
            )
    del data
    return _slow_whitespace_table(path, names, dtypes, lo)


def _slow_whitespace_table(path: Path, names: list[str], dtypes: dict[str, pl.DataType], lo: int) -> pl.DataFrame:
    """The line-checked reader: runs of blanks/tabs separate fields; the first bad line raises ``DataError``."""
    lines = read_lines(path).with_columns(pl.col("raw").str.strip_chars().str.replace_all(r"\s+", "\t"))
    df = split_fields(lines, path, "\t", names, min_fields=lo)
    for k, c in enumerate(names):
        if k < lo:
            df = to_number(df, path, c, dtypes[c])
            continue
        cast = df[c].str.strip_chars().cast(dtypes[c], strict=False)  # optional: absent (null) is fine
        bad = df.filter(cast.is_null() & df[c].is_not_null())
        if not bad.is_empty():
            row = bad.row(0, named=True)
            raise DataError(
                path, f"non-numeric {c}", line=int(row["line"]), expected=f"a {dtypes[c]} value", found=clip(row[c])
            )
        df = df.with_columns(cast.alias(c))
    return df.select(*names, "line")


def read_full_ratings(path: Path) -> pl.DataFrame:
    ratings = read_whitespace_table(
        path, ["user_id", "item_id", "rating"], {"user_id": pl.Int64(), "item_id": pl.Int64(), "rating": pl.Float64()}
    )
    if ratings.is_empty():
        raise DataError(path, "no ratings", expected="at least one rating line", found="none")
    check_rating_step(ratings, path, 1.0, SCALE)
    return ratings.with_columns(pl.lit(MISSING_TIMESTAMP, dtype=pl.Int64).alias("timestamp")).select(
        "user_id", "item_id", "rating", "timestamp", "line"
    )


def read_friend_pairs(path: Path, notes: dict[str, object]) -> pl.DataFrame:
    """``user_id friend_id [weight]`` lines → mutual, distinct, non-self (user_id, friend) pairs."""
    df = read_whitespace_table(
        path,
        ["user_id", "friend_id", "weight"],
        {"user_id": pl.Int64(), "friend_id": pl.Int64(), "weight": pl.Float64()},
        min_fields=2,
    )
    not_links = df.filter(pl.col("weight").is_not_null() & (pl.col("weight") <= 0))
    df = df.filter(pl.col("weight").is_null() | (pl.col("weight") > 0))
    self_links = df.filter(pl.col("user_id") == pl.col("friend_id")).height
    df = df.filter(pl.col("user_id") != pl.col("friend_id"))
    lo = pl.min_horizontal("user_id", "friend_id").alias("a")
    hi = pl.max_horizontal("user_id", "friend_id").alias("b")
    undirected = df.select(lo, hi).unique()
    notes.update(
        friend_lines=df.height + self_links + not_links.height,
        friend_lines_weight_not_positive=not_links.height,
        friend_self_links_dropped=self_links,
        friend_pairs=undirected.height,
        friend_lines_repeating_a_pair=df.height - undirected.height,
    )
    return pl.concat(
        [
            undirected.select(pl.col("a").alias("user_id"), pl.col("b").alias("friend")),
            undirected.select(pl.col("b").alias("user_id"), pl.col("a").alias("friend")),
        ]
    )


def parse_full(ratings_path: Path, friends_path: Path) -> CanonicalTables:
    ratings = read_full_ratings(ratings_path)
    notes: dict[str, object] = {}
    pairs = read_friend_pairs(friends_path, notes)
    rated = ratings.select(pl.col("user_id").unique())
    friends = pairs.group_by("user_id").agg(pl.col("friend").sort().cast(pl.Utf8).alias("friends"))
    notes["friend_file_users_without_ratings"] = friends.join(rated, on="user_id", how="anti").height
    users = rated.join(friends, on="user_id", how="left").with_columns(
        pl.col("friends").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
    )
    notes["rated_users_with_friends"] = users.filter(pl.col("friends").list.len() > 0).height
    tables = canonicalize(ratings, users, None, ratings_file=ratings_path, scale=SCALE)
    tables.notes.update(notes, raw_layout="ma2011-text", ratings_file=ratings_path.name, friends_file=friends_path.name)
    return tables


@register
class Douban(Dataset):
    name = "douban"
    rating_scale = SCALE
    # Ma et al.'s published counts ±2%: wide enough for redistributions that dropped a few lines (zero ratings,
    # repeated pairs, users whose ratings were cleaned away), narrow enough to reject another Douban crawl (e.g.
    # Douban-Movie of 94,890 users / 81,906 items / 11.7M ratings) or the 3000×3000 subset.
    expected = ExpectedCounts(
        users=_bounds(FULL_COUNTS[0]), items=_bounds(FULL_COUNTS[1]), ratings=_bounds(FULL_COUNTS[2])
    )
    user_side = (SideField("friends", "bag"),)
    has_timestamps = False
    ordering_note = NO_TIMESTAMP_NOTE

    def is_acquired(self, raw_dir: Path) -> bool:
        return _first(raw_dir, RATING_FILES) is not None and _first(raw_dir, FRIEND_FILES) is not None

    def how_to(self, dest: Path) -> str:
        return (
            f"The full Douban of {PAPER} has no official download URL with a checksum (the authors distributed it "
            f"from their data page, {PAPER_DATA_PAGE}). Obtain the files and place them in {dest} (data/douban), "
            f"or in a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR), directly or under douban/: "
            f"the ratings as {' or '.join(RATING_FILES)} (lines 'user_id item_id rating') and the friendships as "
            f"{' or '.join(FRIEND_FILES)} (lines 'user_id friend_id [weight]')."
        )

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        attempts = []
        if source_dir is not None:
            attempts.append((f"local directory {source_dir}", lambda: self._from_local(Path(source_dir), dest)))
        if not attempts:
            raise AcquisitionError(
                f"could not obtain the raw files of {self.name!r}: no local copy and no download source.\n"
                + self.how_to(dest)
            )
        label, layout = try_sources(self.name, attempts, self.how_to(dest))
        return AcquireResult(dest, label, str(layout))

    def _from_local(self, source_dir: Path, dest: Path) -> str:
        for cand in (source_dir, source_dir / self.name):
            r, f = _first(cand, RATING_FILES), _first(cand, FRIEND_FILES)
            if r is not None and f is not None:
                copy_files(cand, [r.name, f.name], dest)
                return "text"
        raise AcquisitionError(
            f"{source_dir}: holds no ratings file ({' or '.join(RATING_FILES)}) together with a friendship file "
            f"({' or '.join(FRIEND_FILES)}), directly or under {self.name}/"
        )

    def parse(self, raw_dir: Path) -> CanonicalTables:
        r, f = _first(raw_dir, RATING_FILES), _first(raw_dir, FRIEND_FILES)
        if r is None:
            raise DataError(
                raw_dir / RATING_FILES[0], "raw file missing", expected=" or ".join(RATING_FILES), found="nothing"
            )
        if f is None:
            raise DataError(
                raw_dir / FRIEND_FILES[0], "raw file missing", expected=" or ".join(FRIEND_FILES), found="nothing"
            )
        return parse_full(r, f)
