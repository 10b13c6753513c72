"""MovieLens 100K (GroupLens, 1998): 100,000 ratings 1–5 by 943 users on 1,682 movies.

Raw layouts understood by ``parse``:

* ``grouplens``: the official zip's ``u.data`` (tab: user item rating ts), ``u.item`` (latin-1, ``|``:
  id, title, release date, video release, IMDb URL, 19 genre flags), ``u.user`` (``|``: id, age, gender,
  occupation, zip), ``u.genre``.
* ``recbole``: the same ratings in the ``recbole==1.2.1`` wheel's atomic files (``ml-100k.inter``,
  ``ml-100k.item``, ``ml-100k.user``); titles there carry no "(year)" suffix and there are no IMDb URLs.

The GroupLens copy also ships five 80/20 folds ``u1``–``u5`` (disjoint test parts) and ``ua`` / ``ub`` (exactly
ten test ratings per user), each as ``<fold>.base`` / ``<fold>.test``. They are acquired with the rest when the
source has them and parsed into the optional table ``grouplens_folds`` (user_idx, item_idx, fold: the TEST rows
of every fold; its base is the complement). Parsing checks that each fold's base and test are disjoint, cover
``u.data`` exactly and agree with it on rating and timestamp. The ``grouplens-<fold>`` split protocols read it.

Acquisition order: a local directory (params ``acquire.source_dir`` / ``HYBRIDREC_SOURCE_DIR``) → the
official zip (MD5 verified) → the recbole wheel from PyPI (sha256 verified).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import polars as pl

from tasks.acquire import DEFAULT_CACHE, Checksum, copy_files, download, extract_zip, pip_download, try_sources
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import register
from tasks.datasets.base import (
    AcquireResult,
    CanonicalTables,
    Dataset,
    ExpectedCounts,
    SideField,
    canonicalize,
    index_pairs,
)
from tasks.datasets.rawio import read_lines, split_fields, to_epoch_seconds, to_number

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MD5 = "0e33842e24a9c977be4e0107933c0723"
RECBOLE_REQ = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/"

FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")  # the published GroupLens folds
FOLD_FILES = tuple(f"{fold}.{part}" for fold in FOLDS for part in ("base", "test"))
FOLDS_TABLE = "grouplens_folds"  # ingested table: user_idx, item_idx, fold (the test rows of every fold)
GROUPLENS_FILES = ("u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info", "README", *FOLD_FILES)
GROUPLENS_REQUIRED = ("u.data", "u.item", "u.user")  # what parse reads; the others are kept when present
RECBOLE_FILES = ("ml-100k.inter", "ml-100k.item", "ml-100k.user")
GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)


def detect_layout(raw_dir: Path) -> str:
    if (raw_dir / "u.data").is_file():
        return "grouplens"
    if (raw_dir / "ml-100k.inter").is_file():
        return "recbole"
    raise DataError(
        raw_dir,
        "no MovieLens-100K raw files",
        expected="u.data (GroupLens) or ml-100k.inter (RecBole)",
        found=sorted(p.name for p in raw_dir.iterdir()) if raw_dir.is_dir() else "no directory",
    )


@register
class MovieLens100K(Dataset):
    name = "ml-100k"
    rating_scale = (1.0, 5.0)
    expected = ExpectedCounts(users=(943, 943), items=(1682, 1682), ratings=(100_000, 100_000))
    user_side = (
        SideField("age", "age"),
        SideField("gender", "categorical"),
        SideField("occupation", "categorical"),
        SideField("zip", "categorical"),
    )
    item_side = (SideField("title", "text"), SideField("genres", "multilabel"))

    # ---------------------------------------------------------------- acquisition
    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        attempts = []
        if source_dir is not None:
            attempts.append((f"local directory {source_dir}", lambda: self._from_local(source_dir, dest)))
        attempts.append((URL, lambda: self._from_official(dest, timeout_s)))
        attempts.append((f"PyPI {RECBOLE_REQ}", lambda: self._from_recbole(dest, timeout_s)))
        how = (
            f"Download {URL} (MD5 {MD5}), unzip it and point acquire.source_dir (or HYBRIDREC_SOURCE_DIR) at "
            f"the ml-100k/ folder, or put its files in {dest}."
        )
        label, layout = try_sources(self.name, attempts, how)
        return AcquireResult(dest, label, str(layout))

    @staticmethod
    def _from_local(source_dir: Path, dest: Path) -> str:
        source_dir = Path(source_dir)
        if (source_dir / "ml-100k.zip").is_file():
            zip_path = source_dir / "ml-100k.zip"
            from tasks.acquire import verify

            verify(zip_path, Checksum("md5", MD5))
            extract_zip(zip_path, dest, _select_grouplens, required=GROUPLENS_REQUIRED)
            return "grouplens"
        for cand in (source_dir, source_dir / "ml-100k"):
            if (cand / "u.data").is_file():
                optional = [f for f in GROUPLENS_FILES if f not in GROUPLENS_REQUIRED and (cand / f).is_file()]
                copy_files(cand, [*GROUPLENS_REQUIRED, *optional], dest)  # a required file missing: refused
                return "grouplens"
            if (cand / "ml-100k.inter").is_file():
                copy_files(cand, RECBOLE_FILES, dest)
                return "recbole"
        raise AcquisitionError(f"{source_dir}: holds neither u.data, ml-100k.inter nor ml-100k.zip")

    @staticmethod
    def _from_official(dest: Path, timeout_s: float) -> str:
        zip_path = download(URL, DEFAULT_CACHE / "ml-100k.zip", Checksum("md5", MD5), timeout_s)
        extract_zip(zip_path, dest, _select_grouplens, required=GROUPLENS_REQUIRED)
        return "grouplens"

    @staticmethod
    def _from_recbole(dest: Path, timeout_s: float) -> str:
        wheel = pip_download(RECBOLE_REQ, RECBOLE_WHEEL, Checksum("sha256", RECBOLE_SHA256), DEFAULT_CACHE, timeout_s)

        def select(name: str) -> str | None:
            if name.startswith(RECBOLE_PREFIX) and name[len(RECBOLE_PREFIX) :] in RECBOLE_FILES:
                return name[len(RECBOLE_PREFIX) :]
            return None

        extract_zip(wheel, dest, select, required=RECBOLE_FILES)
        return "recbole"

    def is_acquired(self, raw_dir: Path) -> bool:
        try:
            layout = detect_layout(raw_dir)
        except DataError:
            return False
        needed = GROUPLENS_REQUIRED if layout == "grouplens" else RECBOLE_FILES
        return all((raw_dir / f).is_file() for f in needed)

    # ---------------------------------------------------------------- parsing
    def parse(self, raw_dir: Path) -> CanonicalTables:
        layout = detect_layout(raw_dir)
        if layout == "grouplens":
            ratings, users, items = _parse_grouplens(raw_dir)
        else:
            ratings, users, items = _parse_recbole(raw_dir)
        ratings_file = raw_dir / ("u.data" if layout == "grouplens" else "ml-100k.inter")
        tables = canonicalize(ratings, users, items, ratings_file=ratings_file, scale=self.rating_scale)
        tables.notes["raw_layout"] = layout
        folds = published_folds(raw_dir, tables) if layout == "grouplens" else None
        if folds is None:
            return tables
        tables.notes[FOLDS_TABLE] = {str(f): int(n) for f, n in folds.group_by("fold").len().sort("fold").iter_rows()}
        return MovieLens100KTables(**{f.name: getattr(tables, f.name) for f in fields(CanonicalTables)},
                                   grouplens_folds=folds)  # fmt: skip


@dataclass(frozen=True)
class MovieLens100KTables(CanonicalTables):
    """The canonical tables plus the published folds' test rows (written by ingest as ``grouplens_folds``)."""

    grouplens_folds: pl.DataFrame | None = None

    def as_dict(self) -> dict[str, pl.DataFrame]:
        out = super().as_dict()
        if self.grouplens_folds is not None:
            out[FOLDS_TABLE] = self.grouplens_folds
        return out


