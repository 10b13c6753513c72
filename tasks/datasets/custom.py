"""Custom data: any CSV / TSV / Parquet ratings file, mapped to the canonical schema by a small mapping file.

**The mapping** lives next to the data as ``hybridrec.yaml`` (or ``hybridrec.yml`` / ``hybridrec.json``); file
paths in it are relative to its directory. Every key but ``ratings.file``, ``ratings.user`` and ``ratings.item``
is optional::

    ratings:
      file: ratings.csv          # .csv / .tsv / .tab / .parquet / .pq (or say `format: csv|tsv|parquet`)
      user: userId               # column names (header: false → name them with `columns: [...]`,
      item: movieId              #   else they are column_1, column_2, ...)
      rating: rating             # absent → implicit data: every row is an interaction (rating 1)
      timestamp: ts              # absent → no timestamps (all 0); numbers (epoch seconds) or dates
      delimiter: ","             # csv: ",", tsv: tab; several characters (e.g. "::") allowed, then unquoted
      header: true
      encoding: utf-8
    scale: [1, 5]                # required for explicit ratings: each rating must lie inside
    implicit_threshold: 4        # rating >= 4 → an interaction (rating 1); lower ratings are dropped
    duplicates: error            # or keep_latest (default for implicit data): see below
    expected: {users: [1, 1000000], items: [1, 1000000], ratings: [1, 100000000]}   # validation bounds
    users:
      file: users.csv
      id: userId
      fields: {gender: categorical, age: age, occupation: categorical, bio: text, hobbies: multilabel}
      multilabel_sep: "|"
    items:
      file: items.parquet
      id: movieId
      fields: {title: text, genres: multilabel}

Field kinds are those of the bag-of-words features: ``categorical`` (one token per value), ``text`` (words),
``multilabel`` (a ``multilabel_sep``-separated string, or a Parquet list), ``bag`` (the same, but a repeated
label counts: tags, friends; it also gets its own SVD), ``age`` (an integer; empty → -1, "unknown"),
``numeric`` (a number: one standardized feature; empty → the mean of the rated entities, counted in
``notes``). Every rated user / item gets a side row: one missing from the side table gets empty values (age
-1, numeric the mean), counted in ``notes``.

**Duplicates**: with ``duplicates: error`` (default for explicit data) a repeated (user, item) pair is an error
naming its lines; ``keep_latest`` drops rows identical in (user, item, rating, timestamp) and keeps the latest
rating of a repeated pair (the later line on a tie), counting both in ``notes``.

**Acquisition**: there is no official source. ``acquire`` copies the mapping (as ``hybridrec.<ext>``) and the
files it names, from the directory named by ``acquire.source_dir`` (or the mapping file named itself), into the
raw directory, so ``data.dvc`` versions data and mapping together; ``parse`` reads both from there. A user may
also put them into ``data/custom`` directly.

**Per-instance spec**: ``rating_scale``, ``implicit``, ``has_timestamps``, ``user_side``, ``item_side`` and
``expected`` come from the mapping: ``configure(raw_dir)`` (also run by ``acquire`` and ``parse``) sets them on
the instance; the class attributes are neutral defaults.

**Errors** name the file and line: a bad mapping (unknown key, wrong type, a column the data file lacks — the
message lists the available columns), and bad data (wrong number of fields, a missing id, a non-numeric or
out-of-scale rating, an unreadable timestamp, an id listed twice in a side table).
"""

from __future__ import annotations

import io
import json
import logging
import re
import shutil
from collections.abc import Mapping as Mapping_
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, get_args

import polars as pl
import yaml

from tasks.acquire import staged_dir
from tasks.common.errors import AcquisitionError, ConfigError, DataError
from tasks.common.safe_yaml import compose_user_yaml, parse_user_yaml, read_user_text
from tasks.datasets import register
from tasks.datasets.amazon import drop_duplicates
from tasks.datasets.base import (
    AcquireResult,
    CanonicalTables,
    Dataset,
    ExpectedCounts,
    SideField,
    SideKind,
    canonicalize,
)
from tasks.datasets.rawio import (
    EPOCH_RANGE,
    FLOAT32_MAX,
    MAX_LINE_BYTES,
    check_byte_lines,
    clip,
    exc_summary,
    field_count_error,
    read_lines,
    split_fields,
    to_number,
)

log = logging.getLogger(__name__)

MAPPING_NAMES = ("hybridrec.yaml", "hybridrec.yml", "hybridrec.json")
FORMATS = {"csv": ",", "tsv": "\t", "parquet": ""}
SUFFIX_FORMATS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}
TOP_KEYS = ("ratings", "scale", "implicit_threshold", "duplicates", "expected", "users", "items")
TABLE_KEYS = ("file", "format", "delimiter", "header", "columns", "encoding")
RATING_KEYS = (*TABLE_KEYS, "user", "item", "rating", "timestamp")
SIDE_KEYS = (*TABLE_KEYS, "id", "fields", "multilabel_sep")
KINDS: tuple[str, ...] = get_args(SideKind)
RESERVED = {"user_id", "user_idx", "item_id", "item_idx", "line"}
WIDE = ExpectedCounts(users=(1, 10**12), items=(1, 10**12), ratings=(1, 10**13))
LINE = "__hybridrec_line__"
UNKNOWN_AGE = -1
AGE_RANGE = (-1.0, 200.0)
MAX_COLUMNS = 10_000  # a wider table is damage (a line of separators), refused before polars makes the columns
MAX_FIELD_BYTES = 1 << 20  # a longer field (text included) is damage: refused, naming its line


