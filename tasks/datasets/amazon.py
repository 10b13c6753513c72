"""Amazon product data (McAuley et al.; 2014 and 2018 releases): one category's ratings 1–5 plus item metadata.

**Choosing the data.** Defaults: category ``Grocery_and_Gourmet_Food`` (``Amazon.CATEGORY``), the 2014 release,
ratings from the ratings-only CSV, no k-core filter. Another choice goes into an ``amazon.json`` placed in the
directory named by ``acquire.source_dir`` (or named itself as the source), or directly into the raw directory
``data/amazon``; every key is optional::

    {"category": "Grocery_and_Gourmet_Food", "version": 2014, "ratings_from": "csv", "k_core": 0}

* ``version``: 2014 (SNAP "productGraph" files) or 2018 (UCSD "amazon_v2" files);
* ``ratings_from``: ``"csv"`` (the ratings-only file: every rating of the category) or ``"reviews"`` (the
  5-core reviews file, JSON lines);
* ``k_core``: after the raw-data clean-up, iteratively drop users and items with fewer than ``k_core`` ratings
  until none is left (0: no filter). Counts before and after go into the notes.

``acquire`` writes the resolved ``amazon.json`` into the raw directory, so ``data.dvc`` versions the choice with
the files, and ``parse`` reads it back from there (no file: the defaults).

**Raw files** (official names kept in the raw directory; ``<C>`` is the category):

=========  ==================================================  ==============================================
release    ratings                                             metadata ``meta_<C>.json.gz``
=========  ==================================================  ==============================================
2014       ``ratings_<C>.csv``: ``user,item,rating,ts``;       one Python dict literal per line (single
           ``reviews_<C>_5.json.gz``: JSON lines with          quotes): ``title``, ``categories`` (a list of
           ``reviewerID, asin, overall, unixReviewTime``       lists, flattened); read with ``ast.literal_eval``
2018       ``<C>.csv``: ``item,user,rating,ts`` (item first!); JSON lines: ``title``, ``category`` (a list),
           ``<C>_5.json.gz``: JSON lines, same keys as 2014    ``brand``, ``description``
=========  ==================================================  ==============================================

The CSVs have no header. Gzip files are decompressed as a stream, in blocks; a truncated or corrupt stream is a
``DataError`` naming the file and the first line it could not deliver (``AcquisitionError`` at acquisition).

**Quirks of the wild data, handled and counted in ``notes`` (not errors):** rows identical in (user, item,
rating, timestamp) are dropped (``duplicate_rows_dropped``); a (user, item) pair rated more than once keeps its
latest rating by timestamp, the later line on a tie (``duplicate_pairs_dropped``); an ``asin`` listed more than
once in the metadata keeps its first line (``metadata_duplicate_asins``); a rated item without metadata gets an
empty title and no categories (``items_without_metadata``); HTML markup in titles and categories (tags such as
``<span class="a-size-medium ...">``, entities ``&amp;``, ``&#39;`` ...) is stripped by ``canonicalize`` (counted in
``markup_cleaned``; a title that was nothing but markup becomes empty).

Bad input is an error naming file and line: a metadata line that is not a literal
(never ``eval``), invalid JSON, a missing key, a non-numeric rating, a rating outside 1–5 or not a whole star.

Side information: none for users; items: ``title`` (text) and ``categories`` (multilabel), NRP's bag of words.

Acquisition order: the local directory (the files directly or under ``amazon/``) → the official URLs (no
checksum is published: the first download records its sha256 next to the download cache, later ones verify it)
→ an error naming the files, their URLs and where to put them.

Expected counts: for Grocery, McAuley's published figures of the chosen file widened to [0.5×, 1.5×] (the
2014 CSV's bounds also cover NRP's 508,800 ratings / 86,400 users / 108,500 items); with a k-core filter the
lower bounds drop to 1; other categories get (1, 10^9). ``configure(raw_dir)`` sets them (and the choice) on
the instance; the class attributes hold those of the defaults.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import logging
import math
import re
import shutil
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

import tasks.acquire as acquire_mod
from tasks.acquire import download, download_recorded, staged_dir, try_sources
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import register
from tasks.datasets._movielens_csv import check_rating_step
from tasks.datasets.base import AcquireResult, CanonicalTables, Dataset, ExpectedCounts, SideField, canonicalize
from tasks.datasets.rawio import (
    EPOCH_RANGE,
    check_byte_lines,
    clip,
    long_line_error,
    read_lines,
    split_fields,
    to_number,
)

log = logging.getLogger(__name__)

CATEGORY = "Grocery_and_Gourmet_Food"
CONFIG_FILE = "amazon.json"
URL_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/"
URL_2018 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
CHUNK_BYTES = 1 << 25  # decompressed bytes parsed at once (bounds memory on multi-GB files)
# Longest line accepted: the longest real metadata lines (2018 descriptions and "similar item" tables) are well
# under 1 MB; a longer line is damage, refused before it is parsed (a 2014 literal of millions of elements would
# take gigabytes in ``ast``).
MAX_LINE_BYTES = 1 << 24
RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
REVIEW_KEYS = {"reviewerID": "user_id", "asin": "item_id", "overall": "rating", "unixReviewTime": "timestamp"}
REVIEW_SCHEMA = {"reviewerID": pl.Utf8(), "asin": pl.Utf8(), "overall": pl.Float64(), "unixReviewTime": pl.Int64()}
META_SCHEMA_2018 = {"asin": pl.Utf8(), "title": pl.Utf8(), "category": pl.List(pl.Utf8())}
# McAuley's published counts of Grocery_and_Gourmet_Food (users, items, ratings) per (release, ratings file).
GROCERY_COUNTS = {
    (2014, "csv"): (768_438, 166_049, 1_297_156),
    (2014, "reviews"): (14_681, 8_713, 151_254),
    (2018, "csv"): (2_695_974, 283_507, 5_074_160),
    (2018, "reviews"): (127_496, 41_320, 1_143_860),
}
NRP_GROCERY = (86_400, 108_500, 508_800)  # the NRP paper's Grocery counts (filtering not stated)


# ---------------------------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class AmazonConfig:
    """Which Amazon data to use (see the module docstring)."""

    category: str = CATEGORY
    version: int = 2014
    ratings_from: str = "csv"  # "csv" | "reviews"
    k_core: int = 0

    @classmethod
    def from_dict(cls, raw: object, source: str | Path) -> AmazonConfig:
        if not isinstance(raw, dict):
            raise DataError(source, "amazon config must be a JSON object", expected="{...}", found=type(raw).__name__)
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise DataError(source, f"unknown amazon config keys {unknown}", expected=f"keys among {known}")
        cfg = cls(**{k: raw[k] for k in known if k in raw})
        cfg.check(source)
        return cfg

    def check(self, source: str | Path) -> None:
        def need(ok: bool, key: str, what: str, found: object) -> None:
            if not ok:
                raise DataError(source, f"amazon config key {key!r}", expected=what, found=found)

        need(
            isinstance(self.category, str) and re.fullmatch(r"[A-Za-z0-9_]+", self.category) is not None,
            "category",
            "a category file name such as 'Grocery_and_Gourmet_Food' (letters, digits, _)",
            self.category,
        )
        need(
            self.version in (2014, 2018) and not isinstance(self.version, bool), "version", "2014 or 2018", self.version
        )
        need(self.ratings_from in ("csv", "reviews"), "ratings_from", "'csv' or 'reviews'", self.ratings_from)
        need(
            isinstance(self.k_core, int) and not isinstance(self.k_core, bool) and self.k_core >= 0,
            "k_core",
            "an integer >= 0",
            self.k_core,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def ratings_file(self) -> str:
        c = self.category
        if self.ratings_from == "csv":
            return f"ratings_{c}.csv" if self.version == 2014 else f"{c}.csv"
        return f"reviews_{c}_5.json.gz" if self.version == 2014 else f"{c}_5.json.gz"

    @property
    def meta_file(self) -> str:
        return f"meta_{self.category}.json.gz"

    @property
    def files(self) -> tuple[str, str]:
        return (self.ratings_file, self.meta_file)

    def url(self, name: str) -> str:
        if self.version == 2014:
            return URL_2014 + name
        return URL_2018 + ("metaFiles2/" if name.startswith("meta_") else "categoryFilesSmall/") + name

    @property
    def csv_columns(self) -> list[str]:
        """Column order of the ratings-only CSV: user first in 2014, item first in 2018."""
        return RATING_COLUMNS if self.version == 2014 else ["item_id", "user_id", "rating", "timestamp"]

    @property
    def layout(self) -> str:
        return f"amazon-{self.version}-{self.ratings_from}"


def read_config(path: Path) -> AmazonConfig:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON: {exc}", line=getattr(exc, "lineno", None)) from exc
    return AmazonConfig.from_dict(raw, path)


def config_in(raw_dir: Path, default: AmazonConfig | None = None) -> AmazonConfig:
    """The choice recorded in ``raw_dir`` (``default`` or the defaults when it holds no ``amazon.json``)."""
    path = raw_dir / CONFIG_FILE
    return read_config(path) if path.is_file() else (default or AmazonConfig())


def expected_for(cfg: AmazonConfig) -> ExpectedCounts:
    if cfg.category != CATEGORY:
        return ExpectedCounts(users=(1, 10**9), items=(1, 10**9), ratings=(1, 10**10))
    nominal = GROCERY_COUNTS[(cfg.version, cfg.ratings_from)]
    refs = [nominal, NRP_GROCERY] if (cfg.version, cfg.ratings_from) == (2014, "csv") else [nominal]
    bounds = []
    for k in range(3):
        lo = 1 if cfg.k_core > 0 else int(0.5 * min(r[k] for r in refs))
        bounds.append((lo, int(1.5 * max(r[k] for r in refs))))
    return ExpectedCounts(users=bounds[0], items=bounds[1], ratings=bounds[2])


# ---------------------------------------------------------------------------------------------- gzip streaming
def gzip_chunks(
    path: Path, chunk_bytes: int | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based number of its first line, block of whole lines) from a gzip file, decompressing as a stream.

    A truncated or corrupt stream raises ``DataError`` naming the file and the first line not delivered; so does
    a line longer than ``max_line_bytes`` (memory stays bounded by the block size plus that limit).
    """
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    line_no = 1
    carry = b""
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                block = fh.read(chunk_bytes or CHUNK_BYTES)
                if not block:
                    break
                data = carry + block
                cut = data.rfind(b"\n") + 1
                carry = data[cut:]
                if len(carry) > max_line_bytes:
                    raise long_line_error(path, line_no + data.count(b"\n", 0, cut), carry, max_line_bytes)
                if cut == 0:
                    continue
                check_byte_lines(path, data[:cut], max_line_bytes, line_no)
                yield line_no, data[:cut]
                line_no += data.count(b"\n", 0, cut)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(
            path,
            f"truncated or corrupt gzip stream at or after this line ({exc}); fetch the file again",
            line=line_no,
        ) from exc
    if carry:
        yield line_no, carry


