"""MovieLens 1M / 10M / 20M / 25M / latest-small: parsers on small files in the official formats, bad input,
acquisition (local dir, local zip, fake official download, no network), real ML-1M side files and counts."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import tasks.datasets._movielens_csv as mlcsv
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.base import Dataset, canonicalize
from tasks.datasets.ml1m import MD5 as ML1M_MD5
from tasks.datasets.ml1m import URL as ML1M_URL
from tasks.datasets.ml1m import MovieLens1M, parse_movies, parse_users
from tasks.datasets.ml20m import MovieLensLatestSmall
from tests.conftest import fake_download, go_offline

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
CSV_NAMES = ["ml-20m", "ml-25m", "ml-latest-small"]


# ---------------------------------------------------------------------------------------------- writers
def _pairs(n_users: int, n_items: int, per_user: int, seed: int) -> list[tuple[int, int, int]]:
    rng = np.random.default_rng(seed)
    out = []
    for u in range(1, n_users + 1):
        for i in rng.choice(n_items, size=per_user, replace=False):
            out.append((u, int(i) + 1, 978_300_000 + int(rng.integers(0, 10**7))))
    return out


def write_ml1m(dest: Path, n_users: int = 30, n_items: int = 40, per_user: int = 10) -> Path:
    """ratings.dat / movies.dat (latin-1) / users.dat exactly as in ml-1m.zip; movie 40 is never rated."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}::{i}::{1 + (u + i) % 5}::{ts}" for u, i, ts in _pairs(n_users, n_items - 1, per_user, 1)]
    (dest / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="ascii")
    genres = ["Animation|Children's|Comedy", "Drama", "Sci-Fi|War", "Film-Noir|Thriller"]
    movies = []
    for i in range(1, n_items + 1):
        title = {1: "Misérables, Les (1995)", 2: "Star Wars: Episode IV - A New Hope (1977)"}.get(
            i, f"Movie {i} (19{50 + i})"
        )
        movies.append(f"{i}::{title}::{genres[i % 4]}")
    (dest / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    ages = (1, 18, 25, 35, 45, 50, 56)
    users = [f"{u}::{'FM'[u % 2]}::{ages[u % 7]}::{u % 21}::{(u * 7919) % 100000:05d}" for u in range(1, n_users + 1)]
    (dest / "users.dat").write_text("\n".join(users) + "\n", encoding="ascii")
    return dest


def write_ml10m(dest: Path, n_users: int = 30, n_items: int = 40, per_user: int = 10) -> Path:
    """ratings.dat (half stars) / movies.dat / tags.dat (UTF-8) as in ml-10m.zip's ml-10M100K/."""
    dest.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}::{i}::{0.5 * (1 + (u * i) % 10):g}::{ts}" for u, i, ts in _pairs(n_users, n_items, per_user, 2)]
    (dest / "ratings.dat").write_text("\n".join(lines) + "\n", encoding="utf-8")
    amelie = "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    movies = [
        f"{i}::{amelie if i == 1 else f'Film {i} (2000)'}::{'Comedy|Romance' if i % 2 else 'Drama'}"
        for i in range(1, n_items + 1)
    ]
    (dest / "movies.dat").write_text("\n".join(movies) + "\n", encoding="utf-8")
    tags = [
        "3::1::Audrey Tautou::1188263867",
        "4::1::audrey tautou ::1188263868",
        "4::1::Paris::1188263869",
        "5::2::Sci-Fi: classic::1188263870",  # a tag with ':' inside
        "5::999::orphan::1188263871",  # a movie missing from movies.dat
    ]
    (dest / "tags.dat").write_text("\n".join(tags) + "\n", encoding="utf-8")
    return dest


