"""Custom data: CSV / TSV / Parquet ratings mapped by a hybridrec.yaml (or .json), explicit and implicit, side
tables of every field kind, bad mappings and bad data naming file and line, acquisition from a local directory,
and the per-instance spec that later stages obtain with ``configure(raw_dir)``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.base import ExpectedCounts
from tasks.datasets.custom import Custom, load_mapping

RATINGS_CSV = (
    "userId,movieId,stars,when\r\n"
    "u1,m1,5,1600000000\r\n"
    "u1,m2,3,1600000100\r\n"
    "u2,m1,4,1600000200\r\n"
    "\r\n"
    "u2,m3,1,1600000300\r\n"
    "u3,m2,2,1600000400\r\n"
)
USERS_CSV = (
    "userId,gender,age,job,bio,hobbies\n"
    'u1,F,34,writer,"Likes long walks, and tea",chess|go\n'
    "u2,M,,engineer,,\n"
    "u9,M,50,retired,unrated user,golf\n"
)  # u3 has no row; u9 rated nothing
MAPPING = {
    "ratings": {"file": "ratings.csv", "user": "userId", "item": "movieId", "rating": "stars", "timestamp": "when"},
    "scale": [1, 5],
    "users": {
        "file": "users.csv",
        "id": "userId",
        "fields": {"gender": "categorical", "age": "age", "job": "categorical", "bio": "text", "hobbies": "multilabel"},
    },
    "items": {"file": "items.parquet", "id": "movieId", "fields": {"title": "text", "genres": "multilabel"}},
}


def write_custom(dest: Path, mapping: dict | None = None, name: str = "hybridrec.yaml") -> Path:
    """ratings.csv (CRLF, a blank line), users.csv (quoted comma, empty values), items.parquet (list column)."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "ratings.csv").write_bytes(RATINGS_CSV.encode())
    (dest / "users.csv").write_text(USERS_CSV)
    pl.DataFrame(
        {
            "movieId": ["m1", "m2", "m3"],
            "title": ["Toy Story (1995)", None, "Heat"],
            "genres": [["Animation", "Comedy"], [], None],
        }
    ).write_parquet(dest / "items.parquet")
    text = (
        json.dumps(mapping or MAPPING, indent=2)
        if name.endswith(".json")
        else yaml.safe_dump(mapping or MAPPING, sort_keys=False)
    )
    (dest / name).write_text(text)
    return dest


def _triples(t) -> set[tuple[str, str, float, int]]:  # type: ignore[no-untyped-def]
    r = t.ratings.join(t.user_ids, on="user_idx").join(t.item_ids, on="item_idx", suffix="_i")
    return {(u, i, float(x), ts) for u, i, x, ts in r.select("raw_id", "raw_id_i", "rating", "timestamp").iter_rows()}


def _row(t, side: str, raw_id: str) -> dict:  # type: ignore[no-untyped-def]
    table, ids, idx = (t.items, t.item_ids, "item_idx") if side == "item" else (t.users, t.user_ids, "user_idx")
    return table.join(ids, on=idx).filter(pl.col("raw_id") == raw_id).row(0, named=True)


def _mapping(**changes: object) -> dict:
    m = json.loads(json.dumps(MAPPING))
    for key, value in changes.items():
        section, _, sub = key.partition("__")
        if sub:
            if value is None:
                m[section].pop(sub, None)
            else:
                m[section][sub] = value
        elif value is None:
            m.pop(section, None)
        else:
            m[section] = value
    return m


# ---------------------------------------------------------------------------------------------- parsing
def test_class_defaults_exist_and_stay_neutral() -> None:
    assert "custom" in dataset_names()
    ds = get_dataset("custom")
    assert isinstance(ds, Custom) and ds.rating_scale == (1.0, 5.0) and not ds.implicit
    assert ds.user_side == () and ds.item_side == () and ds.expected.ratings[0] == 1


