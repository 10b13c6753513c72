"""Amazon (2014 and 2018 releases): parsers on small files in the official formats (gzip JSON lines, Python-literal
metadata, both ratings-CSV column orders, CRLF), the data quirks (duplicates, k-core), bad input naming file and
line, acquisition (local directory, fake official download, no network) and the per-instance configuration."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

import tasks.acquire as acquire_mod
import tasks.datasets.amazon as amazon_mod
from tasks.acquire import verify
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.amazon import (
    CATEGORY,
    CONFIG_FILE,
    GROCERY_COUNTS,
    NRP_GROCERY,
    Amazon,
    AmazonConfig,
    expected_for,
    gzip_chunks,
    read_reviews,
)
from tests.conftest import go_offline

C = CATEGORY
# (user, item, rating, ts); user A3 rates B1 twice (a later re-rating), and one line is repeated verbatim
RATINGS = [
    ("A1", "0657745316", 5, 1381449600),
    ("A1", "B0001", 4, 1381449700),
    ("A2", "B0001", 3, 1300000000),
    ("A2", "B0002", 1, 1300000100),
    ("A3", "0657745316", 2, 1200000000),
    ("A3", "0657745316", 4, 1250000000),
    ("A4", "B0003", 5, 1400000000),
    ("A4", "B0003", 5, 1400000000),
]
META_2014 = [
    "{'asin': '0657745316', 'title': 'Lay&#39;s Chips &amp; Dip', 'salesRank': {'Grocery & Gourmet Food': 12},"
    " 'categories': [['Grocery & Gourmet Food', 'Snack Foods', 'Chips'], ['Grocery & Gourmet Food', 'Dips']],"
    " 'related': {'also_bought': ['B0001', 'B0002']}, 'price': 3.5}",
    "{'asin': 'B0001', 'title': \"Nature's Path Flakes\", 'categories': [['Grocery & Gourmet Food', 'Cereal']]}",
    "{'asin': 'B0002', 'categories': [['Grocery & Gourmet Food']], 'imUrl': 'http://x/y.jpg'}",  # no title
    "{'asin': 'B0999', 'title': 'Never rated', 'categories': [['Grocery & Gourmet Food', 'Tea']]}",
]
META_2018 = [
    {
        "asin": "0657745316",
        "title": "Lay's Chips &amp; Dip",
        "category": ["Grocery & Gourmet Food", "Snack Foods"],
        "brand": "Lay's",
        "description": ["Crunchy."],
    },
    {"asin": "B0001", "title": "Flakes", "category": ["Grocery & Gourmet Food", "Cereal", "Cereal"], "brand": ""},
    {"asin": "B0001", "title": "Flakes (again)", "category": []},  # 2018 metadata repeats some asins
    {"asin": "B0003", "category": ["Grocery & Gourmet Food", "Tea"], "description": []},
]


def _gz(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write("".join(line + newline for line in lines).encode("utf-8"))
    return path


def _review(u: str, i: str, r: float, ts: int, **extra: object) -> str:
    return json.dumps(
        {
            "reviewerID": u,
            "asin": i,
            "reviewerName": "x",
            "overall": r,
            "reviewText": "Nice, tasty.",
            "summary": "ok",
            "unixReviewTime": ts,
            "reviewTime": "10 11, 2013",
            **extra,
        }
    )


def write_2014(dest: Path, reviews: bool = False, newline: str = "\n") -> Path:
    """ratings_<C>.csv (user,item,rating,ts) or reviews_<C>_5.json.gz, plus meta_<C>.json.gz (Python literals)."""
    dest.mkdir(parents=True, exist_ok=True)
    if reviews:
        _gz(dest / f"reviews_{C}_5.json.gz", [_review(u, i, float(r), ts) for u, i, r, ts in RATINGS], newline)
        (dest / CONFIG_FILE).write_text(json.dumps({"ratings_from": "reviews"}))
    else:
        rows = [f"{u},{i},{r}.0,{ts}" for u, i, r, ts in RATINGS]
        (dest / f"ratings_{C}.csv").write_bytes(newline.join(rows).encode() + newline.encode())
    _gz(dest / f"meta_{C}.json.gz", META_2014, newline)
    return dest


def write_2018(dest: Path, reviews: bool = False) -> Path:
    """<C>.csv (item,user,rating,ts — item first) or <C>_5.json.gz, plus JSON-lines metadata."""
    dest.mkdir(parents=True, exist_ok=True)
    if reviews:
        lines = [_review(u, i, float(r), ts, verified=True, vote="2", style={"Size:": " 1"}) for u, i, r, ts in RATINGS]
        _gz(dest / f"{C}_5.json.gz", lines)
    else:
        (dest / f"{C}.csv").write_text("".join(f"{i},{u},{r}.0,{ts}\n" for u, i, r, ts in RATINGS))
    _gz(dest / f"meta_{C}.json.gz", [json.dumps(m) for m in META_2018])
    cfg = {"version": 2018, "ratings_from": "reviews" if reviews else "csv"}
    (dest / CONFIG_FILE).write_text(json.dumps(cfg))
    return dest


def _item(t, raw_id: str) -> dict:  # type: ignore[no-untyped-def]
    return t.items.join(t.item_ids, on="item_idx").filter(pl.col("raw_id") == raw_id).row(0, named=True)


def _triples(t) -> set[tuple[str, str, float, int]]:  # type: ignore[no-untyped-def]
    r = t.ratings.join(t.user_ids, on="user_idx").join(t.item_ids, on="item_idx", suffix="_i")
    return {(u, i, float(x), ts) for u, i, x, ts in r.select("raw_id", "raw_id_i", "rating", "timestamp").iter_rows()}


EXPECTED_TRIPLES = {
    ("A1", "0657745316", 5.0, 1381449600),
    ("A1", "B0001", 4.0, 1381449700),
    ("A2", "B0001", 3.0, 1300000000),
    ("A2", "B0002", 1.0, 1300000100),
    ("A3", "0657745316", 4.0, 1250000000),  # the later of the two ratings
    ("A4", "B0003", 5.0, 1400000000),  # the repeated line once
}


# ---------------------------------------------------------------------------------------------- spec
def test_registered_with_defaults_and_wide_bounds() -> None:
    assert "amazon" in dataset_names()
    ds = get_dataset("amazon")
    assert isinstance(ds, Amazon) and Amazon.CATEGORY == "Grocery_and_Gourmet_Food"
    assert ds.config == AmazonConfig() and ds.rating_scale == (1.0, 5.0) and ds.user_side == ()
    assert {(f.column, f.kind) for f in ds.item_side} == {("title", "text"), ("categories", "multilabel")}
    e = ds.expected
    for users, items, ratings in (GROCERY_COUNTS[(2014, "csv")], NRP_GROCERY):
        assert e.users[0] <= users <= e.users[1] and e.items[0] <= items <= e.items[1]
        assert e.ratings[0] <= ratings <= e.ratings[1]
    five = expected_for(AmazonConfig(version=2018, ratings_from="reviews"))
    assert five.ratings[0] <= 1_143_860 <= five.ratings[1] and not five.ratings[0] <= 5_074_160 <= five.ratings[1]
    assert expected_for(AmazonConfig(k_core=5)).users[0] == 1
    assert expected_for(AmazonConfig(category="Toys_and_Games")).ratings == (1, 10**10)


def test_config_files_urls_and_errors(tmp_path: Path) -> None:
    c14, c18 = AmazonConfig(), AmazonConfig(version=2018)
    assert c14.files == (f"ratings_{C}.csv", f"meta_{C}.json.gz")
    assert AmazonConfig(ratings_from="reviews").ratings_file == f"reviews_{C}_5.json.gz"
    assert c14.url(c14.meta_file) == f"http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_{C}.json.gz"
    base = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/"
    assert c18.url(c18.ratings_file) == f"{base}categoryFilesSmall/{C}.csv"
    assert c18.url(c18.meta_file) == f"{base}metaFiles2/meta_{C}.json.gz"
    assert c18.url(f"{C}_5.json.gz") == f"{base}categoryFilesSmall/{C}_5.json.gz"
    for raw, snippet in [
        ({"categroy": "Toys"}, "unknown amazon config keys ['categroy']"),
        ({"version": 2016}, "'version': expected 2014 or 2018"),
        ({"k_core": -1}, "'k_core': expected an integer >= 0"),
        ({"category": "../etc"}, "'category'"),
        ({"ratings_from": "json"}, "'ratings_from'"),
    ]:
        path = tmp_path / CONFIG_FILE
        path.write_text(json.dumps(raw))
        with pytest.raises(DataError, match=snippet.replace("[", r"\[").replace("]", r"\]")) as ei:
            get_dataset("amazon").parse(tmp_path)
        assert Path(ei.value.file) == path
    path.write_text('{"version": 2018,\n "k_core": }')
    with pytest.raises(DataError) as ei:
        get_dataset("amazon").parse(tmp_path)
    assert ei.value.line == 2 and "not valid JSON" in str(ei.value)


# ---------------------------------------------------------------------------------------------- parsing
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_2014_ratings_csv_and_python_literal_metadata(tmp_path: Path, newline: str) -> None:
    t = get_dataset("amazon").parse(write_2014(tmp_path / "raw", newline=newline))
    assert _triples(t) == EXPECTED_TRIPLES
    assert (t.n_users, t.n_items) == (4, 4)
    assert t.ratings.schema == pl.Schema(
        {"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64}
    )
    assert "0657745316" in t.item_ids["raw_id"].to_list()  # leading zero kept: ids are strings
    chips = _item(t, "0657745316")
    assert chips["title"] == "Lay's Chips & Dip"  # HTML entities unescaped
    assert chips["categories"] == ["Grocery & Gourmet Food", "Snack Foods", "Chips", "Dips"]  # flattened, deduped
    assert _item(t, "B0001")["title"] == "Nature's Path Flakes"
    assert (_item(t, "B0002")["title"], _item(t, "B0002")["categories"]) == ("", ["Grocery & Gourmet Food"])
    assert _item(t, "B0003")["title"] == "" and _item(t, "B0003")["categories"] == []  # no metadata line
    assert t.items.height == t.n_items and t.items.null_count().row(0) == (0, 0, 0)  # every rated item present
    n = t.notes
    assert (n["ratings_read"], n["duplicate_rows_dropped"], n["duplicate_pairs_dropped"]) == (8, 1, 1)
    assert (n["items_without_metadata"], n["metadata_items_unrated"], n["metadata_lines"]) == (1, 1, 4)
    assert n["raw_layout"] == "amazon-2014-csv" and n["config"] == AmazonConfig().to_dict()
    assert n["k_core"]["k"] == 0 and n["k_core"]["before"] == n["k_core"]["after"] == {
        "users": 4,
        "items": 4,
        "ratings": 6,
    }


def test_2014_reviews_json_lines_with_crlf(tmp_path: Path) -> None:
    t = get_dataset("amazon").parse(write_2014(tmp_path / "raw", reviews=True, newline="\r\n"))
    assert _triples(t) == EXPECTED_TRIPLES and t.notes["raw_layout"] == "amazon-2014-reviews"


def test_2018_csv_has_item_first_and_json_metadata(tmp_path: Path) -> None:
    raw = write_2018(tmp_path / "raw")
    ds = get_dataset("amazon")
    t = ds.parse(raw)
    assert _triples(t) == EXPECTED_TRIPLES  # users and items not swapped
    assert ds.config.version == 2018 and ds.expected == expected_for(AmazonConfig(version=2018))
    assert _item(t, "0657745316")["categories"] == ["Grocery & Gourmet Food", "Snack Foods"]
    assert _item(t, "B0001")["title"] == "Flakes" and _item(t, "B0001")["categories"] == [
        "Grocery & Gourmet Food",
        "Cereal",
    ]  # first of the repeated asin; the list deduped
    assert _item(t, "B0003")["title"] == "" and _item(t, "B0002")["categories"] == []
    assert t.notes["metadata_duplicate_asins"] == 1 and t.notes["items_without_metadata"] == 1


def test_2018_reviews_5core(tmp_path: Path) -> None:
    t = get_dataset("amazon").parse(write_2018(tmp_path / "raw", reviews=True))
    assert _triples(t) == EXPECTED_TRIPLES and t.notes["raw_layout"] == "amazon-2018-reviews"


def test_k_core_is_iterative(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    # u1..u3 × i1..i3 full (a 2-core); u4 rates i1 and i4; u5 rates i4 only: dropping u5 leaves i4 with one
    # rating, dropping i4 leaves u4 with one: the cascade ends at the 3 × 3 block
    pairs = [(u, i) for u in ("u1", "u2", "u3") for i in ("i1", "i2", "i3")] + [
        ("u4", "i1"),
        ("u4", "i4"),
        ("u5", "i4"),
    ]
    raw.mkdir()
    (raw / f"ratings_{C}.csv").write_text("".join(f"{u},{i},3.0,{k}\n" for k, (u, i) in enumerate(pairs)))
    _gz(raw / f"meta_{C}.json.gz", ["{'asin': 'i1', 'title': 'One'}"])
    (raw / CONFIG_FILE).write_text(json.dumps({"k_core": 2}))
    ds = get_dataset("amazon")
    t = ds.parse(raw)
    assert (t.n_users, t.n_items, t.ratings.height) == (3, 3, 9)
    kc = t.notes["k_core"]
    assert kc["before"] == {"users": 5, "items": 4, "ratings": 12} and kc["after"] == {
        "users": 3,
        "items": 3,
        "ratings": 9,
    }
    assert kc["rounds"] >= 3 and ds.expected.users[0] == 1


def test_gzip_chunks_number_lines_across_blocks(tmp_path: Path) -> None:
    lines = [_review(f"U{k}", f"I{k % 7}", 1 + k % 5, 1000 + k) for k in range(200)]
    path = _gz(tmp_path / "r.json.gz", lines)
    starts = [first for first, _ in gzip_chunks(path, chunk_bytes=997)]
    assert starts[0] == 1 and len(starts) > 10
    # every block starts where the previous ended, whatever the block size
    total = sum(chunk.count(b"\n") for _, chunk in gzip_chunks(path, chunk_bytes=997))
    assert total == 200
    df = read_reviews(path)
    assert df["line"].to_list() == list(range(1, 201)) and df["user_id"][137] == "U137"


# ---------------------------------------------------------------------------------------------- bad input
def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _big_gz(path: Path, n: int = 3000) -> None:
    """Enough varied lines that half of the compressed bytes end inside the stream, not in its trailer."""
    _gz(path, [_review(f"U{k}", f"I{k * 7919 % 1009}", 1 + k % 5, 1_000_000 + k * 13) for k in range(n)])


@pytest.mark.parametrize("which", ["reviews", "meta"])
def test_truncated_gzip_names_file_and_line(tmp_path: Path, which: str) -> None:
    raw = write_2014(tmp_path / "raw", reviews=True)
    path = raw / (f"reviews_{C}_5.json.gz" if which == "reviews" else f"meta_{C}.json.gz")
    if which == "reviews":
        _big_gz(path)
    else:
        _gz(path, [f"{{'asin': 'I{k}', 'title': 'Product number {k * 7919 % 1009}'}}" for k in range(3000)])
    _truncate(path)
    with pytest.raises(DataError) as ei:
        get_dataset("amazon").parse(raw)
    assert Path(ei.value.file) == path and ei.value.line is not None and ei.value.line >= 1
    assert "truncated or corrupt gzip stream" in str(ei.value)


def test_not_a_gzip_file(tmp_path: Path) -> None:
    raw = write_2014(tmp_path / "raw")
    (raw / f"meta_{C}.json.gz").write_text("{'asin': 'x'}\n")  # plain text under a .gz name
    with pytest.raises(DataError, match="truncated or corrupt gzip") as ei:
        get_dataset("amazon").parse(raw)
    assert ei.value.line == 1


def test_metadata_line_that_is_not_a_literal_is_never_evaluated(tmp_path: Path) -> None:
    raw = write_2014(tmp_path / "raw")
    marker = tmp_path / "pwned"
    evil = f"{{'asin': 'B0001', 'title': open({str(marker)!r}, 'w').write('x')}}"
    _gz(raw / f"meta_{C}.json.gz", [*META_2014[:2], evil, META_2014[3]])
    with pytest.raises(DataError) as ei:
        get_dataset("amazon").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (raw / f"meta_{C}.json.gz", 3)
    assert "metadata line is not a Python dict literal" in str(ei.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("line", "snippet"),
    [
        ("['B0001', 'Flakes']", "metadata line is not a Python dict literal"),
        ("{'asin': 'B0001', 'title': 'Flakes'", "metadata line is not a Python dict literal (SyntaxError)"),
        ("{'title': 'no asin'}", "metadata line without an asin"),
    ],
)
def test_bad_2014_metadata_lines(tmp_path: Path, line: str, snippet: str) -> None:
    raw = write_2014(tmp_path / "raw")
    _gz(raw / f"meta_{C}.json.gz", [META_2014[0], line])
    with pytest.raises(DataError, match=snippet.replace("(", r"\(").replace(")", r"\)")) as ei:
        get_dataset("amazon").parse(raw)
    assert ei.value.line == 2


def test_bad_2018_metadata_line(tmp_path: Path) -> None:
    raw = write_2018(tmp_path / "raw")
    _gz(raw / f"meta_{C}.json.gz", [json.dumps(META_2018[0]), "{'asin': 'B0001'}"])  # 2014 style in a 2018 file
    with pytest.raises(DataError, match="metadata line is not a JSON object") as ei:
        get_dataset("amazon").parse(raw)
    assert ei.value.line == 2


BAD_CSV = [
    (3, "A2,B0001,five,1300000000", "non-numeric or missing rating"),
    (4, "A2,B0002,6.0,1300000100", "rating out of the dataset's scale: expected a rating in [1.0, 5.0], found 6.0"),
    (2, "A1,B0001,0.0,1381449700", "rating out of the dataset's scale"),
    (5, "A3,0657745316,4.5,1200000000", "rating is not a whole star"),
    (6, "A3,0657745316,4.0", "wrong number of fields"),
    (7, "A4,B0003,5.0,yesterday", "non-numeric or missing timestamp"),
    (1, ",B0003,5.0,1", "empty user or item id"),
]


@pytest.mark.parametrize(("line", "row", "snippet"), BAD_CSV, ids=[b[2][:30] for b in BAD_CSV])
def test_bad_ratings_csv_row_names_file_and_line(tmp_path: Path, line: int, row: str, snippet: str) -> None:
    raw = write_2014(tmp_path / "raw")
    path = raw / f"ratings_{C}.csv"
    rows = path.read_text().splitlines()
    rows[line - 1] = row
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError) as ei:
        get_dataset("amazon").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, line)
    assert snippet in str(ei.value)


@pytest.mark.parametrize(
    ("text", "snippet"),
    [
        (
            '{"reviewerID": "A9", "asin": "B0001", "overall": "five", "unixReviewTime": 1}',
            "non-numeric or missing overall",
        ),
        ('{"reviewerID": "A9", "asin": "B0001", "unixReviewTime": 1}', "missing key 'overall'"),
        (
            '{"reviewerID": "A9", "asin": "B0001", "overall": 7.0, "unixReviewTime": 1}',
            "rating out of the dataset's scale",
        ),
        ('{"reviewerID": "A9", "asin": "B0001", "overall": 5.0, "unixReviewTime": 1', "not a JSON object"),
    ],
)
def test_bad_review_line_names_file_and_line(tmp_path: Path, text: str, snippet: str) -> None:
    raw = write_2014(tmp_path / "raw", reviews=True)
    path = raw / f"reviews_{C}_5.json.gz"
    lines = [_review(u, i, float(r), ts) for u, i, r, ts in RATINGS]
    lines.insert(4, text)
    _gz(path, lines)
    with pytest.raises(DataError) as ei:
        get_dataset("amazon").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, 5)
    assert snippet in str(ei.value)


def test_missing_raw_file_names_the_choice(tmp_path: Path) -> None:
    raw = write_2018(tmp_path / "raw")
    (raw / f"{C}.csv").unlink()
    with pytest.raises(DataError, match=r"raw file missing for .*2018") as ei:
        get_dataset("amazon").parse(raw)
    assert Path(ei.value.file) == raw / f"{C}.csv"


# ---------------------------------------------------------------------------------------------- acquisition
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return go_offline(monkeypatch, tmp_path, amazon_mod)


def test_acquire_from_local_directory_with_a_choice(tmp_path: Path, offline: Path) -> None:
    src = write_2018(tmp_path / "src" / "amazon")  # files (and amazon.json) under amazon/ ...
    shutil.move(src / CONFIG_FILE, tmp_path / "src" / CONFIG_FILE)  # ... the choice next to it
    dest = tmp_path / "data" / "amazon"
    ds = get_dataset("amazon")
    assert not ds.is_acquired(dest)
    res = ds.acquire(dest, tmp_path / "src", 5)
    assert res.source == f"local directory {tmp_path / 'src'}" and res.layout == "amazon-2018-csv"
    assert sorted(p.name for p in dest.iterdir()) == sorted([CONFIG_FILE, f"{C}.csv", f"meta_{C}.json.gz"])
    assert json.loads((dest / CONFIG_FILE).read_text()) == AmazonConfig(version=2018).to_dict()
    assert ds.is_acquired(dest) and ds.config.version == 2018
    fresh = get_dataset("amazon")
    assert fresh.config.version == 2014 and fresh.configure(dest).config.version == 2018  # what later stages need
    assert _triples(fresh.parse(dest)) == EXPECTED_TRIPLES


def test_acquire_defaults_and_truncated_local_gzip(tmp_path: Path, offline: Path) -> None:
    src = write_2014(tmp_path / "src")
    dest = tmp_path / "data" / "amazon"
    res = get_dataset("amazon").acquire(dest, src, 5)
    assert res.layout == "amazon-2014-csv" and json.loads((dest / CONFIG_FILE).read_text())["version"] == 2014
    shutil.rmtree(dest)
    _big_gz(src / f"meta_{C}.json.gz")
    _truncate(src / f"meta_{C}.json.gz")
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("amazon").acquire(dest, src, 5)
    assert f"{src / f'meta_{C}.json.gz'}: truncated or corrupt gzip file" in str(ei.value)
    assert not dest.exists()


@pytest.mark.parametrize("version", [2014, 2018])
def test_no_network_no_local_copy_says_what_to_download_where(tmp_path: Path, offline: Path, version: int) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / CONFIG_FILE).write_text(json.dumps({"version": version}))
    dest = tmp_path / "data" / "amazon"
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("amazon").acquire(dest, src, 5)
    msg = str(ei.value)
    cfg = AmazonConfig(version=version)
    assert "could not obtain the raw files of 'amazon'" in msg and f"local directory {src}: {src}: lacks" in msg
    assert "no network" in msg
    for f in cfg.files:
        assert f"Download {cfg.url(cfg.files[0])} and {cfg.url(cfg.files[1])}" in msg and f in msg
    assert "acquire.source_dir" in msg and str(dest) in msg and CONFIG_FILE in msg
    assert not dest.exists()
    with pytest.raises(AcquisitionError, match="no network"):
        get_dataset("amazon").acquire(dest, None, 5)


def test_official_download_records_sha256_then_verifies(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = write_2018(tmp_path / "served", reviews=True)
    calls: list[str] = []

    def fake(url: str, dest: Path, checksum, timeout_s: float = 30.0) -> Path:  # type: ignore[no-untyped-def]
        calls.append(url)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(served / url.rsplit("/", 1)[1], dest)
        try:
            verify(dest, checksum)
        except AcquisitionError:
            dest.unlink()
            raise
        return dest

    monkeypatch.setattr(amazon_mod, "download", fake)
    src = tmp_path / "choice.json"
    src.write_text(json.dumps({"version": 2018, "ratings_from": "reviews"}))
    dest = tmp_path / "data" / "amazon"
    res = get_dataset("amazon").acquire(dest, src, 5)  # the choice file itself as the source
    cfg = AmazonConfig(version=2018, ratings_from="reviews")
    assert calls == [cfg.url(f) for f in cfg.files] and res.source == cfg.url("")
    sidecar = offline / "amazon-2018" / f"{C}_5.json.gz.sha256"
    assert sidecar.read_text().split()[0] == acquire_mod.Checksum("sha256", "").compute(
        offline / "amazon-2018" / f"{C}_5.json.gz"
    )
    assert _triples(get_dataset("amazon").parse(dest)) == EXPECTED_TRIPLES
    # upstream changed: refused, naming the sidecar
    _gz(served / f"{C}_5.json.gz", [_review("Z", "B0001", 3.0, 1)])
    (offline / "amazon-2018" / f"{C}_5.json.gz").unlink()
    with pytest.raises(AcquisitionError) as ei:
        get_dataset("amazon").acquire(tmp_path / "data2", src, 5)
    assert "sha256 mismatch" in str(ei.value) and str(sidecar) in str(ei.value)