# ---------------------------------------------------------------------------------------------- the mapping
def _line_index(root: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """1-based line of every key path in a composed YAML (or JSON) document, for error messages. The tree
    comes from ``tasks.common.safe_yaml`` (no aliases), so every node is visited once."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node: yaml.Node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                out[(*path, str(key.value))] = key.start_mark.line + 1
                walk(value, (*path, str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            for k, value in enumerate(node.value):
                out[(*path, str(k))] = value.start_mark.line + 1
                walk(value, (*path, str(k)))

    if root is not None:
        walk(root, ())
    return out


@dataclass(frozen=True)
class TableSpec:
    key: str  # "ratings" | "users" | "items"
    file: str
    format: str
    delimiter: str
    header: bool
    columns: tuple[str, ...] | None
    encoding: str


@dataclass(frozen=True)
class SideSpec:
    table: TableSpec
    id: str | None
    fields: tuple[SideField, ...]
    multilabel_sep: str


@dataclass(frozen=True)
class Mapping:
    path: Path
    lines: dict[tuple[str, ...], int]
    ratings: TableSpec
    user: str | None
    item: str | None
    rating: str | None
    timestamp: str | None
    scale: tuple[float, float] | None
    implicit_threshold: float | None
    duplicates: str
    expected: ExpectedCounts
    users: SideSpec | None
    items: SideSpec | None

    @property
    def implicit(self) -> bool:
        return self.rating is None or self.implicit_threshold is not None

    @property
    def rating_scale(self) -> tuple[float, float]:
        return (0.0, 1.0) if self.implicit else self.scale  # type: ignore[return-value]

    @property
    def tables(self) -> list[TableSpec]:
        return [self.ratings, *(s.table for s in (self.users, self.items) if s is not None)]

    def line(self, keys: tuple[str, ...]) -> int | None:
        for n in range(len(keys), 0, -1):
            if keys[:n] in self.lines:
                return self.lines[keys[:n]]
        return None

    def error(
        self, keys: tuple[str, ...], message: str, *, expected: str | None = None, found: object = None
    ) -> DataError:
        where = ".".join(keys)
        return DataError(self.path, f"{where}: {message}", line=self.line(keys), expected=expected, found=found)


class _Reader:
    """Type checks of the raw mapping, each error naming the mapping file, the key and its line."""

    def __init__(self, path: Path, lines: dict[tuple[str, ...], int]) -> None:
        self.path, self.lines = path, lines

    def fail(self, keys: tuple[str, ...], message: str, expected: str | None = None, found: object = None) -> DataError:
        line = next((self.lines[keys[:n]] for n in range(len(keys), 0, -1) if keys[:n] in self.lines), None)
        return DataError(
            self.path, f"{'.'.join(keys) or 'mapping'}: {message}", line=line, expected=expected, found=found
        )

    def obj(self, value: object, keys: tuple[str, ...], allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(keys, "not a mapping", "a mapping of keys to values", value)
        unknown = [k for k in value if k not in allowed]
        if unknown:
            raise self.fail((*keys, str(unknown[0])), "unknown key", f"keys among {list(allowed)}", unknown[0])
        return value

    def string(self, d: dict[str, Any], key: str, keys: tuple[str, ...], default: str | None = None) -> str | None:
        v = d.get(key, default)
        if v is not None and (not isinstance(v, str) or v == ""):
            raise self.fail((*keys, key), "not a non-empty string", "a string", v)
        return v

    def number(self, d: dict[str, Any], key: str, keys: tuple[str, ...]) -> float | None:
        v = d.get(key)
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool)):
            raise self.fail((*keys, key), "not a number", "a number", v)
        return None if v is None else float(v)

    def table(self, d: dict[str, Any], key: str) -> TableSpec:
        keys = (key,)
        file = self.string(d, "file", keys)
        if file is None:
            raise self.fail(keys, "no 'file'", "file: <path of the data file, relative to the mapping>", None)
        p = PurePosixPath(file.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or re.match(r"^[A-Za-z]:", file):
            raise self.fail(
                (key, "file"),
                "must be a path relative to the mapping file's directory, without '..' (acquire copies it)",
                "a relative path such as ratings.csv",
                file,
            )
        fmt = self.string(d, "format", keys) or SUFFIX_FORMATS.get(p.suffix.lower())
        if fmt not in FORMATS:
            raise self.fail((key, "format"), "unknown data format", f"one of {list(FORMATS)} (or a known suffix)", fmt)
        delimiter = self.string(d, "delimiter", keys) or FORMATS[fmt]
        if "\n" in delimiter or "\r" in delimiter or '"' in delimiter:
            raise self.fail(
                (key, "delimiter"), "unusable delimiter", "a separator without quotes or newlines", delimiter
            )
        header = d.get("header", True)
        if not isinstance(header, bool):
            raise self.fail((key, "header"), "not a boolean", "true or false", header)
        columns = d.get("columns")
        if columns is not None and (
            not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns)
        ):
            raise self.fail((key, "columns"), "not a list of column names", "a list of strings", columns)
        encoding = self.string(d, "encoding", keys, "utf-8") or "utf-8"
        try:
            "".encode(encoding)
        except LookupError as exc:
            raise self.fail((key, "encoding"), "unknown encoding", "e.g. utf-8 or latin-1", encoding) from exc
        return TableSpec(key, file, fmt, delimiter, header, tuple(columns) if columns else None, encoding)

    def side(self, value: object, key: str) -> SideSpec:
        d = self.obj(value, (key,), SIDE_KEYS)
        fields = d.get("fields") or {}
        if not isinstance(fields, dict):
            raise self.fail((key, "fields"), "not a mapping", "{column: categorical|text|multilabel|age, ...}", fields)
        out = []
        for col, kind in fields.items():
            if kind not in KINDS:
                raise self.fail(
                    (key, "fields", str(col)), f"unknown kind of side field {col!r}", f"one of {KINDS}", kind
                )
            if str(col) in RESERVED:
                raise self.fail(
                    (key, "fields", str(col)), "reserved column name", f"a name other than {sorted(RESERVED)}", col
                )
            out.append(SideField(str(col), kind))
        sep = self.string(d, "multilabel_sep", (key,), "|") or "|"
        return SideSpec(self.table(d, key), self.string(d, "id", (key,)), tuple(out), sep)

    def expected(self, value: object) -> ExpectedCounts:
        d = self.obj(value, ("expected",), ("users", "items", "ratings"))
        bounds = {}
        for k in ("users", "items", "ratings"):
            v = d.get(k, [1, 10**13])
            ok = isinstance(v, list) and len(v) == 2 and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
            if not ok or v[0] > v[1]:
                raise self.fail(("expected", k), "not inclusive bounds", "[low, high] integers, low <= high", v)
            bounds[k] = (v[0], v[1])
        return ExpectedCounts(**bounds)


def _read_mapping_text(path: Path) -> tuple[object, yaml.Node | None]:
    """The mapping's value and node tree; size, encoding, anchors/aliases and nesting are checked first
    (``tasks.common.safe_yaml``), for JSON too (a JSON document is YAML: its tree gives the line numbers)."""
    text = read_user_text(path)
    if path.suffix.lower() != ".json":
        return parse_user_yaml(text, path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except RecursionError as exc:
        raise DataError(path, "not valid JSON: nested too deeply") from exc
    try:
        return value, compose_user_yaml(text, path)
    except DataError:
        return value, None  # JSON that YAML reads otherwise (tabs...): no line numbers, nothing else lost


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file (structure and types; the columns are checked against the data later)."""
    raw, root = _read_mapping_text(path)
    r = _Reader(path, _line_index(root))
    top = r.obj(raw, (), TOP_KEYS)
    if "ratings" not in top:
        raise r.fail((), "no 'ratings' section", "ratings: {file: ..., user: ..., item: ...}", None)
    rd = r.obj(top["ratings"], ("ratings",), RATING_KEYS)
    table = r.table(rd, "ratings")
    cols = {k: r.string(rd, k, ("ratings",)) for k in ("user", "item", "rating", "timestamp")}
    threshold = r.number(top, "implicit_threshold", ())
    if threshold is not None and cols["rating"] is None:
        raise r.fail(("implicit_threshold",), "needs a rating column", "ratings.rating: <column>", threshold)
    scale = None
    if top.get("scale") is not None:
        s = top["scale"]
        ok = (
            isinstance(s, list)
            and len(s) == 2
            and all(isinstance(x, int | float) and not isinstance(x, bool) for x in s)
        )
        if not ok or s[0] >= s[1]:
            raise r.fail(("scale",), "not a rating scale", "[low, high] numbers, low < high", s)
        scale = (float(s[0]), float(s[1]))
    implicit = cols["rating"] is None or threshold is not None
    if not implicit and scale is None:
        raise r.fail(("scale",), "explicit ratings need their scale", "scale: [low, high], e.g. [1, 5]", None)
    duplicates = top.get("duplicates", "keep_latest" if implicit else "error")
    if duplicates not in ("error", "keep_latest"):
        raise r.fail(("duplicates",), "unknown policy", "'error' or 'keep_latest'", duplicates)
    return Mapping(
        path=path,
        lines=r.lines,
        ratings=table,
        user=cols["user"],
        item=cols["item"],
        rating=cols["rating"],
        timestamp=cols["timestamp"],
        scale=scale,
        implicit_threshold=threshold,
        duplicates=duplicates,
        expected=r.expected(top["expected"]) if top.get("expected") is not None else WIDE,
        users=r.side(top["users"], "users") if top.get("users") is not None else None,
        items=r.side(top["items"], "items") if top.get("items") is not None else None,
    )


def find_mapping(directory: Path) -> Path | None:
    found = [directory / n for n in MAPPING_NAMES if (directory / n).is_file()]
    if len(found) > 1:
        raise DataError(found[1], f"two mapping files in {directory}: {[p.name for p in found]}; keep one")
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------- reading tables
def _sep_count(raw: str, sep: str) -> int | None:
    """Fields on one line, quote-aware (None: an unbalanced double quote)."""
    if raw.count('"') % 2:
        return None
    return re.sub(r'"[^"]*"', "", raw).count(sep) + 1


def _diagnose(path: Path, spec: TableSpec, n_fields: int | None, only: set[int] | None = None) -> DataError | None:
    """The first line (of ``only``, when given) with an unbalanced quote or a wrong number of fields."""
    lines = read_lines(path, encoding=spec.encoding, skip_header=spec.header)
    if only is not None:
        lines = lines.filter(pl.col("line").is_in(sorted(only)))
    for line, raw in lines.iter_rows():
        n = _sep_count(raw, spec.delimiter)
        if n is None:
            return DataError(path, "unbalanced double quote", line=line, expected="closed quotes", found=clip(raw, 80))
        if n_fields is not None and n != n_fields:
            return field_count_error(path, line, raw, n, f"{n_fields} fields separated by {spec.delimiter!r}")
    return None


def _read_delimited(path: Path, spec: TableSpec) -> pl.DataFrame:
    sep = spec.delimiter
    if len(sep.encode("utf-8")) != 1:  # a multi-character separator: the line-checked reader (no quoting)
        lines = read_lines(path, encoding=spec.encoding)
        if spec.header and not lines.is_empty():
            names = lines["raw"][0].lstrip("\ufeff").split(sep)
            lines = lines.slice(1)
        else:
            names = [f"column_{k + 1}" for k in range(len(lines["raw"][0].split(sep)) if not lines.is_empty() else 0)]
        names = list(spec.columns) if spec.columns else names
        if len(names) > MAX_COLUMNS:
            raise DataError(
                path, "too many fields on the first line", line=1, expected=f"at most {MAX_COLUMNS}", found=len(names)
            )
        return split_fields(lines, path, sep, names).rename({"line": LINE})
    data = path.read_bytes()
    if spec.encoding.lower().replace("-", "").replace("_", "") != "utf8":
        try:
            data = data.decode(spec.encoding).encode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(path, f"not valid {spec.encoding}", line=data[: exc.start].count(b"\n") + 1) from exc
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    check_byte_lines(path, data, MAX_LINE_BYTES)  # before polars builds anything from an absurd line
    width = data[: data.find(b"\n")].count(sep.encode()) + 1 if b"\n" in data else data.count(sep.encode()) + 1
    if width > MAX_COLUMNS:
        raise DataError(
            path, "too many fields on the first line", line=1, expected=f"at most {MAX_COLUMNS}", found=width
        )
    try:
        df = pl.read_csv(
            io.BytesIO(data),
            separator=sep,
            has_header=spec.header,
            new_columns=list(spec.columns) if spec.columns else None,
            infer_schema=False,
            quote_char='"',
        )
    except (pl.exceptions.PolarsError, ValueError) as exc:
        read_lines(path, encoding=spec.encoding)  # names the line of an invalid byte
        first = next((x for x in data.split(b"\n", 50) if x.strip()), b"").decode("utf-8", errors="replace")
        problem = _diagnose(path, spec, _sep_count(first.rstrip("\r"), sep))
        raise (problem or DataError(path, f"unreadable {spec.format}: {exc_summary(exc)}")) from exc
    text_cols = df.columns
    first_line = 2 if spec.header else 1
    base = pl.int_range(first_line, df.height + first_line, dtype=pl.Int64)
    if df.height:
        nl = pl.sum_horizontal(pl.col(c).fill_null("").str.count_matches("\n") for c in text_cols).cast(pl.Int64)
        base = base + nl.cum_sum().shift(1, fill_value=0)
    df = df.with_columns(base.alias(LINE))
    all_null = pl.all_horizontal(pl.col(c).is_null() for c in text_cols)
    if df.height and df.select(all_null.any()).item():  # blank lines; a line of bare separators is a row
        raw_lines = data.split(b"\n")
        blank = [n for n in df.filter(all_null)[LINE].to_list() if not raw_lines[n - 1].strip()]
        df = df.filter(~(all_null & pl.col(LINE).is_in(blank)))
    # polars fills the missing fields of a short line with nulls: check the field count of such lines
    single_line = ~pl.any_horizontal(pl.col(c).fill_null("").str.contains("\n", literal=True) for c in text_cols)
    suspicious = df.filter(pl.any_horizontal(pl.col(c).is_null() for c in text_cols) & single_line)
    if not suspicious.is_empty():
        problem = _diagnose(path, spec, len(text_cols), set(suspicious[LINE].to_list()))
        if problem is not None:
            raise problem
    return df


def _check_field_lengths(df: pl.DataFrame, path: Path) -> None:
    """A text field longer than ``MAX_FIELD_BYTES`` raises ``DataError`` naming its line and column."""
    for col, dtype in df.schema.items():
        if dtype == pl.Utf8 and df.height and (df[col].str.len_bytes().max() or 0) > MAX_FIELD_BYTES:  # type: ignore[operator]
            bad = pl.col(col).str.len_bytes() > MAX_FIELD_BYTES
            _row_error(df, path, col, bad, "field far longer than any real value", f"at most {MAX_FIELD_BYTES:,} bytes")


def read_table(
    m: Mapping, spec: TableSpec, base_dir: Path, needed: dict[tuple[str, ...], str | None]
) -> tuple[pl.DataFrame, Path]:
    """Read one data file; every column named in ``needed`` (mapping key path → column) must exist."""
    path = base_dir / spec.file
    if not path.is_file():
        raise m.error((spec.key, "file"), f"data file {path} not found", expected="an existing file", found=spec.file)
    if spec.format == "parquet":
        try:
            df = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise DataError(path, f"unreadable Parquet file: {exc_summary(exc)}") from exc
        df = df.with_columns(pl.int_range(1, df.height + 1, dtype=pl.Int64).alias(LINE))
    else:
        df = _read_delimited(path, spec)
    _check_field_lengths(df, path)
    names = [c for c in df.columns if c != LINE]
    available = [str(clip(c, 60)) for c in names[:100]]  # as a message shows them
    for keys, col in needed.items():
        if col is None:
            raise m.error(
                keys, "no column mapped", expected=f"the name of one of the columns of {path}: {available}", found=None
            )
        if col not in names:
            raise m.error(
                keys,
                f"column {col!r} is not in {path.name}",
                expected=f"one of the columns of {path}: {available}",
                found=col,
            )
    return df, path


def _blank_error(df: pl.DataFrame, path: Path, spec: TableSpec, col: str, what: str, mask: pl.Expr) -> None:
    """Rows where ``mask`` holds: a short line (wrong number of fields) or an empty value → ``DataError``."""
    bad = df.filter(mask)
    if bad.is_empty():
        return
    line = int(bad[LINE][0])
    if spec.format != "parquet" and len(spec.delimiter.encode("utf-8")) == 1:
        n_fields = len(df.columns) - 1
        problem = _diagnose(path, spec, n_fields, {line})
        if problem is not None:
            raise problem
    raise DataError(path, f"missing {what} (column {col!r})", line=line, expected=f"a {what}", found=None)


def _is_text(dtype: pl.DataType) -> bool:
    return dtype in (pl.Utf8, pl.Categorical, pl.Null) or isinstance(dtype, pl.Enum)


def _is_scalar(dtype: pl.DataType) -> bool:
    """A type whose values read as one token or word sequence once cast to text."""
    return _is_text(dtype) or dtype.is_numeric() or dtype in (pl.Boolean, pl.Date) or isinstance(dtype, pl.Datetime)


def _type_error(df: pl.DataFrame, path: Path, col: str, what: str, expected: str) -> DataError:
    """A column (of a Parquet file) whose type cannot hold ``what``: names the column and its first row."""
    dtype = df.schema[col]
    line = int(df[LINE][0]) if df.height else None
    return DataError(path, f"{what} column {col!r} of type {dtype}", line=line, expected=expected, found=str(dtype))


def _row_error(df: pl.DataFrame, path: Path, col: str, bad: pl.Expr, message: str, expected: str) -> None:
    """``DataError`` naming the line (row) and column of the first value where ``bad`` holds."""
    rows = df.filter(bad.fill_null(False))
    if not rows.is_empty():
        found = clip(rows[col][0])
        raise DataError(path, f"{message} (column {col!r})", line=int(rows[LINE][0]), expected=expected, found=found)


def _id(df: pl.DataFrame, path: Path, spec: TableSpec, col: str, what: str) -> pl.Expr:
    dtype = df.schema[col]
    if not (_is_text(dtype) or dtype.is_integer() or dtype.is_float()):
        raise _type_error(df, path, col, what, "integers or strings")
    expr = pl.col(col)
    if dtype.is_float():
        _row_error(df, path, col, ~expr.is_finite(), f"non-finite {what}", "an integer or string id")
        integral = df.select(((expr == expr.round(0)) & (expr.abs() < 2.0**63)).drop_nulls().all()).item()
        if integral:
            expr = expr.cast(pl.Int64)
    expr = expr.cast(pl.Utf8).str.strip_chars()
    _blank_error(df, path, spec, col, what, expr.is_null() | (expr == ""))
    return expr


def _numeric(df: pl.DataFrame, path: Path, spec: TableSpec, col: str, what: str) -> pl.Series:
    s = df[col]
    if s.dtype == pl.Utf8:
        _blank_error(df, path, spec, col, what, pl.col(col).is_null() | (pl.col(col).str.strip_chars() == ""))
        return to_number(df.select(pl.col(LINE).alias("line"), col), path, col, pl.Float64())[col]
    if not s.dtype.is_numeric() and s.dtype != pl.Boolean:
        raise _type_error(df, path, col, f"non-numeric {what}", "numbers")
    _blank_error(df, path, spec, col, what, pl.col(col).is_null())
    _row_error(df, path, col, ~pl.col(col).cast(pl.Float64).is_finite(), f"non-finite {what}", "a finite number")
    return s.cast(pl.Float64)


def _timestamps(df: pl.DataFrame, path: Path, spec: TableSpec, col: str) -> pl.Series:
    """Epoch seconds from numbers, numeric strings or dates (strings parsed by polars, or Date/Datetime)."""
    s = df[col]
    if not (_is_text(s.dtype) or s.dtype.is_numeric() or s.dtype == pl.Date or isinstance(s.dtype, pl.Datetime)):
        raise _type_error(df, path, col, "timestamp", "epoch seconds or dates")
    blank = pl.col(col).is_null() | (pl.col(col).cast(pl.Utf8).str.strip_chars() == "")
    _blank_error(df, path, spec, col, "timestamp", blank)
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("ms"))
    if isinstance(s.dtype, pl.Datetime):
        out = s.dt.epoch("s")
    elif s.dtype.is_numeric():
        out = _epoch_numbers(df, path, col, s.cast(pl.Float64))
    else:
        text = s.cast(pl.Utf8).str.strip_chars()
        out = _epoch_numbers(df, path, col, text.cast(pl.Float64, strict=False))
        if out.null_count():
            try:  # dates, in a format polars infers from the first one
                dates = text.zip_with(out.is_null(), pl.Series([None] * len(text), dtype=pl.Utf8))
                out = out.fill_null(dates.str.to_datetime(strict=False).dt.epoch("s"))
            except pl.exceptions.PolarsError:
                pass
    bad = df.filter(out.is_null())
    if not bad.is_empty():
        raise DataError(
            path,
            f"unreadable timestamp (column {col!r})",
            line=int(bad[LINE][0]),
            expected="epoch seconds or a date",
            found=bad[col][0],
        )
    return out.alias("timestamp")


