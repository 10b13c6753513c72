"""DeepCF / NCF leave-one-out files (Deng et al., AAAI 2019; He et al., WWW 2017): ``deepcf-lastfm``,
``deepcf-amusic``, ``deepcf-atoy``, ``deepcf-ml-1m``.

**Raw files** (``familyld/DeepCF``, folder ``Data/``; ``<P>`` is ``lastfm``, ``AMusic``, ``AToy`` or ``ml-1m``),
tab-separated, 0-based remapped ids, LF or CRLF line ends:

* ``<P>.train.rating`` / ``<P>.test.rating``: ``user\\titem\\tvalue[\\ttimestamp]``; one test row per user (the held-out
  positive). ``value`` is the Last.fm play count (lastfm), a 1–5 star (AMusic, AToy, ml-1m). A timestamp column
  exists only in the ml-1m files; within a file every line has the field count of its first line.
* ``<P>.test.negative``: one line per test row, ``(user,item)\\tneg_1\\t...\\tneg_k`` (k = 99 in every published
  file; any k >= 1 is accepted, and the range is recorded in the notes).

**Canonical tables.** Implicit data: every train/test row is an interaction, ``rating`` 1.0, the third column kept
as ``weight`` unless it is 1 everywhere; train rows with a value <= 0 are dropped and counted (DeepCF's own loader
keeps only ``rating > 0``), a test row with a value <= 0 is an error (it is the held-out positive). Timestamp: the
fourth column, else ``MISSING_TIMESTAMP``. The item dimension is sized from the train, test *and* negative files
together (``extra_items``): DeepCF's loader sized it from the training file only and undercounted (AMusic 12,926
instead of 12,929; AToy 33,951 instead of 33,953). ``predefined`` holds the published train/test part of each
rating, ``negatives`` every listed negative in file order with its line, quirks kept.

**Checks (``DataError`` naming file and line):** wrong field count, non-numeric or negative id, a ``(user,item)``
pair twice in the training file, a user with two test rows, a pair in both train and test, a negative line whose
``(user,item)`` is malformed or differs from that user's test row, a negative line for a user without a test row,
two negative lines for one user, a test row without a negative line, a negative line without negatives.

**Quirks of the published files, kept and counted in ``notes["quirks"]``** (the ``predefined`` split protocol
reports and optionally corrects them): a test positive among its own listed negatives (lines 86 lastfm, 18 AMusic,
12 AToy, 156 ml-1m); listed negatives that are the user's own training positives (2,434 / 348 / 227); test items
that no training row has (AMusic 464 rows, AToy 950); users with a single training row; repeated negatives
within a line (none published); test users without any training row (AMusic 43, AToy 15, lastfm 0).

Acquisition order: a local directory holding the three files (directly, or under ``Data/``, ``deepcf/`` or
``<dataset name>/``) → the GitHub raw files of DeepCF commit ``0d91a5dd`` (sha256 pinned from the shared
PROVENANCE; ``ml-1m.train.rating`` has no recorded digest, so its first download records one in
``<cache>/deepcf/ml-1m.train.rating.sha256`` and later downloads verify it) → an error naming the URLs and where to
put the files. ``deepcf-ml-1m`` needs ``ml-1m.train.rating``, which the shared offline copy lacks.
``read_rating_file`` / ``read_negative_file`` / ``match_negatives`` / ``count_quirks`` work on single files too.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import ClassVar

import polars as pl

import tasks.acquire as acquire_mod
from tasks.acquire import Checksum, copy_files, download, download_recorded, try_sources
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import register
from tasks.datasets.base import (
    MISSING_TIMESTAMP,
    AcquireResult,
    CanonicalTables,
    Dataset,
    ExpectedCounts,
    canonicalize,
    index_pairs,
)
from tasks.datasets.rawio import check_epoch, clip, field_count_error, read_lines, split_fields, to_number

log = logging.getLogger(__name__)

COMMIT = "0d91a5ddacde4ec6de16972cb7f22a74c7c9e1a8"
BASE_URL = f"https://raw.githubusercontent.com/familyld/DeepCF/{COMMIT}/Data/"
# sha256 of the files at COMMIT (../shared/datasets/deepcf/PROVENANCE.md); None: recorded at the first download
SHA256: dict[str, str | None] = {
    "lastfm.train.rating": "aa286fd070b5063ccdb3ef847b64c927e83dbc961d8804fa8454dd8964dc6662",
    "lastfm.test.rating": "1bbe3bddddaf7c49d6c3ed204bda72d97545ce1acf98c0e0c7234aff9fcb5ce0",
    "lastfm.test.negative": "331f05638d7a786f59dc33f346318018224bdb24a91a5d0444dcdbf24bf9498d",
    "AMusic.train.rating": "7e7aa977b152a99e706c581f8feaa73a9c490b3c9f88b81a0aa1da3272bd3a98",
    "AMusic.test.rating": "e6d556349b628eaeae94170a96e183db899e1947664bb17dbe30c31962b5def1",
    "AMusic.test.negative": "a490e1666b38ee0cf0396b8723bc1ffc119b3cfa070a7b4b1165ec9b6ed07ce1",
    "AToy.train.rating": "03abd02341cbe87295fc333c2553614f024d453fcbe037f58d8bd90d4fafea72",
    "AToy.test.rating": "532639c8bbe3aa0451ac4000998c3fccc38ca463006335fb815a75c8ad577d71",
    "AToy.test.negative": "f20ccd57a916e519cc8af8c41af8a6620d3cd06b1887c4a575fbb9538883de99",
    "ml-1m.train.rating": None,
    "ml-1m.test.rating": "231ae11eb060b643a8c58c063cd17ffc743b54f569afb073d1abb6cf126b88b5",
    "ml-1m.test.negative": "127853228a76b7d21c0481e8ef8d00dd009cd5c88670dbdd9e9debfdb9f93de4",
}
RATING_COLUMNS = ["user_id", "item_id", "value", "timestamp"]
# Longest lines accepted (bytes): a rating line is under 50 bytes, a published negative line (99 ids) under 1 KB;
# the limits leave a wide margin (about 8,000 negatives per line) and refuse a damaged file before it is split.
MAX_RATING_LINE = 4096
MAX_NEGATIVE_LINE = 64 * 1024
_HEAD = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")


# ---------------------------------------------------------------------------------------------- readers
def read_rating_file(path: Path) -> pl.DataFrame:
    """``user\\titem\\tvalue[\\ttimestamp]`` → user_id, item_id (Int64, >= 0), value (Float64, finite), timestamp
    (Int64; ``MISSING_TIMESTAMP`` without a fourth column), line (1-based). Every line must have the field count of
    the first (3 or 4); anything else is a ``DataError`` naming the file and line."""
    lines = read_lines(path, max_line_bytes=MAX_RATING_LINE)
    if lines.is_empty():
        raise DataError(path, "no rating lines", expected="at least one line user\\titem\\tvalue", found="none")
    first = lines.row(0, named=True)
    n = first["raw"].count("\t") + 1
    if n not in (3, 4):
        expected = "3 or 4 tab-separated fields (user, item, value[, timestamp])"
        raise field_count_error(path, int(first["line"]), first["raw"], n, expected)
    df = split_fields(lines, path, "\t", RATING_COLUMNS[:n])
    for col in ("user_id", "item_id"):
        df = to_number(df, path, col, pl.Int64())
        _check(df, path, pl.col(col) >= 0, col, f"a 0-based {col.split('_')[0]} id (>= 0)")
    df = to_number(df, path, "value", pl.Float64())
    _check(df, path, pl.col("value").is_finite(), "value", "a finite number")
    if n == 4:
        df = to_number(df, path, "timestamp", pl.Int64())
        check_epoch(df, path, "timestamp")
    else:
        df = df.with_columns(pl.lit(MISSING_TIMESTAMP, dtype=pl.Int64).alias("timestamp"))
    return df.select(*RATING_COLUMNS, "line")


def read_negative_file(path: Path) -> pl.DataFrame:
    """``(user,item)\\tneg_1\\t...\\tneg_k`` → line, user_id, item_id (the test pair the line names), negatives
    (List[Int64], in file order, repeats kept). A malformed head, a non-numeric or negative id, an empty field or
    a line without negatives is a ``DataError`` naming the file and line."""
    lines = read_lines(path, max_line_bytes=MAX_NEGATIVE_LINE)
    if lines.is_empty():
        raise DataError(path, "no negative lines", expected="(user,item) followed by negatives", found="none")
    parts = lines.with_columns(pl.col("raw").str.split("\t").alias("_f"))
    short = parts.filter(pl.col("_f").list.len() < 2)
    if not short.is_empty():
        row = short.row(0, named=True)
        raise DataError(
            path,
            "negative line without negatives",
            line=int(row["line"]),
            expected="(user,item) and at least one tab-separated negative item id",
            found=clip(row["raw"], 80),
        )
    head = parts.select(
        "line",
        pl.col("_f").list.first().str.strip_chars().alias("head"),
        pl.col("_f").list.slice(1).alias("negatives"),
    )
    groups = head["head"].str.extract_groups(_HEAD.pattern)
    head = head.with_columns(
        # an id beyond Int64 (or of non-ASCII digits, which \d also matches) becomes null: a malformed head
        groups.struct.field("1").cast(pl.Int64, strict=False).alias("user_id"),
        groups.struct.field("2").cast(pl.Int64, strict=False).alias("item_id"),
    )
    bad = head.filter(pl.col("user_id").is_null() | pl.col("item_id").is_null())
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise DataError(
            path,
            "malformed test pair at the start of a negative line",
            line=int(row["line"]),
            expected="(user,item) with 0-based integer ids",
            found=clip(row["head"], 80),
        )
    flat = head.select("line", pl.col("negatives").alias("neg")).explode("neg")
    flat = to_number(flat, path, "neg", pl.Int64())  # an empty field (e.g. a trailing tab) is an error too
    _check(flat, path, pl.col("neg") >= 0, "neg", "a 0-based item id (>= 0)")
    negs = flat.group_by("line", maintain_order=True).agg(pl.col("neg").alias("negatives"))
    return (
        head.drop("negatives", "head")
        .join(negs, on="line", how="left", maintain_order="left")
        .select("line", "user_id", "item_id", "negatives")
    )


def _check(df: pl.DataFrame, path: Path, ok: pl.Expr, col: str, expected: str) -> None:
    bad = df.filter(~ok)
    if not bad.is_empty():
        raise DataError(path, f"invalid {col}", line=int(bad["line"][0]), expected=expected, found=clip(bad[col][0]))


# ---------------------------------------------------------------------------------------------- consistency
def _first_duplicate(df: pl.DataFrame, keys: list[str]) -> tuple[dict, list[int]] | None:
    dup = df.filter(pl.struct(keys).is_duplicated())
    if dup.is_empty():
        return None
    first = dup.row(0, named=True)
    same = dup.filter(pl.all_horizontal(pl.col(k) == first[k] for k in keys))
    return first, sorted(same["line"].to_list())


def check_train_test(train: pl.DataFrame, test: pl.DataFrame, train_path: Path, test_path: Path) -> None:
    """No pair twice in the training file, one test row per user, no pair in both files."""
    dup = _first_duplicate(train, ["user_id", "item_id"])
    if dup is not None:
        row, lines = dup
        raise DataError(
            train_path,
            f"(user, item) pair ({row['user_id']}, {row['item_id']}) listed more than once, on lines {lines}",
            line=lines[1],
            expected="each (user, item) pair at most once",
            found=f"{len(lines)} rows",
        )
    dup = _first_duplicate(test, ["user_id"])
    if dup is not None:
        row, lines = dup
        raise DataError(
            test_path,
            f"user {row['user_id']} has more than one test row, on lines {lines}",
            line=lines[1],
            expected="one held-out test row per user (leave-one-out)",
            found=f"{len(lines)} rows",
        )
    both = test.join(train.select("user_id", "item_id", pl.col("line").alias("train_line")), on=["user_id", "item_id"])
    if not both.is_empty():
        row = both.sort("line").row(0, named=True)
        raise DataError(
            test_path,
            f"test pair ({row['user_id']}, {row['item_id']}) is also a training row ({train_path}, line "
            f"{row['train_line']})",
            line=int(row["line"]),
            expected="train and test disjoint",
            found=f"{both.height} shared pairs",
        )


def match_negatives(test: pl.DataFrame, negatives: pl.DataFrame, test_path: Path, negative_path: Path) -> None:
    """Each negative line must name its user's test row, and each test row must have exactly one negative line."""
    dup = _first_duplicate(negatives, ["user_id"])
    if dup is not None:
        row, lines = dup
        raise DataError(
            negative_path,
            f"user {row['user_id']} has more than one negative line, on lines {lines}",
            line=lines[1],
            expected="one negative line per test row",
            found=f"{len(lines)} lines",
        )
    joined = negatives.select("line", "user_id", "item_id").join(
        test.select("user_id", pl.col("item_id").alias("test_item"), pl.col("line").alias("test_line")),
        on="user_id",
        how="left",
        maintain_order="left",
    )
    orphan = joined.filter(pl.col("test_item").is_null())
    if not orphan.is_empty():
        row = orphan.row(0, named=True)
        raise DataError(
            negative_path,
            f"negative line for user {row['user_id']}, who has no row in {test_path}",
            line=int(row["line"]),
            expected="a user of the test file",
            found=f"({row['user_id']},{row['item_id']})",
        )
    differ = joined.filter(pl.col("item_id") != pl.col("test_item"))
    if not differ.is_empty():
        row = differ.row(0, named=True)
        raise DataError(
            negative_path,
            f"negative line names another pair than the user's test row ({test_path}, line {row['test_line']})",
            line=int(row["line"]),
            expected=f"({row['user_id']},{row['test_item']})",
            found=f"({row['user_id']},{row['item_id']})",
        )
    lonely = test.join(negatives.select("user_id"), on="user_id", how="anti")
    if not lonely.is_empty():
        row = lonely.sort("line").row(0, named=True)
        raise DataError(
            test_path,
            f"test row ({row['user_id']}, {row['item_id']}) has no negative line in {negative_path}",
            line=int(row["line"]),
            expected="one negative line per test row",
            found=f"{lonely.height} test rows without one",
        )


