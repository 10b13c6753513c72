"""Obtaining raw files: local copies, verified downloads, PyPI carriers, and safe archive extraction.

Every function here either completes or leaves nothing behind: downloads go to ``<name>.part`` (resumed
with an HTTP Range request when possible) and are renamed only after the checksum matches; archives are
tested (CRC) and extracted member by member into a temporary directory that is renamed at the end.

A new raw copy replaces the previous one only once it is known to be whole: ``extract_zip``, ``copy_files``
and ``staged_dir`` (for datasets that write their files themselves) check the dataset's required files, and
their checksums where the dataset has them, in the temporary directory *before* the swap, so an archive that
lacks a file (or holds a corrupt one) fails with ``AcquisitionError`` and the earlier copy stays as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from tasks.common.errors import AcquisitionError
from tasks.common.io import atomic_dir
from tasks.common.paths import Layout

if TYPE_CHECKING:
    from tasks.datasets.base import AcquireResult

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path(os.environ.get("HYBRIDREC_DOWNLOAD_CACHE", Path.home() / ".cache" / "hybridrec"))


@dataclass(frozen=True)
class Checksum:
    algorithm: str  # "md5" | "sha256"
    hexdigest: str

    def compute(self, path: Path) -> str:
        h = hashlib.new(self.algorithm)
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        return h.hexdigest()


def verify(path: Path, checksum: Checksum | None) -> None:
    """Raise ``AcquisitionError`` naming the file, the expected and the found digest on mismatch."""
    if checksum is None:
        return
    found = checksum.compute(path)
    if found.lower() != checksum.hexdigest.lower():
        raise AcquisitionError(f"{path}: {checksum.algorithm} mismatch: expected {checksum.hexdigest}, found {found}")


def download(url: str, dest: Path, checksum: Checksum | None, timeout_s: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` (resuming a previous ``.part``), verify, then rename into place."""
    if dest.exists():
        try:
            verify(dest, checksum)
            return dest
        except AcquisitionError:
            log.warning("cached %s fails its checksum; downloading again", dest)
            dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "hybridrec"})
    if offset:
        req.add_header("Range", f"bytes={offset}-")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resumed = offset and resp.status == 206
            mode = "ab" if resumed else "wb"
            with open(part, mode) as fh:
                shutil.copyfileobj(resp, fh, length=1 << 20)
            length = resp.headers.get("Content-Length")
            got = part.stat().st_size - (offset if resumed else 0)
            if length is not None and got != int(length):
                raise AcquisitionError(
                    f"could not download {url}: connection closed after {got} of {length} bytes "
                    f"({part} kept; the next try resumes it)"
                )
    except urllib.error.HTTPError as exc:
        if not (offset and exc.code == 416):  # 416: the .part is already whole (or bogus); verify decides
            raise AcquisitionError(f"could not download {url}: {exc}") from exc
    except (urllib.error.URLError, TimeoutError, OSError, http.client.HTTPException) as exc:
        raise AcquisitionError(f"could not download {url}: {exc}") from exc
    try:
        verify(part, checksum)
    except AcquisitionError:
        part.unlink(missing_ok=True)  # a restart, not a resume, next time
        raise
    os.replace(part, dest)
    return dest


