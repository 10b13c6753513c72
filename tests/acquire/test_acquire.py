"""Acquisition: checksums, resumable downloads (local HTTP server only), safe zip extraction, source fallback.

Nothing here touches the network: downloads come from an ``http.server`` on 127.0.0.1, and the dataset's
network sources are monkeypatched away.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import tasks.datasets.ml100k as ml100k_mod
from tasks.acquire import Checksum, copy_files, download, extract_zip, try_sources, verify
from tasks.common.errors import AcquisitionError
from tasks.datasets.ml100k import RECBOLE_FILES, RECBOLE_PREFIX, URL, MovieLens100K
from tests.datasets.test_ml100k import write_recbole

BODY = bytes(range(256)) * 400  # 102,400 bytes


def _leftovers(d: Path) -> list[str]:
    """Names under ``d`` that a failed run must not leave: temporary dirs/files and partial downloads."""
    if not d.exists():
        return []
    return sorted(
        str(p.relative_to(d)) for p in d.rglob("*") if p.name.endswith((".tmp", ".part", ".old")) or ".tmp" in p.name
    )


def _digest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()


def _make_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _snapshot(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


GOOD_MEMBERS = {"ml-100k/u.data": b"1\t1\t5\t1\n", "ml-100k/README": b"readme\n"}


def _flatten(name: str) -> str:
    return name.rsplit("/", 1)[-1]


# ------------------------------------------------------------------ local HTTP server
class _Server:
    """Serves ``body`` at any path; honours ``Range: bytes=N-`` unless told not to; records Range headers."""

    def __init__(self) -> None:
        self.body = BODY
        self.honour_range = True
        self.cut_after: int | None = None  # send Content-Length of the whole body but only this many bytes
        self.status: int | None = None  # force an error status
        self.chunked_cut = False  # chunked transfer that stops mid-chunk (http.client raises IncompleteRead)
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                server.ranges.append(rng)
                body = server.body
                if server.status is not None:
                    self.send_error(server.status)
                    return
                if server.chunked_cut:
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.write(b"%x\r\n" % len(body) + body[:1000])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                start = 0
                if rng and server.honour_range:
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                payload = body[start:]
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload if server.cut_after is None else payload[: server.cut_after])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/ml-100k.zip"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    s = _Server()
    yield s
    s.close()


# ------------------------------------------------------------------ verify
@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_verify_checksum_mismatch_names_file_expected_and_found(tmp_path: Path, algorithm: str) -> None:
    f = tmp_path / "ml-100k.zip"
    f.write_bytes(BODY)
    right = _digest(algorithm, BODY)
    wrong = _digest(algorithm, b"something else")
    verify(f, Checksum(algorithm, right))
    verify(f, Checksum(algorithm, right.upper()))  # hex case does not matter
    verify(f, None)
    with pytest.raises(AcquisitionError) as ei:
        verify(f, Checksum(algorithm, wrong))
    assert str(ei.value) == f"{f}: {algorithm} mismatch: expected {wrong}, found {right}"
    assert f.read_bytes() == BODY  # verify never touches the file


# ------------------------------------------------------------------ download
@pytest.mark.parametrize("algorithm", ["md5", "sha256"])
def test_download_checksum_mismatch_removes_part_and_next_try_restarts(
    server: _Server, tmp_path: Path, algorithm: str
) -> None:
    dest = tmp_path / "cache" / "ml-100k.zip"
    ck = Checksum(algorithm, _digest(algorithm, BODY))
    server.body = BODY[:-1] + b"X"  # corrupted upstream copy
    with pytest.raises(AcquisitionError) as ei:
        download(server.url, dest, ck, timeout_s=5)
    msg = str(ei.value)
    found = _digest(algorithm, server.body)
    assert f"{dest}.part: {algorithm} mismatch: expected {ck.hexdigest}, found {found}" in msg
    assert not dest.exists()
    assert _leftovers(dest.parent) == []  # the .part is gone: a restart, not a resume

    server.body = BODY
    assert download(server.url, dest, ck, timeout_s=5) == dest
    assert dest.read_bytes() == BODY
    assert server.ranges == [None, None]  # the second try did not ask for a Range
    assert _leftovers(dest.parent) == []


def test_download_resumes_a_partial_file_with_range(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k.zip"
    part = tmp_path / "ml-100k.zip.part"
    part.write_bytes(BODY[:40_000])
    download(server.url, dest, Checksum("md5", _digest("md5", BODY)), timeout_s=5)
    assert server.ranges == ["bytes=40000-"]
    assert dest.read_bytes() == BODY
    assert not part.exists()


def test_download_restarts_when_server_ignores_range(server: _Server, tmp_path: Path) -> None:
    server.honour_range = False
    dest = tmp_path / "ml-100k.zip"
    (tmp_path / "ml-100k.zip.part").write_bytes(BODY[:40_000])
    download(server.url, dest, Checksum("sha256", _digest("sha256", BODY)), timeout_s=5)
    assert server.ranges == ["bytes=40000-"]
    assert dest.read_bytes() == BODY  # overwritten, not appended
    assert _leftovers(tmp_path) == []


def test_download_complete_part_answered_416_is_not_poisoned(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k.zip"
    (tmp_path / "ml-100k.zip.part").write_bytes(BODY)  # a run killed after the last byte, before the rename
    download(server.url, dest, Checksum("md5", _digest("md5", BODY)), timeout_s=5)
    assert server.ranges == [f"bytes={len(BODY)}-"]
    assert dest.read_bytes() == BODY and _leftovers(tmp_path) == []


def test_download_bogus_part_answered_416_is_dropped(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k.zip"
    (tmp_path / "ml-100k.zip.part").write_bytes(b"\0" * (len(BODY) + 10))
    ck = Checksum("md5", _digest("md5", BODY))
    with pytest.raises(AcquisitionError, match="md5 mismatch"):
        download(server.url, dest, ck, timeout_s=5)
    assert _leftovers(tmp_path) == [] and not dest.exists()
    download(server.url, dest, ck, timeout_s=5)
    assert dest.read_bytes() == BODY


def test_download_cut_connection_keeps_part_and_next_try_resumes(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k.zip"
    ck = Checksum("sha256", _digest("sha256", BODY))
    server.cut_after = 30_000
    with pytest.raises(AcquisitionError, match=f"connection closed after 30000 of {len(BODY)} bytes"):
        download(server.url, dest, ck, timeout_s=5)
    assert not dest.exists()
    assert (tmp_path / "ml-100k.zip.part").stat().st_size == 30_000
    server.cut_after = None
    download(server.url, dest, ck, timeout_s=5)
    assert server.ranges == [None, "bytes=30000-"]
    assert dest.read_bytes() == BODY and _leftovers(tmp_path) == []


def test_download_broken_chunked_transfer_is_an_acquisition_error(server: _Server, tmp_path: Path) -> None:
    server.chunked_cut = True
    dest = tmp_path / "ml-100k.zip"
    ck = Checksum("md5", _digest("md5", BODY))
    with pytest.raises(AcquisitionError, match=f"could not download {server.url}: IncompleteRead"):
        download(server.url, dest, ck, timeout_s=5)
    assert not dest.exists()
    server.chunked_cut = False
    download(server.url, dest, ck, timeout_s=5)
    assert dest.read_bytes() == BODY and _leftovers(tmp_path) == []


def test_download_http_error_is_an_acquisition_error(server: _Server, tmp_path: Path) -> None:
    server.status = 404
    dest = tmp_path / "ml-100k.zip"
    with pytest.raises(AcquisitionError, match=f"could not download {server.url}: HTTP Error 404"):
        download(server.url, dest, None, timeout_s=5)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_download_replaces_a_cached_file_that_fails_its_checksum(server: _Server, tmp_path: Path) -> None:
    dest = tmp_path / "ml-100k.zip"
    dest.write_bytes(b"stale")
    download(server.url, dest, Checksum("md5", _digest("md5", BODY)), timeout_s=5)
    assert dest.read_bytes() == BODY
    download(server.url, dest, Checksum("md5", _digest("md5", BODY)), timeout_s=5)  # cached: no request
    assert len(server.ranges) == 1


# ------------------------------------------------------------------ extract_zip
def _assert_refused_then_good_run(archive: Path, dest: Path, before: dict[str, bytes] | None) -> None:
    if before is None:
        assert not dest.exists()
    else:
        assert _snapshot(dest) == before
    assert _leftovers(dest.parent) == []
    good = _make_zip(dest.parent / "good.zip", GOOD_MEMBERS)
    assert sorted(p.name for p in extract_zip(good, dest, _flatten)) == ["README", "u.data"]
    assert _snapshot(dest) == {"README": b"readme\n", "u.data": b"1\t1\t5\t1\n"}
    assert _leftovers(dest.parent) == []


@pytest.mark.parametrize("dest_exists", [False, True], ids=["dest-absent", "dest-present"])
def test_corrupt_zip_is_refused(tmp_path: Path, dest_exists: bool) -> None:
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(os.urandom(4096))
    dest = tmp_path / "out" / "ml-100k"
    before = None
    if dest_exists:
        dest.mkdir(parents=True)
        (dest / "u.data").write_bytes(b"previous\n")
        before = _snapshot(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest)
    assert str(ei.value).startswith(f"{archive}: not a readable zip archive (corrupt or truncated): ")
    assert "File is not a zip file" in str(ei.value)
    _assert_refused_then_good_run(archive, dest, before)


def test_truncated_zip_is_refused(tmp_path: Path) -> None:
    full = _make_zip(tmp_path / "full.zip", {f"ml-100k/u{k}.base": os.urandom(20_000) for k in range(3)})
    data = full.read_bytes()
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(data[: len(data) // 2])
    dest = tmp_path / "out" / "ml-100k"
    with pytest.raises(AcquisitionError, match=r"not a readable zip archive \(corrupt or truncated\)") as ei:
        extract_zip(archive, dest)
    assert str(archive) in str(ei.value)
    _assert_refused_then_good_run(archive, dest, None)


def test_zip_with_corrupt_member_data_is_refused(tmp_path: Path) -> None:
    full = _make_zip(tmp_path / "full.zip", {"ml-100k/u.data": b"1\t1\t5\t1\n" * 500})
    data = bytearray(full.read_bytes())
    data[60] ^= 0xFF  # inside the first member's compressed data; the directory stays readable
    archive = tmp_path / "ml-100k.zip"
    archive.write_bytes(bytes(data))
    dest = tmp_path / "out" / "ml-100k"
    with pytest.raises(AcquisitionError, match=r"member 'ml-100k/u\.data' is corrupt or truncated") as ei:
        extract_zip(archive, dest)
    assert str(archive) in str(ei.value)
    _assert_refused_then_good_run(archive, dest, None)


@pytest.mark.parametrize("evil", ["../evil.txt", "/abs/evil.txt", "ml-100k/../../evil.txt"])
@pytest.mark.parametrize("dest_exists", [False, True], ids=["dest-absent", "dest-present"])
def test_zip_slip_member_is_refused(tmp_path: Path, evil: str, dest_exists: bool) -> None:
    archive = _make_zip(tmp_path / "ml-100k.zip", {"ml-100k/u.data": b"1\t1\t5\t1\n", evil: b"pwned\n"})
    assert evil in zipfile.ZipFile(archive).namelist()  # the member name really is hostile
    dest = tmp_path / "out" / "ml-100k"
    before = None
    if dest_exists:
        dest.mkdir(parents=True)
        (dest / "u.data").write_bytes(b"previous\n")
        before = _snapshot(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest, _flatten)
    assert str(ei.value) == f"{archive}: refusing member {evil!r}: path outside the target directory"
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))
    assert not Path("/abs/evil.txt").exists()
    _assert_refused_then_good_run(archive, dest, before)


def test_symlink_member_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo("ml-100k/u.data"), b"1\t1\t5\t1\n")
        link = zipfile.ZipInfo("ml-100k/u.item")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    dest = tmp_path / "out" / "ml-100k"
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest, _flatten)
    assert str(ei.value) == f"{archive}: refusing member 'ml-100k/u.item': symbolic link"
    _assert_refused_then_good_run(archive, dest, None)


def test_zip_without_wanted_members_is_refused(tmp_path: Path) -> None:
    archive = _make_zip(tmp_path / "other.zip", {"something/else.txt": b"x"})
    dest = tmp_path / "out" / "ml-100k"
    with pytest.raises(AcquisitionError, match="none of the expected members were found"):
        extract_zip(archive, dest, lambda n: None if "else" in n else n)
    _assert_refused_then_good_run(archive, dest, None)


# ------------------------------------------------------------------ copy_files
def test_copy_files_missing_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "u.data").write_bytes(b"1\t1\t5\t1\n")
    dest = tmp_path / "out" / "ml-100k"
    with pytest.raises(AcquisitionError) as ei:
        copy_files(src, ["u.data", "u.item"], dest)
    assert str(ei.value) == f"{src}: missing ['u.item'] (expected files: ['u.data', 'u.item'])"
    assert not dest.exists() and _leftovers(tmp_path) == []
    (src / "u.item").write_bytes(b"1|x\n")
    assert copy_files(src, ["u.data", "u.item"], dest) == [dest / "u.data", dest / "u.item"]
    assert _snapshot(dest) == {"u.data": b"1\t1\t5\t1\n", "u.item": b"1|x\n"}
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ try_sources
def test_try_sources_lists_every_attempt_and_the_how_to() -> None:
    def fail(msg: str):  # type: ignore[no-untyped-def]
        def fn() -> object:
            raise AcquisitionError(msg)

        return fn

    with pytest.raises(AcquisitionError) as ei:
        try_sources("toy", [("local", fail("no dir")), ("http://x/y.zip", fail("timed out"))], "Do this by hand.")
    assert str(ei.value) == (
        "could not obtain the raw files of 'toy'; tried, in order:\n"
        "  - local: no dir\n"
        "  - http://x/y.zip: timed out\n"
        "Do this by hand."
    )
    calls: list[str] = []

    def ok() -> str:
        calls.append("ok")
        return "grouplens"

    def never() -> str:
        calls.append("never")
        return "x"

    assert try_sources("toy", [("a", fail("no")), ("b", ok), ("c", never)], "how") == ("b", "grouplens")
    assert calls == ["ok"]


# ------------------------------------------------------------------ MovieLens100K.acquire
def _offline(name: str, tried: list[str]):  # type: ignore[no-untyped-def]
    def source(dest: Path, timeout_s: float) -> str:
        tried.append(name)
        raise AcquisitionError(f"network disabled in tests ({name})")

    return staticmethod(source)


@pytest.fixture
def no_official(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Replace the official-zip source by a failure; records whether it was tried."""
    tried: list[str] = []
    monkeypatch.setattr(MovieLens100K, "_from_official", _offline("official", tried))
    return tried


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, no_official: list[str]) -> list[str]:
    """Replace both network sources (official zip, PyPI wheel) by failures; records which were tried."""
    monkeypatch.setattr(MovieLens100K, "_from_recbole", _offline("recbole", no_official))
    return no_official