def write_mlcsv(dest: Path, n_users: int = 30, n_items: int = 40, per_user: int = 10) -> Path:
    """ratings.csv / movies.csv (quoted titles with commas) / tags.csv with headers, UTF-8, as in ml-20m+."""
    dest.mkdir(parents=True, exist_ok=True)
    rows = [f"{u},{i},{0.5 * (1 + (u + 2 * i) % 10):g},{ts}" for u, i, ts in _pairs(n_users, n_items, per_user, 3)]
    (dest / "ratings.csv").write_text("userId,movieId,rating,timestamp\n" + "\n".join(rows) + "\n", encoding="utf-8")
    movies = ["movieId,title,genres"]
    for i in range(1, n_items + 1):
        title = {
            1: '"Shawshank Redemption, The (1994)"',
            2: '"Crouching Tiger, Hidden Dragon (Wo hu cang long) (2000)"',
            3: '"Amélie (Fabuleux destin d\'Amélie Poulain, Le) (2001)"',
            4: '"Dr. Strangelove or: How I Learned to Stop Worrying and Love the Bomb (1964)"',
        }.get(i, f"Film {i} (2010)")
        genres = "(no genres listed)" if i == 5 else ("Crime|Drama" if i % 2 else "Action|Adventure|Sci-Fi")
        movies.append(f"{i},{title},{genres}")
    (dest / "movies.csv").write_text("\n".join(movies) + "\n", encoding="utf-8")
    tags = [
        "userId,movieId,tag,timestamp",
        "3,1,Morgan Freeman,1139045764",
        "4,1,morgan freeman,1139045765",
        '4,1,"prison, escape",1139045766',
        "5,3,Paris,1139045767",
    ]
    (dest / "tags.csv").write_text("\n".join(tags) + "\n", encoding="utf-8")
    (dest / "links.csv").write_text("movieId,imdbId,tmdbId\n1,0111161,278\n", encoding="utf-8")
    return dest


WRITERS = {"ml-1m": write_ml1m, "ml-10m": write_ml10m, **{n: write_mlcsv for n in CSV_NAMES}}
RATINGS_FILE = {"ml-1m": "ratings.dat", "ml-10m": "ratings.dat", **{n: "ratings.csv" for n in CSV_NAMES}}


def _by_raw_id(t, side: str, raw_id: str) -> dict:  # type: ignore[no-untyped-def]
    table, ids, idx = (t.items, t.item_ids, "item_idx") if side == "item" else (t.users, t.user_ids, "user_idx")
    return table.join(ids, on=idx).filter(pl.col("raw_id") == raw_id).row(0, named=True)


def _raw_triples(path: Path) -> list[tuple[str, str, float]]:
    text = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".csv":
        return [(f[0], f[1], float(f[2])) for f in (line.split(",") for line in text[1:])]
    return [(f[0], f[1], float(f[2])) for f in (line.split("::") for line in text)]


# ---------------------------------------------------------------------------------------------- registry
def test_registered_with_their_public_spec() -> None:
    names = dataset_names()
    for n in ["ml-1m", "ml-10m", *CSV_NAMES]:
        assert n in names
    ml1m = get_dataset("ml-1m")
    assert ml1m.rating_scale == (1.0, 5.0)
    assert (ml1m.expected.users, ml1m.expected.items, ml1m.expected.ratings) == (
        (6040, 6040),
        (3706, 3706),
        (1_000_209, 1_000_209),
    )
    assert {(f.column, f.kind) for f in ml1m.user_side} == {
        ("gender", "categorical"),
        ("age", "age"),
        ("occupation", "categorical"),
        ("zip", "categorical"),
    }
    item_side = {("title", "text"), ("genres", "multilabel"), ("tags", "bag")}
    assert {(f.column, f.kind) for f in ml1m.item_side} == item_side - {("tags", "bag")}
    counts = {"ml-10m": (69_878, 10_677, 10_000_054), "ml-20m": (138_493, 26_744, 20_000_263)}
    counts["ml-25m"] = (162_541, 59_047, 25_000_095)
    for name, (nu, ni, nr) in counts.items():
        ds = get_dataset(name)
        assert ds.rating_scale == (0.5, 5.0) and ds.user_side == ()
        assert (ds.expected.users, ds.expected.items, ds.expected.ratings) == ((nu, nu), (ni, ni), (nr, nr))
        assert {(f.column, f.kind) for f in ds.item_side} == item_side
    small = get_dataset("ml-latest-small")
    assert small.expected.ratings == (1, 10**6) and small.rating_scale == (0.5, 5.0)