def published_folds(raw_dir: Path, tables: CanonicalTables) -> pl.DataFrame | None:
    """The TEST rows of every published fold found in ``raw_dir`` (user_idx, item_idx int32, fold Utf8), in file
    order; None when the copy has no fold file. A fold needs both files; its ``.base`` and ``.test`` must be
    disjoint, together hold every rating of ``u.data`` once, and agree with it on rating and timestamp (else
    ``DataError`` naming the file and line)."""
    present = [f for f in FOLDS if any((raw_dir / f"{f}.{p}").is_file() for p in ("base", "test"))]
    if not present:
        return None
    truth = tables.ratings.select("user_idx", "item_idx", "rating", "timestamp")
    out = []
    for fold in present:
        parts = {p: _fold_part(raw_dir / f"{fold}.{p}", tables, truth) for p in ("base", "test")}
        both = pl.concat([parts["base"], parts["test"]])
        dup = both.filter(pl.struct("user_idx", "item_idx").is_duplicated())
        if not dup.is_empty() or both.height != truth.height:
            raise DataError(
                raw_dir / f"{fold}.test",
                f"{fold}.base and {fold}.test are not a partition of u.data",
                expected=f"{truth.height} distinct ratings in all",
                found=f"{both.height} rows, {dup.height} of them shared by base and test",
            )
        out.append(parts["test"].select("user_idx", "item_idx", pl.lit(fold).alias("fold")))
    return pl.concat(out)


