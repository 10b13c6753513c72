"""A new raw copy replaces the old one only once it is whole: an archive or directory that lacks a required file,
holds a file failing its checksum, is corrupt, or fails mid-extraction raises ``AcquisitionError`` (or the
dataset's ``DataError``) naming the file, and the complete earlier copy stays byte-identical, with no temporary
folders left. Checked on the shared helpers and on every dataset's acquisition routes (no network: local files
and the ``fake_download`` / ``go_offline`` seams of conftest)."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

import tasks.acquire as acquire_mod
import tasks.common.io as io_mod
import tasks.datasets._movielens_csv as mlcsv
import tasks.datasets.deepcf as deepcf_mod
import tasks.datasets.douban as douban_mod
import tasks.datasets.ml100k as ml100k_mod
from tasks.acquire import Checksum, IncompleteCopyError, acquire_dataset, copy_files, extract_zip, staged_dir
from tasks.common.errors import AcquisitionError, DataError
from tasks.common.io import atomic_dir
from tasks.common.paths import Layout
from tasks.datasets import get_dataset
from tasks.datasets.ml100k import RECBOLE_FILES, RECBOLE_PREFIX, MovieLens100K
from tests.acquire.test_acquire import _leftovers, _make_zip, _snapshot
from tests.conftest import fake_download, go_offline, no_network, write_ml100k
from tests.datasets.test_datasets_amazon import C, write_2014
from tests.datasets.test_datasets_custom import write_custom
from tests.datasets.test_datasets_deepcf import write_deepcf
from tests.datasets.test_datasets_douban import write_full
from tests.datasets.test_datasets_hetrec import WRITERS as HETREC_WRITERS
from tests.datasets.test_datasets_movielens import WRITERS as MOVIELENS_WRITERS
from tests.datasets.test_ml100k import write_recbole

WRITERS = {**MOVIELENS_WRITERS, **HETREC_WRITERS}
OLD = {"u.data": b"old ratings\n", "u.item": b"old items\n", "u.user": b"old users\n"}


def _old_copy(dest: Path, files: dict[str, bytes] = OLD) -> dict[str, bytes]:
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (dest / name).write_bytes(data)
    return _snapshot(dest)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _kept(dest: Path, before: dict[str, bytes]) -> None:
    """``dest`` is byte-identical to ``before`` and nothing temporary is left beside or inside it."""
    assert _snapshot(dest) == before
    assert _leftovers(dest.parent) == []


# ---------------------------------------------------------------------------------------------- shared helpers
def test_extract_zip_lacking_a_required_file_keeps_the_old_copy(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "ml-100k"
    before = _old_copy(dest)
    archive = _make_zip(tmp_path / "new.zip", {"ml-100k/u.data": b"new\n", "ml-100k/u.item": b"new\n"})
    with pytest.raises(IncompleteCopyError) as ei:
        extract_zip(archive, dest, lambda n: n.rsplit("/", 1)[-1], required=("u.data", "u.item", "u.user"))
    assert str(ei.value) == f"{archive}: incomplete: lacks ['u.user'] (required files: ['u.data', 'u.item', 'u.user'])"
    assert ei.value.missing == ["u.user"]
    _kept(dest, before)


def test_extract_zip_checksum_mismatch_keeps_the_old_copy(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    archive = _make_zip(tmp_path / "new.zip", {"u.data": b"tampered\n"})
    pinned = {"u.data": Checksum("sha256", _sha256(b"genuine\n"))}
    with pytest.raises(AcquisitionError) as ei:
        extract_zip(archive, dest, required=("u.data",), checksums=pinned)
    genuine, found = _sha256(b"genuine\n"), _sha256(b"tampered\n")
    assert str(ei.value) == f"{archive}: u.data: sha256 mismatch: expected {genuine}, found {found}"
    _kept(dest, before)
    assert extract_zip(archive, dest, checksums={"u.data": Checksum("sha256", found)})
    assert _snapshot(dest) == {"u.data": b"tampered\n"} and _leftovers(dest.parent) == []


def test_a_pinned_file_is_required_too(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    archive = _make_zip(tmp_path / "new.zip", {"u.data": b"x\n"})
    with pytest.raises(IncompleteCopyError, match=r"lacks \['u.item'\]"):
        extract_zip(archive, dest, checksums={"u.item": Checksum("md5", "0" * 32)})
    _kept(dest, before)


def test_exception_mid_extraction_keeps_the_old_copy(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    archive = _make_zip(tmp_path / "new.zip", {"u.data": b"1\n", "u.item": b"2\n", "u.user": b"3\n"})
    seen: list[str] = []

    def select(name: str) -> str:
        seen.append(name)
        if len(seen) == 2:  # one member already written to the temporary directory
            raise KeyboardInterrupt
        return name

    with pytest.raises(KeyboardInterrupt):
        extract_zip(archive, dest, select)
    _kept(dest, before)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "member-data"])
def test_corrupt_archive_keeps_the_old_copy(tmp_path: Path, damage: str) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    data = bytearray(_make_zip(tmp_path / "full.zip", {"u.data": b"1\t1\t5\t1\n" * 500}).read_bytes())
    if damage == "garbage":
        data = bytearray(os.urandom(len(data)))
    elif damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[60] ^= 0xFF  # inside the member's compressed data
    archive = tmp_path / "new.zip"
    archive.write_bytes(bytes(data))
    with pytest.raises(AcquisitionError, match="corrupt or truncated") as ei:
        extract_zip(archive, dest, required=("u.data",))
    assert str(archive) in str(ei.value)
    _kept(dest, before)


def test_copy_files_checksum_mismatch_keeps_the_old_copy(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _old_copy(src, {"u.data": b"tampered\n"})
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(AcquisitionError, match=f"{src}: u.data: md5 mismatch"):
        copy_files(src, ["u.data"], dest, checksums={"u.data": Checksum("md5", hashlib.md5(b"x").hexdigest())})
    _kept(dest, before)


def test_staged_dir_checks_before_the_swap(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    with pytest.raises(IncompleteCopyError, match=r"lacks \['u.user'\]"), staged_dir(dest, OLD) as tmp:
        (tmp / "u.data").write_bytes(b"new\n")
        (tmp / "u.item").write_bytes(b"new\n")
    _kept(dest, before)
    with pytest.raises(OSError, match="disk full"), staged_dir(dest, ("u.data",)) as tmp:
        (tmp / "u.data").write_bytes(b"new\n")
        raise OSError("disk full")
    _kept(dest, before)
    with staged_dir(dest, ("u.data",)) as tmp:
        (tmp / "u.data").write_bytes(b"new\n")
    assert _snapshot(dest) == {"u.data": b"new\n"} and _leftovers(dest.parent) == []


def test_atomic_dir_puts_the_old_copy_back_when_the_final_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "data" / "x"
    before = _old_copy(dest)
    real_replace = os.replace

    def failing(src: str | Path, dst: str | Path) -> None:
        if Path(src).name.endswith(".tmp") and Path(dst) == dest:
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", failing)
    with pytest.raises(OSError, match="rename failed"), atomic_dir(dest) as tmp:
        (tmp / "u.data").write_bytes(b"new\n")
    _kept(dest, before)


# ---------------------------------------------------------------------------------------------- MovieLens, HetRec
def _zip_without(path: Path, folder: str, files: Path, drop: str) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(files.iterdir()):
            if f.name != drop:
                zf.write(f, f"{folder}/{f.name}")
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return go_offline(monkeypatch, tmp_path, mlcsv)


ZIP_DATASETS = ["ml-1m", "ml-10m", "ml-20m", "ml-latest-small", "lastfm", "delicious"]


def _complete_copy(name: str, tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    """A complete raw copy acquired from a local unpacked folder; returns (files, dest, snapshot)."""
    files = WRITERS[name](tmp_path / "files")
    dest = tmp_path / "data" / name
    get_dataset(name).acquire(dest, files, 5)
    assert get_dataset(name).is_acquired(dest)
    return files, dest, _snapshot(dest)


@pytest.mark.parametrize("name", ZIP_DATASETS)
def test_local_zip_lacking_a_required_file_keeps_the_complete_copy(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    files, dest, before = _complete_copy(name, tmp_path)
    ds = get_dataset(name)
    drop = ds.required_files[1]
    (tmp_path / "src").mkdir()
    z = _zip_without(tmp_path / "src" / ds.archive, ds.folder, files, drop)
    if ds.md5:
        monkeypatch.setattr(type(ds), "md5", _md5(z))  # a genuine archive (its checksum matches) missing a file
    with pytest.raises(AcquisitionError) as ei:
        ds.acquire(dest, tmp_path / "src", 5)
    msg = str(ei.value)
    assert f"local directory {tmp_path / 'src'}: {z}: incomplete: lacks [{drop!r}]" in msg
    assert f"{dest} was left as it was" in msg
    _kept(dest, before)
    assert ds.is_acquired(dest)


@pytest.mark.parametrize("name", ["ml-1m", "lastfm"])
def test_official_zip_lacking_a_required_file_keeps_the_complete_copy(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    files, dest, before = _complete_copy(name, tmp_path)
    ds = get_dataset(name)
    z = _zip_without(tmp_path / "served.zip", ds.folder, files, ds.required_files[0])
    monkeypatch.setattr(type(ds), "md5", _md5(z))
    monkeypatch.setattr(mlcsv, "download", fake_download(z, []))
    with pytest.raises(AcquisitionError, match=rf"incomplete: lacks \[{ds.required_files[0]!r}\]"):
        ds.acquire(dest, None, 5)
    _kept(dest, before)


def test_unpinned_download_lacking_a_file_keeps_the_copy_and_records_no_digest(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, dest, before = _complete_copy("ml-latest-small", tmp_path)
    z = _zip_without(tmp_path / "served.zip", "ml-latest-small", files, "tags.csv")
    monkeypatch.setattr(mlcsv, "download", fake_download(z, []))
    with pytest.raises(AcquisitionError, match=r"incomplete: lacks \['tags.csv'\]"):
        get_dataset("ml-latest-small").acquire(dest, None, 5)
    _kept(dest, before)
    assert sorted(p.name for p in offline.iterdir()) == []  # neither the bad zip nor a sidecar for it


def test_pipeline_acquire_with_force_keeps_the_complete_copy(
    tmp_path: Path, offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline's own entry point (``acquire --force``) with an incomplete archive."""
    layout = Layout(tmp_path / "proj")
    files = WRITERS["ml-1m"](tmp_path / "files")
    assert acquire_dataset(layout, "ml-1m", files, 5) is not None
    before = _snapshot(layout.raw("ml-1m"))
    src = tmp_path / "src"
    src.mkdir()
    z = _zip_without(src / "ml-1m.zip", "ml-1m", files, "users.dat")
    monkeypatch.setattr(type(get_dataset("ml-1m")), "md5", _md5(z))
    with pytest.raises(AcquisitionError, match=r"lacks \['users.dat'\]"):
        acquire_dataset(layout, "ml-1m", src, 5, force=True)
    _kept(layout.raw("ml-1m"), before)
    assert acquire_dataset(layout, "ml-1m", src, 5) is None  # still complete: nothing to do


