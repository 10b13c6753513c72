"""Line-checked readers for delimited raw files (tab, ``|``, ``::``, CSV) that name the bad line."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import polars as pl

from tasks.common.errors import DataError

SHOWN_CHARS = 200  # the most of one raw value an error message shows
# The longest line the line-checked readers accept unless a format says otherwise: far beyond any real line of
# the raw formats read here (MovieLens, HetRec, Douban, CSV/TSV), so a longer one is damage, refused before it is
# split into fields (a 50 MB line of tabs would otherwise become millions of strings).
MAX_LINE_BYTES = 1 << 20
# Epoch seconds of 0001-01-01 and 9999-12-31T23:59:59: a timestamp outside is no date (and overflows date math).
EPOCH_RANGE = (-62_135_596_800, 253_402_300_799)
FLOAT32_MAX = 3.4028234663852886e38  # ratings and weights are stored as float32: a larger value would be inf


def clip(value: object, limit: int = SHOWN_CHARS) -> object:
    """``value`` as an error message may show it: text (or the repr of anything else but a number) longer than
    ``limit`` characters is cut there and followed by its length, so a 50 MB field never lands in a message."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, bytes | bytearray):
        if len(value) <= limit:
            return bytes(value)
        return f"{bytes(value[:limit]).decode('utf-8', errors='replace')}… ({len(value):,} bytes)"
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= limit:
        return value
    return f"{text[:limit]}… ({len(text)} chars)"


def exc_summary(exc: BaseException) -> str:
    """The first line of a library's exception message, clipped (it may quote a whole field of the input)."""
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return str(clip(first))


def read_lines(
    path: Path, encoding: str = "utf-8", skip_header: bool = False, max_line_bytes: int = MAX_LINE_BYTES
) -> pl.DataFrame:
    """Return a frame with ``line`` (1-based line number) and ``raw`` (the text, CRLF stripped).

    A line longer than ``max_line_bytes`` (encoded) raises ``DataError`` naming it."""
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(path, f"not valid {encoding}", line=line) from exc
    del data
    lines = pl.Series("raw", text.split("\n"), dtype=pl.Utf8).str.strip_suffix("\r")
    del text
    check_line_lengths(path, lines, max_line_bytes)
    df = pl.DataFrame({"line": pl.int_range(1, len(lines) + 1, eager=True, dtype=pl.Int64), "raw": lines})
    if skip_header:
        df = df.slice(1)
    return df.filter(pl.col("raw").str.strip_chars() != "")


def check_line_lengths(path: Path, lines: pl.Series, max_line_bytes: int, first_line: int = 1) -> None:
    """``DataError`` naming the first line of ``lines`` (numbered from ``first_line``) longer than the limit."""
    too_long = lines.str.len_bytes() > max_line_bytes
    if too_long.any():
        k = int(too_long.arg_true()[0])
        raise long_line_error(path, first_line + k, lines[k], max_line_bytes)


def check_byte_lines(path: Path, block: bytes, max_line_bytes: int, first_line: int = 1) -> None:
    """``DataError`` naming the first line of raw ``block`` (numbered from ``first_line``) longer than the limit,
    before any parser builds structures from it."""
    if len(block) <= max_line_bytes:
        return
    ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10)
    ends = np.append(ends, len(block))
    lengths = np.diff(ends, prepend=-1) - 1
    long = np.flatnonzero(lengths > max_line_bytes)
    if len(long):
        k = int(long[0])
        start = int(ends[k - 1]) + 1 if k else 0
        raise long_line_error(path, first_line + k, block[start : start + 256], max_line_bytes)


def long_line_error(path: Path, line: int, raw: str | bytes, max_line_bytes: int) -> DataError:
    return DataError(
        path,
        "line far longer than any line of this format (damaged file?)",
        line=line,
        expected=f"at most {max_line_bytes:,} bytes",
        found=clip(raw, 80),
    )


