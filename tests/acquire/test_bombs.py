"""Decompression bombs: ``extract_zip`` caps the bytes it writes and the compression ratio (per member and in
all), refuses from the sizes the zip's central directory declares before writing anything, and counts the bytes
it actually decompresses so that a header understating them is stopped at the cap. A refusal is an
``AcquisitionError`` naming the archive, the member, the cap, what was found and how to override; the earlier
raw copy stays byte-identical and nothing temporary is left. No network: local files and conftest's seams."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import tasks.acquire as acquire_mod
import tasks.datasets._movielens_csv as mlcsv
from tasks.acquire import (
    ARCHIVE_SIZES,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_RATIO,
    ENV_MAX_BYTES,
    ENV_MAX_RATIO,
    KNOWN_MAX_RATIO,
    KNOWN_MIN_BYTES,
    MiB,
    acquire_dataset,
    extract_limits,
    extract_zip,
)
from tasks.common.errors import AcquisitionError, ConfigError
from tasks.common.paths import Layout
from tasks.datasets import dataset_names, get_dataset
from tasks.datasets.ml100k import RECBOLE_WHEEL
from tests.acquire.test_acquire import _leftovers, _snapshot
from tests.acquire.test_acquire_safety import WRITERS, _kept, _old_copy
from tests.conftest import fake_download, go_offline, write_ml100k

ZEROS = 50 * MiB  # compresses to ~50 KB at ZIP_DEFLATED
CAP = 4 * MiB


@pytest.fixture(autouse=True)
def _no_cap_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_MAX_BYTES, raising=False)
    monkeypatch.delenv(ENV_MAX_RATIO, raising=False)


def _zip(path: Path, members: dict[str, bytes | int]) -> Path:
    """A ZIP_DEFLATED archive; an ``int`` member is that many zero bytes, written in 1 MiB blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            with zf.open(name, "w") as fh:
                if isinstance(data, bytes):
                    fh.write(data)
                    continue
                for start in range(0, data, MiB):
                    fh.write(bytes(min(MiB, data - start)))
    return path


def _headers(data: bytes, signature: bytes) -> Iterator[int]:
    """Offsets of every occurrence of a header ``signature`` in a zip's bytes."""
    pos = data.find(signature)
    while pos >= 0:
        yield pos
        pos = data.find(signature, pos + 4)


def _lie_about_size(path: Path, member: str, declared: int) -> None:
    """Patch the uncompressed size of ``member`` in its local header and in the central directory."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    patched = 0
    for sig, name_len_at, name_at, size_at in ((b"PK\x03\x04", 26, 30, 22), (b"PK\x01\x02", 28, 46, 24)):
        for pos in _headers(bytes(data), sig):
            (n,) = struct.unpack_from("<H", data, pos + name_len_at)
            if bytes(data[pos + name_at : pos + name_at + n]) == name:
                struct.pack_into("<I", data, pos + size_at, declared)
                patched += 1
    assert patched == 2
    path.write_bytes(bytes(data))


class _Counting(io.RawIOBase):
    """A writer that counts what goes through it to the real one."""

    def __init__(self, dst: IO[bytes]) -> None:
        self.dst, self.count = dst, 0

    def write(self, block: Any) -> int:
        self.count += len(block)
        return self.dst.write(block)


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The bytes each member extraction actually wrote (``_copy_capped`` spied on)."""
    counts: list[int] = []
    real = acquire_mod._copy_capped

    def spy(src: IO[bytes], dst: IO[bytes], *args: Any) -> int:
        counter = _Counting(dst)
        try:
            return real(src, counter, *args)  # type: ignore[arg-type]
        finally:
            counts.append(counter.count)

    monkeypatch.setattr(acquire_mod, "_copy_capped", spy)
    return counts


