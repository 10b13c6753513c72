"""Wall time of a 12-run grid (4 models × 3 splits of the synthetic data set) serial vs fanned out.

    python -m bench.fanout [--workers 2] [--threads-per-worker 1] [--epochs 8] [--json out.json]

Run it on a quiet machine: the figures are wall times. The data is prepared once (acquire → split of the
``synthetic`` set, 1000 users × 1000 items × 50k ratings); the grid is then trained and evaluated twice on
copies of that project: ``inline`` (one run at a time, 1 torch thread, what ``dvc repro`` does stage after
stage) and ``dask`` (a LocalCluster of ``workers`` processes × ``threads_per_worker`` threads on 127.0.0.1).

Printed: each wall time, the ratio (goal ≤ 0.6 on 2 cores with 2 × 1), the cluster's start-up, and the
engine's overhead per run: (wall − Σ run seconds / parallelism) / runs, where a run's seconds are its own
``train_seconds + eval_seconds`` (model work only); the rest is Prefect task orchestration, Dask scheduling,
worker start-up and each worker's first imports. It also checks that both grids wrote the same metrics.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
MODELS = {
    "biased-mf": {"factors": 32, "batch_size": 1024},
    "mf": {"factors": 32, "batch_size": 1024},
    "autorec-i": {"hidden": [200], "batch_size": 64},
    "autorec-u": {"hidden": [200], "batch_size": 64},
}
SPLITS = ["random-80-10-10-s0", "random-80-10-10-s1", "random-80-10-10-s2"]


def bench_params(epochs: int) -> dict[str, Any]:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw.pop("fanout", None)
    raw["dataset"] = "synthetic"
    raw["acquire"]["source_dir"] = None
    raw["validate"]["expected_counts"] = False
    raw["split"]["instances"] = SPLITS
    raw["train"].update({"models": list(MODELS), "pretrained": [], "max_epochs": epochs, "patience": epochs,
                         "threads": 1, "device": "cpu"})  # fmt: skip
    for name, cfg in MODELS.items():
        raw["models"][name] = {**raw["models"].get(name, {}), **cfg}
    raw["evaluate"]["full_k"] = [10]
    raw["report"]["datasets"] = ["synthetic"]
    return raw


def prepare(root: Path, epochs: int) -> None:
    from flows.acquire import acquire_flow
    from flows.features import features_flow
    from flows.ingest import ingest_flow
    from flows.split import split_flow
    from flows.validate import validate_flow

    root.mkdir(parents=True)
    (root / "params.yaml").write_text(yaml.safe_dump(bench_params(epochs), sort_keys=False))
    for stage in (acquire_flow, ingest_flow, validate_flow, features_flow, split_flow):
        stage(root=str(root))


def timed_grid(root: Path, **fanout: Any) -> dict[str, Any]:
    from flows.grid import run_grid

    t0 = time.perf_counter()
    out = run_grid(root=str(root), **fanout)
    wall = time.perf_counter() - t0
    work = sum(r.train_seconds for r in out["train"]) + sum(r.eval_seconds for r in out["evaluate"])
    return {"wall_s": round(wall, 2), "run_seconds": round(work, 2), "runs": len(out["train"])}


def metrics(root: Path) -> dict[str, str]:
    base = root / "artifacts" / "metrics"
    return {str(p.relative_to(base)): p.read_text() for p in sorted(base.rglob("*.json"))}


def cluster_startup(workers: int, threads: int) -> float:
    from flows.fanout import FanoutSettings, open_fanout

    t0 = time.perf_counter()
    with open_fanout(FanoutSettings(runner="dask", workers=workers, threads_per_worker=threads), "cpu"):
        up = time.perf_counter() - t0
    return round(up, 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads-per-worker", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    os.environ.setdefault("HYBRIDREC_THREADS", "1")  # the serial run: one thread, as each worker's runs
    with tempfile.TemporaryDirectory(prefix="hybridrec-fanout-") as tmp:
        base = Path(tmp) / "base"
        prepare(base, a.epochs)
        serial_root, dask_root = Path(tmp) / "serial", Path(tmp) / "dask"
        shutil.copytree(base, serial_root)
        shutil.copytree(base, dask_root)
        startup = cluster_startup(a.workers, a.threads_per_worker)
        serial = timed_grid(serial_root, runner="inline")
        fanned = timed_grid(dask_root, runner="dask", workers=a.workers, threads_per_worker=a.threads_per_worker)
        same = metrics(serial_root) == metrics(dask_root)
    n = serial["runs"]
    result = {
        "runs": n,
        "workers": a.workers,
        "threads_per_worker": a.threads_per_worker,
        "epochs": a.epochs,
        "serial_wall_s": serial["wall_s"],
        "dask_wall_s": fanned["wall_s"],
        "ratio": round(fanned["wall_s"] / serial["wall_s"], 3),
        "cluster_startup_s": startup,
        "serial_overhead_per_run_s": round((serial["wall_s"] - serial["run_seconds"]) / n, 3),
        "dask_overhead_per_run_s": round((fanned["wall_s"] - fanned["run_seconds"] / a.workers) / n, 3),
        "serial_run_seconds": serial["run_seconds"],
        "dask_run_seconds": fanned["run_seconds"],
        "same_metrics": same,
    }
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