# ---------------------------------------------------------------------------------------------- parsing
def test_parse_ml1m_small(tmp_path: Path) -> None:
    raw = write_ml1m(tmp_path / "raw")
    t = get_dataset("ml-1m").parse(raw)
    triples = _raw_triples(raw / "ratings.dat")
    assert t.ratings.height == len(triples) == 300
    assert t.n_users == 30 and t.n_items == len({i for _, i, _ in triples})
    assert t.ratings.schema == pl.Schema(
        {"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64}
    )
    got = t.ratings.join(t.user_ids, on="user_idx").join(t.item_ids, on="item_idx", suffix="_i")
    assert sorted(got.select("raw_id", "raw_id_i", "rating").iter_rows()) == sorted(triples)
    assert t.notes["items_listed"] == 40 and t.notes["items_listed_unrated"] == 1  # movie 40
    m1 = _by_raw_id(t, "item", "1")
    assert m1["title"] == "Misérables, Les (1995)"  # latin-1 0xE9
    assert m1["genres"] == ["Drama"]
    m2 = _by_raw_id(t, "item", "2")
    assert m2["title"] == "Star Wars: Episode IV - A New Hope (1977)" and m2["genres"] == ["Sci-Fi", "War"]
    assert _by_raw_id(t, "item", "4")["genres"] == ["Animation", "Children's", "Comedy"]
    u7 = _by_raw_id(t, "user", "7")
    assert (u7["gender"], u7["age"], u7["occupation"], u7["zip"]) == ("M", 1, "executive/managerial", "55433")
    assert t.users["age"].dtype == pl.Int32
    assert _by_raw_id(t, "user", "1")["occupation"] == "academic/educator"


def test_parse_ml10m_small_with_tags(tmp_path: Path) -> None:
    raw = write_ml10m(tmp_path / "raw")
    t = get_dataset("ml-10m").parse(raw)
    triples = _raw_triples(raw / "ratings.dat")
    assert t.ratings.height == len(triples) == 300
    assert set(t.ratings["rating"].unique().to_list()) <= {0.5 * k for k in range(1, 11)}
    assert 0.5 in t.ratings["rating"].to_list() and 5.0 in t.ratings["rating"].to_list()
    m1 = _by_raw_id(t, "item", "1")
    assert m1["title"] == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)"
    assert m1["genres"] == ["Comedy", "Romance"]
    # lowercased, stripped, sorted; a tag applied twice counts twice (CFN's occurrence matrix)
    assert m1["tags"] == ["audrey tautou", "audrey tautou", "paris"]
    assert _by_raw_id(t, "item", "2")["tags"] == ["sci-fi: classic"]
    assert _by_raw_id(t, "item", "3")["tags"] == []
    assert t.notes["tagged_items_not_in_movies"] == 1 and t.notes["tag_rows"] == 5
    assert t.notes["movies_encoding"] == "utf-8"
    assert t.users.columns == ["user_idx"]


def test_ml10m_latin1_movies_fall_back(tmp_path: Path) -> None:
    raw = write_ml10m(tmp_path / "raw")
    text = (raw / "movies.dat").read_text(encoding="utf-8")
    (raw / "movies.dat").write_bytes(text.encode("latin-1"))
    t = get_dataset("ml-10m").parse(raw)
    assert t.notes["movies_encoding"] == "latin-1"
    assert _by_raw_id(t, "item", "1")["title"].startswith("Amélie")


@pytest.mark.parametrize("name", CSV_NAMES)
def test_parse_csv_small(tmp_path: Path, name: str) -> None:
    raw = write_mlcsv(tmp_path / "raw")
    t = get_dataset(name).parse(raw)
    triples = _raw_triples(raw / "ratings.csv")
    assert t.ratings.height == len(triples) == 300
    got = t.ratings.join(t.user_ids, on="user_idx").join(t.item_ids, on="item_idx", suffix="_i")
    assert sorted(got.select("raw_id", "raw_id_i", "rating").iter_rows()) == sorted(triples)
    m1 = _by_raw_id(t, "item", "1")
    assert m1["title"] == "Shawshank Redemption, The (1994)"
    assert m1["genres"] == ["Crime", "Drama"]
    assert m1["tags"] == ["morgan freeman", "morgan freeman", "prison, escape"]
    assert _by_raw_id(t, "item", "2")["title"] == "Crouching Tiger, Hidden Dragon (Wo hu cang long) (2000)"
    assert _by_raw_id(t, "item", "3")["title"].startswith("Amélie") and _by_raw_id(t, "item", "3")["tags"] == ["paris"]
    assert _by_raw_id(t, "item", "5")["genres"] == []  # "(no genres listed)"
    assert t.items.schema["tags"] == pl.List(pl.Utf8) and t.items.schema["genres"] == pl.List(pl.Utf8)


