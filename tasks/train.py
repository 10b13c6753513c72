"""The one generic training loop: seeded, device-agnostic, early stopping on validation RMSE, best
checkpoint (``state_dict`` only), per-epoch history and progress lines, resumable after a kill.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from models.base import RatingModel
from models.context import TrainContext
from models.registry import get_model_class
from tasks.config import Params, parse_split_id
from tasks.datasets import get_dataset
from tasks.device import resolve_device, seed_everything, set_threads
from tasks.errors import DataError
from tasks.features import load_side_info
from tasks.io import atomic_dir, atomic_path, read_json, write_json, write_text
from tasks.metrics import rmse
from tasks.paths import Layout
from tasks.splits import SplitResult, load_split

log = logging.getLogger(__name__)
CHECKPOINT = "model.pt"


@dataclass(frozen=True)
class RunId:
    dataset: str
    model: str
    split_id: str

    @property
    def protocol(self) -> str:
        return parse_split_id(self.split_id)[0]

    @property
    def seed(self) -> int:
        return parse_split_id(self.split_id)[1]

    def __str__(self) -> str:
        return f"{self.dataset}/{self.model}/{self.split_id}"


def build_context(
    layout: Layout, dataset: str, split_id: str, device: torch.device
) -> tuple[TrainContext, SplitResult]:
    """Training context from the split's TRAIN part only, plus side information."""
    ds = get_dataset(dataset, raw_dir=layout.raw(dataset))
    ingested = layout.ingested(dataset)
    stats_path = ingested / "stats.json"
    if not stats_path.exists():
        raise DataError(stats_path, "ingested dataset missing (run the ingest stage first)")
    stats = read_json(stats_path)
    split = load_split(layout.split(dataset, split_id))
    side = load_side_info(layout.features(dataset))
    tr = split.train
    ctx = TrainContext(
        n_users=int(stats["n_users"]),
        n_items=int(stats["n_items"]),
        users=tr["user_idx"].to_numpy().astype(np.int64),
        items=tr["item_idx"].to_numpy().astype(np.int64),
        ratings=tr["rating"].to_numpy().astype(np.float32),
        rating_scale=ds.rating_scale,
        device=device,
        user_side={k: v for k, v in (("bow", side.user_bow), ("svd", side.user_svd)) if v is not None},
        item_side={k: v for k, v in (("bow", side.item_bow), ("svd", side.item_svd)) if v is not None},
        implicit=ds.implicit,
    )
    return ctx, split


def build_model(name: str, raw_cfg: dict[str, Any], ctx: TrainContext) -> RatingModel:
    cls = get_model_class(name)
    cfg = cls.config_cls.from_dict(raw_cfg, name)
    model = cls(cfg, ctx)
    model.name = name  # type: ignore[misc]
    return model.to(ctx.device)


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_valid_rmse: float
    epochs: int
    train_seconds: float
    resumed_from: int


def fit(
    model: RatingModel,
    ctx: TrainContext,
    valid: pl.DataFrame,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    best_path: Path,
    resume_path: Path | None,
    fp: str,
    progress: Callable[[str], None] = print,
) -> FitResult:
    """Train until validation RMSE has not improved for ``patience`` epochs; keep the best state_dict."""
    lo, hi = ctx.rating_scale
    rng = np.random.default_rng(seed)
    model.attach_training_pairs(ctx)
    opt = model.make_optimizer()
    sched = None
    if model.cfg.lr_decay < 1.0:
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="min",
            factor=model.cfg.lr_decay,
            patience=model.cfg.lr_patience,
            threshold=1e-4,
            threshold_mode="abs",
        )
    vu, vi = valid["user_idx"].to_numpy(), valid["item_idx"].to_numpy()
    vy = valid["rating"].to_numpy().astype(np.float64)
    history: list[dict[str, float]] = []
    best, best_epoch, start_epoch, elapsed = float("inf"), 0, 1, 0.0
    best_state: dict[str, torch.Tensor] | None = None
    resumed_from = 0
    if resume_path is not None and resume_path.exists():
        state = torch.load(resume_path, map_location=ctx.device, weights_only=False)
        if state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler"):
                sched.load_state_dict(state["scheduler"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device
            if state.get("cuda_rng") is not None and ctx.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), ctx.device)
            history, best, best_epoch = state["history"], state["best"], state["best_epoch"]
            best_state = state["best_state"]
            start_epoch = resumed_from = state["epoch"] + 1
            elapsed = sum(h["seconds"] for h in history)
            progress(f"resuming from epoch {state['epoch']} (best valid RMSE {best:.4f} at epoch {best_epoch})")
    for epoch in range(start_epoch, max_epochs + 1):
        if epoch - best_epoch > patience and best_epoch > 0:
            break
        t0 = time.perf_counter()
        lr_now = opt.param_groups[0]["lr"]
        model.train()
        sse, count = 0.0, 0
        for batch in model.train_batches(rng):
            opt.zero_grad(set_to_none=True)
            objective, batch_sse, n = model.batch_loss(batch)
            objective.backward()
            opt.step()
            sse += float(batch_sse)
            count += n
        pred = np.clip(model.predict(vu, vi), lo, hi)
        v_rmse = rmse(vy, pred)
        if not np.isfinite(v_rmse):
            raise FloatingPointError(f"validation RMSE is {v_rmse} at epoch {epoch}: training diverged (lower lr?)")
        if sched is not None:
            sched.step(v_rmse)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        history.append(
            {"epoch": epoch, "train_loss": sse / max(count, 1), "valid_rmse": v_rmse, "seconds": seconds, "lr": lr_now}
        )
        improved = v_rmse < best - 1e-6
        if improved:
            best, best_epoch = v_rmse, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        progress(
            f"epoch {epoch:>3}/{max_epochs}  train_mse {history[-1]['train_loss']:.4f}  valid_rmse {v_rmse:.4f}"
            f"  best {best:.4f}@{best_epoch}  {seconds:.2f}s" + ("  *" if improved else "")
        )
        if resume_path is not None:
            with atomic_path(resume_path, ".pt") as tmp:
                torch.save(
                    {
                        "fingerprint": fp,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict() if sched is not None else None,
                        "rng": rng.bit_generator.state,
                        "torch_rng": torch.get_rng_state(),
                        # dropout masks on CUDA come from the device's generator
                        "cuda_rng": torch.cuda.get_rng_state(ctx.device) if ctx.device.type == "cuda" else None,
                        "history": history,
                        "best": best,
                        "best_epoch": best_epoch,
                        "best_state": best_state,
                    },
                    tmp,
                )
    if best_state is None:
        raise FloatingPointError("no epoch was trained (max_epochs < 1?)")
    model.load_state_dict(best_state)
    with atomic_path(best_path, ".pt") as tmp:
        torch.save(best_state, tmp)
    return FitResult(history, best_epoch, best, len(history), elapsed, resumed_from)