def split_fields(
    lines: pl.DataFrame, path: Path, sep: str, names: list[str], *, min_fields: int | None = None
) -> pl.DataFrame:
    """Split each line on the literal ``sep`` into exactly ``len(names)`` string columns.

    A line with another number of fields raises ``DataError`` naming the file and line.
    ``min_fields`` allows trailing optional fields (missing ones become null).
    """
    parts = lines.with_columns(pl.col("raw").str.split(sep).alias("_f"))
    n = len(names)
    lo = min_fields if min_fields is not None else n
    counts = parts["_f"].list.len()
    bad = parts.filter((counts < lo) | (counts > n))
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise field_count_error(path, int(row["line"]), row["raw"], len(row["_f"]), f"{n} fields separated by {sep!r}")
    return parts.select(
        "line", *[pl.col("_f").list.get(i, null_on_oob=True).alias(name) for i, name in enumerate(names)]
    )


def field_count_error(path: Path, line: int, raw: str, found: int, expected: str) -> DataError:
    """The one error for a line of the wrong width: file, line, what was expected, the count and the line's start."""
    return DataError(
        path, "wrong number of fields", line=line, expected=expected, found=f"{found} fields: {clip(raw, 80)!r}"
    )


def to_number(df: pl.DataFrame, path: Path, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """Cast a string column to a number; the first non-numeric value raises ``DataError`` with its line. A float
    must be finite ("nan", "inf" and overflowing values such as "1e400" are refused)."""
    cast = df[column].str.strip_chars().cast(dtype, strict=False)
    message, expected = f"non-numeric or missing {column}", f"a {dtype} value"
    bad = df.filter(cast.is_null() & df[column].is_not_null())
    if bad.is_empty():
        bad = df.filter(df[column].is_null())
    if bad.is_empty() and dtype.is_float():
        bad = df.filter(~cast.is_finite().fill_null(True))
        message, expected = f"invalid {column} (not a finite number)", f"a finite {dtype} value"
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise DataError(path, message, line=int(row["line"]), expected=expected, found=clip(row[column]))
    return df.with_columns(cast.alias(column))


def to_epoch_seconds(df: pl.DataFrame, path: Path, column: str) -> pl.DataFrame:
    """A string column of epoch seconds (integers, or decimals such as ``881250949.0``, floored) → Int64; a
    non-numeric, non-finite or out-of-range value (not a date between the years 1 and 9999; -1 = unknown is
    fine) raises ``DataError`` with its line."""
    df = to_number(df, path, column, pl.Float64())
    check_epoch(df, path, column)
    return df.with_columns(pl.col(column).floor().cast(pl.Int64))


def check_epoch(df: pl.DataFrame, path: Path, column: str, line: str = "line") -> None:
    """Every value of the numeric ``column`` is a date in ``EPOCH_RANGE`` (or -1, unknown): else ``DataError``."""
    lo, hi = EPOCH_RANGE
    c = pl.col(column)
    bad = df.filter(c.is_not_null() & ~(c.cast(pl.Float64).is_between(lo, hi) | (c == -1)))
    if not bad.is_empty():
        raise DataError(
            path,
            f"timestamp out of range (column {column!r})",
            line=int(bad[line][0]),
            expected="epoch seconds of a date between the years 1 and 9999 (or -1, unknown)",
            found=clip(bad[column][0]),
        )


def read_csv_checked(path: Path, columns: list[str], encoding: str = "utf-8") -> pl.DataFrame:
    """Read a CSV with header (quoted fields allowed) as strings, adding the 1-based ``line`` of each row."""
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    data = path.read_bytes()
    if encoding.lower().replace("-", "") not in ("utf8",):
        data = data.decode(encoding).encode("utf-8")
    try:
        df = pl.read_csv(
            io.BytesIO(data), infer_schema=False, has_header=True, row_index_name="line", row_index_offset=2
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(path, f"unreadable CSV: {exc_summary(exc)}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, "missing CSV columns", expected=str(columns), found=df.columns)
    return df.select("line", *columns).with_columns(pl.col("line").cast(pl.Int64))
