"""Property-based fuzzing of every raw parser: valid small files (the writers of tests/datasets) mutated by
hypothesis either parse — and then every rating line is accounted for (parsed, or dropped and counted in the
notes) — or raise ``DataError`` naming the file (and line); never another exception, never a hang.

Examples per parser: the ``ci`` profile (tests/fuzz/conftest.py) by default, ``make fuzz`` for many more."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from hypothesis import example, given, reject
from hypothesis import strategies as st

from tasks.datasets import get_dataset
from tasks.datasets.amazon import CATEGORY
from tasks.datasets.base import CanonicalTables
from tests.conftest import write_ml100k
from tests.datasets.test_datasets_amazon import write_2014, write_2018
from tests.datasets.test_datasets_custom import MAPPING, write_custom
from tests.datasets.test_datasets_deepcf import write_deepcf
from tests.datasets.test_datasets_douban import small_matrices, write_mat
from tests.datasets.test_datasets_hetrec import write_delicious, write_lastfm
from tests.datasets.test_datasets_movielens import write_ml1m, write_ml10m, write_mlcsv
from tests.fuzz._mutate import Mutation, RawFile, apply, mutations, run_parser, text_lines

Oracle = Callable[[Path, CanonicalTables], None]


def _fuzz(name: str, write: Callable[[Path], Path], files: list[RawFile], muts: list[Mutation], oracle: Oracle) -> None:
    """Write valid files, mutate them, parse: DataError or tables whose row counts add up."""
    with tempfile.TemporaryDirectory(prefix="hybridrec-fuzz-") as tmp:
        raw = write(Path(tmp) / "raw")
        apply(raw, files, muts)
        tables = run_parser(lambda: get_dataset(name, raw_dir=raw).parse(raw), raw)
        if tables is not None:
            assert tables.ratings.height > 0
            assert tables.ratings["user_idx"].max() < tables.n_users  # type: ignore[operator]
            assert tables.ratings["item_idx"].max() < tables.n_items  # type: ignore[operator]
            oracle(raw, tables)


def _lines_are_ratings(file: str, header: int = 0) -> Oracle:
    """Every non-blank line of ``file`` (after ``header`` lines) is one rating: nothing dropped."""

    def check(raw: Path, t: CanonicalTables) -> None:
        assert t.ratings.height == len(text_lines(raw / file)) - header

    return check


# ---------------------------------------------------------------------------------------------- MovieLens
ML100K = [RawFile("u.data", "\t"), RawFile("u.user", "|"), RawFile("u.item", "|")]
ML1M = [RawFile("ratings.dat", "::"), RawFile("users.dat", "::"), RawFile("movies.dat", "::")]
ML10M = [RawFile("ratings.dat", "::"), RawFile("movies.dat", "::"), RawFile("tags.dat", "::")]
MLCSV = [RawFile("ratings.csv", ","), RawFile("movies.csv", ","), RawFile("tags.csv", ",")]


@given(mutations())
def test_ml100k(muts: list[Mutation]) -> None:
    _fuzz("ml-100k", lambda d: write_ml100k(d, 6, 8, 3), ML100K, muts, _lines_are_ratings("u.data"))


@given(mutations())
def test_ml1m(muts: list[Mutation]) -> None:
    _fuzz("ml-1m", lambda d: write_ml1m(d, 6, 8, 3), ML1M, muts, _lines_are_ratings("ratings.dat"))


@given(mutations())
def test_ml10m(muts: list[Mutation]) -> None:
    _fuzz("ml-10m", lambda d: write_ml10m(d, 6, 8, 3), ML10M, muts, _lines_are_ratings("ratings.dat"))


@given(mutations(), st.sampled_from(["ml-20m", "ml-25m", "ml-latest-small"]))
def test_movielens_csv(muts: list[Mutation], name: str) -> None:
    def oracle(raw: Path, t: CanonicalTables) -> None:
        data = (raw / "ratings.csv").read_bytes().decode("utf-8", errors="replace").lstrip("\ufeff")
        if '"' not in data:  # quoted fields may span lines: then only the property "parses or DataError" holds
            _lines_are_ratings("ratings.csv", header=1)(raw, t)

    _fuzz(name, lambda d: write_mlcsv(d, 6, 8, 3), MLCSV, muts, oracle)


# ---------------------------------------------------------------------------------------------- Amazon
def _amazon_oracle(ratings_file: str, gz: bool) -> Oracle:
    def check(raw: Path, t: CanonicalTables) -> None:
        n = t.notes
        assert n["ratings_read"] == len(text_lines(raw / ratings_file, gz=gz))
        dropped = int(n["duplicate_rows_dropped"]) + int(n["duplicate_pairs_dropped"])  # type: ignore[call-overload]
        assert t.ratings.height == int(n["ratings_read"]) - dropped  # type: ignore[call-overload]

    return check


def _amazon_case(version: int, reviews: bool) -> tuple[Callable[[Path], Path], list[RawFile], Oracle]:
    meta = RawFile(f"meta_{CATEGORY}.json.gz", ",", gz=True, style="json" if version == 2018 else "literal")
    if reviews:
        name = f"reviews_{CATEGORY}_5.json.gz" if version == 2014 else f"{CATEGORY}_5.json.gz"
        ratings = RawFile(name, ",", gz=True, style="json")
    else:
        ratings = RawFile(f"ratings_{CATEGORY}.csv" if version == 2014 else f"{CATEGORY}.csv", ",")
    writer = write_2014 if version == 2014 else write_2018
    return (lambda d: writer(d, reviews=reviews)), [ratings, meta], _amazon_oracle(ratings.name, ratings.gz)


@given(mutations(("json",)), st.sampled_from([(2014, False), (2014, True), (2018, False), (2018, True)]))
def test_amazon(muts: list[Mutation], case: tuple[int, bool]) -> None:
    write, files, oracle = _amazon_case(*case)
    _fuzz("amazon", write, files, muts, oracle)


# ---------------------------------------------------------------------------------------------- HetRec
LASTFM = [
    RawFile("user_artists.dat", "\t"),
    RawFile("user_friends.dat", "\t"),
    RawFile("artists.dat", "\t"),
    RawFile("tags.dat", "\t"),
    RawFile("user_taggedartists.dat", "\t"),
]
DELICIOUS = [
    RawFile("user_taggedbookmarks.dat", "\t"),
    RawFile("bookmarks.dat", "\t"),
    RawFile("bookmark_tags.dat", "\t"),
    RawFile("tags.dat", "\t"),
    RawFile("user_contacts.dat", "\t"),
]


@given(mutations())
def test_lastfm(muts: list[Mutation]) -> None:
    _fuzz("lastfm", write_lastfm, LASTFM, muts, _lines_are_ratings("user_artists.dat", header=1))


@given(mutations())
def test_delicious(muts: list[Mutation]) -> None:
    def oracle(raw: Path, t: CanonicalTables) -> None:
        rows = [line.split("\t") for line in text_lines(raw / "user_taggedbookmarks.dat")[1:]]
        pairs = {(int(r[0].strip()), int(r[1].strip())) for r in rows}
        assert t.ratings.height == len(pairs)  # one interaction per distinct (user, bookmark)

    _fuzz("delicious", write_delicious, DELICIOUS, muts, oracle)


# ---------------------------------------------------------------------------------------------- DeepCF
DEEPCF = [
    RawFile("AMusic.train.rating", "\t"),
    RawFile("AMusic.test.rating", "\t"),
    RawFile("AMusic.test.negative", "\t"),
]


@given(mutations())
def test_deepcf(muts: list[Mutation]) -> None:
    def oracle(raw: Path, t: CanonicalTables) -> None:
        lines = len(text_lines(raw / "AMusic.train.rating")) + len(text_lines(raw / "AMusic.test.rating"))
        assert t.ratings.height == lines - t.notes["quirks"]["train_rows_not_positive_dropped"]  # type: ignore[index]
        assert t.predefined is not None and t.predefined.height == t.ratings.height
        negatives = sum(len(x.split("\t")) - 1 for x in text_lines(raw / "AMusic.test.negative"))
        assert t.negatives is not None and t.negatives.height == negatives

    _fuzz("deepcf-amusic", write_deepcf, DEEPCF, muts, oracle)


# ---------------------------------------------------------------------------------------------- Douban (.mat)
MAT_VALUES = [np.nan, np.inf, -np.inf, 1e308, 1e30, -3.0, 2.5, 0.0, 1.0, 6.0, 2.0]


@st.composite
def mat_case(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], tuple[str, ...], list[tuple[str, int]]]:
    """Matrices with hostile entries / shapes / types, which of them sparse, and byte-level damage."""
    mats = small_matrices()
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(mats)))
        op = draw(st.sampled_from(["entry", "shape", "drop", "dtype", "ndim"]))
        a = mats[key]
        if op == "entry" and a.ndim == 2 and a.size and a.dtype.kind == "f":
            a = a.astype(np.float64).copy()
            a[draw(st.integers(0, a.shape[0] - 1)), draw(st.integers(0, a.shape[1] - 1))] = draw(
                st.sampled_from(MAT_VALUES)
            )
        elif op == "shape" and a.ndim == 2:
            a = a[: max(a.shape[0] - 1, 0)] if draw(st.booleans()) else a[:, : max(a.shape[1] - 1, 0)]
        elif op == "drop":
            mats.pop(key)
            continue
        elif op == "dtype":
            a = a.astype("S3")
        elif op == "ndim":
            a = a.ravel()
        mats[key] = a
    dense2d = [k for k, a in mats.items() if a.ndim == 2 and a.dtype.kind == "f"]
    sparse = tuple(draw(st.lists(st.sampled_from(dense2d), unique=True, max_size=2))) if dense2d else ()
    damage = draw(
        st.lists(st.tuples(st.sampled_from(["flip", "truncate", "empty"]), st.integers(0, 10**6)), max_size=1)
    )
    return mats, sparse, damage


@given(mat_case())
def test_douban_gcmc(case: tuple[dict[str, np.ndarray], tuple[str, ...], list[tuple[str, int]]]) -> None:
    mats, sparse, damage = case

    def write(d: Path) -> Path:
        try:
            path = write_mat(d / "training_test_dataset.mat", mats, sparse=sparse)
        except (ValueError, TypeError):  # a generated layout the writer itself cannot store (not a parser case)
            reject()
        data = bytearray(path.read_bytes())
        for op, pos in damage:
            if op == "empty":
                data = bytearray()
            elif op == "truncate":
                data = data[: pos % (len(data) + 1)]
            elif data:
                data[pos % len(data)] ^= 0xFF
        path.write_bytes(bytes(data))
        return d

    def oracle(raw: Path, t: CanonicalTables) -> None:
        assert t.predefined is not None and t.predefined.height == t.ratings.height
        if not damage:
            m, tr, te = (np.asarray(mats[k], dtype=np.float64) for k in ("M", "Otraining", "Otest"))
            assert t.ratings.height == int(((m != 0) & ((tr != 0) | (te != 0))).sum())

    _fuzz("douban-gcmc", write, [], [], oracle)


# ---------------------------------------------------------------------------------------------- custom
def _csv_rows(path: Path, delimiter: str) -> int | None:
    """Data rows of a CSV/TSV with header (None when quotes make the count the parser's business)."""
    if b'"' in path.read_bytes():
        return None
    return len(text_lines(path)) - 1


def _custom_oracle(ratings_file: str, delimiter: str) -> Oracle:
    def check(raw: Path, t: CanonicalTables) -> None:
        n = t.notes
        expected = _csv_rows(raw / ratings_file, delimiter)
        if expected is not None:
            assert n["ratings_read"] == expected
        dropped = sum(int(n.get(k, 0)) for k in ("duplicate_rows_dropped", "duplicate_pairs_dropped"))  # type: ignore[call-overload]
        dropped += int(n.get("below_implicit_threshold_dropped", 0))  # type: ignore[call-overload]
        assert t.ratings.height == int(n["ratings_read"]) - dropped  # type: ignore[call-overload]

    return check


CUSTOM_FILES = [RawFile("ratings.csv", ","), RawFile("users.csv", ",")]


@given(mutations(), st.booleans())
@example([Mutation("insert_field", 0, 4946, 0, "")], False)  # a blank line turned into "," (found by CI)
def test_custom_csv(muts: list[Mutation], numeric_side: bool) -> None:
    mapping = json.loads(json.dumps(MAPPING))
    if numeric_side:  # the age column read as a standardized number, and an implicit threshold
        mapping["users"]["fields"]["age"] = "numeric"
        mapping["implicit_threshold"] = 3
        mapping["scale"] = None
    _fuzz("custom", lambda d: write_custom(d, mapping), CUSTOM_FILES, muts, _custom_oracle("ratings.csv", ","))


@given(mutations())
def test_custom_tsv(muts: list[Mutation]) -> None:
    def write(d: Path) -> Path:
        raw = write_custom(d)
        text = (raw / "ratings.csv").read_text().replace(",", "\t")
        (raw / "ratings.tsv").write_text(text)
        m = json.loads(json.dumps(MAPPING))
        m["ratings"]["file"] = "ratings.tsv"
        (raw / "hybridrec.yaml").write_text(yaml.safe_dump(m, sort_keys=False))
        return raw

    files = [RawFile("ratings.tsv", "\t"), RawFile("users.csv", ",")]
    _fuzz("custom", write, files, muts, _custom_oracle("ratings.tsv", "\t"))


PARQUET_COLUMNS = {
    "u": st.sampled_from(
        [
            pl.Series(["u1", "u2", "u3", "u1"]),
            pl.Series([1, 2, 3, 1]),
            pl.Series([1.0, 2.0, 3.0, 1.0]),
            pl.Series([1.0, float("nan"), 3.0, 1.0]),
            pl.Series([1e300, 2.0, 3.0, 1.0]),
            pl.Series([[1], [2], [3], [1]]),
            pl.Series([True, False, True, False]),
            pl.Series([b"a", b"b", b"c", b"a"]),
            pl.Series([None, "u2", "u3", "u1"]),
        ]
    ),
    "r": st.sampled_from(
        [
            pl.Series([5.0, 3.0, 4.0, 1.0]),
            pl.Series([5.0, float("nan"), 4.0, 1.0]),
            pl.Series([5.0, float("inf"), 4.0, 1.0]),
            pl.Series(["5", "x", "4", "1"]),
            pl.Series([[5], [3], [4], [1]]),
            pl.Series([5, 3, 4, 1], dtype=pl.Int8),
        ]
    ),
    "ts": st.sampled_from(
        [
            pl.Series([1_600_000_000, 1_600_000_100, 1_600_000_200, 1_600_000_300]),
            pl.Series([1.6e9, float("nan"), 1.6e9, 1.6e9]),
            pl.Series([1.6e9, 1e308, 1.6e9, 1.6e9]),
            pl.Series([1.6e9, float("inf"), 1.6e9, 1.6e9]),
            pl.Series([2**62, 1, 2, 3]),
            pl.Series(["2020-01-01", "nan", "2020-01-02", "2020-01-03"]),
            pl.Series(["1e400", "1", "2", "3"]),
            pl.Series([[1], [2], [3], [4]]),
        ]
    ),
    "price": st.sampled_from(
        [
            pl.Series([1.5, 2.5, None, 3.0]),
            pl.Series([1.5, float("nan"), 2.0, 3.0]),
            pl.Series([1e308, 2.0, 2.0, 3.0]),
            pl.Series(["1.5", "inf", "", "3"]),
            pl.Series([[1.0], [2.0], [3.0], [4.0]]),
        ]
    ),
    "title": st.sampled_from(
        [
            pl.Series(["<b>Heat</b>", '<span class="a-size-medium a-color-secondary"', "Tom &amp; Jerry", None]),
            pl.Series([1, 2, 3, 4]),
            pl.Series([{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}]),
            pl.Series([["x"], ["y"], [], None]),
        ]
    ),
    "genres": st.sampled_from(
        [
            pl.Series([["A", "<i>B</i>"], [], None, ["&amp;"]]),
            pl.Series(["A|B", "", None, "<br>"]),
            pl.Series([[{"a": 1}], [], None, []]),
            pl.Series([[[1]], [], None, []]),
        ]
    ),
}


@given(st.fixed_dictionaries(PARQUET_COLUMNS))
def test_custom_parquet(cols: dict[str, pl.Series]) -> None:
    mapping = {
        "ratings": {"file": "r.parquet", "user": "u", "item": "i", "rating": "r", "timestamp": "ts"},
        "scale": [1, 5],
        "duplicates": "keep_latest",
        "items": {
            "file": "items.parquet",
            "id": "i",
            "fields": {"title": "text", "genres": "multilabel", "price": "numeric"},
        },
    }

    def write(d: Path) -> Path:
        d.mkdir(parents=True)
        ids = pl.Series(["m1", "m2", "m3", "m4"])
        pl.DataFrame({"u": cols["u"], "i": ids, "r": cols["r"], "ts": cols["ts"]}).write_parquet(d / "r.parquet")
        side = {"i": ids, "title": cols["title"], "genres": cols["genres"], "price": cols["price"]}
        pl.DataFrame(side).write_parquet(d / "items.parquet")
        (d / "hybridrec.yaml").write_text(yaml.safe_dump(mapping, sort_keys=False))
        return d

    def oracle(raw: Path, t: CanonicalTables) -> None:
        assert t.notes["ratings_read"] == 4
        _custom_oracle("r.parquet", ",")  # row accounting as for CSV, without the file count
        dropped = int(t.notes["duplicate_rows_dropped"]) + int(t.notes["duplicate_pairs_dropped"])  # type: ignore[call-overload]
        assert t.ratings.height == 4 - dropped
        titles = t.items["title"].to_list()
        assert not any("<" in x and ">" in x for x in titles if isinstance(x, str))

    _fuzz("custom", write, [], [], oracle)


def test_markup_only_side_field_becomes_empty(tmp_path: Path) -> None:
    """Not drawn by hypothesis: the issue's own example, a title that is nothing but a cut-off tag."""
    raw = write_custom(tmp_path / "raw")
    users = (raw / "users.csv").read_text().replace("writer", '"<span class=""a-size-medium a-color-secondary"""')
    users = users.replace("Likes long walks, and tea", "<b>Likes</b> walks &amp; tea")
    (raw / "users.csv").write_text(users)
    t = get_dataset("custom", raw_dir=raw).parse(raw)
    u1 = t.users.join(t.user_ids, on="user_idx").filter(pl.col("raw_id") == "u1").row(0, named=True)
    assert u1["job"] == "" and u1["bio"] == "Likes walks & tea"
    assert t.notes["markup_only_emptied"] == {"users.job": 1}
    assert t.notes["markup_cleaned"] == {"users.job": 1, "users.bio": 1}
