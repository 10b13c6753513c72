"""HetRec 2011 (GroupLens): Last.fm 2K (``lastfm``) and Delicious 2K (``delicious``), implicit feedback with a
user–user relation (friends / contacts) and item tag assignments.

Raw files are tab-separated with one header line, CRLF or LF line endings (both read the same).

**lastfm** (``hetrec2011-lastfm-2k.zip``, MD5 pinned): ``user_artists.dat`` ``userID artistID weight`` (weight =
play count) → one interaction per row, rating 1, the play count in ``weight`` (it must be > 0: a zero or
negative count is an error naming its line). ``user_friends.dat`` ``userID friendID`` (bidirectional pairs) →
users' ``friends`` (bag: the friend raw ids, each once, i.e. a row of the relation matrix). ``artists.dat``
(UTF-8) ``id name url pictureURL`` → items' ``name`` (kept as a raw column, not in the BoW: 17K artist names
would swamp the vocabulary). ``tags.dat`` (latin-1 upstream; UTF-8 tried first) ``tagID tagValue``.
``user_taggedartists.dat`` ``userID artistID tagID day month year`` → items' ``tags`` (bag: every assignment of
a tag to the artist by any user, lowercased and stripped, repeated per assignment: CFN's T_ij) and the
interaction timestamps. ``user_taggedartists-timestamps.dat`` ``userID artistID tagID timestamp`` (ms), when
present, replaces the day/month/year file (same rows, exact times).

**delicious** (``hetrec2011-delicious-2k.zip``; no published checksum, so the first download records a sha256
sidecar in the download cache and later downloads are verified against it): ``user_taggedbookmarks.dat``
``userID bookmarkID tagID day month year hour minute second`` (or ``user_taggedbookmarks-timestamps.dat``
``userID bookmarkID tagID timestamp`` in ms, preferred when present) → one interaction per distinct (user,
bookmark) pair (the readme's 104,799 "bookmarks"), ``weight`` = number of distinct tags the user gave the URL,
timestamp = the pair's first tag time. ``bookmarks.dat`` ``id md5 title url md5Principal urlPrincipal`` →
items' ``title`` and ``domain`` (raw columns, not in the BoW). ``bookmark_tags.dat`` ``bookmarkID tagID
tagWeight`` → items' ``tags`` (bag: the tag value repeated tagWeight times). ``tags.dat`` ``id value``.
``user_contacts.dat`` ``userID contactID date_day date_month date_year date_hour date_minute date_second`` →
users' ``contacts`` (bag, each contact once). Text files are read as UTF-8, else latin-1 (noted).

Times: the ``-timestamps`` files hold epoch milliseconds; the broken-down day/month/year(/h/m/s) fields are the
same instants in Madrid local time (the readmes' examples: Last.fm ``1 4 2009`` ↔ ``1238536800000``, Delicious
``8 11 2010 23 29 22`` ↔ ``1289255362000``), so they are converted as Europe/Madrid times to epoch seconds (a
local time inside a spring-forward gap is read at UTC+1). A tag date before 2002 (before either service existed:
Last.fm has a few from 1956, 1957 and 1979) is ignored as implausible (counted in the notes). Last.fm
interactions the user never tagged have no time: ``MISSING_TIMESTAMP``.

Acquisition order: a local directory (holding the zip, or its files directly or under a folder named like the
zip) → the official zip → an error naming what to download where.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import polars as pl

from tasks.common.errors import DataError
from tasks.datasets import register
from tasks.datasets._movielens_csv import MovieLensZip, check_unique_ids, decode_lines, split_middle
from tasks.datasets.base import (
    MISSING_TIMESTAMP,
    CanonicalTables,
    ExpectedCounts,
    SideField,
    canonicalize,
)
from tasks.datasets.rawio import clip, split_fields, to_number

BASE_URL = "https://files.grouplens.org/datasets/hetrec2011/"
LASTFM_MD5 = "296d61afe4e8632b173fc2dd3be20ce2"
TIME_ZONE = "Europe/Madrid"  # where the HetRec broken-down dates were written (see the module docstring)
PLAUSIBLE_FROM = 1_009_843_200  # 2002-01-01T00:00:00Z: earlier tag times are ignored as implausible
TEXT_ENCODINGS = ("utf-8", "latin-1")
EMPTY_LIST = pl.lit([], dtype=pl.List(pl.Utf8))


# ---------------------------------------------------------------------------------------------- reading
def read_tsv(
    path: Path,
    names: Sequence[str],
    header: Sequence[str],
    *,
    ints: Sequence[str] = (),
    text: tuple[int, int] | None = None,
    encodings: Sequence[str] = ("utf-8",),
    strict_header: bool = True,
) -> tuple[pl.DataFrame, str]:
    """A HetRec table: header line, then one tab-separated row per line → ``names`` (+ ``line``), and the encoding.

    ``header`` is the official header (compared case-insensitively when ``strict_header``; otherwise only its
    field count is checked and its first field must not be a number, so a file that lost its header is caught).
    ``ints`` are cast to Int64 (a non-numeric value names its line). ``text=(before, after)`` makes the field
    between ``before`` leading and ``after`` trailing fields free text that may itself contain tabs.
    """
    lines, enc = decode_lines(path, encodings)
    if lines.is_empty():
        raise DataError(path, "empty file", line=1, expected="a header line and data rows", found="nothing")
    first = lines.row(0, named=True)
    found = [f.strip() for f in first["raw"].lstrip("\ufeff").split("\t")]
    want = [h.lower() for h in header]
    looks_like_data = bool(found) and found[0].lstrip("-").isdigit()
    if (strict_header and [f.lower() for f in found] != want) or len(found) != len(want) or looks_like_data:
        raise DataError(
            path,
            "unexpected header line" + (" (the file seems to lack its header)" if looks_like_data else ""),
            line=int(first["line"]),
            expected="\t".join(header),
            found=clip(first["raw"], 120),
        )
    body = lines.slice(1)
    if text is None:
        df = split_fields(body, path, "\t", list(names))
    else:
        df = split_middle(body, path, "\t", text[0], text[1], list(names))
    for col in ints:
        df = to_number(df, path, col, pl.Int64())
    return df, enc


def local_epoch(df: pl.DataFrame, path: Path, parts: Sequence[str]) -> pl.Series:
    """Epoch seconds of Europe/Madrid local times given as (day, month, year[, hour, minute, second]) columns.

    Every component must be an integer in range and the day must exist in its month (else ``DataError`` with
    the line); a local time inside a spring-forward gap is read at UTC+1 (the zone's standard offset).
    """
    for col in parts:
        df = to_number(df, path, col, pl.Int64())
    names = ("day", "month", "year", "hour", "minute", "second")
    bounds = {
        "day": (1, 31),
        "month": (1, 12),
        "year": (1900, 2100),
        "hour": (0, 23),
        "minute": (0, 59),
        "second": (0, 59),
    }
    comp = {n: pl.col(c) for n, c in zip(names, parts)}
    for n, c in zip(names, parts):
        lo, hi = bounds[n]
        _first_bad(df, path, ~pl.col(c).is_between(lo, hi), c, f"{n} in [{lo}, {hi}]")
    last_day = pl.date(comp["year"], comp["month"], 1).dt.month_end().dt.day()
    _first_bad(df, path, comp["day"] > last_day, parts[0], "a day that exists in its month")
    hms = [comp.get(n, pl.lit(0)) for n in ("hour", "minute", "second")]
    naive = pl.datetime(comp["year"], comp["month"], comp["day"], *hms)
    local = naive.dt.replace_time_zone(TIME_ZONE, ambiguous="earliest", non_existent="null").dt.epoch("s")
    fallback = naive.dt.epoch("s") - 3600
    return df.select(pl.coalesce(local, fallback).alias("timestamp"))["timestamp"]


def _first_bad(df: pl.DataFrame, path: Path, mask: pl.Expr, col: str, expected: str) -> None:
    bad = df.filter(mask)
    if not bad.is_empty():
        raise DataError(path, f"invalid {col}", line=int(bad["line"][0]), expected=expected, found=clip(bad[col][0]))


def _positive(df: pl.DataFrame, path: Path, col: str, what: str) -> None:
    _first_bad(df, path, pl.col(col) <= 0, col, f"a {what} > 0")


def read_tag_times(
    path_ts: Path, path_dmy: Path, id_col: str, broken_down: Sequence[str], strict_header: bool = True
) -> tuple[pl.DataFrame, str]:
    """Tag assignments → user_id, item_id, tag_id, timestamp (epoch s, null when implausible), line; and the
    file used: the ``-timestamps`` file (ms) when present, else the broken-down local-time file."""
    if path_ts.is_file():
        df, _ = read_tsv(
            path_ts,
            ["user_id", "item_id", "tag_id", "ms"],
            ["userID", id_col, "tagID", "timestamp"],
            ints=["user_id", "item_id", "tag_id", "ms"],
            strict_header=strict_header,
        )
        df = df.with_columns((pl.col("ms") // 1000).alias("timestamp"))
        used = path_ts
    else:
        cols = ["user_id", "item_id", "tag_id", *broken_down]
        header = ["userID", id_col, "tagID", *broken_down]
        df, _ = read_tsv(path_dmy, cols, header, ints=["user_id", "item_id", "tag_id"], strict_header=strict_header)
        df = df.with_columns(local_epoch(df, path_dmy, broken_down))
        used = path_dmy
    ts = pl.when(pl.col("timestamp") >= PLAUSIBLE_FROM).then(pl.col("timestamp"))
    return df.select("user_id", "item_id", "tag_id", ts.alias("timestamp"), "line"), used.name


def read_tag_values(
    path: Path, header: Sequence[str], notes: dict[str, object], strict_header: bool = True
) -> pl.DataFrame:
    """tags.dat → tag_id, tag (stripped, lowercased); each id once."""
    df, enc = read_tsv(
        path,
        ["tag_id", "tag"],
        header,
        ints=["tag_id"],
        text=(1, 0),
        encodings=TEXT_ENCODINGS,
        strict_header=strict_header,
    )
    check_unique_ids(df, path, "tag_id")
    notes["tags_encoding"] = enc
    notes["tags_listed"] = df.height
    return df.select("tag_id", pl.col("tag").str.strip_chars().str.to_lowercase())


def tag_bags(assignments: pl.DataFrame, tags: pl.DataFrame, notes: dict[str, object], key: str) -> pl.DataFrame:
    """(item_id, tag_id[, repeat]) → item_id, tags: the tag values, one per assignment (sorted, empty ones
    dropped); assignments of tag ids missing from tags.dat are left out and counted in ``notes[key]``."""
    known = assignments.join(tags, on="tag_id", how="inner")
    notes[key] = assignments.height - known.height
    if "repeat" in known.columns:
        known = known.select("item_id", pl.col("tag").repeat_by("repeat")).explode("tag")
    return known.filter(pl.col("tag") != "").group_by("item_id").agg(pl.col("tag").sort().alias("tags")).sort("item_id")


def relation_bags(pairs: pl.DataFrame, users: pl.Series, column: str, notes: dict[str, object]) -> pl.DataFrame:
    """(user_id, other_id) pairs → user_id, <column>: each user's distinct others (raw ids, numeric order).

    Notes: pairs, duplicates, self loops (dropped), one-directional pairs, others that are not users, and
    users (among ``users``) without any relation."""
    distinct = pairs.select("user_id", "other_id").unique()
    loops = distinct.filter(pl.col("user_id") == pl.col("other_id"))
    distinct = distinct.filter(pl.col("user_id") != pl.col("other_id"))
    reverse = distinct.select(pl.col("other_id").alias("user_id"), pl.col("user_id").alias("other_id"))
    one_way = distinct.join(reverse, on=["user_id", "other_id"], how="anti")
    known = pl.DataFrame({"user_id": users.unique()})
    notes[f"{column}_pairs"] = pairs.height
    notes[f"{column}_pairs_duplicate"] = pairs.height - distinct.height - loops.height
    notes[f"{column}_self_loops"] = loops.height
    notes[f"{column}_pairs_one_directional"] = one_way.height
    notes[f"{column}_not_users"] = distinct.join(
        known.rename({"user_id": "other_id"}), on="other_id", how="anti"
    ).height
    notes[f"{column}_listing_unknown_user"] = distinct.join(known, on="user_id", how="anti").height
    bags = distinct.sort("other_id").group_by("user_id").agg(pl.col("other_id").cast(pl.Utf8).alias(column))
    out = known.join(bags, on="user_id", how="left").with_columns(pl.col(column).fill_null(EMPTY_LIST))
    notes[f"users_without_{column}"] = out.filter(pl.col(column).list.len() == 0).height
    return out.sort("user_id")


def complete_items(
    listed: pl.DataFrame, item_ids: pl.Series, fill: dict[str, str], notes: dict[str, object], key: str
) -> pl.DataFrame:
    """Add an empty row for every interacted item that ``listed`` lacks (so every item has its side row)."""
    missing = pl.DataFrame({"item_id": item_ids.unique()}).join(listed.select("item_id"), on="item_id", how="anti")
    notes[key] = missing.height
    if missing.is_empty():
        return listed
    extra = missing.with_columns(pl.lit(v, dtype=pl.Utf8).alias(c) for c, v in fill.items())
    return pl.concat([listed, extra.select(listed.columns)])


# ---------------------------------------------------------------------------------------------- acquisition
class HetRecZip(MovieLensZip):
    """GroupLens HetRec zips: the files sit at the zip's top level (a ``<folder>/`` level is accepted too)."""

    implicit = True
    rating_scale = (1.0, 1.0)
    optional_files: ClassVar[tuple[str, ...]] = ("readme.txt",)

    def how_to(self, dest: Path) -> str:
        checksum = f" (MD5 {self.md5})" if self.md5 else ""
        return (
            f"Download {self.url}{checksum} and put {self.archive} itself, or the files it holds (directly or in a "
            f"{self.folder}/ folder), into a directory named by acquire.source_dir (or HYBRIDREC_SOURCE_DIR); or "
            f"put the files {', '.join(self.required_files)} into {dest}."
        )


# ---------------------------------------------------------------------------------------------- Last.fm
@register
class LastFM(HetRecZip):
    name = "lastfm"
    expected = ExpectedCounts(users=(1892, 1892), items=(17_632, 17_632), ratings=(92_834, 92_834))
    user_side = (SideField("friends", "bag"),)
    item_side = (SideField("tags", "bag"),)
    has_timestamps = True
    ordering_note = (
        "the artist the user first tagged latest (the first time the user tagged the artist when they did, "
        "else a seeded random choice among the untagged ones, which count as older)"
    )

    url = BASE_URL + "hetrec2011-lastfm-2k.zip"
    archive = "hetrec2011-lastfm-2k.zip"
    folder = "hetrec2011-lastfm-2k"
    md5 = LASTFM_MD5
    required_files = ("user_artists.dat", "user_friends.dat", "artists.dat", "tags.dat", "user_taggedartists.dat")
    optional_files = ("readme.txt", "user_taggedartists-timestamps.dat")

    def parse(self, raw_dir: Path) -> CanonicalTables:
        notes: dict[str, object] = {"raw_layout": "hetrec-lastfm"}
        ua_path = raw_dir / "user_artists.dat"
        ua, _ = read_tsv(
            ua_path, ["user_id", "item_id", "weight"], ["userID", "artistID", "weight"], ints=["user_id", "item_id"]
        )
        ua = to_number(ua, ua_path, "weight", pl.Int64())
        if ua.is_empty():
            raise DataError(ua_path, "no interactions", expected="at least one user-artist row", found="none")
        _positive(ua, ua_path, "weight", "play count")
        notes["play_count_total"] = int(ua["weight"].sum())

        ta, used = read_tag_times(
            raw_dir / "user_taggedartists-timestamps.dat",
            raw_dir / "user_taggedartists.dat",
            "artistID",
            ["day", "month", "year"],
        )
        notes["timestamp_source"] = used
        notes["tag_assignments"] = ta.height
        notes["tag_dates_implausible"] = ta["timestamp"].null_count()
        listened = ua.select("user_id", "item_id")
        off = ta.join(listened.select("item_id").unique(), on="item_id", how="anti")
        notes["tag_assignments_artist_not_listened"] = off.height
        notes["tagged_artists_not_listened"] = off["item_id"].n_unique()
        notes["tag_assignments_user_not_listening"] = ta.join(
            listened.select("user_id").unique(), on="user_id", how="anti"
        ).height
        first = ta.group_by("user_id", "item_id").agg(pl.col("timestamp").min())
        notes["tagged_pairs"] = first.height
        notes["tagged_pairs_listened"] = first.join(listened, on=["user_id", "item_id"], how="semi").height
        ratings = ua.join(first, on=["user_id", "item_id"], how="left", maintain_order="left").select(
            "user_id",
            "item_id",
            pl.lit(1.0).alias("rating"),
            pl.col("timestamp").fill_null(MISSING_TIMESTAMP),
            pl.col("weight").cast(pl.Float64),
            "line",
        )
        notes["interactions_with_timestamp"] = int((ratings["timestamp"] != MISSING_TIMESTAMP).sum())

        tags = read_tag_values(raw_dir / "tags.dat", ["tagID", "tagValue"], notes)
        artists_path = raw_dir / "artists.dat"
        artists, enc = read_tsv(
            artists_path,
            ["item_id", "name", "url", "picture_url"],
            ["id", "name", "url", "pictureURL"],
            ints=["item_id"],
            text=(1, 2),
            encodings=TEXT_ENCODINGS,
        )
        check_unique_ids(artists, artists_path, "item_id")
        notes["artists_encoding"] = enc
        notes["tag_assignments_artist_not_in_artists_dat"] = ta.join(
            artists.select("item_id"), on="item_id", how="anti"
        ).height
        items = complete_items(
            artists.select("item_id", pl.col("name").str.strip_chars()),
            ua["item_id"],
            {"name": ""},
            notes,
            "artists_missing_from_artists_dat",
        )
        bags = tag_bags(ta.select("item_id", "tag_id"), tags, notes, "tag_assignments_unknown_tag")
        items = items.join(bags, on="item_id", how="left").with_columns(pl.col("tags").fill_null(EMPTY_LIST))

        friends, _ = read_tsv(
            raw_dir / "user_friends.dat",
            ["user_id", "friend_id"],
            ["userID", "friendID"],
            ints=["user_id", "friend_id"],
        )
        users = relation_bags(friends.rename({"friend_id": "other_id"}), ua["user_id"], "friends", notes)

        tables = canonicalize(ratings, users, items, ratings_file=ua_path, scale=self.rating_scale)
        tables.notes.update(notes)
        return tables


# ---------------------------------------------------------------------------------------------- Delicious
@register
class Delicious(HetRecZip):
    name = "delicious"
    # readme: 1,867 users, 104,799 distinct (user, URL) pairs, "avg. 56.132 bookmarked URLs per user" (exactly
    # 1,867 users with bookmarks); 69,226 URLs with "avg. 1.514 users bookmarking a URL", which pins the number
    # of bookmarked URLs only to 104,799 / [1.5135, 1.5145) = 69,197..69,243 (not verified on the real files).
    expected = ExpectedCounts(users=(1867, 1867), items=(69_197, 69_243), ratings=(104_799, 104_799))
    user_side = (SideField("contacts", "bag"),)
    item_side = (SideField("tags", "bag"),)
    has_timestamps = True
    ordering_note = "the latest bookmark (the pair's first tag assignment), ties broken by the larger item_idx"

    url = BASE_URL + "hetrec2011-delicious-2k.zip"
    archive = "hetrec2011-delicious-2k.zip"
    folder = "hetrec2011-delicious-2k"
    md5 = None  # none published: the first download records a sha256 sidecar, later ones are verified against it
    required_files = ("user_taggedbookmarks.dat", "bookmarks.dat", "bookmark_tags.dat", "tags.dat", "user_contacts.dat")
    optional_files = ("readme.txt", "user_taggedbookmarks-timestamps.dat", "user_contacts-timestamps.dat")

    def parse(self, raw_dir: Path) -> CanonicalTables:
        notes: dict[str, object] = {"raw_layout": "hetrec-delicious"}
        ta, used = read_tag_times(
            raw_dir / "user_taggedbookmarks-timestamps.dat",
            raw_dir / "user_taggedbookmarks.dat",
            "bookmarkID",
            ["day", "month", "year", "hour", "minute", "second"],
            strict_header=False,
        )
        ratings_path = raw_dir / used
        if ta.is_empty():
            raise DataError(ratings_path, "no tag assignments", expected="at least one row", found="none")
        notes["timestamp_source"] = used
        notes["tag_assignments"] = ta.height
        notes["tag_dates_implausible"] = ta["timestamp"].null_count()
        triples = ta.group_by("user_id", "item_id", "tag_id").agg(pl.col("timestamp").min(), pl.col("line").min())
        notes["tag_assignments_duplicate"] = ta.height - triples.height
        ratings = (
            triples.group_by("user_id", "item_id")
            .agg(
                pl.len().cast(pl.Float64).alias("weight"),
                pl.col("timestamp").min().fill_null(MISSING_TIMESTAMP),
                pl.col("line").min(),
            )
            .sort("line")
            .select("user_id", "item_id", pl.lit(1.0).alias("rating"), "timestamp", "weight", "line")
        )
        notes["interactions_without_timestamp"] = int((ratings["timestamp"] == MISSING_TIMESTAMP).sum())

        tags = read_tag_values(raw_dir / "tags.dat", ["id", "value"], notes, strict_header=False)
        bt_path = raw_dir / "bookmark_tags.dat"
        bt, _ = read_tsv(
            bt_path,
            ["item_id", "tag_id", "tag_weight"],
            ["bookmarkID", "tagID", "tagWeight"],
            ints=["item_id", "tag_id", "tag_weight"],
            strict_header=False,
        )
        _positive(bt, bt_path, "tag_weight", "tagWeight")
        notes["bookmark_tag_rows"] = bt.height
        notes["bookmark_tag_weight_total"] = int(bt["tag_weight"].sum()) if bt.height else 0
        bm_path = raw_dir / "bookmarks.dat"
        bookmarks, enc = read_tsv(
            bm_path,
            ["item_id", "md5", "title", "url", "md5_principal", "domain"],
            ["id", "md5", "title", "url", "md5Principal", "urlPrincipal"],
            ints=["item_id"],
            text=(2, 3),
            encodings=TEXT_ENCODINGS,
            strict_header=False,
        )
        check_unique_ids(bookmarks, bm_path, "item_id")
        notes["bookmarks_encoding"] = enc
        notes["bookmarks_listed"] = bookmarks.height
        items = complete_items(
            bookmarks.select("item_id", pl.col("title").str.strip_chars(), pl.col("domain").str.strip_chars()),
            ratings["item_id"],
            {"title": "", "domain": ""},
            notes,
            "bookmarks_missing_from_bookmarks_dat",
        )
        bags = tag_bags(
            bt.select("item_id", "tag_id", pl.col("tag_weight").alias("repeat")),
            tags,
            notes,
            "bookmark_tags_unknown_tag",
        )
        items = items.join(bags, on="item_id", how="left").with_columns(pl.col("tags").fill_null(EMPTY_LIST))

        contacts, _ = read_tsv(
            raw_dir / "user_contacts.dat",
            ["user_id", "contact_id", "day", "month", "year", "hour", "minute", "second"],
            ["userID", "contactID", "date_day", "date_month", "date_year", "date_hour", "date_minute", "date_second"],
            ints=["user_id", "contact_id"],
            strict_header=False,
        )
        users = relation_bags(contacts.rename({"contact_id": "other_id"}), ratings["user_id"], "contacts", notes)

        tables = canonicalize(ratings, users, items, ratings_file=ratings_path, scale=self.rating_scale)
        tables.notes.update(notes)
        return tables