@pytest.mark.parametrize("name", ["hybridrec.yaml", "hybridrec.json"])
def test_csv_with_side_tables_of_every_kind(tmp_path: Path, name: str) -> None:
    raw = write_custom(tmp_path / "raw", name=name)
    ds = get_dataset("custom")
    t = ds.parse(raw)
    assert _triples(t) == {
        ("u1", "m1", 5.0, 1600000000),
        ("u1", "m2", 3.0, 1600000100),
        ("u2", "m1", 4.0, 1600000200),
        ("u2", "m3", 1.0, 1600000300),
        ("u3", "m2", 2.0, 1600000400),
    }
    # the instance now carries the mapping's spec
    assert ds.rating_scale == (1.0, 5.0) and not ds.implicit and ds.has_timestamps
    assert [(f.column, f.kind) for f in ds.user_side] == [
        ("gender", "categorical"),
        ("age", "age"),
        ("job", "categorical"),
        ("bio", "text"),
        ("hobbies", "multilabel"),
    ]
    assert [(f.column, f.kind) for f in ds.item_side] == [("title", "text"), ("genres", "multilabel")]
    u1 = _row(t, "user", "u1")
    assert (u1["gender"], u1["age"], u1["bio"], u1["hobbies"]) == (
        "F",
        34,
        "Likes long walks, and tea",
        ["chess", "go"],
    )
    u2, u3 = _row(t, "user", "u2"), _row(t, "user", "u3")
    assert (u2["age"], u2["bio"], u2["hobbies"]) == (-1, "", [])  # empty values
    assert (u3["gender"], u3["age"], u3["hobbies"]) == ("", -1, [])  # no side row at all
    assert _row(t, "item", "m1")["genres"] == ["Animation", "Comedy"] and _row(t, "item", "m2")["title"] == ""
    for table, n in ((t.users, t.n_users), (t.items, t.n_items)):
        assert table.height == n and not any(table.null_count().row(0))  # every rated entity, no nulls
    assert t.users.schema["age"] == pl.Int32
    n = t.notes
    assert (n["users_side_rows"], n["users_side_rows_unrated"], n["users_without_side_row"]) == (3, 1, 1)
    assert n["users_unknown_age"] == 1 and n["raw_layout"] == "custom-csv" and n["ratings_read"] == 5


