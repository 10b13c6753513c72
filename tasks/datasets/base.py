"""What every dataset brings: acquisition, a raw parser to canonical tables, side fields, expected counts.

Canonical schema (what ``ingest`` writes, every later stage reads):

* ``ratings``: user_idx int32, item_idx int32 (both contiguous from 0), rating float32, timestamp int64
* ``users`` / ``items``: user_idx / item_idx int32 plus the raw side attributes of that dataset
* ``user_ids`` / ``item_ids``: user_idx / item_idx int32 and raw_id (Utf8): the map back to original ids

Optional, only where a dataset has them:

* ``ratings.weight`` float32: the strength of an implicit interaction (Last.fm play count, ...); ``rating`` is 1
* ``predefined``: user_idx, item_idx, part ("train" | "test"): the dataset's own split (DeepCF, GC-MC), one row
  per rating; the ``predefined`` split protocol reads it
* ``negatives``: user_idx, item_idx, line: the dataset's own sampled negatives per test user, exactly as listed
  (quirks kept; the protocol decides whether to correct them)

A timestamp of ``MISSING_TIMESTAMP`` (-1) means "unknown": leave-one-out orders such rows by a seeded random key.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl

from tasks.common.errors import ConfigError, DataError
from tasks.common.manifest import DatasetManifest
from tasks.datasets._markup import clean_side_markup
from tasks.datasets.rawio import EPOCH_RANGE, FLOAT32_MAX, clip

SideKind = Literal["categorical", "text", "multilabel", "age", "bag", "numeric"]
MISSING_TIMESTAMP = -1

RATING_SCHEMA: dict[str, pl.DataType] = {
    "user_idx": pl.Int32(),
    "item_idx": pl.Int32(),
    "rating": pl.Float32(),
    "timestamp": pl.Int64(),
}
TABLES = ("ratings", "users", "items", "user_ids", "item_ids")
OPTIONAL_TABLES = ("predefined", "negatives")
PREDEFINED_PARTS = ("train", "test")


@dataclass(frozen=True)
class SideField:
    """One raw side column and how bag-of-words treats it.

    ``categorical`` / ``age``: one token; ``text``: word tokens; ``multilabel``: a list, each element one binary
    token; ``bag``: a list where an element repeated n times counts n (a tag-assignment or friendship relation:
    CFN's matrix T with T_ij = occurrences of tag j on item i). Each ``bag`` field also gets its own truncated SVD.
    ``numeric``: a real value (price, year...), one feature column, standardized over the entities by features.
    """

    column: str
    kind: SideKind


@dataclass(frozen=True)
class ExpectedCounts:
    """Inclusive bounds the validation suite checks the canonical tables against."""

    users: tuple[int, int]
    items: tuple[int, int]
    ratings: tuple[int, int]


@dataclass(frozen=True)
class CanonicalTables:
    ratings: pl.DataFrame
    users: pl.DataFrame
    items: pl.DataFrame
    user_ids: pl.DataFrame
    item_ids: pl.DataFrame
    notes: dict[str, object] = field(default_factory=dict)
    predefined: pl.DataFrame | None = None
    negatives: pl.DataFrame | None = None

    def as_dict(self) -> dict[str, pl.DataFrame]:
        out = {name: getattr(self, name) for name in TABLES}
        out.update({name: getattr(self, name) for name in OPTIONAL_TABLES if getattr(self, name) is not None})
        return out

    @property
    def n_users(self) -> int:
        return self.user_ids.height

    @property
    def n_items(self) -> int:
        return self.item_ids.height


@dataclass(frozen=True)
class AcquireResult:
    raw_dir: Path
    source: str  # "local", "official", "pypi:<pkg>==<ver>" ...
    layout: str  # which raw layout the parser should expect
    detail: str = ""


class Dataset(ABC):
    """A registered dataset. Subclasses set the class attributes and implement ``acquire`` and ``parse``."""

    name: ClassVar[str]
    rating_scale: ClassVar[tuple[float, float]]
    implicit: ClassVar[bool] = False
    expected: ClassVar[ExpectedCounts]
    user_side: ClassVar[tuple[SideField, ...]] = ()
    item_side: ClassVar[tuple[SideField, ...]] = ()
    has_timestamps: ClassVar[bool] = True
    # "leave-one-out" (one test item per user, with its listed negatives) or "fixed" (a train/test partition):
    # the dataset ships its own split, which the ``predefined`` protocol reproduces.
    predefined_split: ClassVar[str | None] = None
    # how leave-one-out picks the "latest" interaction when timestamps are missing (said in split.json / report)
    ordering_note: ClassVar[str] = "latest timestamp, ties broken by the larger item_idx"

    @abstractmethod
    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        """Make ``dest`` hold the raw files (atomically), trying the sources in the documented order."""

    @abstractmethod
    def parse(self, raw_dir: Path) -> CanonicalTables:
        """Read the raw files in ``raw_dir`` into canonical tables; bad rows raise ``DataError``."""

    def configure(self, raw_dir: Path) -> Dataset:
        """Adopt per-copy settings found in ``raw_dir`` (a custom mapping, a synthetic spec, an Amazon
        category...): later stages call ``get_dataset(name, raw_dir=...)`` so they see what ingest saw."""
        return self

    def is_acquired(self, raw_dir: Path) -> bool:
        """True when ``raw_dir`` already holds a complete raw copy (so acquisition can be skipped)."""
        return raw_dir.is_dir() and any(raw_dir.iterdir())

    def apply_options(self, options: Mapping[str, Any]) -> Dataset:
        """Adopt the options of ``datasets.<name>`` in params.yaml before acquisition (a dataset that takes
        options overrides this; a choice that differs from the raw copy's makes ``is_acquired`` false)."""
        if options:
            raise ConfigError(f"datasets.{self.name}", "no options (this dataset takes none)", dict(options))
        return self


def _id_order(raw_ids: pl.Series) -> pl.Series:
    """Unique raw ids in a stable order: numeric when every id is an integer, else lexicographic."""
    uniq = pl.DataFrame({"raw_id": raw_ids.unique()})
    uniq = uniq.with_columns(pl.col("raw_id").cast(pl.Int64, strict=False).alias("_int"))
    if uniq["_int"].null_count() == 0:
        return uniq.sort("_int")["raw_id"]
    return uniq.sort("raw_id")["raw_id"]


def build_id_map(raw_ids: pl.Series, idx_name: str) -> pl.DataFrame:
    ordered = _id_order(raw_ids.cast(pl.Utf8))
    return pl.DataFrame({idx_name: pl.Series(range(len(ordered)), dtype=pl.Int32), "raw_id": ordered})


def canonicalize(
    ratings: pl.DataFrame,
    users: pl.DataFrame | None,
    items: pl.DataFrame | None,
    *,
    ratings_file: str | Path,
    scale: tuple[float, float] | None,
    extra_items: pl.Series | None = None,
) -> CanonicalTables:
    """Turn raw tables into the canonical schema.

    ``ratings`` has columns user_id, item_id (any type, converted to Utf8), rating, timestamp, and
    ``line`` (the 1-based line of the row in ``ratings_file``, used to name offending rows).
    ``users`` / ``items`` have user_id / item_id plus side attributes. Only entities with at least one
    rating get an index, except the raw ids in ``extra_items`` (items a dataset lists as candidates, such as
    DeepCF's negatives, that nobody rated: they size the item dimension); ``notes`` records how many
    listed-but-unrated entities were left out. An optional ``weight`` column (implicit strength) is kept.

    Shared checks for every loader (``DataError`` naming the file, line and column): no rating at all, ids of a
    type that is no id, a rating that is not finite, a timestamp that is no date, a weight that is not finite or
    too large for float32 (it would be stored as inf). Markup in the side tables' text is stripped and counted
    (``_markup.clean_side_markup``).
    """
    check_values(ratings, ratings_file)
    ints = ratings["user_id"].dtype.is_integer() and ratings["item_id"].dtype.is_integer()
    if ints and (extra_items is None or extra_items.dtype.is_integer()):
        return _canonicalize_int(ratings, users, items, ratings_file=ratings_file, scale=scale, extra_items=extra_items)
    ratings = ratings.with_columns(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))
    check_ratings(ratings, ratings_file, scale)
    user_ids = build_id_map(ratings["user_id"], "user_idx")
    all_items = (
        ratings["item_id"] if extra_items is None else pl.concat([ratings["item_id"], extra_items.cast(pl.Utf8)])
    )
    item_ids = build_id_map(all_items, "item_idx")
    out = (
        ratings.join(user_ids.rename({"raw_id": "user_id"}), on="user_id", how="left")
        .join(item_ids.rename({"raw_id": "item_id"}), on="item_id", how="left")
        .select(_canonical_columns(ratings))
        .sort(["user_idx", "item_idx"])
    )
    notes: dict[str, object] = {}

    def side(table: pl.DataFrame | None, ids: pl.DataFrame, key: str, idx: str) -> pl.DataFrame:
        if table is None:
            return ids.select(idx)
        table = clean_side_markup(table.with_columns(pl.col(key).cast(pl.Utf8)), {key}, idx.split("_")[0] + "s", notes)
        listed = table.height
        joined = ids.rename({"raw_id": key}).join(table, on=key, how="inner").drop(key).sort(idx)
        notes[f"{idx.split('_')[0]}s_listed"] = listed
        notes[f"{idx.split('_')[0]}s_listed_unrated"] = listed - joined.height
        return joined

    users_t = side(users, user_ids, "user_id", "user_idx")
    items_t = side(items, item_ids, "item_id", "item_idx")
    return CanonicalTables(out, users_t, items_t, user_ids, item_ids, notes)


ID_TYPES = "integers or strings"


def _first_row(ratings: pl.DataFrame, mask: pl.Expr) -> dict[str, Any] | None:
    bad = ratings.filter(mask)
    return None if bad.is_empty() else bad.row(0, named=True)


def check_values(ratings: pl.DataFrame, file: str | Path) -> None:
    """What no loader may hand on (see ``canonicalize``); each ``DataError`` names the line and the column."""
    if ratings.is_empty():
        raise DataError(file, "no ratings", expected="at least one rating", found="none")
    for col in ("user_id", "item_id"):
        dtype = ratings.schema[col]
        if not (dtype.is_integer() or dtype in (pl.Utf8, pl.Categorical) or isinstance(dtype, pl.Enum)):
            raise DataError(file, f"{col} column of type {dtype}", expected=ID_TYPES, found=str(dtype))
    has_line = "line" in ratings.columns
    checks: list[tuple[str, pl.Expr, str]] = []
    lo, hi = EPOCH_RANGE
    for col, dtype in ratings.schema.items():
        c = pl.col(col)
        if col == "rating" and dtype.is_numeric():
            checks.append((col, ~c.cast(pl.Float64).is_finite(), "a finite rating"))
        elif col == "weight" and dtype.is_numeric():
            ok = c.cast(pl.Float64).is_finite() & (c.cast(pl.Float64).abs() <= FLOAT32_MAX)
            checks.append((col, ~ok, f"a finite weight of at most {FLOAT32_MAX:.3g} (stored as float32)"))
        elif col == "timestamp" and dtype.is_numeric():
            ok = c.cast(pl.Float64).is_between(lo, hi) | (c == -1)
            checks.append((col, ~ok, "epoch seconds of a date between the years 1 and 9999 (or -1, unknown)"))
        elif col in ("rating", "weight", "timestamp"):
            raise DataError(file, f"{col} column of type {dtype}", expected="numbers", found=str(dtype))
    for col, bad, expected in checks:
        row = _first_row(ratings, bad.fill_null(False))
        if row is not None:
            line = int(row["line"]) if has_line else None
            raise DataError(file, f"invalid {col}", line=line, expected=expected, found=clip(row[col]))


def check_ratings(ratings: pl.DataFrame, file: str | Path, scale: tuple[float, float] | None) -> None:
    """Raise ``DataError`` naming the first offending line for nulls, out-of-scale or duplicate pairs."""
    has_line = "line" in ratings.columns

    def first_line(mask: pl.Expr) -> int | None:
        bad = ratings.filter(mask)
        if bad.is_empty():
            return None
        return int(bad["line"][0]) if has_line else None

    for col in ("user_id", "item_id", "rating"):
        if ratings[col].null_count():
            line = first_line(pl.col(col).is_null())
            raise DataError(file, f"missing or non-numeric {col}", line=line, expected=f"a {col}", found=None)
    if scale is not None:
        lo, hi = scale
        mask = (pl.col("rating") < lo) | (pl.col("rating") > hi) | pl.col("rating").is_nan()
        bad = ratings.filter(mask)
        if not bad.is_empty():
            raise DataError(
                file,
                "rating out of the dataset's scale",
                line=int(bad["line"][0]) if has_line else None,
                expected=f"a rating in [{lo}, {hi}]",
                found=float(bad["rating"][0]),
            )
    dup = ratings.filter(pl.struct("user_id", "item_id").is_duplicated())
    if not dup.is_empty():
        first = dup.row(0, named=True)
        lines = dup.filter((pl.col("user_id") == first["user_id"]) & (pl.col("item_id") == first["item_id"]))
        where = lines["line"].to_list() if has_line else []
        raise DataError(
            file,
            f"duplicate (user, item) pair ({clip(first['user_id'])}, {clip(first['item_id'])}) on lines "
            f"{clip(where, 120)}",
            line=where[1] if len(where) > 1 else None,
            expected="each (user, item) pair at most once",
            found=f"{dup.height} duplicated rows",
        )


def _screen_int_ratings(ratings: pl.DataFrame, file: str | Path, scale: tuple[float, float] | None) -> None:
    """Cheap screen (integer pair keys, sort-based) for what ``base.check_ratings`` rejects; only a suspicious
    table pays for ``check_ratings`` itself, which then raises its usual error naming the line."""
    cols = ("user_id", "item_id", "rating")
    suspicious = any(ratings.get_column(c).null_count() for c in cols)
    if not suspicious and scale is not None:
        r = pl.col("rating")
        suspicious = bool(ratings.select(((r < scale[0]) | (r > scale[1]) | r.is_nan()).any()).item())
    if not suspicious and ratings.height > 1:
        lo_u, hi_u, lo_i, hi_i = ratings.select(
            pl.col("user_id").min().alias("a"),
            pl.col("user_id").max().alias("b"),
            pl.col("item_id").min().alias("c"),
            pl.col("item_id").max().alias("d"),
        ).row(0)
        span_i = hi_i - lo_i + 1
        if (hi_u - lo_u + 1) * span_i < 2**62:
            u = ratings.get_column("user_id").to_numpy()
            i = ratings.get_column("item_id").to_numpy()
            keys = np.sort((u - lo_u) * span_i + (i - lo_i))
            suspicious = bool((keys[1:] == keys[:-1]).any())
        else:
            suspicious = True
    if suspicious:
        check_ratings(ratings, file, scale)


def _canonicalize_int(
    ratings: pl.DataFrame,
    users: pl.DataFrame | None,
    items: pl.DataFrame | None,
    *,
    ratings_file: str | Path,
    scale: tuple[float, float] | None,
    extra_items: pl.Series | None = None,
) -> CanonicalTables:
    """``canonicalize`` for integer ids: the same output and errors without casting 10^7 ids to strings (which
    dominates time and memory at ML-20M size). Ids are ordered numerically, exactly as the string path orders
    ids that are all integers; ``users`` / ``items`` must have integer ids too."""
    _screen_int_ratings(ratings, ratings_file, scale)

    def id_map(col: str, idx: str, extra: pl.Series | None = None) -> pl.DataFrame:
        ids = ratings.get_column(col)
        if extra is not None:
            ids = pl.concat([ids, extra.cast(ids.dtype)])
        uniq = ids.unique().sort()
        return pl.DataFrame(
            {idx: pl.int_range(0, len(uniq), dtype=pl.Int32, eager=True), "_id": uniq, "raw_id": uniq.cast(pl.Utf8)}
        )

    umap, imap = id_map("user_id", "user_idx"), id_map("item_id", "item_idx", extra_items)
    out = (
        ratings.select("user_id", "item_id", *(c for c in ("rating", "timestamp", "weight") if c in ratings.columns))
        .join(umap.select("user_idx", pl.col("_id").alias("user_id")), on="user_id", how="left")
        .join(imap.select("item_idx", pl.col("_id").alias("item_id")), on="item_id", how="left")
        .select(_canonical_columns(ratings))
        .sort(["user_idx", "item_idx"])
    )
    notes: dict[str, object] = {}

    def side(table: pl.DataFrame | None, ids: pl.DataFrame, key: str, idx: str) -> pl.DataFrame:
        if table is None:
            return ids.select(idx)
        table = clean_side_markup(table, {key}, idx.split("_")[0] + "s", notes)
        joined = ids.select(idx, pl.col("_id").alias(key)).join(table, on=key, how="inner").drop(key).sort(idx)
        notes[f"{idx.split('_')[0]}s_listed"] = table.height
        notes[f"{idx.split('_')[0]}s_listed_unrated"] = table.height - joined.height
        return joined

    users_t = side(users, umap, "user_id", "user_idx")
    items_t = side(items, imap, "item_id", "item_idx")
    return CanonicalTables(out, users_t, items_t, umap.drop("_id"), imap.drop("_id"), notes)


def _canonical_columns(ratings: pl.DataFrame) -> list[pl.Expr]:
    cols = [
        pl.col("user_idx").cast(pl.Int32),
        pl.col("item_idx").cast(pl.Int32),
        pl.col("rating").cast(pl.Float32),
        pl.col("timestamp").cast(pl.Int64),
    ]
    if "weight" in ratings.columns:
        cols.append(pl.col("weight").cast(pl.Float32))
    return cols


def index_pairs(pairs: pl.DataFrame, tables: CanonicalTables, file: str | Path) -> pl.DataFrame:
    """Map raw ``user_id`` / ``item_id`` columns of ``pairs`` (plus any other columns, kept) to the tables'
    ``user_idx`` / ``item_idx``; an id the tables do not know raises ``DataError`` naming its line."""
    extra = [c for c in pairs.columns if c not in ("user_id", "item_id")]
    out = pairs.with_columns(pl.col("user_id").cast(pl.Utf8), pl.col("item_id").cast(pl.Utf8))
    out = out.join(tables.user_ids.rename({"raw_id": "user_id"}), on="user_id", how="left", maintain_order="left")
    out = out.join(tables.item_ids.rename({"raw_id": "item_id"}), on="item_id", how="left", maintain_order="left")
    for idx, raw in (("user_idx", "user_id"), ("item_idx", "item_id")):
        bad = out.filter(pl.col(idx).is_null())
        if not bad.is_empty():
            row = bad.row(0, named=True)
            raise DataError(
                file,
                f"{raw} {clip(row[raw])!r} is not in the ratings",
                line=int(row["line"]) if "line" in row else None,
                expected=f"a {raw.split('_')[0]} that has at least one rating",
                found=clip(row[raw]),
            )
    return out.select(pl.col("user_idx").cast(pl.Int32), pl.col("item_idx").cast(pl.Int32), *extra)


@dataclass(frozen=True)
class DatasetSpec:
    """What the stages after ingest know of a dataset, rebuilt from the ingest manifest (they never read the raw
    folder): the same attributes the validation suite and the feature builder read from a ``Dataset``."""

    name: str
    rating_scale: tuple[float, float]
    implicit: bool
    has_timestamps: bool
    expected: ExpectedCounts
    user_side: tuple[SideField, ...]
    item_side: tuple[SideField, ...]


def spec_from_manifest(manifest: DatasetManifest) -> DatasetSpec:
    def fields(items: tuple[str, ...]) -> tuple[SideField, ...]:
        return tuple(SideField(col, kind) for col, kind in (f.rsplit(":", 1) for f in items))  # type: ignore[misc]

    users, items, ratings = manifest.expected
    return DatasetSpec(
        name=manifest.dataset,
        rating_scale=manifest.rating_scale,
        implicit=manifest.implicit,
        has_timestamps=manifest.has_timestamps,
        expected=ExpectedCounts(users, items, ratings),
        user_side=fields(manifest.user_side),
        item_side=fields(manifest.item_side),
    )