def test_acquire_from_local_grouplens_dir(ml100k_small: Path, tmp_path: Path, no_network: list[str]) -> None:
    dest = tmp_path / "data" / "ml-100k"
    ds = MovieLens100K()
    res = ds.acquire(dest, ml100k_small, timeout_s=1)
    assert (res.raw_dir, res.source, res.layout) == (dest, f"local directory {ml100k_small}", "grouplens")
    assert no_network == []
    assert _snapshot(dest) == _snapshot(ml100k_small)
    assert ds.is_acquired(dest) and _leftovers(dest.parent) == []
    assert ds.parse(dest).ratings.height == 1500


def test_acquire_from_local_zip_with_bad_md5_reports_all_attempts(
    ml100k_small: Path, tmp_path: Path, no_network: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    members = {f"ml-100k/{p.name}": p.read_bytes() for p in ml100k_small.iterdir()}
    archive = _make_zip(src / "ml-100k.zip", members)
    found = _digest("md5", archive.read_bytes())
    dest = tmp_path / "data" / "ml-100k"
    ds = MovieLens100K()
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(dest, src, timeout_s=1)
    msg = str(ei.value)
    assert msg.startswith("could not obtain the raw files of 'ml-100k'; tried, in order:\n")
    lines = msg.splitlines()
    assert lines[1] == (f"  - local directory {src}: {archive}: md5 mismatch: expected {ml100k_mod.MD5}, found {found}")
    assert lines[2] == f"  - {URL}: network disabled in tests (official)"
    assert lines[3] == "  - PyPI recbole==1.2.1: network disabled in tests (recbole)"
    assert lines[4].startswith(f"Download {URL} (MD5 {ml100k_mod.MD5}), unzip it")
    assert no_network == ["official", "recbole"]
    assert not dest.exists() and _leftovers(tmp_path) == []
    assert not ds.is_acquired(dest)

    # the next run is not poisoned: the same zip with its real checksum goes through
    monkeypatch.setattr(ml100k_mod, "MD5", found)
    res = ds.acquire(dest, src, timeout_s=1)
    assert (res.source, res.layout) == (f"local directory {src}", "grouplens")
    assert _snapshot(dest) == _snapshot(ml100k_small)
    assert ds.parse(dest).ratings.height == 1500 and _leftovers(tmp_path) == []


def test_acquire_local_dir_without_raw_files(tmp_path: Path, no_network: list[str]) -> None:
    src = tmp_path / "empty"
    src.mkdir()
    with pytest.raises(AcquisitionError, match=f"local directory {src}: {src}: holds neither u.data"):
        MovieLens100K().acquire(tmp_path / "data" / "ml-100k", src, timeout_s=1)
    assert not (tmp_path / "data" / "ml-100k").exists()


def _fake_recbole_wheel(path: Path, recbole_dir: Path) -> Path:
    members = {
        "recbole/__init__.py": b"__version__ = '1.2.1'\n",
        "recbole/dataset_example/ml-1m/ml-1m.inter": b"not wanted\n",
        "recbole/dataset_example/ml-100k/ml-100k.yaml": b"not wanted\n",
        **{f"{RECBOLE_PREFIX}{name}": (recbole_dir / name).read_bytes() for name in RECBOLE_FILES},
        "recbole-1.2.1.dist-info/RECORD": b"",
    }
    return _make_zip(path, members)


def test_acquire_from_recbole_wheel(
    ml100k_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_official: list[str]
) -> None:
    rb_files = write_recbole(ml100k_small, tmp_path / "rb-src")
    wheel = _fake_recbole_wheel(tmp_path / "wheels" / "recbole-1.2.1-py3-none-any.whl", rb_files)
    calls: list[tuple[str, str, str]] = []

    def fake_pip_download(requirement: str, filename: str, checksum: Checksum, cache: Path, timeout_s: float) -> Path:
        calls.append((requirement, filename, checksum.algorithm))
        return wheel

    monkeypatch.setattr(ml100k_mod, "pip_download", fake_pip_download)
    dest = tmp_path / "data" / "ml-100k"
    ds = MovieLens100K()
    res = ds.acquire(dest, None, timeout_s=1)
    assert (res.source, res.layout) == ("PyPI recbole==1.2.1", "recbole")
    assert no_official == ["official"]
    assert calls == [("recbole==1.2.1", "recbole-1.2.1-py3-none-any.whl", "sha256")]
    assert _snapshot(dest) == _snapshot(rb_files)  # exactly the three atomic files, flattened
    assert ds.is_acquired(dest) and _leftovers(tmp_path) == []
    t = ds.parse(dest)
    assert t.notes["raw_layout"] == "recbole"
    assert t.ratings.equals(ds.parse(ml100k_small).ratings)


def test_acquire_recbole_wheel_with_hostile_member_fails_cleanly(
    ml100k_small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_official: list[str]
) -> None:
    wheel = _fake_recbole_wheel(tmp_path / "bad.whl", write_recbole(ml100k_small, tmp_path / "rb-src"))
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr(zipfile.ZipInfo("../evil.txt"), b"pwned\n")
    monkeypatch.setattr(ml100k_mod, "pip_download", lambda *args: wheel)
    dest = tmp_path / "data" / "ml-100k"
    with pytest.raises(AcquisitionError, match=r"PyPI recbole==1\.2\.1: .*refusing member '\.\./evil\.txt'"):
        MovieLens100K().acquire(dest, None, timeout_s=1)
    assert not dest.exists() and _leftovers(tmp_path) == []
    assert not any(p.name == "evil.txt" for p in tmp_path.rglob("*"))


def test_the_test_suite_cannot_reach_the_network() -> None:
    import socket

    with pytest.raises(OSError, match="tests do not use the network"):
        socket.create_connection(("203.0.113.7", 80), timeout=1)
    with pytest.raises(AcquisitionError, match="could not download"):
        download("http://203.0.113.7/ml-100k.zip", Path("/tmp/never.zip"), None, 1)
