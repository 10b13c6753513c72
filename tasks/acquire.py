"""Obtaining raw files: local copies, verified downloads, PyPI carriers, and safe archive extraction.

Every function here either completes or leaves nothing behind: downloads go to ``<name>.part`` (resumed
with an HTTP Range request when possible) and are renamed only after the checksum matches; archives are
tested (CRC) and extracted member by member into a temporary directory that is renamed at the end.

A new raw copy replaces the previous one only once it is known to be whole: ``extract_zip``, ``copy_files``
and ``staged_dir`` (for datasets that write their files themselves) check the dataset's required files, and
their checksums where the dataset has them, in the temporary directory *before* the swap, so an archive that
lacks a file (or holds a corrupt one) fails with ``AcquisitionError`` and the earlier copy stays as it was.

Decompression bombs: ``extract_zip`` caps the bytes it writes and the compression ratio, from the official
archives' real sizes (``ARCHIVE_SIZES``) or generic defaults; it refuses from the sizes the zip declares before
writing anything, and counts what it actually decompresses (``HYBRIDREC_MAX_EXTRACT_BYTES`` /
``HYBRIDREC_MAX_EXTRACT_RATIO`` raise the caps).
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
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from tasks.common.errors import AcquisitionError, ConfigError
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


# ---------------------------------------------------------------------------------------------- decompression caps
MiB = 1 << 20
GiB = 1 << 30
ENV_MAX_BYTES = "HYBRIDREC_MAX_EXTRACT_BYTES"
ENV_MAX_RATIO = "HYBRIDREC_MAX_EXTRACT_RATIO"
DEFAULT_MAX_BYTES = 4 * GiB  # an archive the table below does not know (all of the official ones fit)
DEFAULT_MAX_RATIO = 200.0
KNOWN_MAX_RATIO = 50.0  # the known archives' members measure 0.9-5.6 : 1, the archives as a whole 3.3-4.4 : 1
KNOWN_MIN_BYTES = 64 * MiB  # floor of a known archive's cap: upstream may re-issue an unpinned one a bit larger
RATIO_MIN_BYTES = 1 * MiB  # below this many bytes a high ratio (a short README) is harmless: not checked
CAP_MARGIN = 2


@dataclass(frozen=True)
class ArchiveSize:
    """An official archive: its file name, its size and the sum of its members' sizes, in bytes."""

    archive: str
    compressed: int
    uncompressed: int


# Per dataset, the archives its acquisition extracts (looked up by file name). ``uncompressed`` is the sum of the
# official archive's member sizes (listings of the unpacked files; rounded up where a member's size is only
# approximately known, as marked); the cap is CAP_MARGIN times it, at least KNOWN_MIN_BYTES. ``compressed``
# documents the archives' overall ratio (3.3-4.4 : 1) and is not used in the caps.
ARCHIVE_SIZES: dict[str, tuple[ArchiveSize, ...]] = {
    "ml-100k": (
        ArchiveSize("ml-100k.zip", 4_924_029, 16_101_000),  # data files 16,099,536 B (measured) + 2 small scripts
        ArchiveSize("recbole-1.2.1-py3-none-any.whl", 2_130_151, 7_052_269),  # measured on the PyPI wheel
    ),
    "ml-1m": (ArchiveSize("ml-1m.zip", 5_917_549, 24_905_384),),  # ratings.dat 24,594,131 B
    "ml-10m": (ArchiveSize("ml-10m.zip", 65_566_137, 270_000_000),),  # ratings.dat 265,105,635 B; ~ tags.dat
    "ml-20m": (ArchiveSize("ml-20m.zip", 198_702_078, 876_000_000),),  # ratings 533,444,411 B; ~ genome-scores
    "ml-25m": (ArchiveSize("ml-25m.zip", 261_978_986, 1_156_670_716),),  # ratings 678,260,987 + genome 435,164,157
    "ml-latest-small": (ArchiveSize("ml-latest-small.zip", 978_202, 3_400_000),),  # ~; unpinned: the floor applies
    "lastfm": (ArchiveSize("hetrec2011-lastfm-2k.zip", 2_678_105, 13_500_000),),  # 8,079,526 B + ~ timestamps file
    "delicious": (ArchiveSize("hetrec2011-delicious-2k.zip", 10_000_000, 60_000_000),),  # ~ from its readme's counts
}
_BY_ARCHIVE = {a.archive: (name, a) for name, sizes in ARCHIVE_SIZES.items() for a in sizes}


