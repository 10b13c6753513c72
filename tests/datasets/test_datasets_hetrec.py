"""HetRec 2011 Last.fm 2K and Delicious 2K: parsers on small files in the official formats (header lines, tabs,
CRLF, latin-1 tags), weights, first-tag timestamps, relation/tag bags, bad input naming file and line,
acquisition (local dir, local zip, corrupt zip, sha256 sidecar, no network), and the real Last.fm copy."""

from __future__ import annotations

import hashlib
import shutil
import zipfile
from pathlib import Path

import polars as pl
import pytest

import tasks.datasets._movielens_csv as mlcsv
from tasks.common.errors import AcquisitionError, DataError
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.base import MISSING_TIMESTAMP, CanonicalTables
from tasks.datasets.hetrec import LASTFM_MD5, Delicious, LastFM
from tests.conftest import fake_download, go_offline

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
REAL_LASTFM = SHARED / "hetrec2011-lastfm-2k"

# Madrid local midnight / time → epoch seconds (the readmes' own examples are the first two)
APR_1_2009 = 1_238_536_800  # 1 4 2009 (CEST, UTC+2)  ↔ 1238536800000 in user_taggedartists-timestamps.dat
NOV_8_2010_232922 = 1_289_255_362  # 8 11 2010 23:29:22 (CET, UTC+1) ↔ 1289255362000
JAN_1_2009 = 1_230_764_400  # 1 1 2009 00:00 CET = 2008-12-31T23:00Z
MAR_1_2010 = 1_267_398_000  # 1 3 2010 00:00 CET


# ---------------------------------------------------------------------------------------------- writers
def _write(path: Path, header: str, rows: list[str], *, crlf: bool = True, encoding: str = "utf-8") -> None:
    eol = "\r\n" if crlf else "\n"
    path.write_bytes((eol.join([header, *rows]) + eol).encode(encoding))


