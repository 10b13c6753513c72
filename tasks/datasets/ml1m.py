"""MovieLens 1M (GroupLens, 2003): 1,000,209 whole-star ratings 1–5 by 6,040 users on 3,706 movies.

Raw files (``::``-separated, from ``ml-1m.zip``, MD5 pinned): ``ratings.dat`` ``UserID::MovieID::Rating::Timestamp``;
``movies.dat`` (latin-1) ``MovieID::Title::Genres`` with ``|``-separated genres; ``users.dat``
``UserID::Gender::Age::Occupation::Zip-code`` where Age is a group code (1, 18, 25, 35, 45, 50, 56) and
Occupation a code 0–20 (mapped to the README's names).

Acquisition order: a local directory (holding ``ml-1m.zip`` or the unpacked ``ml-1m/`` files) → the official zip
(MD5 verified) → an error naming what to download where.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.common.errors import DataError
from tasks.datasets import register
from tasks.datasets._movielens_csv import (
    MovieLensZip,
    check_rating_step,
    check_unique_ids,
    genre_list,
    read_dat_ratings,
    split_middle,
)
from tasks.datasets.base import CanonicalTables, ExpectedCounts, SideField, canonicalize
from tasks.datasets.rawio import clip, read_lines, split_fields, to_number

URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
MD5 = "c4d9eecfca2ab87c1945afe126590906"
AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)  # "Under 18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"
OCCUPATIONS = (
    "other or not specified",
    "academic/educator",
    "artist",
    "clerical/admin",
    "college/grad student",
    "customer service",
    "doctor/health care",
    "executive/managerial",
    "farmer",
    "homemaker",
    "K-12 student",
    "lawyer",
    "programmer",
    "retired",
    "sales/marketing",
    "scientist",
    "self-employed",
    "technician/engineer",
    "tradesman/craftsman",
    "unemployed",
    "writer",
)


def _bad_value(df: pl.DataFrame, path: Path, col: str, ok: pl.Expr, expected: str) -> None:
    bad = df.filter(~ok)
    if not bad.is_empty():
        raise DataError(path, f"invalid {col}", line=int(bad["line"][0]), expected=expected, found=clip(bad[col][0]))


def parse_users(path: Path) -> pl.DataFrame:
    """users.dat → user_id, gender (M/F), age (Int32 group code), occupation (name), zip, line."""
    df = split_fields(
        read_lines(path, encoding="latin-1"), path, "::", ["user_id", "gender", "age", "occupation", "zip"]
    )
    df = to_number(df, path, "user_id", pl.Int64())
    df = to_number(df, path, "age", pl.Int32())
    df = to_number(df, path, "occupation", pl.Int32())
    _bad_value(df, path, "gender", pl.col("gender").is_in(["M", "F"]), "M or F")
    _bad_value(df, path, "age", pl.col("age").is_in(AGE_GROUPS), f"an age group code in {list(AGE_GROUPS)}")
    _bad_value(df, path, "occupation", pl.col("occupation").is_between(0, 20), "an occupation code 0-20")
    check_unique_ids(df, path, "user_id")
    names = pl.Series(OCCUPATIONS, dtype=pl.Utf8)
    return df.with_columns(
        pl.col("occupation").map_batches(lambda s: names.gather(s), return_dtype=pl.Utf8),
        pl.col("zip").str.strip_chars(),
    )


def parse_movies(path: Path, encoding: str = "latin-1") -> pl.DataFrame:
    """movies.dat → item_id, title, genres (list[str]), line. A title may itself contain ``::``."""
    df = split_middle(read_lines(path, encoding=encoding), path, "::", 1, 1, ["item_id", "title", "genres"])
    df = to_number(df, path, "item_id", pl.Int64())
    check_unique_ids(df, path, "item_id")
    return df.with_columns(genre_list("genres"))


@register
class MovieLens1M(MovieLensZip):
    name = "ml-1m"
    rating_scale = (1.0, 5.0)
    expected = ExpectedCounts(users=(6040, 6040), items=(3706, 3706), ratings=(1_000_209, 1_000_209))
    user_side = (
        SideField("gender", "categorical"),
        SideField("age", "age"),
        SideField("occupation", "categorical"),
        SideField("zip", "categorical"),
    )
    item_side = (SideField("title", "text"), SideField("genres", "multilabel"))

    url = URL
    archive = "ml-1m.zip"
    folder = "ml-1m"
    md5 = MD5
    required_files = ("ratings.dat", "movies.dat", "users.dat")

    def parse(self, raw_dir: Path) -> CanonicalTables:
        ratings_path = raw_dir / "ratings.dat"
        ratings = read_dat_ratings(ratings_path)
        if ratings.is_empty():
            raise DataError(ratings_path, "no ratings", expected="at least one rating line", found="none")
        check_rating_step(ratings, ratings_path, 1.0, self.rating_scale)
        users = parse_users(raw_dir / "users.dat").drop("line")
        items = parse_movies(raw_dir / "movies.dat").drop("line")
        tables = canonicalize(ratings, users, items, ratings_file=ratings_path, scale=self.rating_scale)
        tables.notes["raw_layout"] = "grouplens-dat"
        return tables