def count_quirks(train: pl.DataFrame, test: pl.DataFrame, negatives: pl.DataFrame) -> dict[str, object]:
    """Counts of the published files' quirks (raw ids; ``train`` may be empty, e.g. ml-1m's test files alone)."""
    flat = negatives.select("line", "user_id", pl.col("item_id").alias("test_item"), pl.col("negatives").alias("neg"))
    flat = flat.explode("neg")
    per_line = negatives["negatives"].list.len()
    pos = flat.filter(pl.col("neg") == pl.col("test_item"))
    train_pairs = train.select("user_id", pl.col("item_id").alias("neg"))
    train_users = train.select("user_id").unique()
    train_items = train.select("item_id").unique()
    rated_items = pl.concat([train_items, test.select("item_id")]).unique()
    listed = flat.select(pl.col("neg").alias("item_id")).unique()
    return {
        "negative_lines": negatives.height,
        "negatives_listed": flat.height,
        "negatives_per_line": {"min": int(per_line.min()), "max": int(per_line.max())},  # type: ignore[arg-type]
        "negative_lines_without_99": int((per_line != 99).sum()),
        "test_positive_among_own_negatives_lines": pos["line"].n_unique(),
        "test_positive_among_own_negatives_entries": pos.height,
        "negatives_rated_in_train": flat.join(train_pairs, on=["user_id", "neg"], how="semi").height,
        "negatives_repeated_within_line": flat.height - flat.select("line", "neg").unique().height,
        "test_users_without_train_rows": test.join(train_users, on="user_id", how="anti").height,
        "test_rows_with_item_not_in_train": test.join(train_items, on="item_id", how="anti").height,
        "train_users_with_one_row": int((train.group_by("user_id").len()["len"] == 1).sum()),
        "items_only_in_negatives": listed.join(rated_items, on="item_id", how="anti").height,
        # DeepCF's Dataset.py: num_items = max item id of the training file + 1
        "deepcf_loader_num_items": int(train["item_id"].max()) + 1 if train.height else 0,  # type: ignore[arg-type]
    }


