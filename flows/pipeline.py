"""The whole DAG as one Prefect flow: acquire → ingest → validate → features → split → train + evaluate → report.

    python -m flows.pipeline [--dataset ml-100k] [--runner inline|threads|dask] [--workers N] [--address tcp://...]

Without ``--dataset`` it runs every dataset of params.yaml's ``pipeline``, one after the other (what ``dvc repro``
runs, and what the scheduled deployment runs).

Every stage runs as a subflow and writes exactly the artifacts ``dvc repro`` writes. The train and evaluate
runs are one grid of tasks on the task runner of ``params.yaml``'s ``fanout`` section (``flows/grid.py``;
the default runs them one at a time); the report waits for every run. This flow always runs every stage (it
is what a scheduled deployment runs); ``dvc repro`` is the tool that decides what is up to date.

One source of truth with DVC: when the root is a DVC project (``dvc.yaml``) and the flow ran a dataset of
``params.yaml``'s ``pipeline``, it ends with ``dvc commit --force`` of that dataset's stages (``ingest@<dataset>``
... ``report@<dataset>``, and ``summary``), which records their dependencies and outputs in ``dvc.lock`` (and DVC's
cache) exactly as ``dvc repro`` would have: a following ``dvc repro`` finds nothing to do for it, ``dvc push``
ships the flow's artifacts. ``--no-dvc-commit`` skips it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from prefect import flow

from flows.acquire import acquire_flow
from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from flows.features import features_flow
from flows.grid import add_fanout_arguments, fanout_overrides, run_grid
from flows.ingest import ingest_flow
from flows.report import report_flow
from flows.split import split_flow
from flows.validate import validate_flow
from tasks.common.errors import HybridrecError


class DvcCommitError(HybridrecError):
    """``dvc commit`` after the flow failed."""


def is_dvc_project(root: Path) -> bool:
    return (root / "dvc.yaml").is_file() and (root / ".dvc").is_dir()


DATASET_STAGES = ("ingest", "validate", "features", "split", "runs", "report")  # dvc.yaml's stages per dataset


def dataset_stages(dataset: str) -> list[str]:
    """The DVC stages of one dataset of the pipeline, and the summary over all of them."""
    return [f"{stage}@{dataset}" for stage in DATASET_STAGES] + ["summary"]


def dvc_commit(root: Path, targets: list[str] | None = None) -> str:
    """``dvc commit --force [targets]`` in ``root`` (this interpreter's ``bin`` first on PATH, like ``make``)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *(targets or [])], cwd=root,
                          env=env, capture_output=True, text=True, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise DvcCommitError(f"dvc commit in {root} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout


@flow(name="pipeline", log_prints=True)
def pipeline_flow(
    root: str = ".",
    dataset: str | None = None,
    device: str | None = None,
    runner: str | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    address: str | None = None,
    dvc_commit_at_end: bool = True,
) -> dict:
    """Every stage on ``dataset``, or on each dataset of params.yaml's ``pipeline`` in turn when none is named (what
    the scheduled deployment runs); then ``dvc commit`` of the datasets' stages."""
    _, params, _ = layout_and_params(root, dataset)
    names = [dataset] if dataset else list(params.pipeline)
    fan = {"runner": runner, "workers": workers, "threads_per_worker": threads_per_worker, "address": address}
    timings: dict[str, float] = {}
    out: dict = {}
    for name in names:
        suffix = "" if len(names) == 1 else f"@{name}"
        timings_of, out = _one_dataset(root, name, device, fan)
        timings.update({f"{k}{suffix}": v for k, v in timings_of.items()})
    committed = [n for n in names if n in params.pipeline]
    if dvc_commit_at_end and committed and is_dvc_project(Path(root)):
        t0 = time.perf_counter()
        dvc_commit(Path(root), list(dict.fromkeys(t for n in committed for t in dataset_stages(n))))
        timings["dvc-commit"] = round(time.perf_counter() - t0, 2)
        logger().info("dvc commit: dvc.lock records this run's artifacts (dvc repro finds nothing to do)")
    key = names[0] if len(names) == 1 else "all"
    publish(
        f"{key}-pipeline",
        f"Pipeline on {', '.join(names)}",
        [f"- {k}: {v:.1f} s" for k, v in timings.items()] + [f"- total: {sum(timings.values()):.1f} s"],
        [{"stage": k, "seconds": v} for k, v in timings.items()],
    )
    return {"timings": timings, **out}


def _one_dataset(root: str, name: str, device: str | None, fan: dict) -> tuple[dict[str, float], dict]:
    """acquire → ingest → validate → features → split → train + evaluate → report on one dataset."""
    timings: dict[str, float] = {}

    def stage(label: str, fn, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = fn(root=root, dataset=name, **kw)
        timings[label] = round(time.perf_counter() - t0, 2)
        logger().info("stage %s on %s done in %.1fs", label, name, timings[label])
        return result

    stage("acquire", acquire_flow)
    stage("ingest", ingest_flow)
    stage("validate", validate_flow)
    stage("features", features_flow)
    stage("split", split_flow)
    stage("train+evaluate", run_grid, device=device, **fan)
    out = stage("report", report_flow)
    return timings, out


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    ap.add_argument("--no-dvc-commit", action="store_true", help="do not record the artifacts in dvc.lock at the end")
    add_fanout_arguments(ap)
    a = ap.parse_args()
    fan = fanout_overrides(a)
    fan.pop("timeout_s")
    commit = not a.no_dvc_commit
    return run_cli(pipeline_flow, root=a.root, dataset=a.dataset, device=a.device, dvc_commit_at_end=commit, **fan)


if __name__ == "__main__":
    raise SystemExit(main())
