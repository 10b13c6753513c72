"""MovieLens 20M, 25M and latest-small (GroupLens): CSV files with a header, UTF-8, half-star ratings 0.5–5.

Raw files: ``ratings.csv`` (``userId,movieId,rating,timestamp``), ``movies.csv`` (``movieId,title,genres``; titles
with commas are double-quoted), ``tags.csv`` (``userId,movieId,tag,timestamp``). ``links.csv`` and the README are
kept when present; the (large) tag-genome files are not extracted. No user side information; items carry
title (text), genres (multilabel, "(no genres listed)" → none) and ``tags`` (distinct lowercased tags,
multilabel; the features stage SVD-reduces the tag matrix).

Acquisition order: a local directory (holding the zip or the unpacked folder) → the official zip, verified
against its MD5 (ml-20m, ml-25m); ml-latest-small has no published checksum and changes upstream from time to
time, so its first download records a sha256 in ``<cache>/ml-latest-small.zip.sha256`` and later downloads
are verified against it (delete the sidecar to accept a new upstream version).
"""

from __future__ import annotations

from tasks.datasets import register
from tasks.datasets._movielens_csv import MovieLensCSV
from tasks.datasets.base import ExpectedCounts

BASE_URL = "https://files.grouplens.org/datasets/movielens/"


@register
class MovieLens20M(MovieLensCSV):
    name = "ml-20m"
    expected = ExpectedCounts(users=(138_493, 138_493), items=(26_744, 26_744), ratings=(20_000_263, 20_000_263))
    url = BASE_URL + "ml-20m.zip"
    archive = "ml-20m.zip"
    folder = "ml-20m"
    md5 = "cd245b17a1ae2cc31bb14903e1204af3"


@register
class MovieLens25M(MovieLensCSV):
    name = "ml-25m"
    expected = ExpectedCounts(users=(162_541, 162_541), items=(59_047, 59_047), ratings=(25_000_095, 25_000_095))
    url = BASE_URL + "ml-25m.zip"
    archive = "ml-25m.zip"
    folder = "ml-25m"
    md5 = "6b51fb2759a8657d3bfcbfc42b592ada"


@register
class MovieLensLatestSmall(MovieLensCSV):
    name = "ml-latest-small"
    # upstream revises this file; the 2018 release has 610 users / 9,724 items / 100,836 ratings
    expected = ExpectedCounts(users=(1, 10**6), items=(1, 10**6), ratings=(1, 10**6))
    url = BASE_URL + "ml-latest-small.zip"
    archive = "ml-latest-small.zip"
    folder = "ml-latest-small"
    md5 = None