def check_gzip(path: Path) -> None:
    """Read a gzip file through (discarding the output); ``AcquisitionError`` naming it when damaged."""
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(CHUNK_BYTES):
                pass
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise AcquisitionError(f"{path}: truncated or corrupt gzip file ({exc})") from exc


def _line_count(chunk: bytes) -> int:
    return chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)


def _iter_lines(path: Path, first: int, chunk: bytes) -> Iterator[tuple[int, str]]:
    """Non-blank lines of a block as (line number, text without CR/LF); invalid UTF-8 names its line."""
    for k, raw in enumerate(chunk.split(b"\n")):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            yield first + k, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(path, "not valid utf-8", line=first + k) from exc


# ---------------------------------------------------------------------------------------------- ratings
def _number(value: object, path: Path, line: int, key: str, integer: bool) -> float | int:
    """A finite number (a timestamp: epoch seconds of a date in ``EPOCH_RANGE``, floored), else ``DataError``."""
    number: float | None = None
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (ValueError, OverflowError):
            number = None
    if number is None or not math.isfinite(number):
        raise DataError(path, f"non-numeric or missing {key}", line=line, expected="a finite number", found=clip(value))
    if integer and not (EPOCH_RANGE[0] <= number <= EPOCH_RANGE[1]):
        expected = "epoch seconds of a date between the years 1 and 9999"
        raise DataError(path, f"{key} out of range", line=line, expected=expected, found=clip(value))
    return math.floor(number) if integer else number