@pytest.fixture
def no_staging(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Records every ``staged_dir`` entered: a refusal from the central directory must start none."""
    staged: list[Path] = []
    real = acquire_mod.staged_dir

    def spy(dest: Path, *args: Any, **kwargs: Any) -> Any:
        staged.append(dest)
        return real(dest, *args, **kwargs)

    monkeypatch.setattr(acquire_mod, "staged_dir", spy)
    return staged


@pytest.fixture(scope="module")
def zero_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ~50 KB zip whose one member is 50 MiB of zeros (built once)."""
    return _zip(tmp_path_factory.mktemp("bomb") / "bomb.zip", {"ml-100k/u.data": ZEROS})


def _bomb_copy(src: Path, tmp_path: Path, name: str = "bomb.zip") -> Path:
    dst = tmp_path / name
    dst.write_bytes(src.read_bytes())
    return dst


# ---------------------------------------------------------------------------------------------- size cap
def test_huge_member_is_refused_from_the_central_directory(
    tmp_path: Path, zero_bomb: Path, no_staging: list[Path]
) -> None:
    assert zero_bomb.stat().st_size < 100_000
    dest = tmp_path / "data" / "ml-100k"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(zero_bomb, dest, max_bytes=CAP, max_ratio=10_000)
    msg = str(ei.value)
    assert msg.startswith(f"{zero_bomb}: refusing to extract (a decompression bomb?): member 'ml-100k/u.data' ")
    assert f"declares {ZEROS:,} B" in msg and f"the size cap of {CAP:,} B in all" in msg
    assert f"the environment variable {ENV_MAX_BYTES} (or extract_zip's max_bytes argument)" in msg
    assert no_staging == []  # refused before anything was written
    _kept(dest, before)


def test_the_environment_variable_sets_the_cap(
    tmp_path: Path, zero_bomb: Path, monkeypatch: pytest.MonkeyPatch, no_staging: list[Path]
) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    monkeypatch.setenv(ENV_MAX_BYTES, "4M")
    monkeypatch.setenv(ENV_MAX_RATIO, "10000")
    with pytest.raises(AcquisitionError, match=f"the size cap of {CAP:,} B in all"):
        extract_zip(zero_bomb, dest)
    assert no_staging == []
    _kept(dest, before)
    monkeypatch.setenv(ENV_MAX_BYTES, "60M")  # a genuine archive bigger than its cap: the override lets it in
    assert [p.name for p in extract_zip(zero_bomb, dest, lambda n: n.rsplit("/", 1)[-1])] == ["u.data"]
    assert (dest / "u.data").stat().st_size == ZEROS and _leftovers(dest.parent) == []


def test_many_members_are_capped_in_all(tmp_path: Path, no_staging: list[Path]) -> None:
    archive = _zip(tmp_path / "many.zip", {f"part{k}.csv": 2 * MiB for k in range(4)})  # 8 MiB in all
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest, max_bytes=5 * MiB, max_ratio=10_000)
    assert f"member 'part2.csv' declares {2 * MiB:,} B, which brings the members to extract to {6 * MiB:,} B" in str(
        ei.value
    )
    assert no_staging == []
    _kept(dest, before)


def test_only_the_members_to_extract_count(tmp_path: Path, zero_bomb: Path) -> None:
    """A bomb in a member that ``select`` skips is never decompressed: it does not count."""
    archive = tmp_path / "mixed.zip"
    with zipfile.ZipFile(zero_bomb) as src, zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(src.getinfo("ml-100k/u.data"), src.read("ml-100k/u.data"))
        zf.writestr("ml-100k/u.item", b"1|Movie|\n")
    dest = tmp_path / "data" / "x"
    extract_zip(archive, dest, lambda n: "u.item" if n.endswith("u.item") else None, max_bytes=CAP)
    assert _snapshot(dest) == {"u.item": b"1|Movie|\n"}


# ---------------------------------------------------------------------------------------------- ratio cap
def test_ratio_bomb_is_refused(tmp_path: Path, zero_bomb: Path, no_staging: list[Path]) -> None:
    """Within the 4 GiB default of an unknown archive, but 50 MiB from ~50 KB is far beyond ratio 200."""
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(zero_bomb, dest)
    msg = str(ei.value)
    assert f"member 'ml-100k/u.data' declares {ZEROS:,} B from " in msg
    assert f"over the ratio cap of {DEFAULT_MAX_RATIO:g} (the default for an unknown archive)" in msg
    assert f"the environment variable {ENV_MAX_RATIO} (or extract_zip's max_ratio argument)" in msg
    assert no_staging == []
    _kept(dest, before)


def test_ratio_is_capped_over_all_members_too(tmp_path: Path, no_staging: list[Path]) -> None:
    """Members under 1 MiB are not ratio-checked one by one; together they are."""
    archive = _zip(tmp_path / "small-parts.zip", {f"p{k}.csv": MiB - 1 for k in range(3)})
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError, match=r"member 'p1.csv' with the members before it, declares 2,097,150 B"):
        extract_zip(archive, dest)
    assert no_staging == []
    _kept(dest, before)