def download_recorded(
    url: str,
    target: Path,
    timeout_s: float,
    accept: Callable[[Path], object] | None = None,
    fetch: Callable[[str, Path, Checksum | None, float], Path] = download,
) -> Path:
    """Download a file that has no published checksum: the first download records its sha256 in a sidecar
    (``<target>.sha256``), later ones are verified against it. ``accept`` (a gzip check, an extraction...) runs
    on the downloaded file before its digest is recorded; if it raises, the file is removed and nothing is
    recorded. ``fetch`` is the download function (dataset modules pass their own name, a test seam)."""
    sidecar = target.with_name(target.name + ".sha256")
    pinned = None
    if sidecar.is_file():
        words = sidecar.read_text(encoding="utf-8").split()
        if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
            raise AcquisitionError(f"{sidecar}: not a sha256 sidecar (delete it to record a new one)")
        pinned = Checksum("sha256", words[0])
    try:
        got = fetch(url, target, pinned, timeout_s)
    except AcquisitionError as exc:
        if pinned is not None and "mismatch" in str(exc):
            raise AcquisitionError(
                f"{exc} (recorded in {sidecar} at the first download; upstream may have published a new version: "
                f"delete the sidecar to accept it)"
            ) from exc
        raise
    if accept is not None:
        try:
            accept(got)
        except Exception:
            got.unlink(missing_ok=True)  # a fresh download next time
            raise
    if pinned is None:
        digest = Checksum("sha256", "").compute(got)
        tmp = sidecar.with_name(sidecar.name + ".tmp")
        tmp.write_text(f"{digest}  {got.name}\n", encoding="utf-8")
        os.replace(tmp, sidecar)
        log.info("recorded sha256 %s of %s in %s", digest, got, sidecar)
    return got


def _safe_member_path(name: str, archive: Path) -> PurePosixPath:
    p = PurePosixPath(name)
    if p.is_absolute() or name.startswith(("/", "\\")) or ".." in p.parts or (len(name) > 1 and name[1] == ":"):
        raise AcquisitionError(f"{archive}: refusing member {name!r}: path outside the target directory")
    return p


class IncompleteCopyError(AcquisitionError):
    """A new raw copy lacks required files (``missing``); the previous copy was kept."""

    def __init__(self, message: str, missing: list[str]) -> None:
        super().__init__(message)
        self.missing = missing


def check_complete(
    directory: Path,
    required: Iterable[str],
    checksums: Mapping[str, Checksum] | None = None,
    origin: str | Path | None = None,
) -> None:
    """Raise ``AcquisitionError`` naming ``origin`` (the archive or source directory the files came from) and
    each required file that ``directory`` lacks, or the first file whose checksum differs (expected, found)."""
    origin = directory if origin is None else origin
    required = list(required)
    missing = [n for n in required if not (directory / n).is_file()]
    missing += [n for n in checksums or {} if n not in required and not (directory / n).is_file()]
    if missing:
        raise IncompleteCopyError(f"{origin}: incomplete: lacks {missing} (required files: {required})", missing)
    for name, checksum in (checksums or {}).items():
        found = checksum.compute(directory / name)
        if found.lower() != checksum.hexdigest.lower():
            raise AcquisitionError(
                f"{origin}: {name}: {checksum.algorithm} mismatch: expected {checksum.hexdigest}, found {found}"
            )


@contextlib.contextmanager
def staged_dir(
    dest: Path,
    required: Iterable[str] = (),
    checksums: Mapping[str, Checksum] | None = None,
    origin: str | Path | None = None,
) -> Iterator[Path]:
    """``atomic_dir`` for a raw copy: yield a temporary directory to fill; it replaces ``dest`` only if it then
    holds every ``required`` file and matches ``checksums`` (``check_complete``). On any failure (an exception
    in the block, a missing file, a checksum mismatch) the temporary directory is removed and ``dest`` is left
    exactly as it was."""
    with atomic_dir(dest) as tmp:
        yield tmp
        check_complete(tmp, required, checksums, dest if origin is None else origin)