def build_tables(
    train: pl.DataFrame,
    test: pl.DataFrame,
    negatives: pl.DataFrame,
    paths: tuple[Path, Path, Path],
    weight_meaning: str = "the third column",
) -> CanonicalTables:
    """Checked raw frames (``read_rating_file`` ×2, ``read_negative_file``) → canonical tables with ``predefined``
    and ``negatives``; quirk counts in ``notes["quirks"]``."""
    train_path, test_path, negative_path = paths
    not_positive = train.filter(pl.col("value") <= 0).height
    train = train.filter(pl.col("value") > 0)
    _check(test, test_path, pl.col("value") > 0, "value", "a value > 0 (the held-out positive interaction)")
    if train.is_empty():
        raise DataError(train_path, "no training interactions", expected="at least one row with value > 0", found=0)
    check_train_test(train, test, train_path, test_path)
    match_negatives(test, negatives, test_path, negative_path)

    both = pl.concat(
        [train.with_columns(pl.lit("train").alias("part")), test.with_columns(pl.lit("test").alias("part"))]
    )
    weighted = bool((both["value"] != 1.0).any())
    ratings = both.select(
        "user_id",
        "item_id",
        pl.lit(1.0).alias("rating"),
        "timestamp",
        *([pl.col("value").alias("weight")] if weighted else []),
        "line",
    )
    listed = negatives.select("line", "user_id", "negatives").explode("negatives").rename({"negatives": "item_id"})
    tables = canonicalize(
        ratings, None, None, ratings_file=train_path, scale=(1.0, 1.0), extra_items=listed["item_id"].unique()
    )
    predefined = index_pairs(both.select("user_id", "item_id", "part"), tables, test_path).sort("user_idx", "item_idx")
    neg = index_pairs(listed.with_row_index("_pos"), tables, negative_path)
    neg = neg.sort("_pos").select("user_idx", "item_idx", pl.col("line").cast(pl.Int64))
    quirks = count_quirks(train, test, negatives)
    quirks["train_rows_not_positive_dropped"] = not_positive
    notes = dict(tables.notes)
    notes.update(
        raw_layout="deepcf",
        weight=f"{weight_meaning} (ratings.weight)" if weighted else "none: the third column is 1 everywhere",
        train_rows=train.height,
        test_rows=test.height,
        ratings_without_timestamp=int((both["timestamp"] == MISSING_TIMESTAMP).sum()),
        quirks=quirks,
        checked="no pair twice in train, one test row per user, train and test disjoint, one negative line per "
        "test row naming that row",
    )
    return replace(tables, notes=notes, predefined=predefined, negatives=neg)