@pytest.mark.parametrize("name", ["ml-1m", "ml-10m", "ml-20m"])
def test_crlf_line_endings_parse_the_same(tmp_path: Path, name: str) -> None:
    lf = WRITERS[name](tmp_path / "lf")
    crlf = tmp_path / "crlf"
    crlf.mkdir()
    for f in lf.iterdir():
        (crlf / f.name).write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))
    ds = get_dataset(name)
    a, b = ds.parse(lf), ds.parse(crlf)
    for key, frame in a.as_dict().items():
        assert frame.equals(b.as_dict()[key]), key
    for frame in (b.users, b.items):
        for col, dtype in frame.schema.items():
            if dtype == pl.Utf8:
                assert not frame[col].str.ends_with("\r").any(), col


def test_blank_lines_and_stray_spaces_take_the_checked_path(tmp_path: Path) -> None:
    raw = write_ml1m(tmp_path / "raw")
    good = get_dataset("ml-1m").parse(raw)
    lines = (raw / "ratings.dat").read_text().splitlines()
    lines.insert(5, "")
    lines[9] = lines[9] + " "
    (raw / "ratings.dat").write_text("\n".join(lines) + "\n\n")
    assert get_dataset("ml-1m").parse(raw).ratings.equals(good.ratings)


def as_text(frame: pl.DataFrame, *keys: str) -> pl.DataFrame:
    keys = keys or ("user_id", "item_id")
    return frame.with_columns(pl.col(k).cast(pl.Utf8) for k in keys)


def test_integer_canonicalize_matches_the_foundation(tmp_path: Path) -> None:
    """``canonicalize``'s integer-id path (no string casts) gives exactly the tables of its string-id path."""
    raw = write_ml1m(tmp_path / "raw")
    ratings = mlcsv.read_dat_ratings(raw / "ratings.dat")
    users = parse_users(raw / "users.dat").drop("line")
    items = parse_movies(raw / "movies.dat").drop("line")
    users = users.filter(pl.col("user_id") != 3)  # a rated user without side row, as canonicalize allows
    a = canonicalize(
        as_text(ratings), as_text(users, "user_id"), as_text(items, "item_id"), ratings_file="r", scale=(1.0, 5.0)
    )
    b = canonicalize(ratings, users, items, ratings_file="r", scale=(1.0, 5.0))
    for key, frame in a.as_dict().items():
        assert frame.equals(b.as_dict()[key]), key
    assert a.notes == b.notes
    # ids that are not contiguous nor small: still numeric order
    big = ratings.with_columns(pl.col("user_id") * 1_000_003, pl.col("item_id") + 10**12)
    a = canonicalize(as_text(big), None, None, ratings_file="r", scale=None)
    b = canonicalize(big, None, None, ratings_file="r", scale=None)
    for key, frame in a.as_dict().items():
        assert frame.equals(b.as_dict()[key]), key


@pytest.mark.parametrize("crlf", [False, True], ids=["lf", "crlf"])
@pytest.mark.parametrize("name", ["ml-1m", "ml-10m", "ml-20m"])
def test_good_files_take_the_fast_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, crlf: bool) -> None:
    """Well-formed files never reach the slow line-checked readers (the fast path is what scales to 25M rows)."""
    raw = WRITERS[name](tmp_path / "raw")
    if crlf:
        for f in raw.iterdir():
            f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))

    def boom(path: Path, *args: object) -> None:
        raise AssertionError(f"slow path taken for {path}")

    monkeypatch.setattr(mlcsv, "_slow_dat_ratings", boom)
    monkeypatch.setattr(mlcsv, "_slow_csv", boom)
    assert get_dataset(name).parse(raw).ratings.height == 300


# ---------------------------------------------------------------------------------------------- bad input
def _replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text.encode("utf-8")
    path.write_bytes(b"\n".join(lines))