def _epoch_numbers(df: pl.DataFrame, path: Path, col: str, seconds: pl.Series) -> pl.Series:
    """Numbers of epoch seconds → Int64 (floored); NaN, inf or a value that is no date → ``DataError``."""
    lo, hi = EPOCH_RANGE
    out_of_range = seconds.is_not_null() & ~seconds.is_between(lo, hi)
    _row_error(
        df, path, col, pl.lit(out_of_range), "timestamp out of range", "epoch seconds of a date in the years 1-9999"
    )
    return seconds.floor().cast(pl.Int64)


def read_ratings(m: Mapping, base_dir: Path, notes: dict[str, object]) -> tuple[pl.DataFrame, Path]:
    """→ user_id, item_id (Utf8), rating (Float64), timestamp (Int64), line; implicit/threshold applied."""
    spec = m.ratings
    needed: dict[tuple[str, ...], str | None] = {("ratings", "user"): m.user, ("ratings", "item"): m.item}
    if m.rating is not None:
        needed[("ratings", "rating")] = m.rating
    if m.timestamp is not None:
        needed[("ratings", "timestamp")] = m.timestamp
    df, path = read_table(m, spec, base_dir, needed)
    assert m.user is not None and m.item is not None  # read_table checked them
    if df.is_empty():
        raise DataError(path, "no ratings", expected="at least one data row", found="none")
    out = df.select(
        pl.col(LINE).alias("line"),
        _id(df, path, spec, m.user, "user id").alias("user_id"),
        _id(df, path, spec, m.item, "item id").alias("item_id"),
    )
    rating = _numeric(df, path, spec, m.rating, "rating") if m.rating else pl.Series([1.0] * df.height)
    ts = _timestamps(df, path, spec, m.timestamp) if m.timestamp else pl.Series([0] * df.height, dtype=pl.Int64)
    out = out.with_columns(rating.alias("rating"), ts.alias("timestamp"))
    if m.scale is not None:
        lo, hi = m.scale
        r = pl.col("rating")
        bad = out.filter((r < lo) | (r > hi) | r.is_nan())
        if not bad.is_empty():
            raise DataError(
                path,
                f"rating out of the scale given in {m.path.name}",
                line=int(bad["line"][0]),
                expected=f"a rating in [{lo:g}, {hi:g}]",
                found=float(bad["rating"][0]),
            )
    notes["ratings_read"] = out.height
    if m.implicit_threshold is not None:
        kept = out.filter(pl.col("rating") >= m.implicit_threshold)
        notes["below_implicit_threshold_dropped"] = out.height - kept.height
        out = kept.with_columns(pl.lit(1.0).alias("rating"))
        if out.is_empty():
            raise DataError(path, f"no rating reaches implicit_threshold {m.implicit_threshold:g}")
    if m.duplicates == "keep_latest":
        out = drop_duplicates(out, notes)
    return out.select("user_id", "item_id", "rating", "timestamp", "line"), path