# ---------------------------------------------------------------------------------------------- datasets
class DeepCFDataset(Dataset):
    """One DeepCF prefix: three files, acquisition local → GitHub raw (sha256) → error, leave-one-out split."""

    prefix: ClassVar[str]
    weight_meaning: ClassVar[str] = "the third column"
    rating_scale = (1.0, 1.0)
    implicit = True
    has_timestamps = False
    predefined_split = "leave-one-out"
    ordering_note = (
        "the DeepCF files carry no timestamps: the published test row is the held-out item (predefined protocol); "
        "the leave-one-out protocol picks a seeded random interaction per user"
    )

    @classmethod
    def file_names(cls) -> tuple[str, str, str]:
        return f"{cls.prefix}.train.rating", f"{cls.prefix}.test.rating", f"{cls.prefix}.test.negative"

    @classmethod
    def urls(cls) -> list[str]:
        return [BASE_URL + f for f in cls.file_names()]

    def is_acquired(self, raw_dir: Path) -> bool:
        return all((raw_dir / f).is_file() for f in self.file_names())

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        attempts = []
        if source_dir is not None:
            attempts.append((f"local directory {source_dir}", lambda: self._from_local(Path(source_dir), dest)))
        attempts.append((BASE_URL, lambda: self._from_github(dest, timeout_s)))
        names = self.file_names()
        how = (
            f"Download {', '.join(self.urls())} (from https://github.com/familyld/DeepCF, folder Data/) and put "
            f"the files {', '.join(names)} into a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR), "
            f"directly or under Data/ or deepcf/; or put them into {dest}."
        )
        label, detail = try_sources(self.name, attempts, how)
        return AcquireResult(dest, label, "deepcf", str(detail))

    def _from_local(self, source_dir: Path, dest: Path) -> str:
        names = self.file_names()
        cands = (source_dir, source_dir / "Data", source_dir / "deepcf", source_dir / self.name)
        for cand in dict.fromkeys(cands):
            if all((cand / f).is_file() for f in names):
                copy_files(cand, names, dest)
                return _digest_note(dest, names)
        present = [f for f in names if (source_dir / f).is_file()]
        raise AcquisitionError(
            f"{source_dir}: does not hold all of {list(names)} (directly or under Data/, deepcf/ or {self.name}/)"
            + (f"; found only {present}" if present else "")
        )

    def _from_github(self, dest: Path, timeout_s: float) -> str:
        cache = Path(acquire_mod.DEFAULT_CACHE) / "deepcf"
        for name in self.file_names():
            _download_pinned(BASE_URL + name, cache / name, SHA256.get(name), timeout_s)
        pinned = {n: Checksum("sha256", h) for n in self.file_names() if (h := SHA256.get(n)) is not None}
        copy_files(cache, self.file_names(), dest, checksums=pinned)  # verified again in the new copy
        return "sha256 verified"

    def parse(self, raw_dir: Path) -> CanonicalTables:
        paths = tuple(raw_dir / f for f in self.file_names())
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(
                missing[0],
                f"raw file missing: {self.name} needs {', '.join(self.file_names())}",
                expected="a file",
                found="nothing",
            )
        train_path, test_path, negative_path = paths
        return build_tables(
            read_rating_file(train_path),
            read_rating_file(test_path),
            read_negative_file(negative_path),
            (train_path, test_path, negative_path),
            self.weight_meaning,
        )


