"""Atomic writers under faults: two writers of one output, readers during a swap, debris of killed writers,
a full disk and a read-only folder (``tasks/common/io.py``)."""

from __future__ import annotations

import errno
import json
import logging
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import tasks.common.io as io_mod
from tasks.common.errors import HybridrecError
from tasks.common.io import (
    OutputError,
    OutputLocked,
    atomic_dir,
    clean_debris,
    lock_path,
    output_lock,
    read_json,
    write_json,
)

CTX = mp.get_context("spawn")  # a fresh interpreter: no inherited locks or threads


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def write_version(target: str, version: int, hold_s: float) -> None:
    """A writer (child process) of a folder of 3 files that all carry ``version``."""
    with atomic_dir(target) as tmp:
        for name in ("a", "b", "c"):
            (tmp / f"{name}.json").write_text(json.dumps({"version": version}))
            time.sleep(hold_s / 3)


def test_two_writers_of_one_output_take_turns(tmp_path: Path) -> None:
    target = tmp_path / "out" / "splits"
    procs = [CTX.Process(target=write_version, args=(str(target), v, 1.5)) for v in (1, 2)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert time.monotonic() - t0 >= 3.0  # the second waited for the first: the writes did not overlap
    versions = {read_json(target / f"{n}.json")["version"] for n in ("a", "b", "c")}
    assert len(versions) == 1  # one complete version, never a mix
    assert leftovers(target.parent) == []  # no .tmp, no .old, no lock file


def test_second_writer_logs_then_refuses_after_the_timeout(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "features"
    holder = CTX.Process(target=write_version, args=(str(target), 1, 6.0))
    holder.start()
    try:
        deadline = time.monotonic() + 30
        while not lock_path(target).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # the holder has written its pid into the lock file
        caplog.set_level(logging.WARNING, logger="tasks.common.io")
        with pytest.raises(OutputLocked) as exc, atomic_dir(target, lock_timeout_s=0.5):
            pass
        msg = str(exc.value)
        assert str(target) in msg and f"pid {holder.pid}" in msg and "HYBRIDREC_LOCK_TIMEOUT_S" in msg
        assert isinstance(exc.value, HybridrecError)
        assert any("waiting for it" in r.message for r in caplog.records)
    finally:
        holder.join(60)
    assert holder.exitcode == 0 and read_json(target / "c.json") == {"version": 1}


def swap_many(target: str, n: int) -> None:
    for v in range(1, n + 1):
        write_version(target, v, 0.0)


def test_a_reader_during_swaps_sees_a_complete_old_or_new_folder(tmp_path: Path) -> None:
    target = tmp_path / "ingested"
    write_version(str(target), 0, 0.0)
    writer = CTX.Process(target=swap_many, args=(str(target), 150))
    writer.start()
    reads, seen = 0, set()
    try:
        while writer.is_alive() or reads == 0:
            seen.add(read_json(target / "b.json")["version"])  # never FileNotFoundError, never a partial file
            reads += 1
    finally:
        writer.join(60)
    assert writer.exitcode == 0 and reads > 50 and len(seen) > 1
    assert read_json(target / "a.json") == {"version": 150} and leftovers(tmp_path) == []


def kill_me_while_writing(target: str) -> None:
    with atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("{")  # half-written, then killed
        os.kill(os.getpid(), signal.SIGKILL)


def test_debris_of_a_killed_writer_is_cleaned_by_the_next_one(tmp_path: Path) -> None:
    target = tmp_path / "runs" / "s0"
    write_version(str(target), 1, 0.0)
    p = CTX.Process(target=kill_me_while_writing, args=(str(target),))
    p.start()
    p.join(60)
    assert p.exitcode == -signal.SIGKILL
    debris = [n for n in leftovers(target.parent) if n.endswith(".tmp")]
    assert debris and f".s0.{p.pid}." in debris[0]  # the writer's pid is in the name
    assert os.stat(target.parent / debris[0]).st_mode & 0o777 == 0o700
    assert read_json(target / "a.json") == {"version": 1}  # the previous output is intact
    write_version(str(target), 2, 0.0)  # next run: the stale lock is free, the debris goes
    assert leftovers(target.parent) == [] and read_json(target / "a.json") == {"version": 2}


def test_debris_of_a_live_process_is_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "x"
    live = tmp_path / f".x.{os.getppid()}.abcdefgh.tmp"  # our parent: alive, not us
    dead = tmp_path / f".x.{dead_pid()}.abcdefgh.tmp"
    legacy = tmp_path / ".x.old"
    other = tmp_path / f".xy.{dead_pid()}.abcdefgh.tmp"  # another target's debris
    for d in (live, dead, legacy, other):
        d.mkdir(mode=0o700)
    removed = clean_debris(target)
    assert sorted(removed) == sorted([dead, legacy])
    assert live.exists() and other.exists()


def test_a_swap_interrupted_between_its_renames_is_recovered(tmp_path: Path) -> None:
    target = tmp_path / "features"
    old = tmp_path / f".features.{dead_pid()}.old"  # the writer died after moving the old copy aside
    old.mkdir()
    (old / "a.json").write_text('{"version": 1}')
    with pytest.raises(RuntimeError), atomic_dir(target):
        raise RuntimeError("this run fails too")
    assert read_json(target / "a.json") == {"version": 1} and leftovers(tmp_path) == []


def test_disk_full_at_the_swap_is_a_clear_error_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "splits"
    write_version(str(target), 1, 0.0)
    real_replace = os.replace

    def full(src: str | Path, dst: str | Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(io_mod.os, "replace", full)
    with pytest.raises(OutputError) as exc:
        write_version(str(target), 2, 0.0)
    with pytest.raises(OutputError, match="no space left"):
        write_json(tmp_path / "metrics.json", {"rmse": 1.0})
    msg = str(exc.value)
    assert "cannot write" in msg and str(target) in msg and "no space left" in msg and "unchanged" in msg
    assert exc.value.errno == errno.ENOSPC and isinstance(exc.value, HybridrecError)
    assert read_json(target / "a.json") == {"version": 1} and leftovers(tmp_path) == []
    assert not (tmp_path / "metrics.json").exists()

    monkeypatch.setattr(io_mod.os, "replace", real_replace)  # space is back: the next run succeeds
    write_version(str(target), 2, 0.0)
    write_json(tmp_path / "metrics.json", {"rmse": 1.0})
    assert read_json(target / "a.json") == {"version": 2} and leftovers(tmp_path) == []


def test_disk_full_while_filling_the_folder(tmp_path: Path) -> None:
    target = tmp_path / "runs"
    write_version(str(target), 1, 0.0)
    with pytest.raises(OutputError, match="no space left"), atomic_dir(target) as tmp:
        (tmp / "a.json").write_text("{")
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp / "a.json"))
    assert read_json(target / "a.json") == {"version": 1} and leftovers(tmp_path) == []


def test_read_only_folder_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "artifacts" / "splits"
    write_version(str(target), 1, 0.0)

    def read_only(*args: object, **kwargs: object) -> str:
        raise OSError(errno.EROFS, "Read-only file system", str(target.parent))

    monkeypatch.setattr(io_mod.tempfile, "mkdtemp", read_only)
    with pytest.raises(OutputError, match="read-only"):
        write_version(str(target), 2, 0.0)
    monkeypatch.undo()
    assert read_json(target / "a.json") == {"version": 1} and leftovers(target.parent) == []
    write_version(str(target), 2, 0.0)
    assert read_json(target / "a.json") == {"version": 2}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_really_read_only_folder(tmp_path: Path) -> None:
    target = tmp_path / "artifacts" / "splits"
    write_version(str(target), 1, 0.0)
    target.parent.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            write_version(str(target), 2, 0.0)
    finally:
        target.parent.chmod(0o755)
    write_version(str(target), 2, 0.0)
    assert read_json(target / "a.json") == {"version": 2} and leftovers(target.parent) == []


def test_lock_file_is_removed_and_a_waiter_takes_the_new_one(tmp_path: Path) -> None:
    target = tmp_path / "x"
    with output_lock(target) as path:
        assert path.read_text().strip() == str(os.getpid())
    assert not path.exists()
    with output_lock(target), output_lock(tmp_path / "y"):  # distinct outputs do not block each other
        pass
