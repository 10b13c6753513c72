"""Faults on the real pipeline (small MovieLens-100K-format data, ``dvc repro`` in a temporary copy of the
repository): ``kill -9`` during the split stage and during training, then a rerun with the metrics of an
uninterrupted run; two runs at once on one checkout; a full disk and a read-only artifacts folder."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import small_params, write_ml100k, write_params
from tests.pipeline.test_pipeline import project_copy

pytestmark = pytest.mark.slow

DS, MODEL, SPLIT = "ml-100k", "biased-mf", "random-80-10-10-s0"
METRICS = Path("artifacts", "metrics", DS, MODEL, f"{SPLIT}.json")
# every output from the split stage on: removing them makes `dvc repro` run split → train → evaluate → report
DOWNSTREAM = ("artifacts/splits", "artifacts/runs", "artifacts/metrics", "artifacts/evaluations",
              "artifacts/breakdowns", "artifacts/curves", "artifacts/.resume", "reports/summary.csv")


def environment(prefect_home: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    venv_bin = Path(sys.executable).parent
    return {
        **os.environ,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}",
        "HYBRIDREC_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(prefect_home),
    }


def run(cmd: list[str], cwd: Path, env: dict[str, str], ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if ok:
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


DVC = [sys.executable, "-m", "dvc"]


def metrics_of(root: Path) -> dict[str, Any]:
    return json.loads((root / METRICS).read_text())  # the metrics file: metric values only


def debris(root: Path) -> list[str]:
    """Temporary or half-swapped names anywhere under the outputs (there must be none after a run)."""
    names = []
    for top in ("artifacts", "reports", "data"):
        for p in (root / top).rglob("*"):
            if p.name.endswith((".tmp", ".old", ".lock")) or ".tmp." in p.name:
                names.append(str(p.relative_to(root)))
    return sorted(names)


@pytest.fixture(scope="module")
def reference(prefect_harness, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """One uninterrupted `dvc repro` (biased-mf on one split); the fault tests start from copies of it."""
    tmp = tmp_path_factory.mktemp("faults")
    raw = write_ml100k(tmp / "raw")
    root = project_copy(tmp / "reference")
    params = small_params(raw, max_epochs=25, instances=[SPLIT], models=[MODEL])
    params["train"]["patience"] = 25  # ~25 epochs: long enough to kill it in the middle
    write_params(root, params)
    env = environment(tmp / "prefect-home")
    run([sys.executable, "-m", "flows.acquire"], root, env)
    run([*DVC, "add", "-q", "data"], root, env)
    run([*DVC, "repro"], root, env)
    return {"root": root, "env": env, "metrics": metrics_of(root), "tmp": tmp}


def fresh_copy(reference: dict[str, Any], name: str) -> Path:
    """The reference project with every output from the split stage on removed, and without DVC's cache (or
    `dvc repro` would check the removed outputs out of it instead of running the stages again)."""
    root = reference["tmp"] / name
    shutil.copytree(reference["root"], root, symlinks=True, ignore=shutil.ignore_patterns("cache", "tmp"))
    for rel in DOWNSTREAM:
        p = root / rel
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    return root


def children_cmdlines(pgid: int) -> list[str]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rpartition(")")[2].split()
            if int(fields[2]) == pgid:
                out.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
    return out


def kill_when(root: Path, env: dict[str, str], stage: str, mid_write: Callable[[], bool], log: Path) -> bool:
    """Start `dvc repro`, wait for ``stage``'s process, then kill -9 the whole run as soon as ``mid_write()``
    holds (or when the stage process ends first). Returns whether the kill landed mid-write."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [*DVC, "repro"], cwd=root, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline, seen, landed = time.monotonic() + 120, False, False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            running = any(f"flows.{stage}" in c for c in children_cmdlines(proc.pid))
            seen = seen or running
            if seen and (mid_write() or not running):
                landed = mid_write()
                break
            time.sleep(0.005 if seen else 0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert seen, f"the {stage} stage never started:\n{log.read_text()[-3000:]}"
    return landed


def tmp_dir_under(folder: Path) -> Callable[[], bool]:
    return lambda: folder.is_dir() and any(p.name.endswith(".tmp") for p in folder.iterdir())


def rerun_and_check(root: Path, reference: dict[str, Any]) -> None:
    out = run([*DVC, "repro"], root, reference["env"])
    assert "Running stage" in out.stdout + out.stderr
    assert metrics_of(root) == reference["metrics"]
    assert debris(root) == []
    assert "up to date" in run([*DVC, "status"], root, reference["env"]).stdout


def test_kill_9_during_the_split_stage_then_rerun(reference: dict[str, Any]) -> None:
    root = fresh_copy(reference, "kill-split")
    landed = kill_when(root, reference["env"], "split", tmp_dir_under(root / "artifacts" / "splits"), root / "log")
    print(f"kill landed while the split folder was being written: {landed}")
    rerun_and_check(root, reference)


def test_kill_9_during_training_then_rerun(reference: dict[str, Any]) -> None:
    root = fresh_copy(reference, "kill-train")
    resume = root / "artifacts" / ".resume" / DS / MODEL / f"{SPLIT}.pt"
    landed = kill_when(root, reference["env"], "grid", resume.exists, root / "log")  # runs@<dataset>: flows.grid
    print(f"kill landed after at least one epoch (resume state written): {landed}")
    rerun_and_check(root, reference)


def test_two_runs_at_once_on_one_checkout(reference: dict[str, Any]) -> None:
    root, env = fresh_copy(reference, "two-runs"), reference["env"]
    procs = [
        subprocess.Popen(
            [*DVC, "repro"], cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes[0] == 0, outs
    if codes[1] != 0:  # the second refused clearly, it did not half-run
        refused = outs[[p.returncode for p in procs].index(codes[1])]
        assert "lock" in refused.lower(), refused
    # two stage processes writing the same output at once (what DVC's own lock does not cover: flows run by
    # hand, the Prefect pipeline flow): they take turns on the output's lock, both succeed
    pair = [
        subprocess.Popen(
            [sys.executable, "-m", "flows.split"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300)[0] for p in pair]
    assert [p.returncode for p in pair] == [0, 0], outs
    assert debris(root) == []
    assert metrics_of(root) == reference["metrics"]
    status = run([*DVC, "status"], root, env).stdout
    assert "up to date" in status, status  # the split rewritten twice holds the same bytes: nothing corrupted


def test_full_disk_and_read_only_artifacts_then_recovery(
    reference: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.common.io as io_mod
    from flows.common import run_cli
    from tasks.common.config import load_params
    from tasks.common.io import OutputError
    from tasks.common.paths import Layout
    from tasks.splits.stage import make_splits

    root = reference["tmp"] / "disk"
    shutil.copytree(reference["root"], root, symlinks=True, ignore=shutil.ignore_patterns(".dvc", ".git"))
    layout, params = Layout(root), load_params(root / "params.yaml")
    splits = layout.splits(DS)
    before = {p.relative_to(splits): p.read_bytes() for p in splits.rglob("*") if p.is_file()}

    def snapshot_ok() -> None:
        assert {p.relative_to(splits): p.read_bytes() for p in splits.rglob("*") if p.is_file()} == before
        assert debris(root) == []

    real_replace, real_mkdtemp = os.replace, io_mod.tempfile.mkdtemp

    def full(src: Any, dst: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    def read_only(*args: Any, **kwargs: Any) -> str:
        raise OSError(errno.EROFS, "Read-only file system", str(splits.parent))

    for fault, target, cause in ((full, "replace", "no space left"), (read_only, "mkdtemp", "read-only")):
        monkeypatch.setattr(io_mod.os if target == "replace" else io_mod.tempfile, target, fault)
        with pytest.raises(OutputError, match=cause) as exc:
            make_splits(layout, params, DS)
        assert str(splits) in str(exc.value)
        snapshot_ok()
        # what the stage CLI prints: one line naming the folder and the cause, exit status 1
        assert run_cli(lambda: make_splits(layout, params, DS)) == 1
        monkeypatch.setattr(io_mod.os, "replace", real_replace)
        monkeypatch.setattr(io_mod.tempfile, "mkdtemp", real_mkdtemp)
    make_splits(layout, params, DS)  # the cause is gone: the next run succeeds, with the same splits
    snapshot_ok()