def _numbers(df: pl.DataFrame, path: Path, col: str, bounds: tuple[float, float], expected: str) -> pl.Series:
    """A numeric side column as Float64 (empty → null); a non-numeric, non-finite or out-of-``bounds`` value
    raises ``DataError`` naming its line and column."""
    dtype = df.schema[col]
    if dtype.is_numeric() or dtype == pl.Boolean:
        values = df[col].cast(pl.Float64)
    elif _is_text(dtype):
        text = df[col].cast(pl.Utf8).str.strip_chars().replace("", None)
        present = pl.DataFrame({"line": df[LINE], col: text}).filter(pl.col(col).is_not_null())
        to_number(present, path, col, pl.Float64())
        values = text.cast(pl.Float64, strict=False)
    else:
        raise _type_error(df, path, col, "numeric side", "numbers")
    bad = values.is_not_null() & ~values.is_between(*bounds)  # NaN is outside every range
    _row_error(df, path, col, pl.lit(bad), "side value out of range", expected)
    return values


def _side_values(df: pl.DataFrame, path: Path, spec: SideSpec, f: SideField, notes: dict[str, object]) -> pl.Expr:
    col, dtype = f.column, df.schema[f.column]
    if f.kind not in ("numeric", "age", "multilabel", "bag") and not _is_scalar(dtype):
        raise _type_error(df, path, col, f"{f.kind} side", "text, numbers or dates")
    if f.kind == "numeric":
        values = _numbers(
            df, path, col, (-FLOAT32_MAX, FLOAT32_MAX), f"a finite number of magnitude <= {FLOAT32_MAX:.3g}"
        )
        notes[f"{spec.table.key}_missing_{col}"] = int(values.is_null().sum())
        return pl.lit(values).alias(col)  # missing values are imputed with the mean once side rows are joined
    if f.kind in ("multilabel", "bag"):
        if isinstance(dtype, pl.List) and _is_scalar(dtype.inner):
            labels = pl.col(col).cast(pl.List(pl.Utf8))
        elif not _is_scalar(dtype):
            raise _type_error(df, path, col, f"{f.kind} side", "a list of labels, or a separated string")
        else:
            labels = pl.col(col).cast(pl.Utf8).str.split(spec.multilabel_sep)
        labels = labels.list.eval(pl.element().str.strip_chars().filter(pl.element().str.strip_chars() != ""))
        if f.kind == "multilabel":  # a bag keeps repeats: they are counts
            labels = labels.list.unique(maintain_order=True)
        return labels.fill_null(pl.lit([], dtype=pl.List(pl.Utf8))).alias(col)
    if f.kind == "age":
        ages = _numbers(df, path, col, AGE_RANGE, f"an age in [{AGE_RANGE[0]:g}, {AGE_RANGE[1]:g}] (-1: unknown)")
        notes[f"{spec.table.key}_unknown_{col}"] = int(ages.is_null().sum())
        return pl.lit(ages.round(0).cast(pl.Int32).fill_null(UNKNOWN_AGE)).alias(col)
    text = pl.col(col).cast(pl.Utf8)
    if f.kind == "categorical":
        text = text.str.strip_chars()
    return text.fill_null("").alias(col)