@dataclass(frozen=True)
class ExtractLimits:
    """What ``extract_zip`` may write: ``max_bytes`` in all, no member (nor the whole) expanding more than
    ``max_ratio`` times its compressed size; ``origin`` says where the figures come from (for the error)."""

    max_bytes: int
    max_ratio: float
    origin: str


def _env_number(name: str, value: str, integer: bool) -> float:
    units = {"K": 1 << 10, "M": MiB, "G": GiB, "T": 1 << 40}
    text = value.strip().upper().removesuffix("IB").removesuffix("B")
    scale = units.get(text[-1:], 1) if integer else 1
    try:
        number = float(text[:-1] if scale != 1 else text)
    except ValueError:
        number = -1.0
    if number <= 0:
        example = "8G or 8589934592" if integer else "500"
        raise ConfigError(name, f"a positive number (such as {example})", value)
    return number * scale


def extract_limits(archive: Path, max_bytes: int | None = None, max_ratio: float | None = None) -> ExtractLimits:
    """The caps for ``archive``: an argument wins, then the environment (``HYBRIDREC_MAX_EXTRACT_BYTES``, a byte
    count with an optional K/M/G/T suffix; ``HYBRIDREC_MAX_EXTRACT_RATIO``), then ``ARCHIVE_SIZES`` by the
    archive's file name (``CAP_MARGIN`` × its real uncompressed size, at least ``KNOWN_MIN_BYTES``, ratio
    ``KNOWN_MAX_RATIO``), then the defaults for an unknown archive (4 GiB, ratio 200)."""
    known = _BY_ARCHIVE.get(archive.name)
    if known is not None:
        name, size = known
        cap = max(CAP_MARGIN * size.uncompressed, KNOWN_MIN_BYTES)
        limits = ExtractLimits(cap, KNOWN_MAX_RATIO, f"{name}'s {size.archive} holds {size.uncompressed:,} B")
    else:
        limits = ExtractLimits(DEFAULT_MAX_BYTES, DEFAULT_MAX_RATIO, "the default for an unknown archive")
    env_bytes, env_ratio = os.environ.get(ENV_MAX_BYTES), os.environ.get(ENV_MAX_RATIO)
    if max_bytes is None and env_bytes:
        max_bytes = int(_env_number(ENV_MAX_BYTES, env_bytes, integer=True))
    if max_ratio is None and env_ratio:
        max_ratio = _env_number(ENV_MAX_RATIO, env_ratio, integer=False)
    if max_bytes is not None:
        limits = replace(limits, max_bytes=max_bytes, origin=f"size cap set to {max_bytes:,} B; {limits.origin}")
    if max_ratio is not None:
        limits = replace(limits, max_ratio=max_ratio, origin=f"ratio cap set to {max_ratio:g}; {limits.origin}")
    return limits


def _size_cap(limits: ExtractLimits) -> str:
    return f"the size cap of {limits.max_bytes:,} B in all"


def _bomb(archive: Path, member: str, found: str, cap: str, limits: ExtractLimits) -> AcquisitionError:
    """The refusal: names the archive, the member, what was found, the cap, and how to raise it."""
    env, arg = (ENV_MAX_RATIO, "max_ratio") if "ratio" in cap else (ENV_MAX_BYTES, "max_bytes")
    return AcquisitionError(
        f"{archive}: refusing to extract (a decompression bomb?): member {member!r} {found}, over {cap} "
        f"({limits.origin}); nothing was installed and any previous copy is kept. If the archive is genuine, "
        f"raise the cap with the environment variable {env} (or extract_zip's {arg} argument)"
    )


def _check_ratio(archive: Path, member: str, size: int, packed: int, limits: ExtractLimits, verb: str) -> None:
    if size >= RATIO_MIN_BYTES and size > limits.max_ratio * max(packed, 1):
        found = f"{verb} {size:,} B from {packed:,} compressed B (ratio {size / max(packed, 1):,.0f})"
        raise _bomb(archive, member, found, f"the ratio cap of {limits.max_ratio:g}", limits)


def _check_declared(plan: list[tuple[zipfile.ZipInfo, str]], archive: Path, limits: ExtractLimits) -> None:
    """Refuse from the central directory alone, before anything is written: a member, or the members to
    extract together, declaring more than ``limits`` allow."""
    total = packed = 0
    for info, _ in plan:
        total, packed = total + info.file_size, packed + info.compress_size
        if total > limits.max_bytes:
            found = f"declares {info.file_size:,} B, which brings the members to extract to {total:,} B"
            raise _bomb(archive, info.filename, found, _size_cap(limits), limits)
        _check_ratio(archive, info.filename, info.file_size, info.compress_size, limits, "declares")
        _check_ratio(archive, info.filename, total, packed, limits, "with the members before it, declares")