BAD_RATINGS = [
    # dataset, 1-based line, replacement, snippets
    ("ml-1m", 5, "1::2::3", ["wrong number of fields", "expected 4 fields separated by '::'"]),
    ("ml-1m", 6, "1::2::3::4::5", ["wrong number of fields", "5 fields"]),
    ("ml-1m", 7, "3::4::x::978300000", ["non-numeric or missing rating", "found 'x'"]),
    ("ml-1m", 8, "3::4::6::978300000", ["rating out of the dataset's scale", "expected a rating in [1.0, 5.0]"]),
    ("ml-1m", 9, "3::4::0::978300000", ["rating out of the dataset's scale", "found 0.0"]),
    ("ml-1m", 10, "3::4::3.5::978300000", ["rating is not a whole star", "found 3.5"]),
    ("ml-1m", 11, "3::x4::3::978300000", ["non-numeric or missing item_id", "found 'x4'"]),
    ("ml-10m", 5, "1::2::3.5", ["wrong number of fields"]),
    ("ml-10m", 7, "3::4::four::978300000", ["non-numeric or missing rating", "found 'four'"]),
    ("ml-10m", 8, "3::4::5.5::978300000", ["rating out of the dataset's scale", "expected a rating in [0.5, 5.0]"]),
    ("ml-10m", 9, "3::4::0::978300000", ["rating out of the dataset's scale", "found 0.0"]),
    ("ml-10m", 10, "3::4::4.25::978300000", ["rating is not a half star", "found 4.25"]),
    ("ml-10m", 11, "3::4::4::soon", ["non-numeric or missing timestamp", "found 'soon'"]),
    ("ml-20m", 5, "1,2,3.5", ["wrong number of fields", "expected 4 comma-separated fields"]),
    ("ml-20m", 6, "1,2,3.5,978300000,9", ["wrong number of fields", "5 fields"]),
    ("ml-20m", 7, "3,4,x,978300000", ["non-numeric or missing rating", "found 'x'"]),
    ("ml-20m", 8, "3,4,5.5,978300000", ["rating out of the dataset's scale", "found 5.5"]),
    ("ml-25m", 9, "3,4,0,978300000", ["rating out of the dataset's scale", "found 0.0"]),
    ("ml-latest-small", 10, "3,4,0.25,978300000", ["rating out of the dataset's scale", "found 0.25"]),
    ("ml-latest-small", 11, "3,4,2.75,978300000", ["rating is not a half star", "found 2.75"]),
    ("ml-20m", 12, "3,4,,978300000", ["non-numeric or missing rating", "found ''"]),
]


@pytest.mark.parametrize(("name", "line", "row", "snippets"), BAD_RATINGS, ids=[f"{b[0]}-{b[1]}" for b in BAD_RATINGS])
def test_bad_rating_row_names_file_and_line(
    tmp_path: Path, name: str, line: int, row: str, snippets: list[str]
) -> None:
    raw = WRITERS[name](tmp_path / "raw")
    path = raw / RATINGS_FILE[name]
    _replace_line(path, line, row)
    with pytest.raises(DataError) as ei:
        get_dataset(name).parse(raw)
    e = ei.value
    assert (Path(e.file), e.line) == (path, line)
    assert f"{path}, line {line}:" in str(e)
    for s in snippets:
        assert s in str(e)


@pytest.mark.parametrize("name", ["ml-1m", "ml-10m", "ml-20m"])
def test_duplicate_pair_names_both_lines(tmp_path: Path, name: str) -> None:
    raw = WRITERS[name](tmp_path / "raw")
    path = raw / RATINGS_FILE[name]
    lines = path.read_text().splitlines()
    header = 1 if path.suffix == ".csv" else 0
    sep = "," if header else "::"
    u, i, _, ts = lines[header + 2].split(sep)  # file line header + 3
    lines.append(sep.join([u, i, "1", ts]))
    path.write_text("\n".join(lines) + "\n")
    first, last = header + 3, len(lines)
    with pytest.raises(DataError) as ei:
        get_dataset(name).parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, last)
    assert f"duplicate (user, item) pair ({u}, {i}) on lines [{first}, {last}]" in str(ei.value)