# ---------------------------------------------------------------------------------------------- ml-100k
@pytest.fixture
def ml100k_offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ml100k_mod, "download", no_network)
    monkeypatch.setattr(ml100k_mod, "DEFAULT_CACHE", tmp_path / "cache")

    def no_pypi(*args: object) -> Path:
        raise AcquisitionError("no network (PyPI)")

    monkeypatch.setattr(ml100k_mod, "pip_download", no_pypi)


def _ml100k_copy(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes]]:
    files = write_ml100k(tmp_path / "files")
    dest = tmp_path / "data" / "ml-100k"
    MovieLens100K().acquire(dest, files, 5)
    return files, dest, _snapshot(dest)


@pytest.mark.parametrize("drop", ["u.item", "u.user"])
def test_ml100k_local_dir_lacking_a_required_file_keeps_the_copy(
    tmp_path: Path, ml100k_offline: None, drop: str
) -> None:
    files, dest, before = _ml100k_copy(tmp_path)
    (files / drop).unlink()
    with pytest.raises(AcquisitionError, match=rf"{files}: missing \[{drop!r}\]"):
        MovieLens100K().acquire(dest, files, 5)
    _kept(dest, before)


def test_ml100k_local_and_official_zip_lacking_a_file_keep_the_copy(
    tmp_path: Path, ml100k_offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, dest, before = _ml100k_copy(tmp_path)
    src = tmp_path / "src"
    src.mkdir()
    z = _zip_without(src / "ml-100k.zip", "ml-100k", files, "u.user")
    monkeypatch.setattr(ml100k_mod, "MD5", _md5(z))
    monkeypatch.setattr(ml100k_mod, "download", fake_download(z, []))  # the official route serves it too
    with pytest.raises(AcquisitionError) as ei:
        MovieLens100K().acquire(dest, src, 5)
    msg = str(ei.value)
    assert f"local directory {src}: {z}: incomplete: lacks ['u.user']" in msg
    assert f"{ml100k_mod.URL}: " in msg and msg.count("lacks ['u.user']") == 2
    _kept(dest, before)


def test_ml100k_recbole_wheel_lacking_a_file_keeps_the_copy(
    tmp_path: Path, ml100k_offline: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, dest, before = _ml100k_copy(tmp_path)
    rb = write_recbole(files, tmp_path / "rb")
    members = {f"{RECBOLE_PREFIX}{n}": (rb / n).read_bytes() for n in RECBOLE_FILES if n != "ml-100k.item"}
    wheel = _make_zip(tmp_path / "recbole-1.2.1-py3-none-any.whl", members)
    monkeypatch.setattr(ml100k_mod, "pip_download", lambda *args: wheel)
    with pytest.raises(AcquisitionError, match=r"PyPI recbole==1\.2\.1: .*incomplete: lacks \['ml-100k.item'\]"):
        MovieLens100K().acquire(dest, None, 5)
    _kept(dest, before)


# ---------------------------------------------------------------------------------------------- DeepCF
def test_deepcf_incomplete_or_tampered_sources_keep_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch, tmp_path, deepcf_mod)
    ds = get_dataset("deepcf-amusic")
    files = write_deepcf(tmp_path / "files")
    dest = tmp_path / "data" / "deepcf-amusic"
    ds.acquire(dest, files, 5)
    before = _snapshot(dest)
    partial = write_deepcf(tmp_path / "partial")
    (partial / "AMusic.test.negative").unlink()
    with pytest.raises(AcquisitionError, match=r"found only \['AMusic.train.rating', 'AMusic.test.rating'\]"):
        ds.acquire(dest, partial, 5)
    _kept(dest, before)
    # GitHub route: one file does not match its pinned sha256 (our small files are not the published ones)
    monkeypatch.setattr(deepcf_mod, "download", fake_download(lambda url: files / url.rsplit("/", 1)[1], []))
    with pytest.raises(AcquisitionError, match="sha256 mismatch"):
        ds.acquire(dest, None, 5)
    _kept(dest, before)


# ---------------------------------------------------------------------------------------------- Douban
def test_douban_gcmc_tampered_file_keeps_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch, tmp_path, douban_mod)
    dest = tmp_path / "data" / "douban-gcmc"
    before = _old_copy(dest, {douban_mod.MAT_FILE: b"the verified file\n"})
    src = tmp_path / "src"
    _old_copy(src, {douban_mod.MAT_FILE: b"not the published file\n"})
    with pytest.raises(AcquisitionError, match=f"{src / douban_mod.MAT_FILE}: sha256 mismatch"):
        get_dataset("douban-gcmc").acquire(dest, src, 5)
    _kept(dest, before)
    # the file changes between its check and its copy: the copy is verified again before the swap
    monkeypatch.setattr(douban_mod, "verify", lambda path, checksum: None)
    with pytest.raises(AcquisitionError, match=rf"{src / douban_mod.MAT_FILE}: {douban_mod.MAT_FILE}: sha256 mismatch"):
        get_dataset("douban-gcmc").acquire(dest, src, 5)
    _kept(dest, before)