def _reviews_slow(path: Path, first: int, chunk: bytes) -> pl.DataFrame:
    rows: dict[str, list[Any]] = {c: [] for c in [*RATING_COLUMNS, "line"]}
    for line, text in _iter_lines(path, first, chunk):
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, or an integer of thousands of digits
            msg = exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
            raise DataError(path, f"not a JSON object: {msg}", line=line, found=clip(text, 80)) from exc
        if not isinstance(obj, dict):
            raise DataError(path, "not a JSON object", line=line, expected="{...}", found=clip(text, 80))
        for key, col in REVIEW_KEYS.items():
            if key not in obj or obj[key] is None:
                raise DataError(path, f"missing key {key!r}", line=line, expected=f"keys {list(REVIEW_KEYS)}")
            v = obj[key]
            if col in ("user_id", "item_id"):
                if not isinstance(v, str | int) or isinstance(v, bool) or str(v).strip() == "":
                    raise DataError(path, f"invalid {key}", line=line, expected="a non-empty id", found=clip(v))
                rows[col].append(str(v).strip())
            else:
                rows[col].append(_number(v, path, line, key, integer=col == "timestamp"))
        rows["line"].append(line)
    return pl.DataFrame(
        rows,
        schema={"user_id": pl.Utf8, "item_id": pl.Utf8, "rating": pl.Float64, "timestamp": pl.Int64, "line": pl.Int64},
    )


