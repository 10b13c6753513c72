"""Atomic writes (temporary file or folder next to the target, then rename), per-output locks, and small
read helpers.

Nothing the pipeline writes is ever left half-written: a kill mid-write leaves the previous file or folder
(or none), never a truncated one. Folder outputs (``atomic_dir``) are also safe against a second process
writing the same output and against a reader looking at the same time:

* **One writer per output.** ``atomic_dir`` holds ``fcntl.flock`` on ``.<name>.lock`` next to the target for
  the whole write. A second writer logs that it waits for the holder's pid and goes on once it is released
  (``HYBRIDREC_LOCK_TIMEOUT_S``, default 3600 s; past that it refuses with ``OutputLocked``). The lock file is
  removed by its holder on release, so none stays inside a DVC-tracked folder such as ``data/``.
* **Readers see the old or the new folder.** The swap is two renames in a row under the lock (target → its
  ``.<name>.<pid>.old`` name, new → target). Every ``read_*`` here goes through ``settled``, which retries a
  read that finds the target missing while such a swap is under way, so it gets the old or the new file,
  never a FileNotFoundError. Reading several files of one folder is not one transaction: a swap between two
  reads gives files of two versions (stages check what they read against their inputs' manifests).
* **Debris is cleaned.** Temporary names carry the writer's pid (``.<name>.<pid>.<random>.tmp``,
  ``.<name>.<pid>.old``); the next writer of the same target removes what a killed writer left (under the
  lock, and only where the recorded process is gone).
* **Clear failures.** A full disk, a read-only or forbidden folder raise ``OutputError`` (a HybridrecError
  and an OSError with the original errno) that names the target; the temporary copy is removed and the
  previous output is left as it was, so the next run succeeds once the cause is gone.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp

from tasks.common.errors import HybridrecError

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCK_TIMEOUT_ENV = "HYBRIDREC_LOCK_TIMEOUT_S"
LOCK_TIMEOUT_S = 3600.0
LOCK_POLL_S = 0.2
SETTLE_TIMEOUT_S = 10.0
# errors that are about where we write, not about the data: reported as OutputError
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_CAUSE = {
    errno.ENOSPC: "no space left on the device: free some space and run again",
    errno.EDQUOT: "disk quota exceeded: free some space and run again",
    errno.EROFS: "the folder is on a read-only file system: make it writable and run again",
    errno.EACCES: "permission denied: make the folder writable for this user and run again",
    errno.EPERM: "operation not permitted: make the folder writable for this user and run again",
    errno.EFBIG: "file too large for this file system",
}


class OutputError(HybridrecError, OSError):
    """An output could not be written (disk full, read-only or forbidden folder); nothing was changed."""

    def __init__(self, target: Path, exc: OSError) -> None:
        cause = _CAUSE.get(exc.errno or 0, exc.strerror or str(exc))
        self.target, self.cause = target, exc
        self.message = f"cannot write {target}: {cause} ({exc}); the previous output, if any, is unchanged"
        super().__init__(exc.errno, self.message, str(target))

    def __str__(self) -> str:
        return self.message


class OutputLocked(HybridrecError):
    """Another process kept writing the same output for longer than the lock timeout."""


@contextlib.contextmanager
def _output_errors(target: Path) -> Iterator[None]:
    """Report a disk-full / read-only / permission error on ``target``'s folder as an ``OutputError`` naming
    ``target`` (also when it came from a file written inside ``target``'s temporary folder)."""
    try:
        yield
    except OutputError as exc:
        if exc.target.parent != target.parent and target.parent in exc.target.parents:
            raise OutputError(target, exc.cause) from exc.cause
        raise
    except OSError as exc:
        where = Path(exc.filename) if isinstance(exc.filename, str) else None
        if exc.errno in OUTPUT_ERRNOS and (where is None or target.parent in (where, *where.parents)):
            raise OutputError(target, exc) from exc
        raise


# ---------------------------------------------------------------------------------------------- processes
def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a killed, not yet reaped process is gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


# ---------------------------------------------------------------------------------------------- locks
def lock_path(target: str | Path) -> Path:
    target = Path(target)
    return target.with_name(f".{target.name}.lock")


def _lock_timeout(timeout_s: float | None) -> float:
    if timeout_s is not None:
        return timeout_s
    raw = os.environ.get(LOCK_TIMEOUT_ENV)
    try:
        return float(raw) if raw else LOCK_TIMEOUT_S
    except ValueError:
        return LOCK_TIMEOUT_S


def _holder(path: Path) -> str:
    with contextlib.suppress(OSError, ValueError):
        return f"pid {int(path.read_text().split()[0])}"
    return "another process"


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on the file now at ``path``, or None when someone else holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    try:
        same = os.fstat(fd).st_ino == os.stat(path).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # the previous holder removed the file between our open and our lock: take the new one
        os.close(fd)
        return _try_lock(path)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


@contextlib.contextmanager
def output_lock(target: str | Path, timeout_s: float | None = None) -> Iterator[Path]:
    """Hold the write lock of ``target`` (``.<name>.lock`` beside it); waits for another holder, logging once,
    and raises ``OutputLocked`` after ``timeout_s`` (default ``HYBRIDREC_LOCK_TIMEOUT_S`` or 3600 s)."""
    target = Path(target)
    path = lock_path(target)
    limit = _lock_timeout(timeout_s)
    deadline = time.monotonic() + limit
    waited = False
    with _output_errors(target):
        while (fd := _try_lock(path)) is None:
            if not waited:
                log.warning("%s is being written by %s: waiting for it (up to %.0f s)", target, _holder(path), limit)
                waited = True
            if time.monotonic() >= deadline:
                raise OutputLocked(
                    f"{target}: still being written by {_holder(path)} after {limit:.0f} s; wait for that run to "
                    f"end (or stop it) and run again; the timeout is {LOCK_TIMEOUT_ENV}"
                )
            time.sleep(LOCK_POLL_S)
    if waited:
        log.warning("%s: lock acquired, writing it now", target)
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a waiter that opened this file retries on the new one
        os.close(fd)


# ---------------------------------------------------------------------------------------------- debris
def _debris_pattern(name: str) -> re.Pattern[str]:
    """Temporary names of ``name``'s writers: ``.<name>[.<pid>].<8 random>.tmp[suffix]``, ``.<name>[.<pid>].old``
    (the pid-less forms are what earlier versions left)."""
    n = re.escape(name)
    return re.compile(rf"^\.{n}(?:\.(?P<pid>\d+))?(?:\.[a-z0-9_]{{8}}\.tmp(?:\.[A-Za-z0-9]+)?|\.old)$")


def clean_debris(target: str | Path, *, only_dead: bool = True) -> list[Path]:
    """Remove what killed writers of ``target`` left beside it; with ``only_dead``, only names whose recorded
    process is gone (a pid-less legacy name counts as gone). Returns what was removed."""
    target = Path(target)
    if not target.parent.is_dir():
        return []
    pattern, removed = _debris_pattern(target.name), []
    for entry in target.parent.iterdir():
        m = pattern.match(entry.name)
        if not m or (only_dead and m["pid"] and int(m["pid"]) != os.getpid() and pid_alive(int(m["pid"]))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        log.warning("removed %s, left by a writer of %s that was stopped", entry, target.name)
        removed.append(entry)
    return removed


# ---------------------------------------------------------------------------------------------- writers
@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    with _output_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_debris(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=f".tmp{suffix}", dir=target.parent)
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with _output_errors(target):
            yield tmp_path
            if tmp_path.exists():
                os.chmod(tmp_path, 0o644)  # mkstemp creates 0600; outputs are meant to be shared
            os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


@contextlib.contextmanager
def atomic_dir(target: str | Path, lock_timeout_s: float | None = None) -> Iterator[Path]:
    """Yield a temporary directory next to ``target``; swap it in place of ``target`` on success.

    Holds ``target``'s write lock throughout (a second writer waits), removes what killed writers of
    ``target`` left, and on any failure removes the temporary directory and leaves ``target`` as it was."""
    target = Path(target)
    with _output_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
    with output_lock(target, lock_timeout_s):
        with _output_errors(target):
            _recover(target)
            clean_debris(target)
            tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
        try:
            with _output_errors(target):
                yield tmp
                os.chmod(tmp, 0o755)
                if target.exists():
                    _swap_dir(tmp, target)
                else:
                    os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _swap_dir(new: Path, target: Path) -> None:
    """Replace the directory ``target`` by ``new`` (under its lock): two renames in a row, so a reader finds
    ``target`` missing for microseconds at most (``settled`` waits that out); if the second rename fails,
    ``target`` is put back."""
    old = target.with_name(f".{target.name}.{os.getpid()}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- readers
def _old_copies(target: Path) -> list[tuple[Path, int | None]]:
    """``target``'s ``.old`` names beside it (a swap under way, or one that a kill interrupted), with their pid."""
    if not target.parent.is_dir():
        return []
    pattern = _debris_pattern(target.name)
    found = [(e, pattern.match(e.name)) for e in target.parent.iterdir() if e.name.endswith(".old")]
    return [(e, int(m["pid"]) if m["pid"] else None) for e, m in found if m]


def _hidden(folder: Path) -> bool:
    """Whether ``folder`` is missing because a live writer is between the two renames of its swap, or was so a
    moment ago (it is back now)."""
    if folder.exists():
        return False
    return any(pid is not None and pid_alive(pid) for _, pid in _old_copies(folder)) or folder.exists()


def _recover(target: Path) -> None:
    """A writer killed between the two renames of a swap left ``target`` missing and its complete previous
    copy under the ``.old`` name: put it back (called under the lock, before cleaning debris)."""
    if target.exists():
        return
    for old, pid in _old_copies(target):
        if pid is None or pid == os.getpid() or not pid_alive(pid):
            os.replace(old, target)
            log.warning("restored %s from %s (a writer was stopped in the middle of replacing it)", target, old.name)
            return


def settled(path: str | Path, read: Callable[[Path], T], timeout_s: float = SETTLE_TIMEOUT_S) -> T:
    """``read(path)``, retried (up to ``timeout_s``) while a folder swap hides ``path`` or one of its parents:
    a reader sees the old or the new folder, never a missing one. A path that is simply missing fails at once
    with the usual FileNotFoundError."""
    path = Path(path)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read(path)
        except FileNotFoundError:
            swapping = any(_hidden(p) for p in [path, *path.parents][:6]) or path.exists()
            if not swapping or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_json(path: str | Path) -> Any:
    return settled(path, lambda p: json.loads(p.read_text(encoding="utf-8")))


def write_parquet(path: str | Path, df: pl.DataFrame) -> Path:
    with atomic_path(path, ".parquet") as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)
    return Path(path)


def read_parquet(path: str | Path) -> pl.DataFrame:
    return settled(path, pl.read_parquet)


def write_npz(path: str | Path, matrix: sp.spmatrix | sp.sparray) -> Path:
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as fh:
        sp.save_npz(fh, sp.csr_matrix(matrix), compressed=True)
    return Path(path)


def read_npz(path: str | Path) -> sp.csr_matrix:
    return sp.csr_matrix(settled(path, sp.load_npz))


def write_npy(path: str | Path, array: np.ndarray) -> Path:
    with atomic_path(path, ".npy") as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)
    return Path(path)


def read_npy(path: str | Path) -> np.ndarray:
    return settled(path, lambda p: np.load(p, allow_pickle=False))


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
