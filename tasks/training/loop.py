"""The one generic training loop: seeded, device-agnostic, early stopping on the declared monitor, best checkpoint
(``state_dict`` only), per-epoch history and progress lines with an ETA, resumable after a kill.

The loop knows nothing of a model's loss: a gradient step returns a ``StepLoss`` (objective + named scalars), a
model that fits itself (counting, closed forms, ALS) runs ``fit_epoch``. Checkpoints and the resume state are saved
through memory (identical runs give identical bytes) and load with ``torch.load(weights_only=True)``: a file that
needs anything else is refused."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from models.common.base import Recommender
from tasks.common.errors import ConfigError, DataError
from tasks.common.io import atomic_path
from tasks.training.data import RunData
from tasks.training.monitor import Monitor, choose_monitor, validation_metrics

CHECKPOINT = "model.pt"


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_value: float
    best_valid: dict[str, float]
    epochs: int
    train_seconds: float
    resumed_from: int
    monitor: Monitor



def save_torch(path: Path, obj: Any) -> None:
    """``torch.save`` through memory, then an atomic write: identical objects give identical bytes (saving
    to a path would record the temporary file's name inside the archive)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_path(path, ".pt") as tmp:
        tmp.write_bytes(buf.getvalue())


def load_torch(path: Path, device: torch.device) -> Any:
    """Weights-only load; anything that needs arbitrary unpickling is refused (it could run code)."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:
        raise DataError(
            path,
            "refused to load: not a weights-only checkpoint (it may hold code); delete the file to start afresh",
            expected="tensors, numbers, strings, lists and dicts only",
            found=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}",
        ) from exc


def _make_scheduler(model: Recommender, opt: torch.optim.Optimizer | None, mode: str) -> Any:
    decay = getattr(model.cfg, "lr_decay", 1.0)
    if opt is None or decay >= 1.0:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        opt, mode=mode, factor=decay, patience=model.cfg.lr_patience, threshold=1e-4, threshold_mode="abs"
    )


def _epoch(model: Recommender, opt: torch.optim.Optimizer | None, rng: np.random.Generator) -> dict[str, float]:
    """One epoch: gradient steps (``batch_loss``) or the model's own fit; the epoch's logged scalars."""
    model.train()
    if opt is None:
        logs = model.fit_epoch(rng)
        return {k: float(v) for k, v in logs.items()}
    if getattr(model.cfg, "full_batch", False):
        return _full_batch_epoch(model, opt, rng)
    if (fused := model.fused_epoch(opt, rng)) is not None:
        return fused
    sums: dict[str, float] = {}
    total_w = 0.0
    for batch in model.train_batches(rng):
        opt.zero_grad(set_to_none=True)
        step = model.batch_loss(batch)
        model.backward(step)
        opt.step()
        w = float(step.weight)
        total_w += w
        for name, value in (("loss", step.objective.detach()), *step.logs.items()):
            sums[name] = sums.get(name, 0.0) + float(value) * w
    return {k: v / max(total_w, 1e-12) for k, v in sums.items()}


def _full_batch_epoch(model: Recommender, opt: torch.optim.Optimizer, rng: np.random.Generator) -> dict[str, float]:
    """Full-batch optimizers (Rprop, L-BFGS): the objective is the sum of the model's minibatch objectives (each
    minibatch carries its share of the regulariser), its gradient accumulated over them, so a step sees the whole
    training objective without holding it in memory at once. Rprop takes ``full_batch_steps`` steps; L-BFGS one
    step of up to that many iterations (its line search re-evaluates the closure). Logged: the last evaluation."""
    batches = list(model.train_batches(rng))  # one fixed order per epoch: every closure call sums identically
    logs: dict[str, float] = {}

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        total = None
        sums: dict[str, float] = {}
        total_w = 0.0
        for batch in batches:
            step = model.batch_loss(batch)
            model.backward(step)
            total = step.objective.detach() if total is None else total + step.objective.detach()
            w = float(step.weight)
            total_w += w
            for name, value in step.logs.items():
                sums[name] = sums.get(name, 0.0) + float(value) * w
        if total is None:
            raise DataError("training data", "no training batch", expected="at least one batch", found=0)
        logs.clear()
        logs["loss"] = float(total)
        logs.update({k: v / max(total_w, 1e-12) for k, v in sums.items()})
        return total

    cfg = model.cfg
    steps = 1 if isinstance(opt, torch.optim.LBFGS) else int(getattr(cfg, "full_batch_steps", 1))
    for _ in range(steps):
        opt.step(closure)
    return dict(logs)


def fit(
    model: Recommender,
    data: RunData,
    *,
    seed: int,
    max_epochs: int,
    patience: int,
    best_path: Path,
    resume_path: Path | None,
    fp: str,
    progress: Callable[[str], None] = print,
) -> FitResult:
    """Train until the monitor has not improved for ``patience`` epochs (or the model says it is done);
    keep the best state_dict."""
    if max_epochs < 1:
        raise ConfigError("train.max_epochs", "an integer >= 1", max_epochs)
    monitor = choose_monitor(model, data)
    rng = np.random.default_rng(seed)
    opt = model.make_optimizer()
    sched = _make_scheduler(model, opt, monitor.mode)
    history: list[dict[str, float]] = []
    best, best_epoch, start_epoch, elapsed = monitor.worst, 0, 1, 0.0
    best_state: dict[str, torch.Tensor] | None = None
    best_valid: dict[str, float] = {}
    resumed_from = 0
    if resume_path is not None and resume_path.exists():
        state = load_torch(resume_path, data.ctx.device)
        if isinstance(state, dict) and state.get("fingerprint") == fp:
            model.load_state_dict(state["model"])
            if opt is not None:
                opt.load_state_dict(state["optimizer"])
            if sched is not None and state.get("scheduler"):
                sched.load_state_dict(state["scheduler"])
            rng.bit_generator.state = json.loads(state["rng"])
            torch.set_rng_state(state["torch_rng"].cpu())  # map_location moved it to the device
            if state.get("cuda_rng") is not None and data.ctx.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"].cpu(), data.ctx.device)
            history, best, best_epoch = state["history"], state["best"], state["best_epoch"]
            best_state, best_valid = state["best_state"], state["best_valid"]
            start_epoch = resumed_from = state["epoch"] + 1
            elapsed = sum(h["seconds"] for h in history)
            progress(f"resuming from epoch {state['epoch']} (best {monitor.name} {best:.4f} at epoch {best_epoch})")
    done = bool(history) and model.finished()
    for epoch in range(start_epoch, max_epochs + 1):
        if done or (epoch - best_epoch > patience and best_epoch > 0):
            break
        t0 = time.perf_counter()
        lr_now = opt.param_groups[0]["lr"] if opt is not None else float("nan")
        logs = _epoch(model, opt, rng)
        fit_seconds = time.perf_counter() - t0
        if "loss" in logs and not np.isfinite(logs["loss"]):
            raise FloatingPointError(f"training loss is {logs['loss']} at epoch {epoch}: training diverged (lower lr?)")
        valid = validation_metrics(model, data, monitor)
        value = valid[monitor.name] if monitor.name in valid else float("nan")
        if not np.isfinite(value):
            raise FloatingPointError(f"{monitor.name} is {value} at epoch {epoch}: training diverged (lower lr?)")
        warm = model.warming_up()
        if sched is not None and not warm:
            sched.step(value)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        history.append({"epoch": epoch, **logs, **valid, "monitor": value, "fit_seconds": fit_seconds,
                        "seconds": seconds, "lr": lr_now})  # fmt: skip
        improved = not warm and monitor.better(value, best)
        if improved:
            best, best_epoch, best_valid = value, epoch, dict(valid)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        done = model.finished()
        left = (max_epochs - epoch) * elapsed / len(history)
        logged = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        progress(
            f"epoch {epoch:>3}/{max_epochs}  {logged}  {monitor.name} {value:.4f}  best {best:.4f}@{best_epoch}"
            f"  {seconds:.2f}s  (at most ~{left:.0f}s left)"
            + ("  *" if improved else "")
            + ("  (pre-training)" if warm else "")
        )
        if resume_path is not None:
            save_torch(
                resume_path,
                {
                    "fingerprint": fp,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict() if opt is not None else None,
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "rng": json.dumps(rng.bit_generator.state),
                    "torch_rng": torch.get_rng_state(),
                    # dropout masks on CUDA come from the device's generator
                    "cuda_rng": torch.cuda.get_rng_state(data.ctx.device) if data.ctx.device.type == "cuda" else None,
                    "history": history,
                    "best": best,
                    "best_epoch": best_epoch,
                    "best_valid": best_valid,
                    "best_state": best_state,
                },
            )
    if best_state is None and history:  # every epoch so far was a warm-up (pre-training) epoch: keep the last state
        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:
        raise FloatingPointError("no epoch was trained")
    model.load_state_dict(best_state)
    save_torch(best_path, best_state)
    return FitResult(history, best_epoch, best, best_valid, len(history), elapsed, resumed_from, monitor)


def history_frame(history: list[dict[str, float]]) -> pl.DataFrame:
    """One row per epoch: epoch, every logged scalar, the validation metrics, monitor, the epoch's training
    seconds (``fit_seconds``, validation excluded), its total seconds, lr."""
    names: list[str] = []
    for row in history:
        names += [k for k in row if k not in names]
    tail = ["monitor", "fit_seconds", "seconds", "lr"]
    order = ["epoch", *[n for n in names if n not in ("epoch", *tail)], *tail]
    schema = {n: (pl.Int64 if n == "epoch" else pl.Float64) for n in order}
    return pl.DataFrame([{n: row.get(n) for n in order} for row in history], schema=schema)