def test_tsv_without_header_implicit_threshold_and_dates(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = ["7\t100\t4.5\t2020-01-02", "7\t101\t2\t2020-01-03", "8\t100\t5\t2021-06-01", "9\t102\t3\t2021-06-02"]
    (raw / "log.tsv").write_text("\n".join(rows) + "\n")
    mapping = {
        "ratings": {
            "file": "log.tsv",
            "header": False,
            "columns": ["u", "i", "r", "day"],
            "user": "u",
            "item": "i",
            "rating": "r",
            "timestamp": "day",
        },
        "implicit_threshold": 3.5,
        "scale": [0.5, 5],
    }
    (raw / "hybridrec.yml").write_text(yaml.safe_dump(mapping))
    ds = get_dataset("custom")
    t = ds.parse(raw)
    assert _triples(t) == {("7", "100", 1.0, 1577923200), ("8", "100", 1.0, 1622505600)}
    assert ds.implicit and ds.rating_scale == (0.0, 1.0)
    assert t.notes["below_implicit_threshold_dropped"] == 2
    assert t.user_ids["raw_id"].to_list() == ["7", "8"]  # numeric ids ordered numerically


def test_parquet_implicit_without_rating_and_duplicates_kept_latest(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pl.DataFrame({"uid": [1, 1, 2, 2, 2], "iid": [10, 11, 10, 10, 10], "ts": [5, 6, 7, 9, 9]}).write_parquet(
        raw / "clicks.parquet"
    )
    (raw / "hybridrec.yaml").write_text("ratings: {file: clicks.parquet, user: uid, item: iid, timestamp: ts}\n")
    ds = get_dataset("custom")
    t = ds.parse(raw)
    assert _triples(t) == {("1", "10", 1.0, 5), ("1", "11", 1.0, 6), ("2", "10", 1.0, 9)}
    assert ds.implicit and t.notes["duplicate_rows_dropped"] == 1 and t.notes["duplicate_pairs_dropped"] == 1


def test_multi_character_delimiter_and_no_timestamps(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "ratings.dat").write_text("1::10::5\n1::11::3\n2::10::4\n")
    (raw / "hybridrec.yaml").write_text(
        "ratings: {file: ratings.dat, format: csv, delimiter: '::', header: false, user: column_1, item: column_2,"
        " rating: column_3}\nscale: [1, 5]\n"
    )
    ds = get_dataset("custom")
    t = ds.parse(raw)
    assert _triples(t) == {("1", "10", 5.0, 0), ("1", "11", 3.0, 0), ("2", "10", 4.0, 0)}
    assert not ds.has_timestamps and "none in the data" in str(t.notes["timestamps"])


def test_expected_bounds_from_the_mapping(tmp_path: Path) -> None:
    raw = write_custom(tmp_path / "raw", _mapping(expected={"users": [3, 3], "items": [3, 3], "ratings": [5, 5]}))
    ds = get_dataset("custom").configure(raw)
    assert ds.expected == ExpectedCounts(users=(3, 3), items=(3, 3), ratings=(5, 5))
    assert get_dataset("custom").expected != ds.expected  # a fresh instance has the class defaults


def test_side_fields_feed_the_bag_of_words(tmp_path: Path) -> None:
    from tasks.features import bag_of_words

    raw = write_custom(tmp_path / "raw")
    ds = get_dataset("custom")
    t = ds.parse(raw)
    bow, vocab = bag_of_words(t.users, "user_idx", t.n_users, ds.user_side)
    assert bow.shape == (3, len(vocab)) and "hobbies=chess" in vocab and "bio=walks" in vocab and "age=34" in vocab


# ---------------------------------------------------------------------------------------------- bad mappings
def test_unmapped_column_names_mapping_line_and_available_columns(tmp_path: Path) -> None:
    raw = write_custom(tmp_path / "raw", _mapping(ratings__rating="score"))
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    msg = str(ei.value)
    assert Path(ei.value.file) == raw / "hybridrec.yaml"
    assert (
        ei.value.line
        == yaml.safe_dump(_mapping(ratings__rating="score"), sort_keys=False).splitlines().index("  rating: score") + 1
    )
    assert "ratings.rating: column 'score' is not in ratings.csv" in msg
    assert "['userId', 'movieId', 'stars', 'when']" in msg


@pytest.mark.parametrize(
    ("changes", "snippet"),
    [
        ({"ratings__user": None}, "ratings.user: no column mapped: expected the name of one of the columns of"),
        (
            {"users": {**MAPPING["users"], "fields": {"gender": "categorical", "zip": "categorical"}}},
            "users.fields.zip: column 'zip' is not in users.csv",
        ),
        ({"items": {**MAPPING["items"], "id": "itemId"}}, "items.id: column 'itemId' is not in items.parquet"),
    ],
)
def test_missing_columns_list_what_is_available(tmp_path: Path, changes: dict, snippet: str) -> None:
    raw = write_custom(tmp_path / "raw", _mapping(**changes))
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    assert Path(ei.value.file) == raw / "hybridrec.yaml" and ei.value.line is not None
    assert snippet in str(ei.value) and "expected" in str(ei.value)


@pytest.mark.parametrize(
    ("changes", "snippet"),
    [
        ({"scale": None}, "scale: explicit ratings need their scale"),
        ({"scale": [5, 1]}, "scale: not a rating scale"),
        ({"colour": "blue"}, "colour: unknown key"),
        ({"ratings__sep": ";"}, "ratings.sep: unknown key"),
        ({"ratings__file": "../elsewhere/ratings.csv"}, "ratings.file: must be a path relative to the mapping"),
        ({"ratings__file": "ratings.xlsx"}, "ratings.format: unknown data format"),
        ({"ratings__header": "yes"}, "ratings.header: not a boolean"),
        ({"users": {**MAPPING["users"], "fields": {"age": "number"}}}, "users.fields.age: unknown kind of side field"),
        ({"users": {**MAPPING["users"], "fields": {"user_id": "text"}}}, "users.fields.user_id: reserved column name"),
        ({"implicit_threshold": 4, "ratings__rating": None}, "implicit_threshold: needs a rating column"),
        ({"duplicates": "drop"}, "duplicates: unknown policy"),
        ({"expected": {"users": [10, 1]}}, "expected.users: not inclusive bounds"),
        ({"ratings__file": "nothing.csv"}, "ratings.file: data file"),
    ],
)
def test_bad_mapping_names_the_key_and_line(tmp_path: Path, changes: dict, snippet: str) -> None:
    raw = write_custom(tmp_path / "raw", _mapping(**changes))
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    assert Path(ei.value.file) == raw / "hybridrec.yaml" and snippet in str(ei.value)
    if "scale" in changes and changes["scale"] is None:
        assert ei.value.line is None  # a key that is absent has no line
    else:
        assert ei.value.line is not None


def test_invalid_yaml_and_json_name_the_line(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "hybridrec.yaml").write_text("ratings:\n  file: r.csv\n  user: [unclosed\n")
    with pytest.raises(DataError, match="not valid YAML") as ei:
        get_dataset("custom").parse(raw)
    assert ei.value.line is not None and ei.value.line >= 3
    (raw / "hybridrec.yaml").unlink()
    (raw / "hybridrec.json").write_text('{"ratings":\n {"file": "r.csv",}}')
    with pytest.raises(DataError, match="not valid JSON") as ei:
        get_dataset("custom").parse(raw)
    assert ei.value.line == 2
    (raw / "hybridrec.yaml").write_text("ratings: {}\n")
    with pytest.raises(DataError, match="two mapping files"):
        get_dataset("custom").parse(raw)


# ---------------------------------------------------------------------------------------------- bad data
BAD_ROWS = [
    (3, "u1,m2,three,1600000100", "non-numeric or missing stars"),
    (
        4,
        "u2,m1,6,1600000200",
        "rating out of the scale given in hybridrec.yaml: expected a rating in [1, 5], found 6.0",
    ),
    (6, "u2,m3,0.5,1600000300", "rating out of the scale"),
    (7, "u3,m2,2", "wrong number of fields"),
    (2, "u1,m1,5,1600000000,extra", "wrong number of fields"),
    (3, ",m2,3,1600000100", "missing user id (column 'userId')"),
    (3, "u1,m2,,1600000100", "missing rating (column 'stars')"),
    (6, "u2,m3,1,someday", "unreadable timestamp (column 'when')"),
    (6, "u1,m1,1,1600000300", "duplicate (user, item) pair (u1, m1) on lines [2, 6]"),
    (7, 'u3,"m2,2,1600000400', "unbalanced double quote"),
]


@pytest.mark.parametrize(("line", "row", "snippet"), BAD_ROWS, ids=[b[2][:28] for b in BAD_ROWS])
def test_bad_rating_row_names_file_and_line(tmp_path: Path, line: int, row: str, snippet: str) -> None:
    raw = write_custom(tmp_path / "raw")
    path = raw / "ratings.csv"
    rows = path.read_bytes().decode().split("\r\n")
    rows[line - 1] = row
    path.write_bytes("\r\n".join(rows).encode())
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, line)
    assert snippet in str(ei.value)


@pytest.mark.parametrize(
    ("line", "row", "snippet"),
    [
        (3, "u2,M,old,engineer,,", "non-numeric or missing age"),
        (4, "u1,M,50,retired,again,golf", "user id 'u1' listed more than once, on lines [2, 4]"),
        (3, "u2,M,30,engineer", "wrong number of fields"),
    ],
)
def test_bad_side_row_names_file_and_line(tmp_path: Path, line: int, row: str, snippet: str) -> None:
    raw = write_custom(tmp_path / "raw")
    path = raw / "users.csv"
    rows = path.read_text().splitlines()
    rows[line - 1] = row
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, line)
    assert snippet in str(ei.value)