def read_side(
    m: Mapping, spec: SideSpec, base_dir: Path, key: str, notes: dict[str, object]
) -> tuple[pl.DataFrame, Path]:
    """A side table → <entity>_id plus one column per declared field; each id once."""
    id_name = "user_id" if key == "users" else "item_id"
    needed: dict[tuple[str, ...], str | None] = {(key, "id"): spec.id}
    needed.update({(key, "fields", f.column): f.column for f in spec.fields})
    df, path = read_table(m, spec.table, base_dir, needed)
    assert spec.id is not None
    out = df.select(
        pl.col(LINE),
        _id(df, path, spec.table, spec.id, f"{key[:-1]} id").alias(id_name),
        *(_side_values(df, path, spec, f, notes) for f in spec.fields),
    )
    dup = out.filter(pl.col(id_name).is_duplicated())
    if not dup.is_empty():
        first = dup[id_name][0]
        lines = dup.filter(pl.col(id_name) == first)[LINE].to_list()
        raise DataError(
            path,
            f"{key[:-1]} id {clip(first)!r} listed more than once, on lines {clip(lines, 120)}",
            line=lines[1],
            expected=f"each {key[:-1]} once",
            found=f"{dup.height} duplicated rows",
        )
    return out.drop(LINE), path


def complete_side(
    side: pl.DataFrame, rated: pl.Series, spec: SideSpec, key: str, notes: dict[str, object]
) -> pl.DataFrame:
    """One row per rated id: ids missing from the side table get empty values (age: -1)."""
    id_name = rated.name
    joined = pl.DataFrame(rated.unique()).join(side.with_columns(pl.lit(True).alias("_listed")), on=id_name, how="left")
    notes[f"{key}_side_rows"] = side.height
    notes[f"{key}_side_rows_unrated"] = side.height - int(joined["_listed"].sum())
    notes[f"{key}_without_side_row"] = int(joined["_listed"].null_count())
    fills = []
    for f in spec.fields:
        if f.kind in ("multilabel", "bag"):
            fills.append(pl.col(f.column).fill_null(pl.lit([], dtype=pl.List(pl.Utf8))))
        elif f.kind == "numeric":
            mean = joined[f.column].mean()
            notes[f"{key}_{f.column}_imputed_with_mean"] = int(joined[f.column].null_count())
            fills.append(pl.col(f.column).fill_null(mean if mean is not None else 0.0))
        elif f.kind == "age":
            fills.append(pl.col(f.column).fill_null(UNKNOWN_AGE))
        else:
            fills.append(pl.col(f.column).fill_null(""))
    return joined.drop("_listed").with_columns(fills)