def _fold_part(path: Path, tables: CanonicalTables, truth: pl.DataFrame) -> pl.DataFrame:
    """One fold file mapped to indices; a row whose rating or timestamp differs from u.data raises DataError."""
    if not path.is_file():
        raise DataError(path, "published fold incomplete", expected=f"both {path.stem}.base and {path.stem}.test",
                        found="this file missing")  # fmt: skip
    rows = index_pairs(_ratings(path, "\t", False), tables, path)
    joined = rows.join(truth, on=["user_idx", "item_idx"], how="left", suffix="_data", maintain_order="left")
    bad = joined.filter(
        pl.col("rating_data").is_null()
        | (pl.col("rating").cast(pl.Float32) != pl.col("rating_data"))
        | (pl.col("timestamp") != pl.col("timestamp_data"))
    )
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise DataError(path, "rating not as in u.data", line=int(row["line"]),
                        expected=f"rating {row['rating_data']} at {row['timestamp_data']} (u.data)",
                        found=f"rating {row['rating']} at {row['timestamp']}")  # fmt: skip
    return rows.select("user_idx", "item_idx")


def _select_grouplens(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    return base if base in GROUPLENS_FILES else None


def _ratings(path: Path, sep: str, skip_header: bool) -> pl.DataFrame:
    df = split_fields(
        read_lines(path, skip_header=skip_header), path, sep, ["user_id", "item_id", "rating", "timestamp"]
    )
    df = to_number(df, path, "rating", pl.Float64)
    df = to_epoch_seconds(df, path, "timestamp")
    for col in ("user_id", "item_id"):
        to_number(df, path, col, pl.Int64)  # ids must be integers in this dataset
    return df.with_columns(pl.col("user_id").str.strip_chars(), pl.col("item_id").str.strip_chars())


def _users(path: Path, sep: str, skip_header: bool) -> pl.DataFrame:
    df = split_fields(
        read_lines(path, skip_header=skip_header), path, sep, ["user_id", "age", "gender", "occupation", "zip"]
    )
    df = to_number(df, path, "age", pl.Int32)
    return df.drop("line")


def _parse_grouplens(raw_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    ratings = _ratings(raw_dir / "u.data", "\t", False)
    users = _users(raw_dir / "u.user", "|", False)
    item_path = raw_dir / "u.item"
    names = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *[f"g{i}" for i in range(19)]]
    items = split_fields(read_lines(item_path, encoding="latin-1"), item_path, "|", names)
    flags = [f"g{i}" for i in range(19)]
    bad = items.filter(~pl.all_horizontal([pl.col(f).is_in(["0", "1"]) for f in flags]))
    if not bad.is_empty():
        raise DataError(
            item_path,
            "genre flags must be 0 or 1",
            line=int(bad["line"][0]),
            expected="19 flags of 0/1",
            found="|".join(str(bad[f][0]) for f in flags),
        )
    genres = pl.concat_list(
        [pl.when(pl.col(f) == "1").then(pl.lit(GENRES[i])).otherwise(None) for i, f in enumerate(flags)]
    ).list.drop_nulls()
    items = items.select("item_id", "title", "release_date", "imdb_url", genres.alias("genres"))
    return ratings, users, items


def _parse_recbole(raw_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    ratings = _ratings(raw_dir / "ml-100k.inter", "\t", True)
    users = _users(raw_dir / "ml-100k.user", "\t", True)
    item_path = raw_dir / "ml-100k.item"
    items = split_fields(
        read_lines(item_path, skip_header=True),
        item_path,
        "\t",
        ["item_id", "title", "release_year", "genres"],
        min_fields=2,
    )
    items = items.select(
        "item_id",
        "title",
        pl.col("release_year").fill_null("").alias("release_date"),
        pl.lit("").alias("imdb_url"),
        # RecBole joins genre names with spaces; "Children's", "Film-Noir", "Sci-Fi" have none inside.
        pl.col("genres").fill_null("").str.split(" ").list.eval(pl.element().filter(pl.element() != "")),
    )
    return ratings, users, items