BAD_SIDE = [
    ("ml-1m", "users.dat", 3, "3::X::25::4::12345", "invalid gender: expected M or F, found 'X'"),
    ("ml-1m", "users.dat", 4, "4::M::26::4::12345", "invalid age: expected an age group code"),
    ("ml-1m", "users.dat", 5, "5::M::25::21::12345", "invalid occupation: expected an occupation code 0-20"),
    ("ml-1m", "users.dat", 6, "6::M::25::4", "wrong number of fields"),
    ("ml-1m", "users.dat", 7, "1::M::25::4::12345", "user_id 1 listed more than once, on lines [1, 7]"),
    ("ml-1m", "movies.dat", 3, "3::Only a title", "wrong number of fields"),
    ("ml-1m", "movies.dat", 4, "four::Title (1990)::Drama", "non-numeric or missing item_id"),
    ("ml-10m", "tags.dat", 2, "4::1::paris", "wrong number of fields"),
    ("ml-10m", "tags.dat", 3, "4::1::paris::yesterday", "non-numeric or missing timestamp"),
    ("ml-20m", "movies.csv", 3, "2,Too few fields", "wrong number of fields: expected 3 comma-separated fields"),
    ("ml-20m", "movies.csv", 4, '3,"Unclosed, title,Drama', "unbalanced double quote"),
    ("ml-20m", "movies.csv", 5, "1,Again (1990),Drama", "item_id 1 listed more than once, on lines [2, 5]"),
    ("ml-20m", "movies.csv", 1, "movieId,name,genres", "unexpected CSV header: expected movieId,title,genres"),
    ("ml-25m", "tags.csv", 3, "4,1,tag,later", "non-numeric or missing timestamp"),
    ("ml-25m", "tags.csv", 4, "4,1,a,b,1139045766", "wrong number of fields"),
]


@pytest.mark.parametrize(
    ("name", "file", "line", "row", "snippet"), BAD_SIDE, ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BAD_SIDE]
)
def test_bad_side_row_names_file_and_line(
    tmp_path: Path, name: str, file: str, line: int, row: str, snippet: str
) -> None:
    raw = WRITERS[name](tmp_path / "raw")
    path = raw / file
    _replace_line(path, line, row)
    with pytest.raises(DataError) as ei:
        get_dataset(name).parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, line)
    assert snippet in str(ei.value)


def test_missing_or_empty_ratings_file(tmp_path: Path) -> None:
    raw = write_ml1m(tmp_path / "raw")
    (raw / "ratings.dat").write_text("")
    with pytest.raises(DataError, match="no ratings"):
        get_dataset("ml-1m").parse(raw)
    (raw / "ratings.dat").unlink()
    with pytest.raises(DataError, match=r"ratings\.dat: raw file missing"):
        get_dataset("ml-1m").parse(raw)
    raw = write_mlcsv(tmp_path / "csv")
    (raw / "tags.csv").unlink()
    with pytest.raises(DataError, match=r"tags\.csv: raw file missing"):
        get_dataset("ml-20m").parse(raw)


def test_invalid_utf8_in_csv_names_the_line(tmp_path: Path) -> None:
    raw = write_mlcsv(tmp_path / "raw")
    path = raw / "movies.csv"
    lines = path.read_bytes().split(b"\n")
    lines[6] = b"6,Caf\xe9 (1990),Drama"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as ei:
        get_dataset("ml-20m").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, 7)
    assert "not valid utf-8" in str(ei.value)


