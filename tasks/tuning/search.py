"""Optuna TPE over a model's search space, scored on the VALIDATION part only (the run's monitor: valid_rmse,
valid_ndcg@10 ...); the test part is never evaluated. Seeded: the sampler's seed and each trial's training seed (the
split's) make a study reproducible on CPU. Trials run ``workers`` at a time in separate processes (one torch thread
each; a process has its own RNG, so side-by-side trials stay deterministic); suggestions are asked in batches of
``workers`` and told in trial order, so the same seed gives the same study whatever finishes first.

Writes ``artifacts/tuning/<dataset>/<model>/<split>/``: ``trials.csv`` (every trial's parameters, validation score,
epochs, seconds), ``best.json`` (the best configuration, its score, the space, what was tuned on what)."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import polars as pl

from tasks.common.config import Params
from tasks.common.errors import ConfigError
from tasks.common.io import atomic_dir
from tasks.common.paths import Layout
from tasks.tuning.space import parse_space


@dataclass(frozen=True)
class TrialResult:
    number: int
    values: dict[str, Any]
    score: float
    epochs: int
    seconds: float


def tuning_dir(layout: Layout, dataset: str, model: str, split_id: str) -> Path:
    return layout.root / "artifacts" / "tuning" / dataset / model / split_id


def run_trial(root: str, params: Params, dataset: str, model: str, split_id: str, values: dict[str, Any],
              max_epochs: int, threads: int | None) -> tuple[float, int, float, str, str]:  # fmt: skip
    """Train ``model`` with ``values`` over its params entry on the split's training part and return (best
    validation monitor, epochs, seconds, monitor name, its direction). Nothing is written but a temporary
    checkpoint."""
    import torch

    from models.common.registry import resolve_model
    from tasks.common.device import resolve_device, seed_everything
    from tasks.training import RunId, build_from_spec, build_run_data, fit

    if threads:
        torch.set_num_threads(threads)
    run = RunId(dataset, model, split_id)
    spec = resolve_model(model, params.models)
    dev = resolve_device(params.train.device)
    data = build_run_data(Layout(Path(root)), dataset, split_id, dev, spec.task, params.train.positive_threshold,
                          params.split.loo_negatives)  # fmt: skip
    seed_everything(run.seed)
    net = build_from_spec(spec, {**spec.raw, **values}, data.ctx)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        res = fit(net, data, seed=run.seed, max_epochs=max_epochs, patience=net.cfg.patience or params.train.patience,
                  best_path=Path(tmp) / "best.pt", resume_path=None, fp="", progress=lambda s: None)  # fmt: skip
    return res.best_value, res.epochs, time.perf_counter() - t0, res.monitor.name, res.monitor.mode


def tune(root: Path, params: Params, dataset: str, model: str, split_id: str, *, trials: int | None = None,
         workers: int | None = None, seed: int | None = None, progress: Callable[[str], None] = print
         ) -> dict[str, Any]:  # fmt: skip
    """Run the study; returns best.json's content (also written, with trials.csv)."""
    import optuna

    space_raw = params.tune.spaces.get(model)
    if not space_raw:
        raise ConfigError(f"tune.spaces.{model}", "a search space for this model in params.yaml", None)
    space = parse_space(space_raw, f"tune.spaces.{model}")
    trials = trials or params.tune.trials
    workers = max(1, workers or params.tune.workers)
    seed = params.tune.seed if seed is None else seed
    max_epochs = params.tune.max_epochs or params.train.max_epochs
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monitor, mode = monitor_of(root, params, dataset, model, split_id)
    study = optuna.create_study(direction="minimize" if mode == "min" else "maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))  # fmt: skip
    results: list[TrialResult] = []
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        while len(results) < trials:
            asked = [study.ask() for _ in range(min(workers, trials - len(results)))]
            batch = [{r.name: r.suggest(t) for r in space} for t in asked]
            args = [(str(root), params, dataset, model, split_id, v, max_epochs, 1 if pool else None) for v in batch]
            outs = list(pool.map(run_trial, *zip(*args, strict=True))) if pool else [run_trial(*a) for a in args]
            for trial, values, (score, epochs, secs, _, _) in zip(asked, batch, outs, strict=True):
                study.tell(trial, score)  # in trial order: the same seed gives the same study
                results.append(TrialResult(trial.number, values, score, epochs, secs))
                progress(f"trial {trial.number + 1}/{trials}: {values} → {monitor} {score:.4f} "
                         f"({epochs} epochs, {secs:.0f}s)")  # fmt: skip
    finally:
        if pool is not None:
            pool.shutdown()
    best = min(results, key=lambda r: r.score) if mode == "min" else max(results, key=lambda r: r.score)
    summary = {
        "dataset": dataset, "model": model, "split_id": split_id, "monitor": monitor, "direction": mode,
        "best_value": best.score, "best_trial": best.number, "best_params": best.values,
        "tuned": sorted(r.name for r in space), "space": space_raw, "trials": len(results), "seed": seed,
        "workers": workers, "sampler": "optuna TPE",
        "scored_on": f"the validation part of {split_id} ({monitor}); the test part is never read",
    }  # fmt: skip
    _write(tuning_dir(Layout(root), dataset, model, split_id), results, summary)
    return summary


def monitor_of(root: Path, params: Params, dataset: str, model: str, split_id: str) -> tuple[str, str]:
    """(monitor name, min | max) of ``model`` on this split, from a model built with its params entry."""
    import torch

    from models.common.registry import resolve_model
    from tasks.training import build_from_spec, build_run_data
    from tasks.training.monitor import choose_monitor

    spec = resolve_model(model, params.models)
    data = build_run_data(Layout(Path(root)), dataset, split_id, torch.device("cpu"), spec.task,
                          params.train.positive_threshold, params.split.loo_negatives)  # fmt: skip
    chosen = choose_monitor(build_from_spec(spec, spec.raw, data.ctx), data)
    return chosen.name, chosen.mode


def _write(out: Path, results: list[TrialResult], summary: dict[str, Any]) -> None:
    rows = [{"trial": r.number, **{k: json.dumps(v) if isinstance(v, (list, dict)) else v
                                   for k, v in r.values.items()},
             "score": r.score, "epochs": r.epochs, "seconds": round(r.seconds, 2)} for r in results]  # fmt: skip
    with atomic_dir(out) as tmp:
        pl.DataFrame(rows).write_csv(tmp / "trials.csv")
        (tmp / "best.json").write_text(json.dumps(summary, indent=1, default=str) + "\n", encoding="utf-8")


def write_variant(params_file: Path, model: str, values: dict[str, Any]) -> str:
    """Add (or replace) ``<model>-tuned: {base: <model>, ...values}`` right under ``models:`` in params.yaml,
    as one line, leaving every comment and every other line as it was. Returns the variant's name."""
    name = f"{model}-tuned"
    body = ", ".join([f"base: {model}", *(f"{k}: {json.dumps(v)}" for k, v in values.items())])
    line = f"  {name}: {{{body}}}  # written by python -m flows.tune (validation-only)"
    lines = params_file.read_text(encoding="utf-8").splitlines()
    lines = [ln for ln in lines if not ln.startswith(f"  {name}:")]
    try:
        at = lines.index("models:")
    except ValueError as exc:
        raise ConfigError(str(params_file), "a top-level 'models:' line", None) from exc
    lines.insert(at + 1, line)
    params_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return name
