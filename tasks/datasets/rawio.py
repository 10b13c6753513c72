"""Line-checked readers for delimited raw files (tab, ``|``, ``::``, CSV) that name the bad line."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl

from tasks.common.errors import DataError


def read_lines(path: Path, encoding: str = "utf-8", skip_header: bool = False) -> pl.DataFrame:
    """Return a frame with ``line`` (1-based line number) and ``raw`` (the text, CRLF stripped)."""
    if not path.is_file():
        raise DataError(path, "raw file missing", expected="a file", found="nothing")
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(path, f"not valid {encoding}", line=line) from exc
    lines = pl.Series("raw", text.split("\n"), dtype=pl.Utf8).str.strip_suffix("\r")
    df = pl.DataFrame({"line": pl.int_range(1, len(lines) + 1, eager=True, dtype=pl.Int64), "raw": lines})
    if skip_header:
        df = df.slice(1)
    return df.filter(pl.col("raw").str.strip_chars() != "")


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
        path, "wrong number of fields", line=line, expected=expected, found=f"{found} fields: {raw[:80]!r}"
    )


def to_number(df: pl.DataFrame, path: Path, column: str, dtype: pl.DataType) -> pl.DataFrame:
    """Cast a string column to a number; the first non-numeric value raises ``DataError`` with its line."""
    cast = df[column].str.strip_chars().cast(dtype, strict=False)
    bad = df.filter(cast.is_null() & df[column].is_not_null())
    if bad.is_empty():
        bad = df.filter(df[column].is_null())
    if not bad.is_empty():
        row = bad.row(0, named=True)
        raise DataError(
            path,
            f"non-numeric or missing {column}",
            line=int(row["line"]),
            expected=f"a {dtype} value",
            found=row[column],
        )
    return df.with_columns(cast.alias(column))


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
        raise DataError(path, f"unreadable CSV: {exc}") from exc
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(path, "missing CSV columns", expected=str(columns), found=df.columns)
    return df.select("line", *columns).with_columns(pl.col("line").cast(pl.Int64))