def read_reviews(path: Path) -> pl.DataFrame:
    """Reviews JSON lines (gzip) → user_id, item_id (Utf8), rating (Float64), timestamp (Int64), line.

    Fast path per block: one typed ``pl.read_ndjson`` reading only the four keys; a block with anything
    unexpected (bad JSON, a missing key, a blank line) is re-read line by line, which names the bad line.
    """
    frames = []
    for first, chunk in gzip_chunks(path):
        df = None
        try:
            df = pl.read_ndjson(io.BytesIO(chunk), schema=REVIEW_SCHEMA)
        except (pl.exceptions.PolarsError, ValueError):
            df = None
        if df is not None and df.height == _line_count(chunk) and not any(df.null_count().row(0)):
            df = df.rename(REVIEW_KEYS).with_columns(
                pl.col("user_id").str.strip_chars(),
                pl.col("item_id").str.strip_chars(),
                pl.int_range(first, first + df.height, dtype=pl.Int64).alias("line"),
            )
            if df.filter((pl.col("user_id") == "") | (pl.col("item_id") == "")).is_empty():
                frames.append(df)
                continue
        frames.append(_reviews_slow(path, first, chunk))
    return pl.concat(frames) if frames else _reviews_slow(path, 1, b"")


def read_ratings_csv(path: Path, columns: list[str]) -> pl.DataFrame:
    """Ratings-only CSV without header (``columns`` gives the order) → the columns of ``read_reviews``.

    Fast path: one typed ``pl.read_csv``; any irregularity (parse error, a null, a blank line, so that rows and
    lines would not match) falls back to the line-checked reader of ``rawio``, which names the bad line.
    """
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    data = path.read_bytes()
    types = {"user_id": pl.Utf8(), "item_id": pl.Utf8(), "rating": pl.Float64(), "timestamp": pl.Int64()}
    df = None
    if data:
        try:
            df = pl.read_csv(io.BytesIO(data), has_header=False, schema={c: types[c] for c in columns}, quote_char=None)
        except (pl.exceptions.PolarsError, ValueError):
            df = None
    if df is not None and df.height == _line_count(data) and not any(df.null_count().row(0)):
        df = df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias("line"))
    else:
        del data
        df = split_fields(read_lines(path), path, ",", columns)
        df = to_number(df, path, "rating", pl.Float64())
        df = to_number(df, path, "timestamp", pl.Int64())
    df = df.with_columns(pl.col("user_id").str.strip_chars(), pl.col("item_id").str.strip_chars())
    empty = df.filter((pl.col("user_id") == "") | (pl.col("item_id") == ""))
    if not empty.is_empty():
        raise DataError(path, "empty user or item id", line=int(empty["line"][0]), expected="non-empty ids", found="")
    return df.select(*RATING_COLUMNS, "line")


