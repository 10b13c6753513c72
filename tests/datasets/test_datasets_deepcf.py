"""DeepCF leave-one-out files (lastfm, AMusic, AToy, ml-1m): parser on small files in the published format (with
and without a timestamp column, CRLF), every quirk counted, item sizing from the negatives, bad input naming file
and line, acquisition (local, pinned GitHub download, recorded sha256, no network), the predefined protocols on
the parsed tables, and the real files of ../shared/datasets/deepcf when present."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import polars as pl
import pytest

import tasks.datasets.deepcf as deepcf
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.base import MISSING_TIMESTAMP
from tasks.splits import check_split, get_protocol
from tests.conftest import fake_download, go_offline

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "deepcf"
NAMES = {"deepcf-lastfm": "lastfm", "deepcf-amusic": "AMusic", "deepcf-atoy": "AToy", "deepcf-ml-1m": "ml-1m"}

# user 3 has no training row; user 2 a single one; item 10 is only a test item; items 11-14 only negatives;
# line 1: the test positive 4 among its own negatives and 1 a training positive of user 0; line 2: 14 repeated;
# line 3: 5 a training positive of user 2
TRAIN = [(0, 1, 5), (0, 2, 1), (0, 3, 12), (1, 2, 3), (1, 4, 7), (2, 5, 2), (4, 1, 9), (4, 6, 1), (4, 7, 4), (5, 8, 2)]
TEST = [(0, 4, 3), (1, 5, 1), (2, 6, 8), (3, 1, 2), (4, 8, 6), (5, 10, 1)]
NEGATIVES = [
    (0, 4, [4, 1, 11, 12, 13]),
    (1, 5, [6, 7, 11, 14, 14]),
    (2, 6, [0, 1, 5, 3, 9]),
    (3, 1, [0, 2, 3, 4, 11]),
    (4, 8, [0, 2, 3, 10, 12]),
    (5, 10, [0, 1, 2, 3, 13]),
]


def _rating_lines(rows: list[tuple[int, int, int]], ts: bool) -> list[str]:
    return [f"{u}\t{i}\t{v}" + (f"\t{978_300_000 + 17 * u + i}" if ts else "") for u, i, v in rows]


def write_deepcf(
    dest: Path,
    prefix: str = "AMusic",
    *,
    train: list[tuple[int, int, int]] | None = None,
    test: list[tuple[int, int, int]] | None = None,
    negatives: list[tuple[int, int, list[int]]] | None = None,
    ts: bool = False,
    crlf: bool = False,
) -> Path:
    """<prefix>.train.rating / .test.rating / .test.negative exactly as in DeepCF's Data/ (final newline kept)."""
    dest.mkdir(parents=True, exist_ok=True)
    eol = "\r\n" if crlf else "\n"
    neg_lines = [f"({u},{i})\t" + "\t".join(map(str, n)) for u, i, n in (NEGATIVES if negatives is None else negatives)]
    for name, lines in (
        (f"{prefix}.train.rating", _rating_lines(TRAIN if train is None else train, ts)),
        (f"{prefix}.test.rating", _rating_lines(TEST if test is None else test, ts)),
        (f"{prefix}.test.negative", neg_lines),
    ):
        (dest / name).write_bytes((eol.join(lines) + eol).encode("ascii"))
    return dest


def _parse(raw: Path, name: str = "deepcf-amusic"):  # type: ignore[no-untyped-def]
    return get_dataset(name).parse(raw)


# ---------------------------------------------------------------------------------------------- spec
def test_registered_with_their_spec() -> None:
    assert set(NAMES) <= set(dataset_names())
    for name, prefix in NAMES.items():
        ds = get_dataset(name)
        assert isinstance(ds, deepcf.DeepCFDataset) and ds.prefix == prefix
        assert ds.implicit and ds.rating_scale == (1.0, 1.0) and ds.predefined_split == "leave-one-out"
        assert ds.user_side == () and ds.item_side == ()
        assert ds.has_timestamps == (name == "deepcf-ml-1m") and ds.ordering_note
        for f in ds.file_names():
            assert f.startswith(prefix) and f in deepcf.SHA256
    expected = {n: get_dataset(n).expected for n in NAMES}
    assert expected["deepcf-lastfm"].ratings == (69_149, 69_149) and expected["deepcf-lastfm"].items == (2665, 2665)
    assert expected["deepcf-amusic"].items == (12_929, 12_929) and expected["deepcf-amusic"].ratings[0] == 46_087
    assert expected["deepcf-atoy"].items == (33_953, 33_953) and expected["deepcf-atoy"].users == (3137, 3137)
    assert expected["deepcf-ml-1m"].ratings == (1_000_209, 1_000_209)