def _plan_members(
    zf: zipfile.ZipFile, archive: Path, select: Callable[[str], str | None] | None
) -> list[tuple[zipfile.ZipInfo, str]]:
    """The members to extract and their output names; refuses unsafe paths and symbolic links in any member."""
    plan: list[tuple[zipfile.ZipInfo, str]] = []
    for info in zf.infolist():
        _safe_member_path(info.filename, archive)
        mode = (info.external_attr >> 16) & 0o170000
        if mode == 0o120000:
            raise AcquisitionError(f"{archive}: refusing member {info.filename!r}: symbolic link")
        if info.is_dir():
            continue
        out_name = select(info.filename) if select else info.filename
        if out_name is not None:
            plan.append((info, str(_safe_member_path(out_name, archive))))
    if not plan:
        raise AcquisitionError(f"{archive}: none of the expected members were found")
    return plan


def extract_zip(
    archive: Path,
    dest: Path,
    select: Callable[[str], str | None] | None = None,
    required: Iterable[str] = (),
    checksums: Mapping[str, Checksum] | None = None,
    max_bytes: int | None = None,
    max_ratio: float | None = None,
) -> list[Path]:
    """Safely extract ``archive`` into ``dest`` (atomically replaced).

    ``select(member_name)`` returns the relative output name for members to keep, or None to skip.
    Rejects absolute paths, ``..`` components and symbolic links; a corrupt or truncated archive, or one whose
    extraction lacks a ``required`` output name or fails one of ``checksums`` (output name → checksum), raises
    ``AcquisitionError`` and leaves ``dest`` untouched.

    Decompression bombs: the members to extract may expand to ``max_bytes`` in all, and no member (nor all of
    them together) to more than ``max_ratio`` times its compressed size (members under 1 MiB are not
    ratio-checked). Unset, the caps come from the environment variables ``HYBRIDREC_MAX_EXTRACT_BYTES`` (bytes,
    or with a K/M/G/T suffix: ``8G``) and ``HYBRIDREC_MAX_EXTRACT_RATIO``, else from the archive's known size
    (``ARCHIVE_SIZES``: twice the official archive's uncompressed size, at least 64 MiB; ratio 50), else 4 GiB
    and ratio 200 (``extract_limits``). The sizes the zip's central directory declares are checked before
    anything is written; the bytes actually decompressed are counted too, so a header that understates them
    is stopped at the cap. Either way: ``AcquisitionError`` naming the archive, the member, the cap and what
    was found, with ``dest`` as it was and no temporary files left.
    """
    limits = extract_limits(archive, max_bytes, max_ratio)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise AcquisitionError(f"{archive}: not a readable zip archive (corrupt or truncated): {exc}") from exc
    with zf:
        plan = _plan_members(zf, archive, select)
        _check_declared(plan, archive, limits)
        with staged_dir(dest, required, checksums, origin=archive) as tmp:
            _extract_members(zf, archive, tmp, plan, limits)
    return [dest / name for _, name in plan]


def _extract_members(
    zf: zipfile.ZipFile, archive: Path, tmp: Path, plan: list[tuple[zipfile.ZipInfo, str]], limits: ExtractLimits
) -> None:
    """Write the planned members of ``zf`` under ``tmp``, never more than ``limits`` allow in all."""
    written = 0
    for info, out_name in plan:
        target = tmp / out_name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                written += _copy_capped(src, dst, archive, info, limits, limits.max_bytes - written)
        except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile, zlib.error) as exc:
            damage = "is corrupt or truncated (or its header misstates its size)"
            raise AcquisitionError(f"{archive}: member {info.filename!r} {damage}: {exc}") from exc


def _copy_capped(
    src: IO[bytes], dst: IO[bytes], archive: Path, info: zipfile.ZipInfo, limits: ExtractLimits, budget: int
) -> int:
    """Copy ``src`` to ``dst`` counting the bytes; stop before writing past ``budget`` (what the total cap
    leaves) or past the ratio cap for this member, whatever its header declared. Returns the bytes copied."""
    copied = 0
    ratio_stop = max(RATIO_MIN_BYTES, limits.max_ratio * max(info.compress_size, 1))
    declared = f"its header declares {info.file_size:,} B"
    while block := src.read(MiB):
        copied += len(block)
        if copied > budget:
            found = f"{declared} but decompresses past the {budget:,} B the cap leaves for it"
            raise _bomb(archive, info.filename, found, _size_cap(limits), limits)
        if copied > ratio_stop:
            _check_ratio(archive, info.filename, copied, info.compress_size, limits, f"{declared} but decompresses")
        dst.write(block)
    return copied


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