def check_values(df: pl.DataFrame, path: Path, scale: tuple[float, float]) -> None:
    """Every rating a whole star inside the scale (checked on the raw rows, before any row is dropped)."""
    lo, hi = scale
    r = pl.col("rating")
    bad = df.filter((r < lo) | (r > hi) | r.is_nan())
    if not bad.is_empty():
        raise DataError(
            path,
            "rating out of the dataset's scale",
            line=int(bad["line"][0]),
            expected=f"a rating in [{lo}, {hi}]",
            found=float(bad["rating"][0]),
        )
    check_rating_step(df, path, 1.0, scale)


def drop_duplicates(df: pl.DataFrame, notes: dict[str, object]) -> pl.DataFrame:
    """Drop rows identical in (user, item, rating, timestamp); keep the latest rating of a repeated pair."""
    n0 = df.height
    df = df.unique(subset=RATING_COLUMNS, keep="first", maintain_order=True)
    n1 = df.height
    df = df.sort(["timestamp", "line"]).unique(subset=["user_id", "item_id"], keep="last").sort("line")
    notes["duplicate_rows_dropped"] = n0 - n1
    notes["duplicate_pairs_dropped"] = n1 - df.height
    return df


def k_core(df: pl.DataFrame, k: int, notes: dict[str, object]) -> pl.DataFrame:
    """Iteratively drop users and items with fewer than ``k`` ratings (both at least ``k`` at the end)."""

    def counts(d: pl.DataFrame) -> dict[str, int]:
        return {"users": d["user_id"].n_unique(), "items": d["item_id"].n_unique(), "ratings": d.height}

    before = counts(df)
    rounds = 0
    if k > 1:
        while True:
            rounds += 1
            kept = df.filter((pl.len().over("user_id") >= k) & (pl.len().over("item_id") >= k))
            if kept.height == df.height:
                break
            df = kept
    notes["k_core"] = {"k": k, "before": before, "after": counts(df), "rounds": rounds}
    return df


# ---------------------------------------------------------------------------------------------- metadata
def _flatten(value: object) -> list[str]:
    """2014 ``categories`` (a list of lists), 2018 ``category`` (a list) or a bare string → labels, in order."""
    out: list[str] = []
    stack = [value]  # iterative: a deeply nested list must not exhaust the interpreter's recursion limit
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if v.strip():
                out.append(v.strip())
        elif isinstance(v, list | tuple):
            stack.extend(reversed(v))
    return list(dict.fromkeys(out))


def _literal(text: str) -> object:
    """A 2014 metadata line: a Python literal, read with ``ast.literal_eval`` (never ``eval``)."""
    return ast.literal_eval(text)