# ---------------------------------------------------------------------------------------------- small files
def test_parse_small_keeps_split_negatives_and_counts_quirks(tmp_path: Path) -> None:
    t = _parse(write_deepcf(tmp_path))
    assert t.n_users == 6 and t.n_items == 15  # items 0, 9, 11-14 only appear among the negatives
    assert t.ratings.height == len(TRAIN) + len(TEST)
    assert t.ratings.columns == ["user_idx", "item_idx", "rating", "timestamp", "weight"]
    assert t.ratings["rating"].unique().to_list() == [1.0]
    assert t.ratings["timestamp"].unique().to_list() == [MISSING_TIMESTAMP]
    w = {(u, i): v for u, i, v in TRAIN + TEST}
    got = {(int(u), int(i)): float(v) for u, i, v in t.ratings.select("user_idx", "item_idx", "weight").iter_rows()}
    assert got == w  # 0-based ids stay themselves: raw id k ↦ index k
    parts = {(u, i): p for u, i, p in t.predefined.iter_rows()}
    assert parts == {**{(u, i): "train" for u, i, _ in TRAIN}, **{(u, i): "test" for u, i, _ in TEST}}
    assert t.predefined.height == t.ratings.height
    flat = [(u, n, line) for line, (u, _, negs) in enumerate(NEGATIVES, start=1) for n in negs]
    assert t.negatives.rows() == flat  # file order, quirks kept (4 for user 0, the repeated 14 for user 1)
    assert t.negatives.schema == pl.Schema({"user_idx": pl.Int32, "item_idx": pl.Int32, "line": pl.Int64})
    q = t.notes["quirks"]
    assert q["test_positive_among_own_negatives_lines"] == 1 and q["test_positive_among_own_negatives_entries"] == 1
    assert q["negatives_rated_in_train"] == 2  # (0, 1) and (2, 5)
    assert q["negatives_repeated_within_line"] == 1
    assert q["test_users_without_train_rows"] == 1 and q["train_users_with_one_row"] == 2
    assert q["test_rows_with_item_not_in_train"] == 1
    assert q["items_only_in_negatives"] == 6  # 0, 9, 11, 12, 13, 14 (nobody rated them)
    assert q["deepcf_loader_num_items"] == 9  # DeepCF sized the items from the training file: max id 8 + 1
    assert q["negatives_per_line"] == {"min": 5, "max": 5} and q["negative_lines_without_99"] == 6
    assert q["train_rows_not_positive_dropped"] == 0
    assert t.notes["train_rows"] == len(TRAIN) and t.notes["test_rows"] == len(TEST)
    assert t.notes["raw_layout"] == "deepcf" and "star rating" in str(t.notes["weight"])


def test_negatives_rated_in_train_count_is_exact(tmp_path: Path) -> None:
    rated = {(u, i) for u, i, _ in TRAIN}
    expected = sum((u, n) in rated for u, _, negs in NEGATIVES for n in negs)
    t = _parse(write_deepcf(tmp_path))
    assert t.notes["quirks"]["negatives_rated_in_train"] == expected


def test_constant_one_gives_no_weight_and_timestamps_are_read(tmp_path: Path) -> None:
    ones = [(u, i, 1) for u, i, _ in TRAIN]
    raw = write_deepcf(tmp_path / "a", prefix="ml-1m", train=ones, test=[(u, i, 1) for u, i, _ in TEST], ts=True)
    t = _parse(raw, "deepcf-ml-1m")
    assert "weight" not in t.ratings.columns and t.notes["weight"].startswith("none")
    ts = {(int(u), int(i)): int(s) for u, i, s in t.ratings.select("user_idx", "item_idx", "timestamp").iter_rows()}
    assert ts[(0, 4)] == 978_300_004 and ts[(5, 8)] == 978_300_093 and t.notes["ratings_without_timestamp"] == 0


