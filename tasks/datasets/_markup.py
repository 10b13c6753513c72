"""Markup in text side fields: HTML tags and entities are not words.

Real raw data holds HTML fragments in its text (Amazon 2018 titles such as ``<span class="a-size-medium
a-color-secondary"`` — a tag cut off by the crawler — ``&amp;``, ``&#39;``; HetRec bookmark titles with entities).
``strip_markup`` removes tags (closed ones, comments, and a tag with attributes cut off at the end of the value),
then unescapes entities once (``&amp;quot;`` → ``&quot;``), and normalizes the whitespace the tags leave; a value
that was nothing but markup becomes empty (missing). ``clean_side_markup`` applies it to every text and list-of-text
column of a side table (``canonicalize`` calls it for users and items of every loader) and counts what it changed.

Only a ``<`` followed by a letter, ``/``, ``!`` or ``?`` opens a tag, so "I <3 NY", "a < b" or "x<5" stay as
they are; a tag left open at the end of a value is only taken as markup when it has an attribute (``name=``).
"""

from __future__ import annotations

import html
import re

import polars as pl

_TAG = r"<!--.*?(?:-->|$)|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>|<[!?][^<>]*>"
_OPEN_TAG_AT_END = r"</?[A-Za-z][A-Za-z0-9:-]*\s+[A-Za-z_:][-A-Za-z0-9_:.]*\s*=[^<>]*$"
_MARKUP = re.compile(f"(?s){_TAG}|{_OPEN_TAG_AT_END}")
_ENTITY = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});")
_SUSPECT = r"<[A-Za-z/!?]|&(?:#[0-9xX]|[A-Za-z][A-Za-z0-9]*;)"  # cheap pre-filter (polars regex)
_SPACE = re.compile(r"\s+")


def strip_markup(text: str) -> str:
    """``text`` without HTML tags, entities unescaped once, whitespace around removed tags collapsed."""
    if "<" not in text and "&" not in text:
        return text
    out = _MARKUP.sub(" ", text)
    if "&" in out and _ENTITY.search(out):
        out = html.unescape(out)
    return _SPACE.sub(" ", out).strip() if out != text else text


def _clean_series(s: pl.Series) -> tuple[pl.Series, int, int]:
    """A Utf8 series with markup stripped, how many values changed and how many became empty."""
    suspect = s.str.contains(_SUSPECT).fill_null(False)
    if not suspect.any():
        return s, 0, 0
    idx = suspect.arg_true()
    before = s.gather(idx)
    after = pl.Series([strip_markup(v) for v in before.to_list()], dtype=pl.Utf8)
    changed = int((before != after).sum())
    emptied = int(((after == "") & (before.str.strip_chars() != "")).sum())
    return s.scatter(idx, after), changed, emptied


def _clean_column(table: pl.DataFrame, col: str) -> tuple[pl.DataFrame, int, int]:
    dtype = table.schema[col]
    if dtype == pl.Utf8:
        s, changed, emptied = _clean_series(table[col])
        return table.with_columns(s.alias(col)), changed, emptied
    # a list of labels: clean each element, drop the ones only markup left empty (order and repeats kept)
    flat = table.select(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"), pl.col(col).alias("_v")).explode("_v")
    s, changed, emptied = _clean_series(flat["_v"])
    if not changed:
        return table, 0, 0
    flat = flat.with_columns(s.alias("_new"))
    gone = (pl.col("_new") == "") & (pl.col("_v").str.strip_chars() != "")
    kept = flat.filter(pl.col("_v").is_not_null() & ~gone).group_by("_row").agg(pl.col("_new"))
    rows = pl.DataFrame({"_row": pl.int_range(table.height, dtype=pl.UInt32, eager=True)})
    lists = rows.join(kept, on="_row", how="left").sort("_row")["_new"]
    empty = pl.lit([], dtype=pl.List(pl.Utf8))
    out = pl.when(pl.col(col).is_null()).then(None).otherwise(pl.lit(lists).fill_null(empty))
    return table.with_columns(out.cast(dtype).alias(col)), changed, emptied


def clean_side_markup(table: pl.DataFrame, keys: set[str], prefix: str, notes: dict[str, object]) -> pl.DataFrame:
    """Strip markup from every Utf8 and List(Utf8) column of a side table but ``keys``; counts go into
    ``notes["markup_cleaned"]["<prefix>.<column>"]`` (values changed) and ``notes["markup_only_emptied"]`` (values
    that were nothing but markup, now empty; list elements dropped)."""
    cleaned: dict[str, int] = dict(notes.get("markup_cleaned", {}))  # type: ignore[call-overload]
    emptied: dict[str, int] = dict(notes.get("markup_only_emptied", {}))  # type: ignore[call-overload]
    for col, dtype in table.schema.items():
        if col in keys or not (dtype == pl.Utf8 or (isinstance(dtype, pl.List) and dtype.inner == pl.Utf8)):
            continue
        table, n_changed, n_emptied = _clean_column(table, col)
        if n_changed:
            cleaned[f"{prefix}.{col}"] = n_changed
        if n_emptied:
            emptied[f"{prefix}.{col}"] = n_emptied
    notes["markup_cleaned"] = cleaned
    notes["markup_only_emptied"] = emptied
    return table