def _meta_slow(path: Path, first: int, chunk: bytes, loads: Callable[[str], object], cats_key: str) -> pl.DataFrame:
    ids: list[str] = []
    titles: list[str] = []
    cats: list[list[str]] = []
    lines: list[int] = []
    what = "a Python dict literal" if loads is _literal else "a JSON object"
    for line, text in _iter_lines(path, first, chunk):
        try:
            obj = loads(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise DataError(
                path,
                f"metadata line is not {what} ({type(exc).__name__})",
                line=line,
                expected=what,
                found=clip(text, 80),
            ) from exc
        if not isinstance(obj, dict):
            raise DataError(path, f"metadata line is not {what}", line=line, expected=what, found=clip(text, 80))
        asin = obj.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            raise DataError(
                path, "metadata line without an asin", line=line, expected="a non-empty 'asin'", found=clip(asin)
            )
        title = obj.get("title")
        ids.append(asin.strip())
        titles.append("" if title is None else str(title))
        cats.append(_flatten(obj.get(cats_key)))
        lines.append(line)
    return pl.DataFrame(
        {"item_id": ids, "title": titles, "categories": cats, "line": lines},
        schema={"item_id": pl.Utf8, "title": pl.Utf8, "categories": pl.List(pl.Utf8), "line": pl.Int64},
    )


def _meta_fast_2018(path: Path, first: int, chunk: bytes) -> pl.DataFrame | None:
    try:
        df = pl.read_ndjson(io.BytesIO(chunk), schema=META_SCHEMA_2018)
    except (pl.exceptions.PolarsError, ValueError):
        return None
    if df.height != _line_count(chunk) or df["asin"].null_count():
        return None
    df = df.select(
        pl.col("asin").str.strip_chars().alias("item_id"),
        pl.col("title").fill_null(""),
        pl.col("category")
        .fill_null([])
        .list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
        .list.unique(maintain_order=True)
        .alias("categories"),
        pl.int_range(first, first + df.height, dtype=pl.Int64).alias("line"),
    )
    return None if (df["item_id"] == "").any() else df


def read_meta(path: Path, version: int) -> pl.DataFrame:
    """Metadata → item_id, title, categories (list), line; one row per asin (first). Markup (HTML tags and
    entities) is stripped later, by ``canonicalize``, as for every loader."""
    frames = []
    for first, chunk in gzip_chunks(path):
        df = _meta_fast_2018(path, first, chunk) if version == 2018 else None
        if df is None:
            loads, key = (json.loads, "category") if version == 2018 else (_literal, "categories")
            df = _meta_slow(path, first, chunk, loads, key)
        frames.append(df)
    meta = pl.concat(frames) if frames else _meta_slow(path, 1, b"", json.loads, "category")
    return meta.with_columns(pl.col("title").str.strip_chars(), pl.col("categories").list.unique(maintain_order=True))


# ---------------------------------------------------------------------------------------------- dataset
@register
class Amazon(Dataset):
    name = "amazon"
    CATEGORY: ClassVar[str] = CATEGORY
    rating_scale = (1.0, 5.0)
    expected = expected_for(AmazonConfig())
    user_side = ()
    item_side = (SideField("title", "text"), SideField("categories", "multilabel"))

    def __init__(self) -> None:
        self._adopt(self.default_config())

    def default_config(self) -> AmazonConfig:
        return AmazonConfig(category=self.CATEGORY)

    def configure(self, raw_dir: Path) -> Amazon:
        """Adopt the choice recorded in ``raw_dir`` (its ``amazon.json``): files, expected counts."""
        self._adopt(config_in(Path(raw_dir), self.default_config()))
        return self

    def _adopt(self, cfg: AmazonConfig) -> None:
        self.config = cfg
        self.expected = expected_for(cfg)  # type: ignore[misc]

    # ------------------------------------------------------------------ acquisition
    requested: AmazonConfig | None = None  # from params.yaml ``datasets.amazon`` (apply_options)

    def apply_options(self, options: Mapping[str, Any]) -> Amazon:
        """``datasets.amazon`` in params.yaml: category, version, ratings_from, k_core (all optional)."""
        self.requested = AmazonConfig.from_dict(dict(options), "params.yaml datasets.amazon") if options else None
        return self

    def _requested(self, dest: Path, source_dir: Path | None) -> tuple[AmazonConfig, str]:
        if self.requested is not None:
            return self.requested, "params.yaml datasets.amazon"
        if source_dir is not None:
            src = Path(source_dir)
            path = src if src.is_file() else src / CONFIG_FILE
            if path.is_file():
                return read_config(path), str(path)
        if (dest / CONFIG_FILE).is_file():
            return read_config(dest / CONFIG_FILE), str(dest / CONFIG_FILE)
        return self.default_config(), "defaults"

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        cfg, origin = self._requested(dest, source_dir)
        attempts = []
        if source_dir is not None:
            src = Path(source_dir).parent if Path(source_dir).is_file() else Path(source_dir)
            attempts.append((f"local directory {src}", lambda: self._from_local(src, cfg, dest)))
        attempts.append((cfg.url(""), lambda: self._from_official(cfg, dest, timeout_s)))
        urls = " and ".join(cfg.url(f) for f in cfg.files)
        how = (
            f"Download {urls} and put them into a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR), "
            f"optionally with an {CONFIG_FILE} choosing another category/release ({json.dumps(cfg.to_dict())}); "
            f"or put the files {', '.join(cfg.files)} into {dest}."
        )
        label, layout = try_sources(self.name, attempts, how)
        self._adopt(cfg)
        return AcquireResult(dest, label, str(layout), detail=f"choice from {origin}: {json.dumps(cfg.to_dict())}")

    def is_acquired(self, raw_dir: Path) -> bool:
        try:
            cfg = config_in(raw_dir, self.default_config())
        except DataError:
            return False
        if self.requested is not None and cfg != self.requested:
            return False  # params ask for another category / release than the raw copy holds
        return all((raw_dir / f).is_file() for f in cfg.files)

    @staticmethod
    def _install(files: dict[str, Path], cfg: AmazonConfig, dest: Path) -> None:
        for path in files.values():
            if path.name.endswith(".gz"):
                check_gzip(path)
        origin = " and ".join(sorted({str(p.parent) for p in files.values()}))
        with staged_dir(dest, (*cfg.files, CONFIG_FILE), origin=origin) as tmp:
            for name, path in files.items():
                shutil.copyfile(path, tmp / name)
            (tmp / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=2) + "\n", encoding="utf-8")

    def _from_local(self, source_dir: Path, cfg: AmazonConfig, dest: Path) -> str:
        for cand in (source_dir, source_dir / "amazon"):
            if all((cand / f).is_file() for f in cfg.files):
                self._install({f: cand / f for f in cfg.files}, cfg, dest)
                return cfg.layout
        raise AcquisitionError(
            f"{source_dir}: lacks {[f for f in cfg.files if not (source_dir / f).is_file()]} "
            f"(the {cfg.version} files of {cfg.category}, directly or under amazon/)"
        )

    def _from_official(self, cfg: AmazonConfig, dest: Path, timeout_s: float) -> str:
        cache = Path(acquire_mod.DEFAULT_CACHE) / f"amazon-{cfg.version}"
        got = {f: _download_recorded(cfg.url(f), cache / f, timeout_s) for f in cfg.files}
        self._install(got, cfg, dest)
        return cfg.layout

    # ------------------------------------------------------------------ parsing
    def parse(self, raw_dir: Path) -> CanonicalTables:
        self.configure(raw_dir)
        cfg = self.config
        ratings_path, meta_path = raw_dir / cfg.ratings_file, raw_dir / cfg.meta_file
        if not ratings_path.is_file():
            raise DataError(
                ratings_path,
                f"raw file missing for {json.dumps(cfg.to_dict())} (run the acquire stage)",
                expected="a file",
                found=sorted(p.name for p in raw_dir.iterdir()) if raw_dir.is_dir() else "no directory",
            )
        if cfg.ratings_from == "csv":
            ratings = read_ratings_csv(ratings_path, cfg.csv_columns)
        else:
            ratings = read_reviews(ratings_path)
        if ratings.is_empty():
            raise DataError(ratings_path, "no ratings", expected="at least one rating line", found="none")
        check_values(ratings, ratings_path, self.rating_scale)
        notes: dict[str, object] = {"config": cfg.to_dict(), "ratings_read": ratings.height}
        ratings = drop_duplicates(ratings, notes)
        ratings = k_core(ratings, cfg.k_core, notes)
        if ratings.is_empty():
            raise DataError(ratings_path, f"no ratings left after the {cfg.k_core}-core filter", found=notes["k_core"])

        meta = read_meta(meta_path, cfg.version)
        n_meta = meta.height
        meta = meta.unique(subset=["item_id"], keep="first", maintain_order=True)
        rated = ratings.select(pl.col("item_id").unique())
        items = rated.join(meta.drop("line"), on="item_id", how="left")
        missing = int(items["title"].null_count())
        items = items.with_columns(
            pl.col("title").fill_null(""), pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.Utf8)))
        )
        notes.update(
            metadata_lines=n_meta,
            metadata_duplicate_asins=n_meta - meta.height,
            metadata_items_unrated=meta.height - (rated.height - missing),
            items_without_metadata=missing,
        )
        tables = canonicalize(ratings, None, items, ratings_file=ratings_path, scale=self.rating_scale)
        tables.notes.update(notes, raw_layout=cfg.layout)
        return tables


def _download_recorded(url: str, target: Path, timeout_s: float) -> Path:
    """No published checksum: sha256 recorded at the first download (a gzip must be whole first)."""
    accept = check_gzip if target.name.endswith(".gz") else None
    return download_recorded(url, target, timeout_s, accept=accept, fetch=download)