def test_crlf_and_stray_blank_lines_parse_the_same(tmp_path: Path) -> None:
    lf = _parse(write_deepcf(tmp_path / "lf", prefix="lastfm"), "deepcf-lastfm")
    crlf_dir = write_deepcf(tmp_path / "crlf", prefix="lastfm", crlf=True)
    crlf = _parse(crlf_dir, "deepcf-lastfm")
    for name in ("ratings", "predefined", "negatives", "item_ids", "user_ids"):
        assert getattr(lf, name).equals(getattr(crlf, name)), name
    p = crlf_dir / "lastfm.train.rating"
    p.write_bytes(p.read_bytes() + b"\r\n\r\n")  # trailing blank lines are no rows
    assert _parse(crlf_dir, "deepcf-lastfm").ratings.equals(lf.ratings)
    assert "play count" in str(lf.notes["weight"])


def test_any_number_of_negatives_is_accepted_and_recorded(tmp_path: Path) -> None:
    negs = [(u, i, list(range(11, 12 + u))) for u, i, _ in TEST]
    t = _parse(write_deepcf(tmp_path, negatives=negs))
    q = t.notes["quirks"]
    assert q["negatives_per_line"] == {"min": 1, "max": 6} and q["negative_lines_without_99"] == 6
    assert t.negatives.group_by("user_idx").len().sort("user_idx")["len"].to_list() == [1, 2, 3, 4, 5, 6]


def test_train_rows_with_non_positive_value_are_dropped_and_counted(tmp_path: Path) -> None:
    train = [*TRAIN, (5, 9, 0)]
    t = _parse(write_deepcf(tmp_path, train=train))
    assert t.ratings.height == len(TRAIN) + len(TEST)
    assert t.notes["quirks"]["train_rows_not_positive_dropped"] == 1
    assert t.n_items == 15  # item 9 stays indexed: it is listed as a negative


def test_readers_work_on_single_files(tmp_path: Path) -> None:
    raw = write_deepcf(tmp_path, prefix="ml-1m", ts=True)
    test = deepcf.read_rating_file(raw / "ml-1m.test.rating")
    assert test.columns == ["user_id", "item_id", "value", "timestamp", "line"] and test.height == len(TEST)
    neg = deepcf.read_negative_file(raw / "ml-1m.test.negative")
    assert neg.columns == ["line", "user_id", "item_id", "negatives"]
    assert neg["negatives"].to_list() == [n for _, _, n in NEGATIVES]
    deepcf.match_negatives(test, neg, raw / "ml-1m.test.rating", raw / "ml-1m.test.negative")
    q = deepcf.count_quirks(test.clear(), test, neg)
    assert q["test_positive_among_own_negatives_lines"] == 1 and q["test_users_without_train_rows"] == 6


# ---------------------------------------------------------------------------------------------- bad input
def _edit(raw: Path, name: str, line: int, text: str | None) -> None:
    p = raw / name
    lines = p.read_text().split("\n")
    if text is None:
        del lines[line - 1]
    else:
        lines[line - 1] = text
    p.write_text("\n".join(lines))


BAD = [
    ("AMusic.train.rating", 3, "0\t3", "wrong number of fields"),
    ("AMusic.train.rating", 4, "1\t2\t3\t5\t9", "wrong number of fields"),
    ("AMusic.train.rating", 2, "0\t2\t1\t978300000", "wrong number of fields"),  # 4 fields after a 3-field line
    ("AMusic.train.rating", 5, "1\tx4\t7", "non-numeric or missing item_id"),
    ("AMusic.train.rating", 6, "-2\t5\t2", "invalid user_id"),
    ("AMusic.train.rating", 7, "4\t1\tnan", "invalid value"),
    ("AMusic.train.rating", 8, "0\t1\t4", "(user, item) pair (0, 1) listed more than once, on lines [1, 8]"),
    ("AMusic.test.rating", 1, "0\t4\t0", "invalid value"),
    ("AMusic.test.rating", 2, "0\t5\t1", "user 0 has more than one test row, on lines [1, 2]"),
    ("AMusic.test.rating", 3, "2\t5\t8", "test pair (2, 5) is also a training row"),
    ("AMusic.test.negative", 2, "(1,5)", "negative line without negatives"),
    ("AMusic.test.negative", 3, "2,6\t0\t1", "malformed test pair"),
    ("AMusic.test.negative", 3, "(2,6)\t0\t\t1", "non-numeric or missing neg"),
    ("AMusic.test.negative", 3, "(2,6)\t0\t1\t", "non-numeric or missing neg"),  # a trailing tab
    ("AMusic.test.negative", 4, "(3,1)\t0\tb\t1", "non-numeric or missing neg"),
    ("AMusic.test.negative", 4, "(3,1)\t0\t-3", "invalid neg"),
    ("AMusic.test.negative", 5, "(4,9)\t0\t2", "negative line names another pair than the user's test row"),
    ("AMusic.test.negative", 6, "(7,10)\t0\t2", "negative line for user 7, who has no row in"),
    ("AMusic.test.negative", 6, "(4,8)\t0\t2", "user 4 has more than one negative line, on lines [5, 6]"),
]


