"""Train one (dataset, model, split) run end to end and rebuild a trained run for evaluation."""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.common.base import Recommender
from models.common.registry import ModelSpec, resolve_model
from tasks.common.config import Params
from tasks.common.device import resolve_device, seed_everything, set_threads
from tasks.common.digest import TRAINING_CODE, code_digest, folder_digest
from tasks.common.errors import ConfigError, DataError
from tasks.common.io import atomic_dir, read_json, write_json, write_text
from tasks.common.paths import Layout
from tasks.training.data import RunData, RunId, build_from_spec, build_run_data
from tasks.training.loop import CHECKPOINT, fit, history_frame, load_torch
from tasks.training.records import TrainRecord

log = logging.getLogger(__name__)


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_pretraining(layout: Layout, run: RunId, model: Recommender, device: torch.device) -> dict[str, str]:
    """Initialise ``model`` from the trained runs it names (same dataset and split); {run: checkpoint digest}.
    A missing run, or one trained on another dataset, split or item set, is refused naming the parameter."""
    names = model.pretrained_runs()
    if not names:
        return {}
    param = f"models.{run.model}.pretrain"
    states, digests = [], {}
    for name in names:
        where = layout.run(run.dataset, name, run.split_id)
        ckpt, cfg_path = where / CHECKPOINT, where / "config.json"
        if not ckpt.is_file() or not cfg_path.is_file():
            raise ConfigError(param, f"a trained run {name!r} of {run.dataset}/{run.split_id} (train it first)",
                              f"no run at {where}")  # fmt: skip
        cfg = read_json(cfg_path)
        found = (cfg.get("dataset"), cfg.get("split_id"), cfg.get("n_users"), cfg.get("n_items"))
        want = (run.dataset, run.split_id, model.n_users, model.n_items)
        if found != want:
            raise ConfigError(param, f"run {name!r} trained on {want[0]}/{want[1]} ({want[2]} users, {want[3]} items)",
                              f"{found[0]}/{found[1]} ({found[2]} users, {found[3]} items)")  # fmt: skip
        states.append(load_torch(ckpt, device))
        digests[name] = hashlib.sha256(ckpt.read_bytes()).hexdigest()[:16]
    model.load_pretrained(states, list(names))
    return digests