def test_douban_full_without_friendships_keeps_the_copy(tmp_path: Path) -> None:
    dest = write_full(tmp_path / "data" / "douban")
    before = _snapshot(dest)
    src = write_full(tmp_path / "src")
    (src / "user_friend.txt").unlink()
    with pytest.raises(AcquisitionError, match=r"holds no ratings file .* together with a friendship file"):
        get_dataset("douban").acquire(dest, src, 5)
    _kept(dest, before)


# ---------------------------------------------------------------------------------------------- Amazon, custom
def test_amazon_source_lacking_the_metadata_keeps_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tasks.datasets.amazon as amazon_mod

    go_offline(monkeypatch, tmp_path, amazon_mod)
    dest = tmp_path / "data" / "amazon"
    get_dataset("amazon").acquire(dest, write_2014(tmp_path / "files"), 5)
    before = _snapshot(dest)
    src = write_2014(tmp_path / "src")
    (src / f"meta_{C}.json.gz").unlink()
    with pytest.raises(AcquisitionError, match=rf"{src}: lacks \['meta_{C}.json.gz'\]"):
        get_dataset("amazon").acquire(dest, src, 5)
    _kept(dest, before)


def test_custom_source_lacking_a_data_file_keeps_the_copy(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "custom"
    get_dataset("custom").acquire(dest, write_custom(tmp_path / "files"), 5)
    before = _snapshot(dest)
    src = write_custom(tmp_path / "src")
    (src / "items.parquet").unlink()
    with pytest.raises(DataError, match=r"items\.file: data file .*items\.parquet not found"):
        get_dataset("custom").acquire(dest, src, 5)
    _kept(dest, before)


def test_no_dataset_module_swaps_a_directory_without_a_completeness_check() -> None:
    """Raw copies are installed through tasks.acquire (extract_zip, copy_files, staged_dir), never a bare
    ``atomic_dir``, so a new dataset module gets the check before the swap by construction."""
    folder = Path(acquire_mod.__file__).parent / "datasets"
    assert [p.name for p in sorted(folder.glob("*.py")) if "atomic_dir" in p.read_text(encoding="utf-8")] == []
