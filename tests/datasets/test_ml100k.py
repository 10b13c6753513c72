"""MovieLens-100K parsing: both raw layouts, line-numbered errors, real-data counts, ingest atomicity."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest

from tasks.common.errors import DataError
from tasks.common.paths import Layout
from tasks.datasets import get_dataset
from tasks.datasets.ml100k import GENRES
from tasks.ingest import ingest_dataset
from tests.conftest import write_ml100k

INTER_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"
ITEM_HEADER = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"
USER_HEADER = "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token"


def write_recbole(grouplens_dir: Path, dest: Path) -> Path:
    """Rewrite GroupLens raw files as RecBole atomic files (``ml-100k.{inter,item,user}``)."""
    dest.mkdir(parents=True, exist_ok=True)
    inter = (grouplens_dir / "u.data").read_text(encoding="ascii").splitlines()
    (dest / "ml-100k.inter").write_text("\n".join([INTER_HEADER, *inter]) + "\n", encoding="utf-8")
    items = [ITEM_HEADER]
    for line in (grouplens_dir / "u.item").read_text(encoding="latin-1").splitlines():
        f = line.split("|")
        m = re.match(r"^(.*) \((\d{4})\)$", f[1])
        title, year = (m.group(1), m.group(2)) if m else (f[1], "")
        genres = " ".join(g for g, flag in zip(GENRES, f[5:]) if flag == "1")
        items.append(f"{f[0]}\t{title}\t{year}\t{genres}")
    (dest / "ml-100k.item").write_text("\n".join(items) + "\n", encoding="utf-8")
    user_lines = (grouplens_dir / "u.user").read_text(encoding="ascii").splitlines()
    users = [USER_HEADER] + [line.replace("|", "\t") for line in user_lines]
    (dest / "ml-100k.user").write_text("\n".join(users) + "\n", encoding="utf-8")
    return dest


def _raw_ratings(raw: Path) -> list[tuple[int, int, float, int]]:
    out = []
    for line in (raw / "u.data").read_text(encoding="ascii").splitlines():
        u, i, r, t = line.split("\t")
        out.append((int(u), int(i), float(r), int(t)))
    return out


def _ratings_with_raw_ids(tables) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return (
        tables.ratings.join(tables.user_ids.rename({"raw_id": "user"}), on="user_idx")
        .join(tables.item_ids.rename({"raw_id": "item"}), on="item_idx")
        .select("user", "item", "rating", "timestamp")
        .sort("user", "item")
    )


# ------------------------------------------------------------------ GroupLens layout, small files
def test_parse_small_grouplens(ml100k_small: Path) -> None:
    raw = _raw_ratings(ml100k_small)
    t = get_dataset("ml-100k").parse(ml100k_small)
    assert t.notes["raw_layout"] == "grouplens"
    assert t.ratings.height == len(raw) == 60 * 25
    assert t.n_users == len({r[0] for r in raw}) == 60
    assert t.n_items == len({r[1] for r in raw})
    assert t.ratings.schema == pl.Schema(
        {"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64}
    )
    # contiguous indices from 0, ids kept as a map back
    assert sorted(t.ratings["user_idx"].unique().to_list()) == list(range(t.n_users))
    assert sorted(t.ratings["item_idx"].unique().to_list()) == list(range(t.n_items))
    assert t.user_ids["user_idx"].to_list() == list(range(t.n_users))
    assert t.item_ids["raw_id"].cast(pl.Int64).is_sorted()
    # every raw row survives, values exact
    got = _ratings_with_raw_ids(t)
    assert sorted((int(u), int(i), float(r), int(ts)) for u, i, r, ts in got.iter_rows()) == sorted(raw)
    # side tables aligned with the indices
    assert t.users["user_idx"].to_list() == list(range(t.n_users))
    assert t.users["age"].dtype == pl.Int32
    assert t.items["item_idx"].to_list() == list(range(t.n_items))
    item1 = t.items.join(t.item_ids, on="item_idx").filter(pl.col("raw_id") == "1").row(0, named=True)
    assert item1["title"] == "Café Movie 1 (1990)"  # latin-1 byte 0xE9 decoded
    assert item1["genres"] == ["Action"]
    item2 = t.items.join(t.item_ids, on="item_idx").filter(pl.col("raw_id") == "2").row(0, named=True)
    assert item2["title"] == "Movie number 2 (1981)"
    assert item2["genres"] == ["Adventure"]
    user3 = t.users.join(t.user_ids, on="user_idx").filter(pl.col("raw_id") == "3").row(0, named=True)
    assert (user3["age"], user3["gender"], user3["occupation"], user3["zip"]) == (20, "M", "student", "10074")


def test_crlf_line_endings_parse_the_same(ml100k_small: Path, tmp_path: Path) -> None:
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for f in ml100k_small.iterdir():
        (crlf / f.name).write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    assert b"\r\n" in (crlf / "u.item").read_bytes()
    ds = get_dataset("ml-100k")
    a, b = ds.parse(ml100k_small), ds.parse(crlf)
    for name, frame in a.as_dict().items():
        assert frame.equals(b.as_dict()[name]), name
    assert not any(t.endswith("\r") for t in b.users["zip"].to_list())


BAD_U_DATA = [
    # (1-based line, replacement row, expected snippets in the message)
    (5, "1\t2\t3", ["wrong number of fields", "expected 4 fields", "3 fields: "]),
    (6, "1\t\t3\t881250949", ["non-numeric or missing item_id", "found ''"]),
    (7, "3\t4\tx\t881250949", ["non-numeric or missing rating", "expected a Float64 value", "found 'x'"]),
    (8, "3\t4\t6\t881250949", ["rating out of the dataset's scale", "expected a rating in [1.0, 5.0]", "found 6.0"]),
    (9, "3\t4\t0\t881250949", ["rating out of the dataset's scale", "found 0.0"]),
]


@pytest.mark.parametrize(
    ("line", "row", "snippets"),
    BAD_U_DATA,
    ids=["missing-field", "empty-item", "non-numeric", "above-5", "below-1"],
)
def test_bad_rating_row_names_file_and_line(ml100k_small: Path, line: int, row: str, snippets: list[str]) -> None:
    path = ml100k_small / "u.data"
    good = path.read_bytes()
    lines = good.decode().split("\n")
    lines[line - 1] = row
    path.write_text("\n".join(lines), encoding="ascii")
    ds = get_dataset("ml-100k")
    with pytest.raises(DataError) as ei:
        ds.parse(ml100k_small)
    e = ei.value
    assert (Path(e.file), e.line) == (path, line)
    assert f"{path}, line {line}:" in str(e)
    for s in snippets:
        assert s in str(e)
    path.write_bytes(good)  # the next run is not poisoned
    assert ds.parse(ml100k_small).ratings.height == 1500


def test_duplicate_pair_names_both_lines(ml100k_small: Path) -> None:
    path = ml100k_small / "u.data"
    lines = path.read_text(encoding="ascii").splitlines()
    u, i, _, ts = lines[2].split("\t")
    lines.append(f"{u}\t{i}\t1\t{ts}")  # line 1501 repeats the pair of line 3
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    with pytest.raises(DataError) as ei:
        get_dataset("ml-100k").parse(ml100k_small)
    e = ei.value
    assert (Path(e.file), e.line) == (path, 1501)
    msg = str(e)
    assert f"{path}, line 1501:" in msg
    assert f"duplicate (user, item) pair ({u}, {i}) on lines [3, 1501]" in msg
    assert "expected each (user, item) pair at most once" in msg and "found '2 duplicated rows'" in msg


def test_bad_genre_flag_names_file_line_and_flags(ml100k_small: Path) -> None:
    path = ml100k_small / "u.item"
    good = path.read_bytes()
    lines = good.split(b"\n")
    fields = lines[3].split(b"|")
    fields[-1] = b"2"
    lines[3] = b"|".join(fields)
    path.write_bytes(b"\n".join(lines))
    ds = get_dataset("ml-100k")
    with pytest.raises(DataError) as ei:
        ds.parse(ml100k_small)
    e = ei.value
    assert (Path(e.file), e.line) == (path, 4)
    assert f"{path}, line 4: genre flags must be 0 or 1: expected 19 flags of 0/1" in str(e)
    assert e.found is not None and str(e.found).endswith("|2")
    path.write_bytes(good)
    assert ds.parse(ml100k_small).n_items == 80


def test_missing_raw_dir_or_files(tmp_path: Path) -> None:
    ds = get_dataset("ml-100k")
    with pytest.raises(DataError, match=r"expected u\.data \(GroupLens\) or ml-100k\.inter"):
        ds.parse(tmp_path / "nothing")
    raw = write_ml100k(tmp_path / "raw")
    (raw / "u.user").unlink()
    with pytest.raises(DataError, match=r"u\.user: raw file missing"):
        ds.parse(raw)


# ------------------------------------------------------------------ RecBole layout
def test_recbole_layout_gives_the_same_ratings(ml100k_small: Path, tmp_path: Path) -> None:
    rb = write_recbole(ml100k_small, tmp_path / "recbole")
    ds = get_dataset("ml-100k")
    a, b = ds.parse(ml100k_small), ds.parse(rb)
    assert b.notes["raw_layout"] == "recbole"
    assert ds.is_acquired(rb) and ds.is_acquired(ml100k_small)
    assert a.ratings.equals(b.ratings)
    assert a.user_ids.equals(b.user_ids) and a.item_ids.equals(b.item_ids)
    assert a.users.equals(b.users)
    assert b.items["genres"].to_list() == a.items["genres"].to_list()
    assert b.items["title"][0] == "Café Movie 1" and b.items["release_date"][0] == "1990"


def test_recbole_bad_row_names_file_and_line(ml100k_small: Path, tmp_path: Path) -> None:
    rb = write_recbole(ml100k_small, tmp_path / "recbole")
    path = rb / "ml-100k.inter"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[10] = lines[10].rsplit("\t", 2)[0] + "\tnope\t881250949"  # file line 11 (line 1 is the header)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as ei:
        get_dataset("ml-100k").parse(rb)
    assert (Path(ei.value.file), ei.value.line) == (path, 11)
    assert "found 'nope'" in str(ei.value)


# ------------------------------------------------------------------ real data
@pytest.mark.realdata
def test_real_ml100k_counts(shared_ml100k: Path) -> None:
    t = get_dataset("ml-100k").parse(shared_ml100k)
    assert (t.n_users, t.n_items, t.ratings.height) == (943, 1682, 100_000)
    hist = dict(t.ratings.group_by("rating").len().sort("rating").iter_rows())
    assert hist == {1.0: 6110, 2.0: 11370, 3.0: 27145, 4.0: 34174, 5.0: 21201}
    assert t.notes["users_listed_unrated"] == 0 and t.notes["items_listed_unrated"] == 0
    titles = t.items["title"].to_list()
    assert titles[0] == "Toy Story (1995)"
    assert any("Misérables" in s for s in titles)  # latin-1 0xE9


# ------------------------------------------------------------------ ingest atomicity
def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_ingest_bad_raw_leaves_no_output_and_keeps_good_output(tmp_path: Path) -> None:
    layout = Layout(tmp_path)
    raw = write_ml100k(layout.raw("ml-100k"))
    good = (raw / "u.data").read_bytes()
    bad = good.replace(b"\n", b"\nnot\ta\trow\n", 1)  # line 2

    (raw / "u.data").write_bytes(bad)
    with pytest.raises(DataError, match=r"u\.data, line 2: wrong number of fields"):
        ingest_dataset(layout, "ml-100k")
    out = layout.ingested("ml-100k")
    assert not out.exists()
    assert not out.parent.exists() or list(out.parent.iterdir()) == []

    (raw / "u.data").write_bytes(good)
    stats = ingest_dataset(layout, "ml-100k")
    assert stats["n_ratings"] == 1500
    before = _snapshot(out)
    assert {"ratings.parquet", "users.parquet", "items.parquet", "stats.json"} <= set(before)

    (raw / "u.data").write_bytes(bad)
    with pytest.raises(DataError):
        ingest_dataset(layout, "ml-100k")
    assert _snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["ml-100k"]  # no .tmp / .old left beside it

    shutil.rmtree(raw)
    write_ml100k(raw)
    assert ingest_dataset(layout, "ml-100k")["n_ratings"] == 1500