def test_a_known_archive_gets_its_own_caps(tmp_path: Path, no_staging: list[Path]) -> None:
    archive = _zip(tmp_path / "ml-1m.zip", {"ml-1m/ratings.dat": 8 * MiB})  # under the size cap, not the ratio
    dest = tmp_path / "data" / "ml-1m"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest)
    assert f"over the ratio cap of {KNOWN_MAX_RATIO:g} (ml-1m's ml-1m.zip holds 24,905,384 B)" in str(ei.value)
    _kept(dest, before)


# ---------------------------------------------------------------------------------------------- lying headers
def test_header_understating_the_size_is_refused(tmp_path: Path, zero_bomb: Path, written: list[int]) -> None:
    archive = _bomb_copy(zero_bomb, tmp_path)
    _lie_about_size(archive, "ml-100k/u.data", 1000)
    assert zipfile.ZipFile(archive).getinfo("ml-100k/u.data").file_size == 1000  # the pre-check sees 1000 B
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest, max_bytes=CAP)
    msg = str(ei.value)
    assert f"{archive}: member 'ml-100k/u.data' is corrupt or truncated (or its header misstates its size)" in msg
    assert sum(written) <= 1000  # never more than declared, far from the 50 MiB inside
    _kept(dest, before)


def test_bytes_are_counted_while_streaming(
    tmp_path: Path, zero_bomb: Path, monkeypatch: pytest.MonkeyPatch, written: list[int]
) -> None:
    """Were a header to understate a member in a way the central-directory check cannot see (here: that check
    is switched off), the count of bytes actually decompressed stops it at the cap."""
    monkeypatch.setattr(acquire_mod, "_check_declared", lambda *args: None)
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(zero_bomb, dest, max_bytes=CAP, max_ratio=10_000)
    msg = str(ei.value)
    assert f"member 'ml-100k/u.data' its header declares {ZEROS:,} B but decompresses past the {CAP:,} B" in msg
    assert f"the size cap of {CAP:,} B in all" in msg
    assert sum(written) <= CAP
    _kept(dest, before)
    with pytest.raises(AcquisitionError, match=r"but decompresses [\d,]+ B from [\d,]+ compressed B \(ratio"):
        extract_zip(zero_bomb, dest, max_bytes=ZEROS, max_ratio=KNOWN_MAX_RATIO)  # the ratio, while streaming
    _kept(dest, before)


def test_copy_capped_never_writes_past_the_budget() -> None:
    info = zipfile.ZipInfo("m")
    info.file_size, info.compress_size = 100, 100
    limits = extract_limits(Path("x.zip"), max_bytes=3 * MiB, max_ratio=1e9)
    dst = io.BytesIO()
    with pytest.raises(AcquisitionError, match="decompresses past the 3,145,728 B"):
        acquire_mod._copy_capped(io.BytesIO(bytes(10 * MiB)), dst, Path("x.zip"), info, limits, 3 * MiB)
    assert len(dst.getvalue()) <= 3 * MiB


# ---------------------------------------------------------------------------------------------- genuine archives
def test_a_normal_archive_still_extracts(tmp_path: Path, written: list[int]) -> None:
    files = write_ml100k(tmp_path / "files", n_users=200, n_items=300, per_user=60)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(files.iterdir()):
            zf.write(f, f"ml-100k/{f.name}")
    dest = tmp_path / "data" / "ml-100k"
    _old_copy(dest)
    out = extract_zip(archive, dest, lambda n: n.rsplit("/", 1)[-1], required=("u.data", "u.item", "u.user"))
    assert sorted(p.name for p in out) == sorted(f.name for f in files.iterdir())
    assert _snapshot(dest) == _snapshot(files) and _leftovers(dest.parent) == []
    assert sum(written) == sum(f.stat().st_size for f in files.iterdir())


def test_the_real_ml100k_files_fit_their_caps(tmp_path: Path, shared_ml100k: Path) -> None:
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(shared_ml100k.iterdir()):
            if f.name != "PROVENANCE.md":
                zf.write(f, f"ml-100k/{f.name}")
    dest = tmp_path / "data" / "ml-100k"
    extract_zip(archive, dest, lambda n: n.rsplit("/", 1)[-1], required=("u.data", "u.item", "u.user"))
    assert (dest / "u.data").read_bytes() == (shared_ml100k / "u.data").read_bytes()