def _digest_note(dest: Path, names: tuple[str, ...]) -> str:
    """Local copies are taken as they are; say whether they are byte-identical to the published files."""
    pinned = {n: SHA256.get(n) for n in names}
    differ = [n for n, h in pinned.items() if h is not None and Checksum("sha256", h).compute(dest / n) != h]
    if differ:
        log.warning("local DeepCF files differ from the published ones (sha256): %s", differ)
        return f"local copy; differs from DeepCF {COMMIT[:8]} (sha256): {differ}"
    return f"local copy; sha256 equal to DeepCF {COMMIT[:8]} where pinned"


def _download_pinned(url: str, target: Path, sha256: str | None, timeout_s: float) -> Path:
    """Download verified against the pinned sha256, or against one recorded at the first download."""
    if sha256 is not None:
        return download(url, target, Checksum("sha256", sha256), timeout_s)
    return download_recorded(url, target, timeout_s, fetch=download)


@register
class DeepCFLastfm(DeepCFDataset):
    name = "deepcf-lastfm"
    prefix = "lastfm"
    weight_meaning = "Last.fm play count (HetRec user_artists.dat weight)"
    # 67,408 train + 1,741 test rows
    expected = ExpectedCounts(users=(1741, 1741), items=(2665, 2665), ratings=(69_149, 69_149))