def test_parquet_null_rating_names_the_row(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    pl.DataFrame({"u": ["a", "b", "c"], "i": ["x", "y", "z"], "r": [1.0, None, 3.0]}).write_parquet(raw / "r.parquet")
    (raw / "hybridrec.yaml").write_text("ratings: {file: r.parquet, user: u, item: i, rating: r}\nscale: [1, 5]\n")
    with pytest.raises(DataError, match="missing rating") as ei:
        get_dataset("custom").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (raw / "r.parquet", 2)


# ---------------------------------------------------------------------------------------------- acquisition
def test_acquire_copies_mapping_and_data_from_a_local_directory(tmp_path: Path) -> None:
    src = tmp_path / "mydata"
    write_custom(src / "sub")
    shutil.move(src / "sub" / "hybridrec.yaml", src / "hybridrec.yaml")
    m = _mapping(
        ratings__file="sub/ratings.csv",
        users={**MAPPING["users"], "file": "sub/users.csv"},
        items={**MAPPING["items"], "file": "sub/items.parquet"},
    )
    (src / "hybridrec.yaml").write_text(yaml.safe_dump(m, sort_keys=False))
    (src / "unrelated.bin").write_bytes(b"\0" * 10)
    dest = tmp_path / "data" / "custom"
    ds = get_dataset("custom")
    assert not ds.is_acquired(dest)
    res = ds.acquire(dest, src, 5)
    assert res.source == f"local directory {src}" and res.layout == "custom-csv"
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert got == ["hybridrec.yaml", "sub/items.parquet", "sub/ratings.csv", "sub/users.csv"]
    assert ds.is_acquired(dest) and len(ds.user_side) == 5
    fresh = get_dataset("custom")
    assert fresh.user_side == () and len(fresh.configure(dest).user_side) == 5  # what later stages need
    assert fresh.parse(dest).ratings.height == 5


def test_acquire_from_a_named_mapping_file(tmp_path: Path) -> None:
    src = write_custom(tmp_path / "src", name="my-mapping.json")
    dest = tmp_path / "data" / "custom"
    get_dataset("custom").acquire(dest, src / "my-mapping.json", 5)
    assert (dest / "hybridrec.json").is_file() and load_mapping(dest / "hybridrec.json").user == "userId"


def test_no_source_says_what_to_do(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "custom"
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("custom").acquire(dest, None, 5)
    msg = str(ei.value)
    assert "custom data has no official source" in msg and "hybridrec.yaml" in msg
    assert "acquire.source_dir" in msg and str(dest) in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AcquisitionError, match=f"{empty}: no hybridrec.yaml"):
        get_dataset("custom").acquire(dest, empty, 5)
    src = write_custom(tmp_path / "src")
    (src / "users.csv").unlink()
    with pytest.raises(DataError, match=r"users\.file: data file .* not found") as ei2:
        get_dataset("custom").acquire(dest, src, 5)
    assert Path(ei2.value.file) == src / "hybridrec.yaml"
    assert not dest.exists()
    with pytest.raises(DataError, match="no mapping file"):
        get_dataset("custom").parse(tmp_path / "empty")


def test_numeric_and_bag_fields(tmp_path: Path) -> None:
    """A numeric column (standardized, missing → mean) and a bag column (repeats count) beside the others."""
    from tasks.features import bag_of_words

    raw = write_custom(tmp_path / "raw", _mapping(users__fields={"age": "numeric", "hobbies": "bag"}))
    (raw / "users.csv").write_text(
        "userId,gender,age,job,bio,hobbies\nu1,F,30,w,,chess|go|chess\nu2,M,,e,,\nu3,M,50,r,,go\n"
    )
    ds = get_dataset("custom")
    t = ds.configure(raw).parse(raw)
    assert [(f.column, f.kind) for f in ds.user_side] == [("age", "numeric"), ("hobbies", "bag")]
    assert _row(t, "user", "u1")["hobbies"] == ["chess", "go", "chess"]  # a bag keeps repeats
    assert _row(t, "user", "u2")["age"] == 40.0 and t.notes["users_age_imputed_with_mean"] == 1
    bow, vocab = bag_of_words(t.users, "user_idx", t.n_users, ds.user_side)
    dense = bow.toarray()
    u1 = int(t.user_ids.filter(pl.col("raw_id") == "u1")["user_idx"][0])
    assert vocab == ["age=value", "hobbies=chess", "hobbies=go"]
    assert dense[u1, 1] == 2.0 and dense[:, 0].mean() == pytest.approx(0.0, abs=1e-6)
    assert sorted(dense[:, 0].tolist()) == pytest.approx([-1.2247, 0.0, 1.2247], abs=1e-4)  # 30, 40 (mean), 50
    (raw / "users.csv").write_text("userId,gender,age,job,bio,hobbies\nu1,F,thirty,w,,\n")
    with pytest.raises(DataError, match=r"users\.csv, line 2"):
        get_dataset("custom").configure(raw).parse(raw)


@pytest.mark.parametrize("line", [",", ",,,", " , ,"])
def test_a_line_of_bare_separators_is_a_row_not_a_blank_line(tmp_path: Path, line: str) -> None:
    """Blank lines are skipped; a line with only separators is a row with empty fields: an error naming it."""
    raw = write_custom(tmp_path / "raw")
    text = (raw / "ratings.csv").read_bytes().replace(b"\r\n\r\n", f"\r\n{line}\r\n".encode())
    (raw / "ratings.csv").write_bytes(text)
    with pytest.raises(DataError, match=r"ratings\.csv.*line 5"):
        get_dataset("custom", raw_dir=raw).parse(raw)