# ---------------------------------------------------------------------------------------------- dataset
@register
class Custom(Dataset):
    name = "custom"
    rating_scale = (1.0, 5.0)  # placeholder: the mapping's scale (or [0, 1] for implicit data) replaces it
    implicit = False
    expected = WIDE
    user_side = ()
    item_side = ()

    mapping: Mapping | None = None

    def configure(self, raw_dir: Path) -> Custom:
        """Adopt the mapping found in ``raw_dir``: scale, implicit, timestamps, side fields, expected counts."""
        raw_dir = Path(raw_dir)
        path = find_mapping(raw_dir) if raw_dir.is_dir() else None
        if path is None:
            raise DataError(
                raw_dir,
                "no mapping file (run the acquire stage, or put your data and its mapping here)",
                expected=" or ".join(MAPPING_NAMES),
                found=sorted(p.name for p in raw_dir.iterdir()) if raw_dir.is_dir() else "no directory",
            )
        self._adopt(load_mapping(path))
        return self

    def _adopt(self, m: Mapping) -> None:
        self.mapping = m
        self.rating_scale = m.rating_scale  # type: ignore[misc]
        self.implicit = m.implicit  # type: ignore[misc]
        self.has_timestamps = m.timestamp is not None  # type: ignore[misc]
        self.user_side = m.users.fields if m.users else ()  # type: ignore[misc]
        self.item_side = m.items.fields if m.items else ()  # type: ignore[misc]
        self.expected = m.expected  # type: ignore[misc]

    # ------------------------------------------------------------------ acquisition
    mapping_source: Path | None = None  # params.yaml ``datasets.custom.mapping``

    def apply_options(self, options: Mapping_[str, Any]) -> Custom:
        """``datasets.custom`` in params.yaml: ``mapping`` = the path of a mapping file (relative to the project
        root); acquisition copies it and the files it names into the raw directory. It wins over source_dir."""
        unknown = sorted(set(options) - {"mapping"})
        if unknown:
            raise ConfigError(
                f"datasets.custom.{unknown[0]}", "only 'mapping' (the path of a mapping file)", unknown[0]
            )
        mapping = options.get("mapping")
        if mapping is not None and not isinstance(mapping, str):
            raise ConfigError("datasets.custom.mapping", "the path of a mapping file", mapping)
        self.mapping_source = Path(mapping).expanduser() if mapping else None
        if self.mapping_source is not None and not self.mapping_source.is_file():
            raise ConfigError("datasets.custom.mapping", "an existing mapping file", str(self.mapping_source))
        return self

    def acquire(self, dest: Path, source_dir: Path | None, timeout_s: float) -> AcquireResult:
        if self.mapping_source is not None:
            source_dir = self.mapping_source
        how = (
            f"custom data has no official source: put your data files and a {MAPPING_NAMES[0]} describing them "
            f"(see tasks/datasets/custom.py) into a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR), "
            f"or into {dest}"
        )
        if source_dir is None:
            existing = find_mapping(dest) if Path(dest).is_dir() else None
            if existing is not None:
                load_mapping(existing)  # a broken mapping in the raw directory: say so
                raise AcquisitionError(f"{dest}: {existing.name} names files that are missing; {how}")
            raise AcquisitionError(how)
        src = Path(source_dir)
        mapping_path = src if src.is_file() else (find_mapping(src) if src.is_dir() else None)
        if mapping_path is None:
            raise AcquisitionError(f"{src}: no {' / '.join(MAPPING_NAMES)} found; {how}")
        m = load_mapping(mapping_path)
        base = mapping_path.parent
        for spec in m.tables:
            if not (base / spec.file).is_file():
                raise m.error(
                    (spec.key, "file"),
                    f"data file {base / spec.file} not found",
                    expected="an existing file",
                    found=spec.file,
                )
        target = (
            mapping_path.name
            if mapping_path.name in MAPPING_NAMES
            else ("hybridrec.json" if mapping_path.suffix.lower() == ".json" else "hybridrec.yaml")
        )
        required = (target, *(spec.file for spec in m.tables))
        with staged_dir(dest, required, origin=base) as tmp:
            shutil.copyfile(mapping_path, tmp / target)
            for spec in m.tables:
                out = tmp / spec.file
                out.parent.mkdir(parents=True, exist_ok=True)
                if not out.exists():
                    shutil.copyfile(base / spec.file, out)
        self._adopt(load_mapping(Path(dest) / target))
        return AcquireResult(
            dest, f"local directory {base}", f"custom-{m.ratings.format}", detail=f"mapping {mapping_path}"
        )

    def is_acquired(self, raw_dir: Path) -> bool:
        try:
            path = find_mapping(raw_dir) if raw_dir.is_dir() else None
            if path is None:
                return False
            m = load_mapping(path)
        except DataError:
            return False
        if self.mapping_source is not None and path.read_bytes() != self.mapping_source.read_bytes():
            return False  # params name another mapping than the raw copy holds
        return all((raw_dir / spec.file).is_file() for spec in m.tables)

    # ------------------------------------------------------------------ parsing
    def parse(self, raw_dir: Path) -> CanonicalTables:
        self.configure(raw_dir)
        m = self.mapping
        assert m is not None
        notes: dict[str, object] = {"mapping": m.path.name, "implicit": m.implicit}
        ratings, ratings_path = read_ratings(m, raw_dir, notes)
        sides: dict[str, pl.DataFrame | None] = {"users": None, "items": None}
        for key, spec, id_name in (("users", m.users, "user_id"), ("items", m.items, "item_id")):
            if spec is not None:
                side, _ = read_side(m, spec, raw_dir, key, notes)
                sides[key] = complete_side(side, ratings[id_name], spec, key, notes)
        tables = canonicalize(ratings, sides["users"], sides["items"], ratings_file=ratings_path, scale=m.rating_scale)
        tables.notes.update(notes, raw_layout=f"custom-{m.ratings.format}")
        if m.timestamp is None:
            tables.notes["timestamps"] = "none in the data: all 0 (leave-one-out falls back to its tie-break)"
        return tables