def test_every_extracted_archive_has_known_sizes_within_its_caps() -> None:
    archives = {getattr(get_dataset(n), "archive", None) for n in dataset_names()} - {None}
    known = {a.archive: a for sizes in ARCHIVE_SIZES.values() for a in sizes}
    assert archives | {RECBOLE_WHEEL} <= set(known)
    for name, sizes in ARCHIVE_SIZES.items():
        for a in sizes:
            limits = extract_limits(Path(a.archive))
            assert limits.max_bytes == max(2 * a.uncompressed, KNOWN_MIN_BYTES) >= 2 * a.uncompressed
            assert a.uncompressed / a.compressed * 5 <= KNOWN_MAX_RATIO  # a margin of 5 at least
            assert name in limits.origin


def test_limits_precedence_and_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert extract_limits(Path("whatever.zip")).max_bytes == DEFAULT_MAX_BYTES
    assert extract_limits(Path("ml-25m.zip")).max_bytes == 2 * 1_156_670_716
    assert extract_limits(Path("ml-latest-small.zip")).max_bytes == KNOWN_MIN_BYTES
    monkeypatch.setenv(ENV_MAX_BYTES, "8GiB")
    monkeypatch.setenv(ENV_MAX_RATIO, "500")
    env = extract_limits(Path("ml-25m.zip"))
    assert (env.max_bytes, env.max_ratio) == (8 << 30, 500.0)
    assert extract_limits(Path("ml-25m.zip"), max_bytes=123, max_ratio=7).max_bytes == 123  # the argument wins
    monkeypatch.setenv(ENV_MAX_BYTES, "lots")
    with pytest.raises(ConfigError, match=f"parameter '{ENV_MAX_BYTES}': expected a positive number"):
        extract_limits(Path("x.zip"))


# ---------------------------------------------------------------------------------------------- through the datasets
def _bomb_in_place_of(name: str, tmp_path: Path, files: Path) -> Path:
    """The dataset's archive with its real files, except its ratings replaced by 50 MiB of zeros."""
    ds = get_dataset(name)
    members: dict[str, bytes | int] = {f"{ds.folder}/{f.name}": f.read_bytes() for f in sorted(files.iterdir())}
    members[f"{ds.folder}/{ds.required_files[0]}"] = ZEROS
    return _zip(tmp_path / "src" / ds.archive, members)


@pytest.mark.parametrize("name", ["ml-latest-small", "delicious"])
def test_unpinned_local_archive_bomb_keeps_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, no_staging: list[Path]
) -> None:
    """No checksum is pinned for these archives, so a local one is not verified: the caps still hold."""
    go_offline(monkeypatch, tmp_path, mlcsv)
    layout = Layout(tmp_path / "proj")
    files = WRITERS[name](tmp_path / "files")
    assert acquire_dataset(layout, name, files, 5) is not None
    raw = layout.raw(name)
    before = _snapshot(raw)
    bomb = _bomb_in_place_of(name, tmp_path, files)
    staged_before = len(no_staging)
    with pytest.raises(AcquisitionError) as ei:
        acquire_dataset(layout, name, bomb.parent, 5, force=True)
    msg = str(ei.value)
    assert f"{bomb}: refusing to extract (a decompression bomb?)" in msg
    assert f"over the ratio cap of {KNOWN_MAX_RATIO:g} ({name}'s {bomb.name} holds" in msg
    assert len(no_staging) == staged_before
    assert _snapshot(raw) == before and _leftovers(raw.parent) == []


def test_unpinned_download_bomb_records_no_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = go_offline(monkeypatch, tmp_path, mlcsv)
    files = WRITERS["ml-latest-small"](tmp_path / "files")
    dest = tmp_path / "data" / "ml-latest-small"
    get_dataset("ml-latest-small").acquire(dest, files, 5)
    before = _snapshot(dest)
    bomb = _bomb_in_place_of("ml-latest-small", tmp_path, files)
    monkeypatch.setattr(mlcsv, "download", fake_download(bomb, []))
    with pytest.raises(AcquisitionError, match="refusing to extract"):
        get_dataset("ml-latest-small").acquire(dest, None, 5)
    _kept(dest, before)
    assert sorted(p.name for p in cache.iterdir()) == []  # neither the bomb nor a sidecar pinning it