@register
class DeepCFAMusic(DeepCFDataset):
    name = "deepcf-amusic"
    prefix = "AMusic"
    weight_meaning = "Amazon star rating 1-5 (Digital Music)"
    # 44,311 train + 1,776 test rows
    expected = ExpectedCounts(users=(1776, 1776), items=(12_929, 12_929), ratings=(46_087, 46_087))


@register
class DeepCFAToy(DeepCFDataset):
    name = "deepcf-atoy"
    prefix = "AToy"
    weight_meaning = "Amazon star rating 1-5 (Toys and Games)"
    # 81,505 train + 3,137 test rows
    expected = ExpectedCounts(users=(3137, 3137), items=(33_953, 33_953), ratings=(84_642, 84_642))


@register
class DeepCFMl1m(DeepCFDataset):
    name = "deepcf-ml-1m"
    prefix = "ml-1m"
    weight_meaning = "MovieLens star rating 1-5"
    has_timestamps = True
    ordering_note = "latest timestamp, ties broken by the larger item_idx (the NCF test row is each user's latest)"
    # NCF's ml-1m: every rating of MovieLens 1M (994,169 train + 6,040 test rows), 6,040 users, 3,706 items
    expected = ExpectedCounts(users=(6040, 6040), items=(3706, 3706), ratings=(1_000_209, 1_000_209))