def train_run(
    layout: Layout,
    params: Params,
    run: RunId,
    progress: Callable[[str], None] = print,
    device: str | None = None,
    skip_current: bool = False,
) -> TrainRecord:
    """Train one (dataset, model, split) run; writes model.pt, config.json, history.csv, train.json.

    ``skip_current``: when the run's folder already holds a finished run with the same fingerprint (config, model
    source, the training code, the split and feature files, parameter shapes: ``config.json``'s ``fingerprint``),
    return its record instead of training again (the experiment runner's cache, and the DVC stage of a dataset's
    grid: DVC reruns the stage when any of its dependencies changed, the fingerprint retrains only the runs that
    changed)."""
    threads = set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    spec = resolve_model(run.model, params.models)
    seed_everything(run.seed)
    data = build_run_data(layout, run.dataset, run.split_id, dev, spec.task, params.train.positive_threshold,
                          params.split.loo_negatives)  # fmt: skip
    if data.valid.is_empty():
        raise DataError(
            layout.split(run.dataset, run.split_id),
            "empty validation set",
            expected="validation interactions for early stopping",
            found="0 rows" + (f" ({data.positives})" if data.positives else ""),
        )
    model = build_from_spec(spec, spec.raw, data.ctx)
    evaluated = np.unique(np.concatenate([f["user_idx"].to_numpy() for f in (data.valid, data.test)]))
    model.check_eval_users(evaluated.astype(np.int64))
    pretrained = load_pretraining(layout, run, model, dev)
    final = layout.run(run.dataset, run.model, run.split_id)
    config = {
        "dataset": run.dataset,
        "model": run.model,
        "model_class": spec.cls.name,
        "base_model": spec.base,
        "preset": spec.preset,
        "task": spec.task,
        "split_id": run.split_id,
        "protocol": run.protocol,
        "seed": run.seed,
        "model_config": model.cfg.to_dict(),
        "n_users": data.ctx.n_users,
        "n_items": data.ctx.n_items,
        "positive_threshold": params.train.positive_threshold if data.positives else None,
        "pretrained_from": pretrained or None,
        "max_epochs": model.cfg.max_epochs or params.train.max_epochs,
        "patience": model.cfg.patience or params.train.patience,
    }
    source = Path(inspect.getfile(type(model))).read_bytes()
    fp = fingerprint(
        {
            **config,
            "train_rows": len(data.ctx.ratings),
            "train_sum": float(data.ctx.ratings.sum()),
            "model_source": hashlib.sha256(source).hexdigest(),
            "code": code_digest(TRAINING_CODE),
            "split_files": folder_digest(layout.split(run.dataset, run.split_id)),
            "feature_files": folder_digest(layout.features(run.dataset)),
            "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
    )
    curve = layout.curve(run.dataset, run.model, run.split_id)
    if skip_current and _is_current(final, fp):
        progress(f"{run}: up to date (fingerprint {fp[:12]}), not retrained")
        if not curve.exists() and (final / "history.csv").exists():
            write_text(curve, (final / "history.csv").read_text(encoding="utf-8"))
        return TrainRecord.read(final / "train.json")
    resume = layout.root / "artifacts" / ".resume" / run.dataset / run.model / f"{run.split_id}.pt"
    progress(
        f"training {run} ({spec.task} model{', ' + data.positives if data.positives else ''}) on {dev} "
        f"({threads} threads): {model.n_parameters():,} parameters, {len(data.ctx.ratings):,} training interactions"
    )
    with atomic_dir(final) as out:  # the run's files appear together, or not at all
        result = fit(
            model,
            data,
            seed=run.seed,
            max_epochs=config["max_epochs"],
            patience=config["patience"],
            best_path=out / CHECKPOINT,
            resume_path=resume,
            fp=fp,
            progress=progress,
        )
        write_text(out / "history.csv", history_frame(result.history).write_csv())
        write_json(out / "config.json", {**config, "monitor": result.monitor.name, "fingerprint": fp})
        record = TrainRecord(
            dataset=run.dataset,
            model=run.model,
            split_id=run.split_id,
            protocol=run.protocol,
            seed=run.seed,
            task=spec.task,
            monitor=result.monitor.name,
            monitor_mode=result.monitor.mode,
            epochs=result.epochs,
            best_epoch=result.best_epoch,
            best_monitor=result.best_value,
            best_valid=result.best_valid,
            train_seconds=round(result.train_seconds, 3),
            seconds_per_epoch=round(result.train_seconds / max(result.epochs, 1), 4),
            n_params=model.n_parameters(),
            device=str(dev),
            threads=threads,
            resumed_from_epoch=result.resumed_from,
            n_train=len(data.ctx.ratings),
            base_model=spec.base,
            positives=data.positives,
        )
        write_json(out / "train.json", record.to_json())
    write_text(curve, (final / "history.csv").read_text(encoding="utf-8"))
    resume.unlink(missing_ok=True)
    progress(
        f"done {run}: best {result.monitor.name} {result.best_value:.4f} at epoch {result.best_epoch} "
        f"({result.epochs} epochs, {result.train_seconds:.1f}s)"
    )
    return record


def _is_current(final: Path, fp: str) -> bool:
    """A finished run (checkpoint, config, record) whose config.json carries the fingerprint ``fp``."""
    config = final / "config.json"
    if not all((final / f).exists() for f in (CHECKPOINT, "config.json", "train.json")):
        return False
    try:
        return json.loads(config.read_text(encoding="utf-8")).get("fingerprint") == fp
    except (OSError, ValueError):
        return False


def load_trained(
    layout: Layout, run: RunId, device: torch.device, params: Params | None = None
) -> tuple[Recommender, RunData]:
    """Rebuild a run's model from config.json and load its best checkpoint (weights only)."""
    out = layout.run(run.dataset, run.model, run.split_id)
    config = read_json(out / "config.json")
    cls_spec = resolve_model(config.get("model_class") or run.model, {})
    spec = ModelSpec(run.model, cls_spec.cls, config["model_config"], cls_spec.base)
    threshold = config.get("positive_threshold") or 4.0
    # the task of the run as trained (a model whose task is a config field, gf, says it in model_config)
    data = build_run_data(layout, run.dataset, run.split_id, device, spec.task, threshold,
                          params.split.loo_negatives if params else 99)  # fmt: skip
    model = build_from_spec(spec, config["model_config"], data.ctx)
    model.load_state_dict(load_torch(out / CHECKPOINT, device))
    model.eval()
    return model, data