def train_run(
    layout: Layout,
    params: Params,
    run: RunId,
    progress: Callable[[str], None] = print,
    device: str | None = None,
) -> dict[str, Any]:
    """Train one (dataset, model, split) run; writes model.pt, config.json, history.csv, train.json."""
    threads = set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    raw_cfg = params.model_config(run.model)
    seed_everything(run.seed)
    ctx, split = build_context(layout, run.dataset, run.split_id, dev)
    if split.valid.is_empty():
        raise DataError(
            layout.split(run.dataset, run.split_id),
            "empty validation set",
            expected="validation ratings for early stopping",
            found="0 rows",
        )
    model = build_model(run.model, raw_cfg, ctx)
    final = layout.run(run.dataset, run.model, run.split_id)
    config = {
        "dataset": run.dataset,
        "model": run.model,
        "split_id": run.split_id,
        "protocol": run.protocol,
        "seed": run.seed,
        "model_config": model.cfg.to_dict(),
        "n_users": ctx.n_users,
        "n_items": ctx.n_items,
        "max_epochs": model.cfg.max_epochs or params.train.max_epochs,
        "patience": model.cfg.patience or params.train.patience,
    }
    source = Path(inspect.getfile(type(model))).read_bytes()
    fp = fingerprint(
        {
            **config,
            "train_rows": len(ctx.ratings),
            "train_sum": float(ctx.ratings.sum()),
            "model_source": hashlib.sha256(source).hexdigest(),
            "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
    )
    resume = layout.root / "artifacts" / ".resume" / run.dataset / run.model / f"{run.split_id}.pt"
    progress(
        f"training {run} on {dev} ({threads} threads): {model.n_parameters():,} parameters, "
        f"{len(ctx.ratings):,} training ratings"
    )
    with atomic_dir(final) as out:  # the run's files appear together, or not at all
        result = _fit_and_write(model, ctx, split, params, run, config, out, resume, fp, progress, dev, threads)
    resume.unlink(missing_ok=True)
    progress(
        f"done {run}: best valid RMSE {result['best_valid_rmse']:.4f} at epoch {result['best_epoch']} "
        f"({result['epochs']} epochs, {result['train_seconds']:.1f}s)"
    )
    return result


def _fit_and_write(
    model: RatingModel,
    ctx: TrainContext,
    split: SplitResult,
    params: Params,
    run: RunId,
    config: dict[str, Any],
    out: Path,
    resume: Path,
    fp: str,
    progress: Callable[[str], None],
    dev: torch.device,
    threads: int,
) -> dict[str, Any]:
    result = fit(
        model,
        ctx,
        split.valid,
        seed=run.seed,
        max_epochs=config["max_epochs"],
        patience=config["patience"],
        best_path=out / CHECKPOINT,
        resume_path=resume,
        fp=fp,
        progress=progress,
    )
    hist = pl.DataFrame(
        result.history,
        schema={
            "epoch": pl.Int64,
            "train_loss": pl.Float64,
            "valid_rmse": pl.Float64,
            "seconds": pl.Float64,
            "lr": pl.Float64,
        },
    )
    write_text(out / "history.csv", hist.write_csv())
    write_json(out / "config.json", config)
    summary = {
        **{k: config[k] for k in ("dataset", "model", "split_id", "protocol", "seed")},
        "epochs": result.epochs,
        "best_epoch": result.best_epoch,
        "best_valid_rmse": result.best_valid_rmse,
        "train_seconds": round(result.train_seconds, 3),
        "seconds_per_epoch": round(result.train_seconds / max(result.epochs, 1), 4),
        "n_params": model.n_parameters(),
        "device": str(dev),
        "threads": threads,
        "resumed_from_epoch": result.resumed_from,
    }
    write_json(out / "train.json", summary)
    return summary


def load_trained(layout: Layout, run: RunId, device: torch.device) -> tuple[RatingModel, TrainContext, SplitResult]:
    """Rebuild a run's model from config.json and load its best checkpoint (weights only)."""
    out = layout.run(run.dataset, run.model, run.split_id)
    config = read_json(out / "config.json")
    ctx, split = build_context(layout, run.dataset, run.split_id, device)
    model = build_model(run.model, config["model_config"], ctx)
    state = torch.load(out / CHECKPOINT, map_location=device, weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, ctx, split