# ---------------------------------------------------------------------------------------------- acquisition
def _zip(path: Path, folder: str, src: Path, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{folder}/", b"")
        for f in sorted(src.iterdir()):
            zf.write(f, f"{folder}/{f.name}")
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network: the official download fails; the download cache is a fresh temporary directory."""
    return go_offline(monkeypatch, tmp_path, mlcsv)


@pytest.mark.parametrize(
    ("name", "folder"),
    [("ml-1m", "ml-1m"), ("ml-10m", "ml-10M100K"), ("ml-20m", "ml-20m"), ("ml-latest-small", "ml-latest-small")],
)
def test_acquire_from_local_unpacked_folder(tmp_path: Path, offline: Path, name: str, folder: str) -> None:
    src = tmp_path / "src"
    WRITERS[name](src / folder)
    ds = get_dataset(name)
    dest = tmp_path / "data" / name
    res = ds.acquire(dest, src, 5)  # the folder below source_dir ...
    assert res.source == f"local directory {src}" and res.layout == "unpacked"
    assert ds.is_acquired(dest)
    assert ds.parse(dest).ratings.height == 300
    shutil.rmtree(dest)
    ds.acquire(dest, src / folder, 5)  # ... or source_dir itself
    assert ds.is_acquired(dest)
    if name == "ml-20m":
        assert (dest / "links.csv").is_file()


@pytest.mark.parametrize(("name", "folder"), [("ml-1m", "ml-1m"), ("ml-10m", "ml-10M100K"), ("ml-25m", "ml-25m")])
def test_acquire_from_local_zip(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch, name: str, folder: str
) -> None:
    files = WRITERS[name](tmp_path / "files")
    src = tmp_path / "src"
    src.mkdir()
    ds = get_dataset(name)
    z = _zip(src / ds.archive, folder, files, {f"{folder}/genome-scores.csv": b"movieId,tagId,relevance\n"})
    monkeypatch.setattr(type(ds), "md5", _md5(z))  # our small zip stands in for the pinned official one
    dest = tmp_path / "data" / name
    res = ds.acquire(dest, src, 5)
    assert res.layout == "zip"
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in files.iterdir())  # no genome files
    assert ds.parse(dest).ratings.height == 300
    # the zip file itself may be named as the source
    shutil.rmtree(dest)
    assert ds.acquire(dest, z, 5).layout == "zip"


def test_local_zip_with_wrong_md5_is_refused_and_named(tmp_path: Path, offline: Path) -> None:
    files = write_ml1m(tmp_path / "files")
    src = tmp_path / "src"
    src.mkdir()
    z = _zip(src / "ml-1m.zip", "ml-1m", files)
    dest = tmp_path / "data" / "ml-1m"
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("ml-1m").acquire(dest, src, 5)
    msg = str(ei.value)
    assert f"{z}: md5 mismatch: expected {ML1M_MD5}, found {_md5(z)}" in msg
    assert not dest.exists()


@pytest.mark.parametrize("name", ["ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-latest-small"])
def test_no_network_no_local_copy_says_what_to_download_where(tmp_path: Path, offline: Path, name: str) -> None:
    ds = get_dataset(name)
    dest = tmp_path / "data" / name
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(dest, empty, 5)
    msg = str(ei.value)
    assert f"could not obtain the raw files of {name!r}" in msg
    assert f"local directory {empty}: {empty}: holds neither {ds.archive}" in msg
    assert f"could not download {ds.url}" in msg and "no network" in msg
    assert f"Download {ds.url}" in msg and f"put {ds.archive} itself, or the {ds.folder}/ folder" in msg
    assert "acquire.source_dir" in msg and str(dest) in msg
    if ds.md5:
        assert f"(MD5 {ds.md5})" in msg
    assert not dest.exists()
    with pytest.raises(AcquisitionError, match="no network"):
        ds.acquire(dest, None, 5)


def test_ml1m_official_url_and_md5() -> None:
    assert ML1M_URL == "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
    assert MovieLens1M.md5 == "c4d9eecfca2ab87c1945afe126590906"


def test_official_download_verified_with_pinned_md5(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = _zip(tmp_path / "served.zip", "ml-1m", write_ml1m(tmp_path / "files"))
    calls: list[str] = []
    monkeypatch.setattr(mlcsv, "download", fake_download(z, calls))
    dest = tmp_path / "data" / "ml-1m"
    with pytest.raises(AcquisitionError, match="md5 mismatch"):  # the real pinned MD5 ≠ our small zip
        get_dataset("ml-1m").acquire(dest, None, 5)
    monkeypatch.setattr(MovieLens1M, "md5", _md5(z))
    res = get_dataset("ml-1m").acquire(dest, None, 5)
    assert res.source == ML1M_URL and calls == [ML1M_URL, ML1M_URL]
    assert (offline / "ml-1m.zip").is_file() and get_dataset("ml-1m").is_acquired(dest)


def test_latest_small_records_sha256_then_verifies(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z1 = _zip(tmp_path / "v1.zip", "ml-latest-small", write_mlcsv(tmp_path / "files"))
    monkeypatch.setattr(mlcsv, "download", fake_download(z1, []))
    ds = get_dataset("ml-latest-small")
    assert isinstance(ds, MovieLensLatestSmall) and ds.md5 is None
    dest = tmp_path / "data" / "ml-latest-small"
    ds.acquire(dest, None, 5)
    sidecar = offline / "ml-latest-small.zip.sha256"
    digest = hashlib.sha256(z1.read_bytes()).hexdigest()
    assert sidecar.read_text() == f"{digest}  ml-latest-small.zip\n"
    ds.acquire(dest, None, 5)  # same bytes: verified against the sidecar
    # upstream changed (or the download is corrupt): refused, and the sidecar is named
    z2 = _zip(tmp_path / "v2.zip", "ml-latest-small", write_mlcsv(tmp_path / "files2", n_users=31))
    (offline / "ml-latest-small.zip").unlink()
    monkeypatch.setattr(mlcsv, "download", fake_download(z2, []))
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(tmp_path / "data2", None, 5)
    assert f"sha256 mismatch: expected {digest}" in str(ei.value) and str(sidecar) in str(ei.value)
    assert "delete the sidecar to accept it" in str(ei.value)


def test_is_acquired_needs_every_required_file(tmp_path: Path) -> None:
    for name in ["ml-1m", "ml-10m", "ml-20m"]:
        ds: Dataset = get_dataset(name)
        raw = WRITERS[name](tmp_path / name)
        assert ds.is_acquired(raw)
        next(p for p in raw.iterdir() if p.name.startswith("movies")).unlink()
        assert not ds.is_acquired(raw)


# ---------------------------------------------------------------------------------------------- real data
def _shared_ml1m() -> Path:
    path = SHARED / "ml-1m"
    if not (path / "movies.dat").is_file() or not (path / "users.dat").is_file():
        pytest.skip("../shared/datasets/ml-1m not present")
    return path


@pytest.mark.realdata
def test_real_ml1m_side_files() -> None:
    path = _shared_ml1m()
    movies = parse_movies(path / "movies.dat")
    assert movies.height == 3883
    toy = movies.row(0, named=True)
    assert (toy["item_id"], toy["title"], toy["genres"]) == (
        1,
        "Toy Story (1995)",
        ["Animation", "Children's", "Comedy"],
    )
    assert movies.filter(pl.col("title").str.contains("Misérables")).height >= 1  # latin-1
    all_genres = set(movies["genres"].explode().drop_nulls().to_list())
    assert len(all_genres) == 18 and movies["genres"].list.len().min() >= 1
    users = parse_users(path / "users.dat")
    assert users.height == 6040
    assert set(users["gender"].unique()) == {"F", "M"}
    assert sorted(users["age"].unique().to_list()) == [1, 18, 25, 35, 45, 50, 56]
    assert users["occupation"].n_unique() == 21
    first = users.row(0, named=True)
    assert (first["user_id"], first["gender"], first["age"], first["occupation"], first["zip"]) == (
        1,
        "F",
        1,
        "K-12 student",
        "48067",
    )


@pytest.mark.realdata
def test_real_ml1m_counts_from_derived_pairs(tmp_path: Path) -> None:
    path = _shared_ml1m()
    pairs_file = path / "derived-user-movie-pairs" / "ratings.parquet"
    if not pairs_file.is_file():
        pytest.skip("derived ML-1M pairs not present")
    raw = tmp_path / "ml-1m"
    raw.mkdir()
    shutil.copyfile(path / "movies.dat", raw / "movies.dat")
    shutil.copyfile(path / "users.dat", raw / "users.dat")
    pairs = pl.read_parquet(pairs_file)
    pairs.select(pl.format("{}::{}::4::0", pl.col("userID"), pl.col("movieID"))).write_csv(
        raw / "ratings.dat", include_header=False, quote_style="never"
    )
    t = get_dataset("ml-1m").parse(raw)
    assert (t.n_users, t.n_items, t.ratings.height) == (6040, 3706, 1_000_209)
    assert t.notes["users_listed_unrated"] == 0 and t.notes["items_listed_unrated"] == 3883 - 3706
    assert t.users.height == 6040 and t.items.height == 3706


@pytest.mark.parametrize("line", [",", ",,,"])
def test_csv_line_of_bare_separators_is_a_row_not_a_blank_line(tmp_path: Path, line: str) -> None:
    """ml-20m+ ratings.csv: a blank line is skipped, a line of bare commas is a bad row named by its line."""
    raw = write_mlcsv(tmp_path / "raw", 6, 8, 3)
    lines = (raw / "ratings.csv").read_text().splitlines()
    lines.insert(3, line)
    (raw / "ratings.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"ratings\.csv, line 4"):
        get_dataset("ml-20m", raw_dir=raw).parse(raw)
