"""Shared MovieLens helpers: GroupLens zip acquisition, fast checked readers, genres/tags, the CSV datasets' base.

Not a dataset itself (the leading ``_`` keeps it out of the registry); ``ml1m``, ``ml10m`` and ``ml20m`` build on
it. Readers have a fast path (one typed ``pl.read_csv`` call, no per-row Python) and fall back to the
line-checked readers of ``rawio`` only when the fast path meets something unexpected, so a bad row is always
reported with its file and 1-based line, and a good file of 25M rows is read in seconds.

Rating steps (documented decision): ML-1M stores whole stars, so a non-integer rating is an error; ML-10M and
later store half stars, so a value inside the scale that is not a multiple of 0.5 (e.g. 4.25) is an error.
Values outside the scale (0, 5.5) are reported by ``canonicalize``'s scale check.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import polars as pl

import tasks.acquire as acquire_mod
from tasks.acquire import (
    Checksum,
    IncompleteCopyError,
    copy_files,
    download,
    download_recorded,
    extract_zip,
    try_sources,
    verify,
)
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets.base import AcquireResult, CanonicalTables, Dataset, SideField, canonicalize
from tasks.datasets.rawio import clip, exc_summary, field_count_error, read_lines, split_fields, to_number

log = logging.getLogger(__name__)

NO_GENRES = "(no genres listed)"
RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


# ---------------------------------------------------------------------------------------------- acquisition
class MovieLensZip(Dataset):
    """Acquisition shared by the GroupLens MovieLens zips: local dir (unpacked or zip) → official URL."""

    url: ClassVar[str]
    archive: ClassVar[str]  # file name of the zip, e.g. "ml-1m.zip"
    folder: ClassVar[str]  # top folder inside the zip, e.g. "ml-1m"
    md5: ClassVar[str | None] = None  # None: no published checksum, a sha256 sidecar is recorded instead
    required_files: ClassVar[tuple[str, ...]]
    optional_files: ClassVar[tuple[str, ...]] = ("README", "README.txt", "README.html", "links.csv")

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        attempts = []
        if source_dir is not None:
            attempts.append((f"local directory {source_dir}", lambda: self._from_local(Path(source_dir), dest)))
        attempts.append((self.url, lambda: self._from_official(dest, timeout_s)))
        label, layout = try_sources(self.name, attempts, self.how_to(dest))
        return AcquireResult(dest, label, str(layout))

    def how_to(self, dest: Path) -> str:
        """What a user without network does: which file to download from where, and where to put it."""
        checksum = f" (MD5 {self.md5})" if self.md5 else ""
        return (
            f"Download {self.url}{checksum} and either put {self.archive} itself, or the {self.folder}/ folder "
            f"it unzips to, into a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR); or put the "
            f"files {', '.join(self.required_files)} into {dest}."
        )

    def is_acquired(self, raw_dir: Path) -> bool:
        return all((raw_dir / f).is_file() for f in self.required_files)

    def _wanted(self) -> tuple[str, ...]:
        return self.required_files + self.optional_files

    def _select(self, member: str) -> str | None:
        parts = member.split("/")
        if parts[-1] in self._wanted() and (len(parts) == 1 or (len(parts) == 2 and parts[0] == self.folder)):
            return parts[-1]
        return None

    def _extract(self, zip_path: Path, dest: Path) -> None:
        """Extract the wanted members; the new copy replaces ``dest`` only if it has every required file."""
        try:
            extract_zip(zip_path, dest, self._select, required=self.required_files)
        except IncompleteCopyError as exc:
            hint = f"{exc}; {dest} was left as it was (the files are read at the zip's top or under {self.folder}/)"
            raise IncompleteCopyError(hint, exc.missing) from exc

    def _from_local(self, source_dir: Path, dest: Path) -> str:
        zips = [source_dir] if source_dir.is_file() else [source_dir / self.archive]
        for z in zips:
            if z.is_file() and z.suffix == ".zip":
                if self.md5:
                    verify(z, Checksum("md5", self.md5))
                self._extract(z, dest)
                return "zip"
        for cand in dict.fromkeys((source_dir, source_dir / self.folder, source_dir / self.name)):
            if all((cand / f).is_file() for f in self.required_files):
                names = [*self.required_files, *(f for f in self.optional_files if (cand / f).is_file())]
                copy_files(cand, names, dest)
                return "unpacked"
        raise AcquisitionError(
            f"{source_dir}: holds neither {self.archive} nor the files {list(self.required_files)} "
            f"(directly or under {self.folder}/)"
        )

    def _from_official(self, dest: Path, timeout_s: float) -> str:
        cache = Path(acquire_mod.DEFAULT_CACHE)
        target = cache / self.archive
        if self.md5:
            self._extract(download(self.url, target, Checksum("md5", self.md5), timeout_s), dest)
            return "zip"
        # No published checksum: the first download records its sha256 in a sidecar, later ones verify it.
        download_recorded(self.url, target, timeout_s, accept=lambda got: self._extract(got, dest), fetch=download)
        return "zip"


# ---------------------------------------------------------------------------------------------- line reading
def decode_lines(path: Path, encodings: Sequence[str] = ("utf-8",)) -> tuple[pl.DataFrame, str]:
    """``rawio.read_lines`` trying each encoding in turn; returns the lines and the encoding that worked."""
    for k, enc in enumerate(encodings):
        try:
            return read_lines(path, encoding=enc), enc
        except DataError:
            if k == len(encodings) - 1 or not path.is_file():
                raise
            log.warning("%s is not valid %s; reading it as %s", path, enc, encodings[k + 1])
    raise AssertionError("unreachable")


def split_middle(lines: pl.DataFrame, path: Path, sep: str, before: int, after: int, names: list[str]) -> pl.DataFrame:
    """Split on ``sep`` into ``before`` leading fields, one free-text middle field and ``after`` trailing fields.

    The middle field (a title, a tag) may itself contain ``sep``; a line with fewer than ``before + after + 1``
    fields raises ``DataError`` with its line.
    """
    parts = lines.with_columns(pl.col("raw").str.split(sep).alias("_f"))
    n = parts["_f"].list.len()
    bad = parts.filter(n < before + after + 1)
    if not bad.is_empty():
        row = bad.row(0, named=True)
        expected = f"{len(names)} fields separated by {sep!r}"
        raise field_count_error(path, int(row["line"]), row["raw"], len(row["_f"]), expected)
    cols = [pl.col("_f").list.get(k).alias(names[k]) for k in range(before)]
    cols.append(
        pl.col("_f").list.slice(before, pl.col("_f").list.len() - before - after).list.join(sep).alias(names[before])
    )
    cols += [pl.col("_f").list.get(-after + k).alias(names[before + 1 + k]) for k in range(after)]
    return parts.select("line", *cols)


def read_dat_ratings(path: Path) -> pl.DataFrame:
    """``UserID::MovieID::Rating::Timestamp`` lines → user_id, item_id (Int64), rating (Float64), timestamp, line.

    Fast path: parse with ':' as a one-byte separator, so every ``::`` yields an empty field between two values;
    any irregularity (a parse error, a null, a non-empty in-between field) falls back to the line-checked reader,
    which either names the bad line or (e.g. for blank lines or stray spaces) returns the same rows.
    """
    schema = {
        "user_id": pl.Int64(),
        "_a": pl.Utf8(),
        "item_id": pl.Int64(),
        "_b": pl.Utf8(),
        "rating": pl.Float64(),
        "_c": pl.Utf8(),
        "timestamp": pl.Int64(),
    }
    df = None
    if path.is_file():
        try:
            df = pl.read_csv(path, separator=":", has_header=False, quote_char=None, schema=schema)
        except (pl.exceptions.PolarsError, OSError):
            df = None
    if df is not None and df.height > 0:
        clean = all(df[c].null_count() == 0 for c in RATING_COLUMNS) and all(
            df[c].null_count() == df.height for c in ("_a", "_b", "_c")
        )
        if clean:
            return df.select(*RATING_COLUMNS, pl.int_range(1, df.height + 1, dtype=pl.Int64).alias("line"))
    return _slow_dat_ratings(path)


def _slow_dat_ratings(path: Path) -> pl.DataFrame:
    df = split_fields(read_lines(path), path, "::", RATING_COLUMNS)
    df = to_number(df, path, "user_id", pl.Int64())
    df = to_number(df, path, "item_id", pl.Int64())
    df = to_number(df, path, "rating", pl.Float64())
    df = to_number(df, path, "timestamp", pl.Int64())
    return df.select(*RATING_COLUMNS, "line")


# ---------------------------------------------------------------------------------------------- CSV with header
def read_csv_table(path: Path, header: Sequence[str], numeric: dict[str, pl.DataType]) -> pl.DataFrame:
    """Read a GroupLens CSV (header row, ``"``-quoted fields) into its columns plus the 1-based ``line``.

    Columns in ``numeric`` are cast to their dtype and must be present on every row; other columns are strings
    (an empty field is ""). The header must be exactly ``header``. Fast path: one typed ``pl.read_csv``; any
    surprise (parse error, missing value) re-reads the file as strings to name the first bad line.
    """
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    schema = {c: numeric.get(c, pl.Utf8()) for c in header}
    try:
        df = pl.read_csv(path, schema=schema, has_header=True, quote_char='"')
    except (pl.exceptions.PolarsError, OSError):
        df = None
    if df is not None and all(df[c].null_count() == 0 for c in header):
        return df.with_columns(_csv_line_numbers(df, [c for c in header if c not in numeric]))
    return _slow_csv(path, list(header), numeric)


def _csv_line_numbers(df: pl.DataFrame, text_cols: list[str]) -> pl.Expr:
    """Row k starts on line 2 + k + (newlines embedded in quoted fields of rows before k)."""
    base = pl.int_range(2, df.height + 2, dtype=pl.Int64)
    if not text_cols or df.height == 0:
        return base.alias("line")
    nl = pl.sum_horizontal(pl.col(c).str.count_matches("\n") for c in text_cols).cast(pl.Int64)
    return (base + nl.cum_sum().shift(1, fill_value=0)).alias("line")


_QUOTED = r'"[^"]*"'  # a quoted field; "" escapes split it into adjacent quoted pieces, which is harmless here


def _field_count_problem(path: Path, lines: pl.DataFrame, n: int) -> DataError | None:
    """The first line whose quote-aware field count is not ``n`` (or with an unbalanced quote)."""
    counted = lines.with_columns(
        (pl.col("raw").str.count_matches('"') % 2).alias("_odd"),
        (pl.col("raw").str.replace_all(_QUOTED, "").str.count_matches(",") + 1).alias("_n"),
    )
    bad = counted.filter((pl.col("_odd") == 1) | (pl.col("_n") != n))
    if bad.is_empty():
        return None
    row = bad.row(0, named=True)
    if row["_odd"]:
        return DataError(
            path, "unbalanced double quote", line=int(row["line"]), expected="closed quotes", found=clip(row["raw"], 80)
        )
    return field_count_error(path, int(row["line"]), row["raw"], row["_n"], f"{n} comma-separated fields")


def _slow_csv(path: Path, header: list[str], numeric: dict[str, pl.DataType]) -> pl.DataFrame:
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").rstrip("\r\n").lstrip("\ufeff")
    if first != ",".join(header):
        raise DataError(path, "unexpected CSV header", line=1, expected=",".join(header), found=clip(first) or None)
    try:
        df = pl.read_csv(path, has_header=True, infer_schema=False, quote_char='"', empty_string_is_null=False)
    except pl.exceptions.PolarsError as exc:
        lines = read_lines(path, skip_header=True)  # names the line of an invalid UTF-8 byte
        problem = _field_count_problem(path, lines, len(header))
        raise (problem or DataError(path, f"unreadable CSV: {exc_summary(exc)}")) from exc
    df = df.rename(dict(zip(df.columns, header))).with_columns(pl.all().fill_null(""))
    text_cols = [c for c in header if c not in numeric]
    df = df.with_columns(_csv_line_numbers(df, header))
    all_empty = ~pl.any_horizontal(pl.col(c) != "" for c in header)
    if df.select(all_empty.any()).item():  # blank lines are skipped; a line of bare separators is a row
        candidates = df.filter(all_empty).select("line")
        raw = read_lines(path, skip_header=True).join(candidates, on="line", how="semi")
        blank = candidates.join(raw.filter(pl.col("raw").str.strip_chars() != ""), on="line", how="anti")
        df = df.join(blank, on="line", how="anti")
    # an empty field: a short row (wrong number of fields) or an empty value (an error only if numeric)?
    empty = df.filter(pl.any_horizontal(pl.col(c) == "" for c in header))
    if not empty.is_empty():
        lines = read_lines(path, skip_header=True).join(empty.select("line"), on="line", how="semi")
        problem = _field_count_problem(path, lines, len(header))
        if problem is not None:
            raise problem
    missing = empty.filter(pl.any_horizontal(pl.col(c) == "" for c in numeric))
    if not missing.is_empty():
        line = int(missing["line"][0])
        col = next(c for c in numeric if missing[c][0] == "")
        raise DataError(path, f"non-numeric or missing {col}", line=line, expected=f"a {numeric[col]} value", found="")
    for col, dtype in numeric.items():
        df = to_number(df, path, col, dtype)
    return df.select(*header, "line").with_columns(pl.col(c).cast(pl.Utf8) for c in text_cols)


# ---------------------------------------------------------------------------------------------- checks
def check_rating_step(df: pl.DataFrame, path: Path, step: float, scale: tuple[float, float]) -> None:
    """Inside the scale, every rating must be a multiple of ``step`` (1 for whole stars, 0.5 for half stars)."""
    lo, hi = scale
    r = pl.col("rating")
    mask = (r >= lo) & (r <= hi) & ((r / step).round(0) * step != r)
    if df.select(mask.any()).item():
        bad = df.filter(mask)
        what = "whole" if step == 1 else "half"
        raise DataError(
            path,
            f"rating is not a {what} star",
            line=int(bad["line"][0]),
            expected=f"a multiple of {step} in [{lo}, {hi}]",
            found=float(bad["rating"][0]),
        )


def check_unique_ids(df: pl.DataFrame, path: Path, key: str) -> None:
    """A side table must list each id once (else its rows would multiply in the joins)."""
    dup = df.filter(pl.col(key).is_duplicated())
    if not dup.is_empty():
        first = dup[key][0]
        lines = dup.filter(pl.col(key) == first)["line"].to_list()
        raise DataError(
            path,
            f"{key} {clip(first)} listed more than once, on lines {clip(lines, 120)}",
            line=lines[1] if len(lines) > 1 else lines[0],
            expected=f"each {key} once",
            found=f"{dup.height} duplicated rows",
        )


def genre_list(col: str = "genres") -> pl.Expr:
    """``A|B|C`` → ["A", "B", "C"]; "(no genres listed)" and empty strings → []."""
    return (
        pl.col(col)
        .fill_null("")
        .str.strip_chars()
        .str.split("|")
        .list.eval(pl.element().str.strip_chars().filter((pl.element() != "") & (pl.element() != NO_GENRES)))
        .alias(col)
    )


def aggregate_tags(tags: pl.DataFrame) -> pl.DataFrame:
    """(item_id, tag) rows → item_id, tags: every application of a tag to the item (lowercased, stripped,
    sorted), so a tag applied n times appears n times: CFN's tag matrix T_ij counts occurrences."""
    return (
        tags.select("item_id", pl.col("tag").str.strip_chars().str.to_lowercase().alias("tag"))
        .filter(pl.col("tag") != "")
        .group_by("item_id")
        .agg(pl.col("tag").sort().alias("tags"))
    )


def attach_tags(items: pl.DataFrame, tags: pl.DataFrame, notes: dict[str, object]) -> pl.DataFrame:
    """Left-join the aggregated tags onto ``items`` (empty list for untagged items)."""
    agg = aggregate_tags(tags)
    known = agg.join(items.select("item_id"), on="item_id", how="semi")
    notes["tag_rows"] = tags.height
    notes["tagged_items"] = known.height
    notes["tagged_items_not_in_movies"] = agg.height - known.height
    out = items.join(known, on="item_id", how="left")
    return out.with_columns(pl.col("tags").fill_null(pl.lit([], dtype=pl.List(pl.Utf8))))


ITEM_SIDE = (SideField("title", "text"), SideField("genres", "multilabel"), SideField("tags", "bag"))


# ---------------------------------------------------------------------------------------------- CSV datasets
class MovieLensCSV(MovieLensZip):
    """ml-20m, ml-25m, ml-latest(-small): ``ratings.csv``, ``movies.csv``, ``tags.csv`` with headers, UTF-8."""

    rating_scale = (0.5, 5.0)
    item_side = ITEM_SIDE
    required_files = ("ratings.csv", "movies.csv", "tags.csv")

    def parse(self, raw_dir: Path) -> CanonicalTables:
        return parse_csv_layout(raw_dir, self.rating_scale)


def parse_csv_layout(raw_dir: Path, scale: tuple[float, float]) -> CanonicalTables:
    ratings_path, movies_path, tags_path = raw_dir / "ratings.csv", raw_dir / "movies.csv", raw_dir / "tags.csv"
    ratings = read_csv_table(
        ratings_path,
        ["userId", "movieId", "rating", "timestamp"],
        {"userId": pl.Int64(), "movieId": pl.Int64(), "rating": pl.Float64(), "timestamp": pl.Int64()},
    ).rename({"userId": "user_id", "movieId": "item_id"})
    if ratings.is_empty():
        raise DataError(ratings_path, "no ratings", expected="at least one rating row", found="none")
    check_rating_step(ratings, ratings_path, 0.5, scale)
    movies = read_csv_table(movies_path, ["movieId", "title", "genres"], {"movieId": pl.Int64()}).rename(
        {"movieId": "item_id"}
    )
    check_unique_ids(movies, movies_path, "item_id")
    tags = read_csv_table(
        tags_path,
        ["userId", "movieId", "tag", "timestamp"],
        {"userId": pl.Int64(), "movieId": pl.Int64(), "timestamp": pl.Int64()},
    ).rename({"movieId": "item_id"})
    notes: dict[str, object] = {}
    items = movies.select("item_id", "title", genre_list("genres"))
    items = attach_tags(items, tags, notes)
    tables = canonicalize(ratings, None, items, ratings_file=ratings_path, scale=scale)
    tables.notes.update(notes, raw_layout="grouplens-csv")
    return tables