def extract_zip(
    archive: Path,
    dest: Path,
    select: Callable[[str], str | None] | None = None,
    required: Iterable[str] = (),
    checksums: Mapping[str, Checksum] | None = None,
) -> list[Path]:
    """Safely extract ``archive`` into ``dest`` (atomically replaced).

    ``select(member_name)`` returns the relative output name for members to keep, or None to skip.
    Rejects absolute paths, ``..`` components and symbolic links; a corrupt or truncated archive, or one whose
    extraction lacks a ``required`` output name or fails one of ``checksums`` (output name → checksum), raises
    ``AcquisitionError`` and leaves ``dest`` untouched.
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise AcquisitionError(f"{archive}: not a readable zip archive (corrupt or truncated): {exc}") from exc
    with zf, staged_dir(dest, required, checksums, origin=archive) as tmp:
        written = _extract_members(zf, archive, tmp, select)
        if not written:
            raise AcquisitionError(f"{archive}: none of the expected members were found")
    return [dest / name for name in written]


def _extract_members(
    zf: zipfile.ZipFile, archive: Path, tmp: Path, select: Callable[[str], str | None] | None
) -> list[str]:
    """Write the selected members of ``zf`` under ``tmp``; return their output names."""
    written: list[str] = []
    for info in zf.infolist():
        _safe_member_path(info.filename, archive)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise AcquisitionError(f"{archive}: refusing member {info.filename!r}: symbolic link")
        if info.is_dir():
            continue
        out_name = select(info.filename) if select else info.filename
        if out_name is None:
            continue
        target = tmp / _safe_member_path(out_name, archive)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, length=1 << 20)
        except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
            raise AcquisitionError(f"{archive}: member {info.filename!r} is corrupt or truncated: {exc}") from exc
        written.append(out_name)
    return written


def copy_files(
    source_dir: Path, names: Iterable[str], dest: Path, checksums: Mapping[str, Checksum] | None = None
) -> list[Path]:
    """Copy the named files from ``source_dir`` into ``dest`` (atomically replaced). Every name is required:
    one missing (before or after the copy), or a copy failing one of ``checksums``, leaves ``dest`` untouched."""
    names = list(names)
    missing = [n for n in names if not (source_dir / n).is_file()]
    if missing:
        raise AcquisitionError(f"{source_dir}: missing {missing} (expected files: {names})")
    with staged_dir(dest, names, checksums, origin=source_dir) as tmp:
        for n in names:
            shutil.copyfile(source_dir / n, tmp / n)
    return [dest / n for n in names]


def pip_download(requirement: str, filename: str, checksum: Checksum, cache: Path, timeout_s: float) -> Path:
    """Fetch one wheel with ``pip download --no-deps`` into ``cache`` and verify it."""
    target = cache / filename
    if target.exists():
        try:
            verify(target, checksum)
            return target
        except AcquisitionError:
            target.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-cache-dir",
            "-q",
            "--timeout",
            str(int(timeout_s)),
            "-d",
            tmp,
            requirement,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        got = Path(tmp) / filename
        if proc.returncode != 0 or not got.exists():
            raise AcquisitionError(
                f"pip download {requirement} failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}"
            )
        verify(got, checksum)
        os.replace(got, target)
    return target


def try_sources(dataset: str, attempts: list[tuple[str, Callable[[], object]]], how_to: str) -> tuple[str, object]:
    """Run each (label, fn) in order until one succeeds; otherwise raise one error listing every failure."""
    errors: list[str] = []
    for label, fn in attempts:
        try:
            result = fn()
            log.info("%s: raw files obtained from %s", dataset, label)
            return label, result
        except AcquisitionError as exc:
            log.warning("%s: source %s failed: %s", dataset, label, exc)
            errors.append(f"  - {label}: {exc}")
    raise AcquisitionError(
        f"could not obtain the raw files of {dataset!r}; tried, in order:\n" + "\n".join(errors) + f"\n{how_to}"
    )


# --- the acquire stage -----------------------------------------------------------------------------------


def acquire_dataset(
    layout: Layout,
    name: str,
    source_dir: Path | None,
    timeout_s: float,
    force: bool = False,
    options: dict[str, Any] | None = None,
) -> AcquireResult | None:
    """Fill ``data/<name>`` unless it already holds a complete copy (of the choice ``options`` make, for
    datasets that take options: ``datasets.<name>`` in params.yaml). Returns None when nothing was done."""
    from tasks.datasets import get_dataset  # the datasets use this module's tools: import them lazily

    ds = get_dataset(name).apply_options(options or {})
    raw = layout.raw(name)
    if not force and ds.is_acquired(raw):
        log.info("%s: raw files already present in %s", name, raw)
        return None
    return ds.acquire(raw, source_dir, timeout_s)
