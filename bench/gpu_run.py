"""Full training and test evaluation of each model on one split, with the figures a CPU / GPU comparison needs.

    python -m bench.gpu_run [--root .] [--split random-80-10-10-s0] [--models M ...] [--device auto]
                            [--set MODEL.KEY=VALUE ...] [--repro-epochs 0] [--json PATH]

Runs the pipeline's own functions (``tasks.training.train_run``: early stopping and best checkpoint;
``tasks.evaluation.evaluate.evaluate_run``: test metrics), so it needs neither Prefect nor DVC; works on CPU and CUDA.
Needs the prepared artifacts (ingested, features, splits) under --root. Per model it prints test RMSE and
MAE, epochs (best epoch), seconds per epoch (all epochs, and epochs 2+ without the first epoch's warm-up),
training seconds, evaluation seconds and peak memory: ``torch.cuda.max_memory_allocated`` on CUDA (training
and evaluation), the process's peak RSS on CPU. Warnings torch raises for ops without a deterministic
kernel (warn-only on CUDA, see ``tasks/common/device.py``) are counted and listed.

``--repro-epochs K`` then trains each model K epochs twice with the same seed and reports whether the two
weight sets are bit-identical. ``--set`` overrides one model config key (``nrp-direct.precision=bf16``);
the run's artifacts then replace the default configuration's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from models.common.registry import resolve_model
from tasks.common.config import Params, load_params
from tasks.common.device import resolve_device, seed_everything, set_threads
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import evaluate_run
from tasks.training import RunId, build_from_spec, build_run_data, fit, train_run


def apply_overrides(params: Params, sets: list[str]) -> Params:
    models = {k: dict(v) for k, v in params.models.items()}
    for item in sets:
        key, sep, value = item.partition("=")
        model, dot, field = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"--set wants MODEL.KEY=VALUE, got {item!r}")
        models.setdefault(model, {})[field] = yaml.safe_load(value)
    return dataclasses.replace(params, models=models)


def repro_check(layout: Layout, params: Params, run: RunId, dev: torch.device, epochs: int) -> dict[str, Any]:
    """Train ``epochs`` epochs twice from the same seed; compare the final weights bit for bit."""
    states = []
    for _ in range(2):
        seed_everything(run.seed)
        spec = resolve_model(run.model, params.models)
        data = build_run_data(layout, run.dataset, run.split_id, dev, spec.task, params.train.positive_threshold,
                              params.split.loo_negatives)  # fmt: skip
        model = build_from_spec(spec, spec.raw, data.ctx)
        with tempfile.TemporaryDirectory() as tmp:
            fit(
                model,
                data,
                seed=run.seed,
                max_epochs=epochs,
                patience=epochs,
                best_path=Path(tmp) / "m.pt",
                resume_path=None,
                fp="",
                progress=lambda s: None,
            )
        states.append({k: v.detach().cpu() for k, v in model.state_dict().items()})
    a, b = states
    diff = max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)
    return {"epochs": epochs, "identical": all(torch.equal(a[k], b[k]) for k in a), "max_abs_diff": diff}


def run_model(layout: Layout, params: Params, run: RunId, dev: torch.device, repro_epochs: int) -> dict[str, Any]:
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.synchronize(dev)
        torch.cuda.reset_peak_memory_stats(dev)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = time.perf_counter()
        summary = train_run(layout, params, run, progress=lambda s: None, device=str(dev))
        t1 = time.perf_counter()
        result = evaluate_run(layout, params, run, device=str(dev))
        t2 = time.perf_counter()
        peak = torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None
        repro = repro_check(layout, params, run, dev, repro_epochs) if repro_epochs > 0 else None
    nondet = Counter(str(w.message).splitlines()[0][:200] for w in caught if "deterministic" in str(w.message).lower())
    seconds = [h["seconds"] for h in _history(layout, run)]
    return {
        "model": run.model,
        "split": run.split_id,
        "device": str(dev),
        "model_config": resolve_model(run.model, params.models).raw,
        "test_rmse": result.metrics.get("rmse"),
        "test_mae": result.metrics.get("mae"),
        "metrics": result.metrics,
        "monitor": summary.monitor,
        "best_monitor": summary.best_monitor,
        "epochs": summary.epochs,
        "best_epoch": summary.best_epoch,
        "train_seconds": summary.train_seconds,
        "seconds_per_epoch": summary.seconds_per_epoch,
        "seconds_per_epoch_steady": float(np.mean(seconds[1:] or seconds)),
        "train_wall_seconds": round(t1 - t0, 3),
        "eval_seconds": round(t2 - t1, 3),
        "peak_gpu_mib": round(peak, 1) if peak is not None else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "n_params": summary.n_params,
        "nondeterministic_warnings": dict(nondet),
        "repro": repro,
    }


def _history(layout: Layout, run: RunId) -> list[dict[str, float]]:
    import polars as pl

    return pl.read_csv(layout.run(run.dataset, run.model, run.split_id) / "history.csv").to_dicts()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--split", default="random-80-10-10-s0")
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default: train.device)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: train.threads)")
    ap.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    ap.add_argument("--repro-epochs", type=int, default=0)
    ap.add_argument("--json", default=None, help="write every figure to this file")
    args = ap.parse_args()
    root = Path(args.root)
    params = apply_overrides(load_params(root / "params.yaml"), args.set)
    if args.threads is not None:
        params = dataclasses.replace(params, train=dataclasses.replace(params.train, threads=args.threads))
    threads = set_threads(params.train.threads)
    dev = resolve_device(args.device or params.train.device)
    layout = Layout(root)
    header: dict[str, Any] = {"device": str(dev), "torch": torch.__version__, "threads": threads}
    if dev.type == "cuda":
        header["gpu"] = torch.cuda.get_device_name(dev)
    print(" ".join(f"{k}={v}" for k, v in header.items()), flush=True)
    rows = []
    for name in args.models or params.train.models:
        row = run_model(layout, params, RunId(params.dataset, name, args.split), dev, args.repro_epochs)
        rows.append(row)
        print(json.dumps(row, default=str), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({**header, "runs": rows}, indent=2, default=str))
    mem = "peak GPU MiB" if dev.type == "cuda" else "peak RSS MiB"
    print(
        f"\n{'model':<12} {'test RMSE':>9} {'MAE':>7} {'epochs':>9} {'s/epoch':>8} {'s/ep 2+':>8} "
        f"{'train s':>8} {'eval s':>7} {mem:>12}  nondet-warnings  repro"
    )
    for r in rows:
        mib = r["peak_gpu_mib"] if r["peak_gpu_mib"] is not None else r["peak_rss_mib"]
        repro = (
            "-"
            if r["repro"] is None
            else ("identical" if r["repro"]["identical"] else f"diff {r['repro']['max_abs_diff']:.2e}")
        )
        rm = f"{r['test_rmse']:>9.4f}" if r["test_rmse"] is not None else f"{'—':>9}"
        ma = f"{r['test_mae']:>7.4f}" if r["test_mae"] is not None else f"{'—':>7}"
        print(
            f"{r['model']:<12} {rm} {ma} {r['epochs']:>4} ({r['best_epoch']:>2}) "
            f"{r['seconds_per_epoch']:>8.3f} {r['seconds_per_epoch_steady']:>8.3f} {r['train_seconds']:>8.1f} "
            f"{r['eval_seconds']:>7.2f} {mib:>12.0f}  {sum(r['nondeterministic_warnings'].values()):>15}  {repro}"
        )


if __name__ == "__main__":
    main()