def write_lastfm(dest: Path, *, timestamps_file: bool = False) -> Path:
    """The six HetRec Last.fm files as in the zip: CRLF except artists.dat (LF, UTF-8); tags.dat latin-1.

    Users 2..5, artists 51..56 listened; artist 60 is tagged but nobody listened to it.
    """
    dest.mkdir(parents=True, exist_ok=True)
    ua = ["2\t51\t13883", "2\t52\t11690", "2\t53\t7", "3\t51\t1", "3\t54\t250", "4\t55\t99", "5\t56\t3", "5\t51\t12"]
    _write(dest / "user_artists.dat", "userID\tartistID\tweight", ua)
    friends = ["2\t3", "3\t2", "2\t4", "4\t2", "2\t4", "5\t2"]  # a duplicate (2,4) and a one-way (5,2)
    _write(dest / "user_friends.dat", "userID\tfriendID", friends)
    artists = [
        "51\tMALICE MIZER\thttp://www.last.fm/music/MALICE+MIZER\thttp://userserve-ak.last.fm/serve/252/10808.jpg",
        "52\tSigur Rós\thttp://www.last.fm/music/Sigur+R%C3%B3s\thttp://userserve-ak.last.fm/serve/252/1.jpg",
        '53\t"Weird Al" Yankovic\thttp://www.last.fm/music/%22Weird+Al%22+Yankovic\t',
        "54\tRoyce da 5'9\"\thttp://www.last.fm/music/Royce\thttp://userserve-ak.last.fm/serve/252/2.jpg",
        "55\tBeyoncé\thttp://www.last.fm/music/Beyonc%C3%A9\thttp://userserve-ak.last.fm/serve/252/3.jpg",
        "56\tMetallica\thttp://www.last.fm/music/Metallica\thttp://userserve-ak.last.fm/serve/252/7560709.jpg",
        "60\tNobody Listens\thttp://www.last.fm/music/Nobody\thttp://userserve-ak.last.fm/serve/252/4.jpg",
    ]
    _write(dest / "artists.dat", "id\tname\turl\tpictureURL", artists, crlf=False)
    tags = ["1\tmetal", "13\tJ-Rock ", "15\trock français", "18\tvisual kei", "21\tgothic"]
    _write(dest / "tags.dat", "tagID\ttagValue", tags, encoding="latin-1")
    tas = [
        "2\t52\t13\t1\t4\t2009",  # (2, 52): tagged in April 2009 and Jan 2009 → first = Jan 2009
        "2\t52\t15\t1\t4\t2009",
        "2\t52\t18\t1\t1\t2009",
        "2\t51\t1\t1\t6\t1956",  # implausible date: ignored, (2, 51) stays undated
        "3\t51\t13\t1\t4\t2009",  # (3, 51) tagged in April 2009
        "3\t51\t13\t1\t3\t2010",  # ... the same tag again later (another assignment? kept: a different date)
        "4\t60\t1\t1\t3\t2010",  # artist nobody listened to
        "5\t55\t21\t1\t3\t2010",  # user 5 tags an artist they never listened to
    ]
    _write(dest / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear", tas)
    if timestamps_file:
        ms = [
            "2\t52\t13\t1238536800000",
            "2\t52\t15\t1238536800000",
            "2\t52\t18\t1230764400000",
            "2\t51\t1\t-428374800000",
            "3\t51\t13\t1238536812345",
            "3\t51\t13\t1267398000000",
            "4\t60\t1\t1267398000000",
            "5\t55\t21\t1267398000000",
        ]
        _write(dest / "user_taggedartists-timestamps.dat", "userID\tartistID\ttagID\ttimestamp", ms)
    (dest / "readme.txt").write_text("hetrec2011-lastfm-2k\n", encoding="ascii")
    return dest


def write_delicious(dest: Path, *, timestamps_file: bool = False, bookmarks_encoding: str = "utf-8") -> Path:
    """The HetRec Delicious files as the readme describes them (tab, header, CRLF).

    Users 8, 9, 10; bookmarks 1..4 tagged; bookmark 5 listed but never bookmarked by these users.
    """
    dest.mkdir(parents=True, exist_ok=True)
    tas = [
        ("8", "1", "1", 8, 11, 2010, 23, 29, 22),  # the readme's example: 1289255362000
        ("8", "1", "2", 8, 11, 2010, 23, 29, 22),
        ("8", "1", "2", 8, 11, 2010, 23, 29, 22),  # an exact duplicate row: one assignment
        ("8", "2", "3", 9, 11, 2010, 10, 0, 0),
        ("9", "1", "1", 1, 4, 2009, 0, 0, 0),
        ("9", "1", "3", 1, 1, 2009, 0, 0, 0),  # (9, 1) first tagged 1 Jan 2009
        ("9", "3", "4", 28, 3, 2010, 2, 30, 0),  # inside the spring-forward gap (02:00 → 03:00 CET→CEST)
        ("10", "4", "1", 1, 3, 2010, 0, 0, 0),
        ("10", "3", "1", 3, 5, 1957, 12, 0, 0),  # implausible date: (10, 3) has no time
    ]
    header = "userID\tbookmarkID\ttagID\tday\tmonth\tyear\thour\tminute\tsecond"
    _write(dest / "user_taggedbookmarks.dat", header, ["\t".join(map(str, r)) for r in tas])
    if timestamps_file:
        ms = [
            "8\t1\t1\t1289255362000",
            "8\t1\t2\t1289255362000",
            "8\t1\t2\t1289255362000",
            "8\t2\t3\t1289293200000",
            "9\t1\t1\t1238536800000",
            "9\t1\t3\t1230764400000",
            "9\t3\t4\t1269739800000",
            "10\t4\t1\t1267398000000",
            "10\t3\t1\t-397818000000",
        ]
        _write(dest / "user_taggedbookmarks-timestamps.dat", "userID\tbookmarkID\ttagID\ttimestamp", ms)
    bookmarks = [
        "1\tab4954b633ddaf5b5bba6e9b71aa6b70\tIFLA - The official website of the International Federation of Library "
        "Associations and Institutions\thttp://www.ifla.org/\t7f431306c428457bc4e12b15634484f\twww.ifla.org",
        "2\t11111111111111111111111111111111\tCafé\tdu monde\thttp://cafe.example.org/\t2222\tcafe.example.org",
        "3\t33333333333333333333333333333333\t\thttp://untitled.example.com/a\t4444\tuntitled.example.com",
        "4\t55555555555555555555555555555555\tPython docs\thttps://docs.python.org/3/\t6666\tdocs.python.org",
        "5\t77777777777777777777777777777777\tUnbookmarked\thttp://nobody.example.net/\t8888\tnobody.example.net",
    ]
    _write(
        dest / "bookmarks.dat",
        "id\tmd5\ttitle\turl\tmd5Principal\turlPrincipal",
        bookmarks,
        encoding=bookmarks_encoding,
    )
    tags = ["1\tcollection_development", "2\tLibrary", "3\tcafé", "4\tpython", "5\tunused"]
    _write(dest / "tags.dat", "id\tvalue", tags)
    bt = ["1\t2\t3", "1\t1\t1", "2\t3\t2", "4\t4\t1", "4\t99\t5"]  # tag 99 is not in tags.dat
    _write(dest / "bookmark_tags.dat", "bookmarkID\ttagID\ttagWeight", bt)
    contacts = ["8\t9\t4\t10\t2010\t2\t14\t19", "9\t8\t4\t10\t2010\t2\t14\t19", "8\t28371\t4\t10\t2010\t2\t14\t20"]
    header = "userID\tcontactID\tdate_day\tdate_month\tdate_year\tdate_hour\tdate_minute\tdate_second"
    _write(dest / "user_contacts.dat", header, contacts)
    (dest / "readme.txt").write_text("hetrec2011-delicious-2k\n", encoding="ascii")
    return dest


WRITERS = {"lastfm": write_lastfm, "delicious": write_delicious}


def _row(t: CanonicalTables, side: str, raw_id: str) -> dict:  # type: ignore[type-arg]
    table, ids, idx = (t.items, t.item_ids, "item_idx") if side == "item" else (t.users, t.user_ids, "user_idx")
    return table.join(ids, on=idx).filter(pl.col("raw_id") == raw_id).row(0, named=True)


def _ratings(t: CanonicalTables) -> dict[tuple[str, str], tuple[float, int, float]]:
    r = t.ratings.join(t.user_ids, on="user_idx").join(t.item_ids, on="item_idx", suffix="_i")
    return {
        (u, i): (w, ts, rt)
        for u, i, w, ts, rt in r.select("raw_id", "raw_id_i", "weight", "timestamp", "rating").iter_rows()
    }


# ---------------------------------------------------------------------------------------------- registry
def test_registered_with_their_public_spec() -> None:
    assert {"lastfm", "delicious"} <= set(dataset_names())
    lf, dl = get_dataset("lastfm"), get_dataset("delicious")
    assert isinstance(lf, LastFM) and isinstance(dl, Delicious)
    for ds in (lf, dl):
        assert ds.implicit and ds.rating_scale == (1.0, 1.0) and ds.has_timestamps and ds.predefined_split is None
        assert [(f.column, f.kind) for f in ds.item_side] == [("tags", "bag")]
    assert [(f.column, f.kind) for f in lf.user_side] == [("friends", "bag")]
    assert [(f.column, f.kind) for f in dl.user_side] == [("contacts", "bag")]
    assert (lf.expected.users, lf.expected.items, lf.expected.ratings) == ((1892, 1892), (17632, 17632), (92834, 92834))
    assert dl.expected.users == (1867, 1867) and dl.expected.ratings == (104_799, 104_799)
    assert dl.expected.items[0] <= 69_226 <= dl.expected.items[1]
    assert lf.url == "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"
    assert lf.md5 == LASTFM_MD5 == "296d61afe4e8632b173fc2dd3be20ce2"
    assert dl.url == "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-delicious-2k.zip" and dl.md5 is None
    assert "first time the user tagged the artist" in lf.ordering_note and "seeded random" in lf.ordering_note


# ---------------------------------------------------------------------------------------------- Last.fm parsing
def test_parse_lastfm_small(tmp_path: Path) -> None:
    t = get_dataset("lastfm").parse(write_lastfm(tmp_path / "raw"))
    assert (t.n_users, t.n_items, t.ratings.height) == (4, 6, 8)
    assert t.ratings.schema == pl.Schema(
        {"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32, "timestamp": pl.Int64, "weight": pl.Float32}
    )
    got = _ratings(t)
    assert got[("2", "51")] == (13883.0, MISSING_TIMESTAMP, 1.0)  # only an implausible 1956 tag date
    assert got[("2", "52")] == (11690.0, JAN_1_2009, 1.0)  # first of its tag dates
    assert got[("2", "53")] == (7.0, MISSING_TIMESTAMP, 1.0)  # never tagged
    assert got[("3", "51")] == (1.0, APR_1_2009, 1.0)
    assert ("5", "55") not in got and ("4", "60") not in got
    assert set(t.item_ids["raw_id"]) == {"51", "52", "53", "54", "55", "56"}  # 60 is nobody's interaction
    # users: friends each once, numeric order; a one-way pair kept on its side only
    assert _row(t, "user", "2")["friends"] == ["3", "4"]
    assert _row(t, "user", "3")["friends"] == ["2"]
    assert _row(t, "user", "5")["friends"] == ["2"]
    # items: names (UTF-8, quotes kept), tags lowercased and stripped, one entry per assignment
    assert _row(t, "item", "52")["name"] == "Sigur Rós"
    assert _row(t, "item", "53")["name"] == '"Weird Al" Yankovic'
    assert _row(t, "item", "54")["name"] == "Royce da 5'9\""
    assert _row(t, "item", "52")["tags"] == ["j-rock", "rock français", "visual kei"]  # latin-1 tags.dat
    assert _row(t, "item", "51")["tags"] == ["j-rock", "j-rock", "metal"]  # repeats counted
    assert _row(t, "item", "55")["tags"] == ["gothic"]  # by a user who never listened to it
    assert _row(t, "item", "56")["tags"] == []
    n = t.notes
    assert n["tags_encoding"] == "latin-1" and n["artists_encoding"] == "utf-8"
    assert n["timestamp_source"] == "user_taggedartists.dat"
    assert (n["tag_assignments"], n["tag_dates_implausible"], n["tagged_pairs"], n["tagged_pairs_listened"]) == (
        8,
        1,
        5,
        3,
    )
    assert n["tag_assignments_artist_not_listened"] == 1 and n["tagged_artists_not_listened"] == 1
    assert n["interactions_with_timestamp"] == 2 and n["play_count_total"] == 13883 + 11690 + 7 + 1 + 250 + 99 + 3 + 12
    assert (n["friends_pairs"], n["friends_pairs_duplicate"], n["friends_pairs_one_directional"]) == (6, 1, 1)
    assert n["items_listed"] == 7 and n["items_listed_unrated"] == 1
    assert n["users_without_friends"] == 0


def test_lastfm_timestamps_file_is_preferred(tmp_path: Path) -> None:
    t = get_dataset("lastfm").parse(write_lastfm(tmp_path / "raw", timestamps_file=True))
    got = _ratings(t)
    assert got[("2", "52")][1] == JAN_1_2009 and got[("2", "51")][1] == MISSING_TIMESTAMP
    assert got[("3", "51")][1] == APR_1_2009 + 12  # ms precision, floored to seconds
    assert t.notes["timestamp_source"] == "user_taggedartists-timestamps.dat"
    assert t.notes["tag_dates_implausible"] == 1


def test_lf_and_crlf_parse_the_same(tmp_path: Path) -> None:
    for name, writer in WRITERS.items():
        crlf = writer(tmp_path / f"{name}-crlf")
        lf = tmp_path / f"{name}-lf"
        lf.mkdir()
        for f in crlf.iterdir():
            (lf / f.name).write_bytes(f.read_bytes().replace(b"\r\n", b"\n"))
        ds = get_dataset(name)
        a, b = ds.parse(crlf), ds.parse(lf)
        for key, frame in a.as_dict().items():
            assert frame.equals(b.as_dict()[key]), (name, key)
        for frame in (a.users, a.items):
            for col, dtype in frame.schema.items():
                if dtype == pl.Utf8:
                    assert not frame[col].str.ends_with("\r").any(), col


# ---------------------------------------------------------------------------------------------- Delicious parsing
def test_parse_delicious_small(tmp_path: Path) -> None:
    t = get_dataset("delicious").parse(write_delicious(tmp_path / "raw"))
    assert (t.n_users, t.n_items, t.ratings.height) == (3, 4, 6)
    got = _ratings(t)
    assert got[("8", "1")] == (2.0, NOV_8_2010_232922, 1.0)  # tags 1 and 2 (the duplicate row counted once)
    assert got[("8", "2")] == (1.0, NOV_8_2010_232922 + 37_838, 1.0)  # 9 Nov 2010 10:00 CET
    assert got[("9", "1")] == (2.0, JAN_1_2009, 1.0)  # first of its two tag times
    assert got[("9", "3")][1] == 1_269_739_800  # 02:30 does not exist on 28 Mar 2010: read at UTC+1
    assert got[("10", "4")] == (1.0, MAR_1_2010, 1.0)
    assert got[("10", "3")][1] == MISSING_TIMESTAMP  # only an implausible 1957 date
    assert "5" not in set(t.item_ids["raw_id"])
    b1 = _row(t, "item", "1")
    assert b1["tags"] == ["collection_development", "library", "library", "library"]  # tagWeight 3 → 3 entries
    assert b1["title"].startswith("IFLA - The official website") and b1["domain"] == "www.ifla.org"
    b2 = _row(t, "item", "2")
    assert b2["title"] == "Café\tdu monde" and b2["tags"] == ["café", "café"]  # a tab inside the title is kept
    assert _row(t, "item", "3")["title"] == "" and _row(t, "item", "3")["tags"] == []
    assert _row(t, "item", "4")["tags"] == ["python"]  # the weight-5 row of unknown tag 99 is left out
    assert _row(t, "user", "8")["contacts"] == ["9", "28371"]
    assert _row(t, "user", "9")["contacts"] == ["8"] and _row(t, "user", "10")["contacts"] == []
    n = t.notes
    assert (n["tag_assignments"], n["tag_assignments_duplicate"], n["tag_dates_implausible"]) == (9, 1, 1)
    assert n["bookmark_tags_unknown_tag"] == 1 and n["bookmark_tag_weight_total"] == 12
    assert n["contacts_not_users"] == 1 and n["users_without_contacts"] == 1
    assert n["interactions_without_timestamp"] == 1 and n["bookmarks_encoding"] == "utf-8"
    assert n["timestamp_source"] == "user_taggedbookmarks.dat"


def test_delicious_timestamps_file_gives_the_same_times(tmp_path: Path) -> None:
    a = get_dataset("delicious").parse(write_delicious(tmp_path / "a"))
    b = get_dataset("delicious").parse(write_delicious(tmp_path / "b", timestamps_file=True))
    assert b.notes["timestamp_source"] == "user_taggedbookmarks-timestamps.dat"
    assert _ratings(a) == _ratings(b)


def test_delicious_latin1_bookmarks_fall_back(tmp_path: Path) -> None:
    t = get_dataset("delicious").parse(write_delicious(tmp_path / "raw", bookmarks_encoding="latin-1"))
    assert t.notes["bookmarks_encoding"] == "latin-1" and _row(t, "item", "2")["title"] == "Café\tdu monde"


# ---------------------------------------------------------------------------------------------- bad input
def _replace_line(path: Path, line: int, text: str) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = text.encode("utf-8") + (b"\r" if lines[line - 1].endswith(b"\r") else b"")
    path.write_bytes(b"\n".join(lines))


BAD = [
    # dataset, file, 1-based line, replacement, snippets
    ("lastfm", "user_artists.dat", 3, "2\t52", ["wrong number of fields", "expected 3 fields separated by '\\t'"]),
    ("lastfm", "user_artists.dat", 4, "2\t53\t7\t1", ["wrong number of fields", "4 fields"]),
    ("lastfm", "user_artists.dat", 5, "x3\t51\t1", ["non-numeric or missing user_id", "found 'x3'"]),
    ("lastfm", "user_artists.dat", 6, "3\t54\tlots", ["non-numeric or missing weight", "found 'lots'"]),
    ("lastfm", "user_artists.dat", 7, "4\t55\t0", ["invalid weight: expected a play count > 0, found 0"]),
    ("lastfm", "user_artists.dat", 8, "5\t56\t-3", ["invalid weight: expected a play count > 0, found -3"]),
    ("lastfm", "user_artists.dat", 9, "2\t51\t5", ["duplicate (user, item) pair (2, 51) on lines [2, 9]"]),
    ("lastfm", "user_artists.dat", 1, "userID\tartistID\tcount", ["unexpected header line"]),
    ("lastfm", "user_artists.dat", 1, "1\t51\t5", ["the file seems to lack its header"]),
    ("lastfm", "user_friends.dat", 3, "3\ttwo", ["non-numeric or missing friend_id", "found 'two'"]),
    ("lastfm", "user_friends.dat", 4, "3", ["wrong number of fields"]),
    ("lastfm", "artists.dat", 3, "52\tSigur Rós", ["wrong number of fields"]),
    ("lastfm", "artists.dat", 4, "fifty\tX\thttp://x\thttp://y", ["non-numeric or missing item_id"]),
    (
        "lastfm",
        "artists.dat",
        5,
        "51\tAgain\thttp://x\thttp://y",
        ["item_id 51 listed more than once, on lines [2, 5]"],
    ),
    ("lastfm", "tags.dat", 2, "1", ["wrong number of fields"]),
    ("lastfm", "user_taggedartists.dat", 2, "2\t52\t13\t30\t2\t2009", ["invalid day: expected a day that exists"]),
    ("lastfm", "user_taggedartists.dat", 3, "2\t52\t15\t1\t13\t2009", ["invalid month: expected month in [1, 12]"]),
    ("lastfm", "user_taggedartists.dat", 4, "2\t52\t18\t1\t1", ["wrong number of fields"]),
    ("lastfm", "user_taggedartists.dat", 5, "2\t51\tt1\t1\t6\t2009", ["non-numeric or missing tag_id"]),
    (
        "delicious",
        "user_taggedbookmarks.dat",
        2,
        "8\t1\t1\t8\t11\t2010\t24\t0\t0",
        ["invalid hour: expected hour in [0, 23], found 24"],
    ),
    ("delicious", "user_taggedbookmarks.dat", 3, "8\t1\t2\t8\t11\t2010\t23\t29", ["wrong number of fields"]),
    ("delicious", "user_taggedbookmarks.dat", 4, "8\tone\t2\t8\t11\t2010\t23\t29\t22", ["non-numeric or missing"]),
    ("delicious", "bookmark_tags.dat", 3, "1\t1\t0", ["invalid tag_weight: expected a tagWeight > 0, found 0"]),
    ("delicious", "bookmark_tags.dat", 4, "2\t3", ["wrong number of fields"]),
    ("delicious", "bookmarks.dat", 3, "2\tmd5\tno url", ["wrong number of fields"]),
    (
        "delicious",
        "bookmarks.dat",
        4,
        "1\tx\tdup\thttp://a\ty\ta",
        ["item_id 1 listed more than once, on lines [2, 4]"],
    ),
    ("delicious", "user_contacts.dat", 2, "8\t9\t4\t10\t2010", ["wrong number of fields"]),
    ("delicious", "tags.dat", 1, "1\tcollection_development", ["the file seems to lack its header"]),
]


@pytest.mark.parametrize(("name", "file", "line", "row", "snippets"), BAD, ids=[f"{b[0]}-{b[1]}-{b[2]}" for b in BAD])
def test_bad_row_names_file_and_line(
    tmp_path: Path, name: str, file: str, line: int, row: str, snippets: list[str]
) -> None:
    raw = WRITERS[name](tmp_path / "raw")
    path = raw / file
    if line > len(path.read_bytes().rstrip(b"\n").split(b"\n")):  # append a row
        path.write_bytes(path.read_bytes() + row.encode() + b"\r\n")
    else:
        _replace_line(path, line, row)
    with pytest.raises(DataError) as ei:
        get_dataset(name).parse(raw)
    e = ei.value
    assert (Path(e.file), e.line) == (path, line), str(e)
    assert f"{path}, line {line}:" in str(e)
    for s in snippets:
        assert s in str(e), str(e)


def test_missing_or_empty_files(tmp_path: Path) -> None:
    raw = write_lastfm(tmp_path / "lf")
    (raw / "user_artists.dat").write_text("userID\tartistID\tweight\r\n")
    with pytest.raises(DataError, match="no interactions"):
        get_dataset("lastfm").parse(raw)
    (raw / "user_artists.dat").write_text("")
    with pytest.raises(DataError, match=r"user_artists\.dat, line 1: empty file"):
        get_dataset("lastfm").parse(raw)
    raw = write_delicious(tmp_path / "dl")
    (raw / "bookmark_tags.dat").unlink()
    with pytest.raises(DataError, match=r"bookmark_tags\.dat: raw file missing"):
        get_dataset("delicious").parse(raw)


def test_invalid_utf8_in_a_numeric_file_names_the_line(tmp_path: Path) -> None:
    raw = write_lastfm(tmp_path / "raw")
    path = raw / "user_friends.dat"
    lines = path.read_bytes().split(b"\n")
    lines[2] = b"2\t4\xe9\r"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as ei:
        get_dataset("lastfm").parse(raw)
    assert (Path(ei.value.file), ei.value.line) == (path, 3) and "not valid utf-8" in str(ei.value)


# ---------------------------------------------------------------------------------------------- acquisition
def _zip(path: Path, src: Path, folder: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(src.iterdir()):
            zf.write(f, f"{folder}/{f.name}" if folder else f.name)
        zf.writestr("__MACOSX/._user_artists.dat", b"junk")
    return path


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No network: the official download fails; the download cache is a fresh temporary directory."""
    return go_offline(monkeypatch, tmp_path, mlcsv)


@pytest.mark.parametrize("name", ["lastfm", "delicious"])
def test_acquire_from_local_unpacked_files(tmp_path: Path, offline: Path, name: str) -> None:
    ds = get_dataset(name)
    src = tmp_path / "src"
    files = WRITERS[name](src / ds.folder)
    dest = tmp_path / "data" / name
    res = ds.acquire(dest, src, 5)  # the folder named like the zip below source_dir ...
    assert res.source == f"local directory {src}" and res.layout == "unpacked"
    assert ds.is_acquired(dest) and (dest / "readme.txt").is_file()
    assert ds.parse(dest).ratings.height == ds.parse(files).ratings.height
    shutil.rmtree(dest)
    assert ds.acquire(dest, files, 5).layout == "unpacked"  # ... or source_dir itself
    (dest / ds.required_files[0]).unlink()
    assert not ds.is_acquired(dest)


def test_acquire_keeps_the_optional_timestamps_file(tmp_path: Path, offline: Path) -> None:
    files = write_lastfm(tmp_path / "src", timestamps_file=True)
    dest = tmp_path / "data" / "lastfm"
    get_dataset("lastfm").acquire(dest, files, 5)
    assert (dest / "user_taggedartists-timestamps.dat").is_file()
    assert get_dataset("lastfm").parse(dest).notes["timestamp_source"] == "user_taggedartists-timestamps.dat"


@pytest.mark.parametrize("folder", [None, "hetrec2011-lastfm-2k"], ids=["top-level", "in-folder"])
def test_acquire_lastfm_from_local_zip(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch, folder: str | None
) -> None:
    files = write_lastfm(tmp_path / "files")
    src = tmp_path / "src"
    src.mkdir()
    z = _zip(src / "hetrec2011-lastfm-2k.zip", files, folder)
    dest = tmp_path / "data" / "lastfm"
    with pytest.raises(AcquisitionError) as ei:  # our small zip is not the pinned official one
        get_dataset("lastfm").acquire(dest, src, 5)
    assert f"{z}: md5 mismatch: expected {LASTFM_MD5}, found {_md5(z)}" in str(ei.value)
    assert not dest.exists()
    monkeypatch.setattr(LastFM, "md5", _md5(z))
    res = get_dataset("lastfm").acquire(dest, src, 5)
    assert res.layout == "zip"
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in files.iterdir())  # no __MACOSX junk
    assert get_dataset("lastfm").parse(dest).ratings.height == 8
    shutil.rmtree(dest)
    assert get_dataset("lastfm").acquire(dest, z, 5).layout == "zip"  # the zip itself as the source


def test_truncated_zip_is_refused_clearly(tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("lastfm", "delicious"):
        ds = get_dataset(name)
        src = tmp_path / f"src-{name}"
        src.mkdir()
        z = _zip(src / ds.archive, WRITERS[name](tmp_path / f"files-{name}"))
        z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
        if ds.md5:
            monkeypatch.setattr(type(ds), "md5", _md5(z))  # so that extraction, not the checksum, meets it
        dest = tmp_path / "data" / name
        with pytest.raises(AcquisitionError) as ei:
            ds.acquire(dest, src, 5)
        assert f"{z}: not a readable zip archive (corrupt or truncated)" in str(ei.value)
        assert not dest.exists()


def test_delicious_official_download_records_sha256_then_verifies(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z1 = _zip(tmp_path / "v1.zip", write_delicious(tmp_path / "files"))
    calls: list[str] = []
    monkeypatch.setattr(mlcsv, "download", fake_download(z1, calls))
    ds = get_dataset("delicious")
    dest = tmp_path / "data" / "delicious"
    res = ds.acquire(dest, None, 5)
    assert res.source == ds.url and calls == [ds.url] and ds.is_acquired(dest)
    sidecar = offline / "hetrec2011-delicious-2k.zip.sha256"
    digest = hashlib.sha256(z1.read_bytes()).hexdigest()
    assert sidecar.read_text() == f"{digest}  hetrec2011-delicious-2k.zip\n"
    ds.acquire(tmp_path / "again", None, 5)  # same bytes: verified against the sidecar
    z2 = _zip(tmp_path / "v2.zip", write_delicious(tmp_path / "files2", timestamps_file=True))
    (offline / "hetrec2011-delicious-2k.zip").unlink()
    monkeypatch.setattr(mlcsv, "download", fake_download(z2, calls))
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(tmp_path / "data2", None, 5)
    assert f"sha256 mismatch: expected {digest}" in str(ei.value) and str(sidecar) in str(ei.value)


def test_lastfm_official_download_verified_with_pinned_md5(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = _zip(tmp_path / "served.zip", write_lastfm(tmp_path / "files"))
    calls: list[str] = []
    monkeypatch.setattr(mlcsv, "download", fake_download(z, calls))
    dest = tmp_path / "data" / "lastfm"
    with pytest.raises(AcquisitionError, match="md5 mismatch"):
        get_dataset("lastfm").acquire(dest, None, 5)
    monkeypatch.setattr(LastFM, "md5", _md5(z))
    assert get_dataset("lastfm").acquire(dest, None, 5).source == LastFM.url
    assert (offline / "hetrec2011-lastfm-2k.zip").is_file() and get_dataset("lastfm").is_acquired(dest)


@pytest.mark.parametrize("name", ["lastfm", "delicious"])
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
    assert f"Download {ds.url}" in msg and f"put {ds.archive} itself, or the files it holds" in msg
    assert f"{ds.folder}/ folder" in msg and "acquire.source_dir" in msg and str(dest) in msg
    assert ("(MD5 296d61afe4e8632b173fc2dd3be20ce2)" in msg) == (name == "lastfm")
    assert not dest.exists()
    with pytest.raises(AcquisitionError, match="no network"):
        ds.acquire(dest, None, 5)


# ---------------------------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def real_lastfm() -> CanonicalTables:
    if not all((REAL_LASTFM / f).is_file() for f in LastFM.required_files):
        pytest.skip("../shared/datasets/hetrec2011-lastfm-2k not present")
    return get_dataset("lastfm").parse(REAL_LASTFM)


@pytest.mark.realdata
def test_real_lastfm_counts_and_side_information(real_lastfm: CanonicalTables) -> None:
    t = real_lastfm
    assert (t.n_users, t.n_items, t.ratings.height) == (1892, 17_632, 92_834)
    assert (
        t.ratings["weight"].cast(pl.Int64).sum() == t.notes["play_count_total"] == 69_183_975
        and t.ratings["weight"].min() >= 1
    )
    n = t.notes
    assert n["tag_assignments"] == 186_479 and n["tags_listed"] == 11_946 and n["tags_encoding"] == "latin-1"
    assert n["friends_pairs"] == 25_434 and n["friends_pairs_one_directional"] == 0
    assert n["tag_assignments_artist_not_listened"] == 1538 and n["tagged_artists_not_listened"] == 390
    assert n["tagged_pairs"] == 71_064 and n["tagged_pairs_listened"] == 20_665
    assert n["tag_dates_implausible"] == 5 and n["interactions_with_timestamp"] == 20_664
    dated = t.ratings.filter(pl.col("timestamp") != MISSING_TIMESTAMP)["timestamp"]
    assert dated.len() == 20_664 and dated.min() >= 1_009_843_200
    assert int(t.users["friends"].list.len().sum()) == 25_434
    metallica = _row(t, "item", "707")
    assert metallica["name"] == "Metallica" and "thrash metal" in metallica["tags"]
    assert _row(t, "user", "2")["friends"][:3] == ["275", "428", "515"]


@pytest.mark.realdata
def test_real_lastfm_features(real_lastfm: CanonicalTables, tmp_path: Path) -> None:
    from tasks.features import build_features

    t = real_lastfm
    dims = build_features(
        get_dataset("lastfm"),
        t.users,
        t.items,
        t.n_users,
        t.n_items,
        tmp_path / "features",
        age_encoding="raw",
        min_df=1,
        svd_k=8,
        seed=0,
    )
    assert dims["user_bow"] == 1892 and dims["user_fields"] == {"friends": 1892}  # the friendship matrix
    assert dims["item_bow"] == 9718 and dims["item_fields"] == {"tags": 9718}  # tags used on listened artists
    assert dims["user_friends_svd"] == 8 and dims["item_tags_svd"] == 8
