"""MovieLens 10M (GroupLens, 2009): 10,000,054 half-star ratings 0.5–5 by 69,878 users on 10,677 movies.

Raw files (``::``-separated, from ``ml-10m.zip`` which unzips to ``ml-10M100K/``, MD5 pinned): ``ratings.dat``
``UserID::MovieID::Rating::Timestamp``; ``movies.dat`` ``MovieID::Title::Genres``; ``tags.dat``
``UserID::MovieID::Tag::Timestamp`` (95,580 tag applications). Text files are read as UTF-8; a file that is
not valid UTF-8 is read as latin-1 instead (recorded in ``notes``). No user side information.

Items carry ``tags``: every application of a tag to the movie (lowercased, stripped, sorted; repeats kept) as a
``bag`` field, i.e. CFN's tag matrix T_ij = occurrences of tag j on movie i; features writes its own SVD
(``item_tags_svd.npy``, Y = P_K' D_K'^{1/2}) next to the whole-side BoW.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from tasks.common.errors import DataError
from tasks.datasets import register
from tasks.datasets._movielens_csv import (
    ITEM_SIDE,
    MovieLensZip,
    attach_tags,
    check_rating_step,
    decode_lines,
    read_dat_ratings,
    split_middle,
)
from tasks.datasets.base import CanonicalTables, ExpectedCounts, canonicalize
from tasks.datasets.ml1m import parse_movies
from tasks.datasets.rawio import to_number

URL = "https://files.grouplens.org/datasets/movielens/ml-10m.zip"
MD5 = "ce571fd55effeba0271552578f2648bd"


def parse_tags_dat(path: Path) -> tuple[pl.DataFrame, str]:
    """tags.dat → user_id, item_id, tag, timestamp, line (a tag may contain ``::``), and the encoding used."""
    lines, enc = decode_lines(path, ("utf-8", "latin-1"))
    df = split_middle(lines, path, "::", 2, 1, ["user_id", "item_id", "tag", "timestamp"])
    for col in ("user_id", "item_id", "timestamp"):
        df = to_number(df, path, col, pl.Int64())
    return df, enc


@register
class MovieLens10M(MovieLensZip):
    name = "ml-10m"
    rating_scale = (0.5, 5.0)
    expected = ExpectedCounts(users=(69_878, 69_878), items=(10_677, 10_677), ratings=(10_000_054, 10_000_054))
    item_side = ITEM_SIDE

    url = URL
    archive = "ml-10m.zip"
    folder = "ml-10M100K"
    md5 = MD5
    required_files = ("ratings.dat", "movies.dat", "tags.dat")
    optional_files = ("README.html", "README", "allbut.pl", "split_ratings.sh")

    def parse(self, raw_dir: Path) -> CanonicalTables:
        ratings_path = raw_dir / "ratings.dat"
        ratings = read_dat_ratings(ratings_path)
        if ratings.is_empty():
            raise DataError(ratings_path, "no ratings", expected="at least one rating line", found="none")
        check_rating_step(ratings, ratings_path, 0.5, self.rating_scale)
        movies_path = raw_dir / "movies.dat"
        _, movies_enc = decode_lines(movies_path, ("utf-8", "latin-1"))
        movies = parse_movies(movies_path, encoding=movies_enc).drop("line")
        tags, tags_enc = parse_tags_dat(raw_dir / "tags.dat")
        notes: dict[str, object] = {"movies_encoding": movies_enc, "tags_encoding": tags_enc}
        items = attach_tags(movies, tags, notes)
        tables = canonicalize(ratings, None, items, ratings_file=ratings_path, scale=self.rating_scale)
        tables.notes.update(notes, raw_layout="grouplens-dat")
        return tables