@pytest.mark.parametrize(("file", "line", "text", "message"), BAD)
def test_bad_input_names_file_and_line(tmp_path: Path, file: str, line: int, text: str, message: str) -> None:
    raw = write_deepcf(tmp_path)
    _edit(raw, file, line, text)
    with pytest.raises(DataError) as ei:
        _parse(raw)
    assert ei.value.file == str(raw / file) and ei.value.line == line, str(ei.value)
    assert message in str(ei.value) and f"{raw / file}, line {line}:" in str(ei.value)


def test_differing_pair_says_what_the_test_row_is(tmp_path: Path) -> None:
    raw = write_deepcf(tmp_path)
    _edit(raw, "AMusic.test.negative", 5, "(4,9)\t0\t2")
    with pytest.raises(DataError) as ei:
        _parse(raw)
    assert "expected (4,8), found '(4,9)'" in str(ei.value) and f"{raw / 'AMusic.test.rating'}, line 5" in str(ei.value)


def test_test_row_without_negative_line_is_named(tmp_path: Path) -> None:
    raw = write_deepcf(tmp_path)
    _edit(raw, "AMusic.test.negative", 4, None)
    with pytest.raises(DataError) as ei:
        _parse(raw)
    assert ei.value.file == str(raw / "AMusic.test.rating") and ei.value.line == 4
    assert "test row (3, 1) has no negative line" in str(ei.value)


def test_missing_or_empty_files(tmp_path: Path) -> None:
    raw = write_deepcf(tmp_path, prefix="ml-1m", ts=True)
    (raw / "ml-1m.train.rating").unlink()
    with pytest.raises(DataError) as ei:
        _parse(raw, "deepcf-ml-1m")
    assert ei.value.file == str(raw / "ml-1m.train.rating")
    assert "raw file missing: deepcf-ml-1m needs ml-1m.train.rating, ml-1m.test.rating, ml-1m.test.negative" in str(
        ei.value
    )
    (raw / "ml-1m.train.rating").write_text("\n")
    with pytest.raises(DataError, match="no rating lines"):
        _parse(raw, "deepcf-ml-1m")


# ---------------------------------------------------------------------------------------------- protocols
def test_predefined_protocols_on_the_parsed_tables(tmp_path: Path) -> None:
    t = _parse(write_deepcf(tmp_path))
    extras = {"predefined": t.predefined, "negatives": t.negatives}
    ratings = t.ratings.drop("weight")
    as_published = get_protocol("predefined").split(ratings, t.n_items, 0, extras=extras)
    rep = check_split("predefined-s0", ratings, as_published, get_protocol("predefined"))
    info = as_published.info
    assert info["listed_negatives_equal_to_test_positive"] == 1 and info["listed_negatives_repeated"] == 1
    assert info["listed_negatives_rated_by_user"] == t.notes["quirks"]["negatives_rated_in_train"]
    assert rep["counts"]["test"] == len(TEST) and rep["test_rows_with_cold_user"] == 1
    assert as_published.negatives.height == len(TEST) * 5 - 2
    corrected = get_protocol("predefined-corrected")
    fixed = corrected.split(ratings, t.n_items, 0, extras=extras)
    rep = check_split("predefined-corrected-s0", ratings, fixed, corrected)
    assert rep["negatives_rated_by_their_user"] == 0 and rep["negatives_per_user"] == {"min": 5, "max": 5}


