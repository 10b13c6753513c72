"""MovieLens 100K (GroupLens, 1998): 100,000 ratings 1–5 by 943 users on 1,682 movies.

Raw layouts understood by ``parse``:

* ``grouplens``: the official zip's ``u.data`` (tab: user item rating ts), ``u.item`` (latin-1, ``|``:
  id, title, release date, video release, IMDb URL, 19 genre flags), ``u.user`` (``|``: id, age, gender,
  occupation, zip), ``u.genre``.
* ``recbole``: the same ratings in the ``recbole==1.2.1`` wheel's atomic files (``ml-100k.inter``,
  ``ml-100k.item``, ``ml-100k.user``); titles there carry no "(year)" suffix and there are no IMDb URLs.

Acquisition order: a local directory (params ``acquire.source_dir`` / ``HYBRIDREC_SOURCE_DIR``) → the
official zip (MD5 verified) → the recbole wheel from PyPI (sha256 verified).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.acquire import DEFAULT_CACHE, Checksum, copy_files, download, extract_zip, pip_download, try_sources
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import register
from tasks.datasets.base import AcquireResult, CanonicalTables, Dataset, ExpectedCounts, SideField, canonicalize
from tasks.datasets.rawio import read_lines, split_fields, to_epoch_seconds, to_number

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
MD5 = "0e33842e24a9c977be4e0107933c0723"
RECBOLE_REQ = "recbole==1.2.1"
RECBOLE_WHEEL = "recbole-1.2.1-py3-none-any.whl"
RECBOLE_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/"

GROUPLENS_FILES = ("u.data", "u.item", "u.user", "u.genre", "u.occupation", "u.info", "README")
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
        return tables


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