# ---------------------------------------------------------------------------------------------- acquisition
@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network: every download fails; the download cache is a fresh temporary directory."""
    return go_offline(monkeypatch, tmp_path, deepcf)


def _serve(files: Path, calls: list[str]):  # type: ignore[no-untyped-def]
    """A fake ``download`` serving the files of ``files`` by the name at the end of the URL."""
    return fake_download(lambda url: files / url.rsplit("/", 1)[1], calls)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


@pytest.mark.parametrize("under", ["", "Data", "deepcf"])
def test_acquire_from_local_directory(tmp_path: Path, offline: Path, under: str) -> None:
    src = tmp_path / "src"
    write_deepcf(src / under if under else src, prefix="AToy")
    write_deepcf(src / "other", prefix="lastfm")
    ds = get_dataset("deepcf-atoy")
    dest = tmp_path / "data" / "deepcf-atoy"
    res = ds.acquire(dest, src, 5)
    assert res.source == f"local directory {src}" and res.layout == "deepcf"
    assert "differs from DeepCF 0d91a5dd" in res.detail  # our small files are not the published ones
    assert sorted(p.name for p in dest.iterdir()) == sorted(ds.file_names()) and ds.is_acquired(dest)
    assert ds.parse(dest).ratings.height == len(TRAIN) + len(TEST)


def test_no_network_no_local_copy_says_what_to_download_where(tmp_path: Path, offline: Path) -> None:
    src = write_deepcf(tmp_path / "src", prefix="ml-1m", ts=True)
    (src / "ml-1m.train.rating").unlink()  # like the shared copy: test files only
    ds = get_dataset("deepcf-ml-1m")
    dest = tmp_path / "data" / "deepcf-ml-1m"
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(dest, src, 5)
    msg = str(ei.value)
    assert "could not obtain the raw files of 'deepcf-ml-1m'" in msg
    assert "found only ['ml-1m.test.rating', 'ml-1m.test.negative']" in msg
    for url in ds.urls():
        assert url in msg and url.startswith(f"https://raw.githubusercontent.com/familyld/DeepCF/{deepcf.COMMIT}/Data/")
    assert "no network" in msg and "acquire.source_dir" in msg and str(dest) in msg
    assert not dest.exists()


def test_github_download_is_verified_against_the_pinned_sha256(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_deepcf(tmp_path / "served", prefix="AMusic")
    calls: list[str] = []
    monkeypatch.setattr(deepcf, "download", _serve(files, calls))
    ds = get_dataset("deepcf-amusic")
    dest = tmp_path / "data" / "deepcf-amusic"
    with pytest.raises(AcquisitionError, match="sha256 mismatch: expected 7e7aa977"):  # the real pin ≠ our file
        ds.acquire(dest, None, 5)
    assert not dest.exists()
    pins = {n: _sha(files / n) for n in ds.file_names()}
    monkeypatch.setattr(deepcf, "SHA256", {**deepcf.SHA256, **pins})
    calls.clear()
    res = ds.acquire(dest, None, 5)
    assert res.source == deepcf.BASE_URL and calls == ds.urls()
    assert ds.is_acquired(dest) and (offline / "deepcf" / "AMusic.test.negative").is_file()


def test_unpinned_file_records_its_sha256_then_verifies(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = write_deepcf(tmp_path / "served", prefix="ml-1m", ts=True)
    monkeypatch.setattr(deepcf, "download", _serve(files, []))
    pins = {n: _sha(files / n) for n in ("ml-1m.test.rating", "ml-1m.test.negative")}
    monkeypatch.setattr(deepcf, "SHA256", {**deepcf.SHA256, **pins})
    assert deepcf.SHA256["ml-1m.train.rating"] is None
    ds = get_dataset("deepcf-ml-1m")
    ds.acquire(tmp_path / "d1", None, 5)
    sidecar = offline / "deepcf" / "ml-1m.train.rating.sha256"
    digest = _sha(files / "ml-1m.train.rating")
    assert sidecar.read_text() == f"{digest}  ml-1m.train.rating\n"
    ds.acquire(tmp_path / "d2", None, 5)  # same bytes: verified against the sidecar
    (files / "ml-1m.train.rating").write_text("0\t1\t5\t978300000\n")  # upstream changed
    (offline / "deepcf" / "ml-1m.train.rating").unlink()
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(tmp_path / "d3", None, 5)
    assert f"sha256 mismatch: expected {digest}" in str(ei.value) and str(sidecar) in str(ei.value)


def test_is_acquired_needs_all_three_files(tmp_path: Path) -> None:
    ds = get_dataset("deepcf-lastfm")
    raw = write_deepcf(tmp_path, prefix="lastfm")
    assert ds.is_acquired(raw)
    (raw / "lastfm.test.negative").unlink()
    assert not ds.is_acquired(raw)


# ---------------------------------------------------------------------------------------------- real data
def _shared(prefix: str, files: tuple[str, ...] = ("train.rating", "test.rating", "test.negative")) -> Path:
    if not all((SHARED / f"{prefix}.{f}").is_file() for f in files):
        pytest.skip(f"../shared/datasets/deepcf/{prefix}.* not present")
    return SHARED


# name: users, items, train rows, test rows, positives among own negatives, negatives rated in train,
# test users without training rows, DeepCF loader's item count (train only)
REAL = {
    "deepcf-lastfm": (1741, 2665, 67_408, 1741, 86, 2434, 0, 2665),
    "deepcf-amusic": (1776, 12_929, 44_311, 1776, 18, 348, 43, 12_926),
    "deepcf-atoy": (3137, 33_953, 81_505, 3137, 12, 227, 15, 33_951),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_files_counts_and_quirks(name: str) -> None:
    raw = _shared(NAMES[name])
    users, items, n_train, n_test, pos, rated, cold, loader = REAL[name]
    ds = get_dataset(name)
    t = ds.parse(raw)
    assert (t.n_users, t.n_items, t.ratings.height) == (users, items, n_train + n_test)
    assert ds.expected.users[0] <= t.n_users <= ds.expected.users[1]
    assert ds.expected.items[0] <= t.n_items <= ds.expected.items[1]
    assert ds.expected.ratings[0] <= t.ratings.height <= ds.expected.ratings[1]
    assert dict(t.predefined.group_by("part").len().iter_rows()) == {"train": n_train, "test": n_test}
    assert t.negatives.height == 99 * n_test and t.negatives["line"].is_sorted()
    assert "weight" in t.ratings.columns and float(t.ratings["weight"].min()) >= 1.0  # type: ignore[arg-type]
    q = t.notes["quirks"]
    assert q["test_positive_among_own_negatives_lines"] == pos == q["test_positive_among_own_negatives_entries"]
    assert q["negatives_rated_in_train"] == rated and q["test_users_without_train_rows"] == cold
    assert q["deepcf_loader_num_items"] == loader and q["negatives_per_line"] == {"min": 99, "max": 99}
    assert q["negatives_repeated_within_line"] == 0 and q["train_rows_not_positive_dropped"] == 0


def test_real_amusic_through_the_predefined_protocols() -> None:
    t = get_dataset("deepcf-amusic").parse(_shared("AMusic"))
    ratings = t.ratings.with_columns(pl.lit(MISSING_TIMESTAMP, dtype=pl.Int64).alias("timestamp"))
    extras = {"predefined": t.predefined, "negatives": t.negatives}
    for name, rated_after in (("predefined", 348), ("predefined-corrected", 0)):
        protocol = get_protocol(name)
        result = protocol.split(ratings, t.n_items, 0, extras=extras)
        rep = check_split(f"{name}-s0", ratings, result, protocol)
        assert result.info["listed_negatives_equal_to_test_positive"] == 18
        assert result.info["listed_negatives_rated_by_user"] == 348
        assert rep["negatives_rated_by_their_user"] == rated_after
        assert rep["counts"]["test"] == 1776 and rep["test_rows_with_cold_user"] == 43
        assert rep["counts"]["train"] + rep["counts"]["valid"] == 44_311
    assert result.info["replaced_negatives"] == 18 + 348


def test_real_ml1m_test_files_alone() -> None:
    raw = _shared("ml-1m", ("test.rating", "test.negative"))
    test = deepcf.read_rating_file(raw / "ml-1m.test.rating")
    neg = deepcf.read_negative_file(raw / "ml-1m.test.negative")
    assert test.height == 6040 and neg.height == 6040 and test["user_id"].n_unique() == 6040
    assert int((test["timestamp"] == MISSING_TIMESTAMP).sum()) == 0
    assert neg["negatives"].list.len().unique().to_list() == [99]
    deepcf.match_negatives(test, neg, raw / "ml-1m.test.rating", raw / "ml-1m.test.negative")
    q = deepcf.count_quirks(test.clear(), test, neg)
    assert q["test_positive_among_own_negatives_lines"] == 156 and q["negatives_listed"] == 6040 * 99
    items = pl.concat([test["item_id"], neg["negatives"].explode()]).n_unique()
    assert items == 3706  # every ML-1M movie with a rating appears among the test items or the negatives
    if not (raw / "ml-1m.train.rating").is_file():
        with pytest.raises(DataError, match=re.escape("raw file missing: deepcf-ml-1m needs ml-1m.train.rating")):
            get_dataset("deepcf-ml-1m").parse(raw)
