"""The one generic training loop: seeded, device-agnostic, early stopping on a declared validation monitor,
best checkpoint (``state_dict`` only), per-epoch history and progress lines, resumable after a kill.

The loop knows nothing of a model's loss: a gradient step returns a ``StepLoss`` (objective + named scalars),
a model that fits itself (counting, closed forms, ALS) runs ``fit_epoch``. What the run reads is built here
from the split and the ingest manifest (``RunData``): the training interactions (for a ranking model on
explicit ratings only those ≥ ``train.positive_threshold``), the side matrices, the validation rows and
negatives the monitor needs. Checkpoints and the resume state load with ``torch.load(weights_only=True)``:
a resume file that needs anything else is refused.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from models.common.base import Recommender, parse_monitor
from models.common.context import TrainContext
from models.common.registry import ModelSpec, resolve_model
from tasks.config import Params, parse_split_id
from tasks.device import resolve_device, seed_everything, set_threads
from tasks.errors import ConfigError, DataError
from tasks.features import load_side_info
from tasks.io import atomic_dir, atomic_path, read_json, write_json, write_text
from tasks.manifest import DatasetManifest, read_manifest
from tasks.metrics import mae, rmse
from tasks.paths import Layout
from tasks.ranking import full_ranking, sampled_ranking
from tasks.splits import SplitResult, get_protocol, load_split

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


# --- what a run reads ----------------------------------------------------------------------------------


@dataclass
class RunData:
    """Everything one run reads: the model's context (training part only), the split as written, and the
    validation / test rows its task evaluates (positives only for a ranking model on explicit ratings)."""

    ctx: TrainContext
    split: SplitResult
    manifest: DatasetManifest
    task: str
    valid: pl.DataFrame
    test: pl.DataFrame
    positives: str | None = None  # how positives were chosen, when they were (ranking on explicit data)
    threshold: float | None = None  # the rating threshold of those positives
    ranking_protocol: bool = False  # the protocol holds out one positive per user with listed negatives

    def known(self, *parts: str) -> pl.DataFrame:
        """The (user, item) pairs of the named parts as written (every rating, below threshold too)."""
        return pl.concat([self.split.part(p).select("user_idx", "item_idx") for p in parts])


def check_threshold(threshold: float, scale: tuple[float, float]) -> None:
    lo, hi = scale
    if not lo <= threshold <= hi:
        raise ConfigError("train.positive_threshold", f"a rating within the dataset's scale [{lo:g}, {hi:g}]",
                          threshold)  # fmt: skip


def build_run_data(
    layout: Layout, dataset: str, split_id: str, device: torch.device, task: str = "rating",
    positive_threshold: float = 4.0, loo_negatives: int = 99,
) -> RunData:  # fmt: skip
    """The run's inputs from the split's TRAIN part, the ingest manifest and the feature matrices."""
    manifest = read_manifest(layout.ingested(dataset))
    split = load_split(layout.split(dataset, split_id))
    side = load_side_info(layout.features(dataset))
    train, valid, test = split.train, split.valid, split.test
    note = None
    if task == "ranking" and not manifest.implicit:
        check_threshold(positive_threshold, manifest.rating_scale)
        kept = [f.filter(pl.col("rating") >= positive_threshold) for f in (train, valid, test)]
        note = (
            f"ratings >= {positive_threshold:g} are positives, the rest dropped "
            f"(train {kept[0].height:,} of {train.height:,}, valid {kept[1].height:,} of {valid.height:,}, "
            f"test {kept[2].height:,} of {test.height:,})"
        )
        train, valid, test = kept
    weights = train["weight"].to_numpy().astype(np.float32) if "weight" in train.columns else None
    ratings = np.ones(train.height, np.float32) if task == "ranking" else train["rating"].to_numpy()
    user_side = {"bow": side.user_bow, "svd": side.user_svd, **{f"{k}_svd": v for k, v in side.user_relations.items()}}
    item_side = {"bow": side.item_bow, "svd": side.item_svd, **{f"{k}_svd": v for k, v in side.item_relations.items()}}
    ctx = TrainContext(
        n_users=manifest.n_users,
        n_items=manifest.n_items,
        users=train["user_idx"].to_numpy().astype(np.int64),
        items=train["item_idx"].to_numpy().astype(np.int64),
        ratings=np.asarray(ratings, dtype=np.float32),
        rating_scale=manifest.rating_scale,
        device=device,
        user_side={k: v for k, v in user_side.items() if v is not None},
        item_side={k: v for k, v in item_side.items() if v is not None},
        implicit=manifest.implicit,
        weights=weights,
    )
    protocol = get_protocol(parse_split_id(split_id)[0], loo_negatives)
    return RunData(ctx, split, manifest, task, valid, test, note, positive_threshold if note else None,
                   ranking_protocol=protocol.implicit_eval)  # fmt: skip


def build_context(
    layout: Layout, dataset: str, split_id: str, device: torch.device
) -> tuple[TrainContext, SplitResult]:
    """Training context of a rating model (kept for scripts): ``build_run_data`` with the rating task."""
    data = build_run_data(layout, dataset, split_id, device)
    return data.ctx, data.split


def build_model(name: str, raw_cfg: dict[str, Any], ctx: TrainContext, entries: dict[str, dict] | None = None
                ) -> Recommender:  # fmt: skip
    """Build the model ``name`` (registered, or a variant declared in ``entries``) with ``raw_cfg`` on top."""
    spec = resolve_model(name, entries or {})
    return build_from_spec(spec, {**spec.raw, **raw_cfg}, ctx)


def build_from_spec(spec: ModelSpec, raw_cfg: dict[str, Any], ctx: TrainContext) -> Recommender:
    cfg = spec.cls.config_cls.from_dict(raw_cfg, spec.name)
    model = spec.cls(cfg, ctx)
    model.run_name = spec.name  # type: ignore[assignment]
    return model.to(ctx.device)


# --- the validation monitor ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Monitor:
    """The validation metric that picks the best epoch: its name, direction and how it is computed."""

    name: str  # valid_rmse, valid_ndcg@10 ...
    metric: str
    k: int | None
    mode: str  # min | max
    kind: str  # rating | sampled | full

    def better(self, value: float, best: float) -> bool:
        return value < best - 1e-6 if self.mode == "min" else value > best + 1e-6

    @property
    def worst(self) -> float:
        return float("inf") if self.mode == "min" else float("-inf")


def choose_monitor(model: Recommender, data: RunData) -> Monitor:
    param = f"models.{getattr(model, 'run_name', model.name)}.monitor"
    declared = getattr(model.cfg, "monitor", "")
    default = "valid_rmse" if (model.task == "rating" and not data.manifest.implicit) else "valid_ndcg@10"
    name = declared or default
    metric, k, mode = parse_monitor(name, param)
    if metric in ("rmse", "mae"):
        if model.task == "ranking" or data.manifest.implicit:
            raise ConfigError(param, "a ranking monitor (valid_ndcg@K, valid_hr@K ...): ratings are not predicted "
                              "here", name)  # fmt: skip
        return Monitor(name, metric, k, mode, "rating")
    if data.split.valid_negatives is not None:
        kind = "sampled"
    elif data.ranking_protocol:
        raise ConfigError(
            param,
            "a split with validation negatives (valid_negatives.parquet; run the split stage again)",
            f"{name} on {data.split.info.get('protocol', 'this split')}, which has none",
        )
    else:
        kind = "full"
    if kind == "sampled" and metric in ("recall", "precision"):
        raise ConfigError(param, "valid_hr@K, valid_ndcg@K or valid_mrr (one held-out positive per user)", name)
    return Monitor(name, metric, k or 10, mode, kind)


def validation_metrics(model: Recommender, data: RunData, monitor: Monitor) -> dict[str, float]:
    """The monitor's value and its siblings (both HR and NDCG at the monitor's K), named ``valid_*``."""
    v = data.valid
    if monitor.kind == "rating":
        lo, hi = data.ctx.rating_scale
        pred = np.clip(model.predict(v["user_idx"].to_numpy(), v["item_idx"].to_numpy()), lo, hi)
        y = v["rating"].to_numpy().astype(np.float64)
        return {"valid_rmse": rmse(y, pred), "valid_mae": mae(y, pred)}
    k = monitor.k or 10
    if monitor.kind == "sampled":
        assert data.split.valid_negatives is not None
        res = sampled_ranking(model, v, data.split.valid_negatives, k)
    else:
        res = full_ranking(model, v, data.known("train"), (k,))
    keep = [f"hr@{k}", f"ndcg@{k}", "mrr"] + ([f"recall@{k}", f"precision@{k}"] if monitor.kind == "full" else [])
    return {f"valid_{name}": float(res[name]) for name in keep}


# --- the loop ------------------------------------------------------------------------------------------


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

    @property
    def best_valid_rmse(self) -> float:  # the rating monitor's value, for scripts written against it
        return self.best_valid.get("valid_rmse", float("nan"))


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
    sums: dict[str, float] = {}
    total_w = 0.0
    for batch in model.train_batches(rng):
        opt.zero_grad(set_to_none=True)
        step = model.batch_loss(batch)
        step.objective.backward()
        opt.step()
        w = float(step.weight)
        total_w += w
        for name, value in (("loss", step.objective.detach()), *step.logs.items()):
            sums[name] = sums.get(name, 0.0) + float(value) * w
    return {k: v / max(total_w, 1e-12) for k, v in sums.items()}


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
        if "loss" in logs and not np.isfinite(logs["loss"]):
            raise FloatingPointError(f"training loss is {logs['loss']} at epoch {epoch}: training diverged (lower lr?)")
        valid = validation_metrics(model, data, monitor)
        value = valid[monitor.name] if monitor.name in valid else float("nan")
        if not np.isfinite(value):
            raise FloatingPointError(f"{monitor.name} is {value} at epoch {epoch}: training diverged (lower lr?)")
        if sched is not None:
            sched.step(value)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        history.append({"epoch": epoch, **logs, **valid, "monitor": value, "seconds": seconds, "lr": lr_now})
        improved = monitor.better(value, best)
        if improved:
            best, best_epoch, best_valid = value, epoch, dict(valid)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        done = model.finished()
        left = (max_epochs - epoch) * elapsed / len(history)
        logged = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
        progress(
            f"epoch {epoch:>3}/{max_epochs}  {logged}  {monitor.name} {value:.4f}  best {best:.4f}@{best_epoch}"
            f"  {seconds:.2f}s  (at most ~{left:.0f}s left)" + ("  *" if improved else "")
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
    if best_state is None:
        raise FloatingPointError("no epoch was trained")
    model.load_state_dict(best_state)
    save_torch(best_path, best_state)
    return FitResult(history, best_epoch, best, best_valid, len(history), elapsed, resumed_from, monitor)


# --- records -------------------------------------------------------------------------------------------


@dataclass
class TrainRecord:
    """``train.json``: what one training run did (read back by evaluate, the report and the flows)."""

    dataset: str
    model: str
    split_id: str
    protocol: str
    seed: int
    task: str
    monitor: str
    monitor_mode: str
    epochs: int
    best_epoch: int
    best_monitor: float
    best_valid: dict[str, float]
    train_seconds: float
    seconds_per_epoch: float
    n_params: int
    device: str
    threads: int
    resumed_from_epoch: int
    n_train: int
    base_model: str | None = None
    positives: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrainRecord:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def read(cls, path: Path) -> TrainRecord:
        try:
            return cls.from_json(read_json(path))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(path, "unreadable training record", expected="train.json of a finished run",
                            found=str(exc)[:200]) from exc  # fmt: skip


def fingerprint(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_run(
    layout: Layout,
    params: Params,
    run: RunId,
    progress: Callable[[str], None] = print,
    device: str | None = None,
) -> TrainRecord:
    """Train one (dataset, model, split) run; writes model.pt, config.json, history.csv, train.json."""
    threads = set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    spec = resolve_model(run.model, params.models)
    seed_everything(run.seed)
    data = build_run_data(layout, run.dataset, run.split_id, dev, spec.cls.task, params.train.positive_threshold,
                          params.split.loo_negatives)  # fmt: skip
    if data.valid.is_empty():
        raise DataError(
            layout.split(run.dataset, run.split_id),
            "empty validation set",
            expected="validation interactions for early stopping",
            found="0 rows" + (f" ({data.positives})" if data.positives else ""),
        )
    model = build_from_spec(spec, spec.raw, data.ctx)
    final = layout.run(run.dataset, run.model, run.split_id)
    config = {
        "dataset": run.dataset,
        "model": run.model,
        "model_class": spec.cls.name,
        "base_model": spec.base,
        "preset": spec.preset,
        "task": spec.cls.task,
        "split_id": run.split_id,
        "protocol": run.protocol,
        "seed": run.seed,
        "model_config": model.cfg.to_dict(),
        "n_users": data.ctx.n_users,
        "n_items": data.ctx.n_items,
        "positive_threshold": params.train.positive_threshold if data.positives else None,
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
            "shapes": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
    )
    resume = layout.root / "artifacts" / ".resume" / run.dataset / run.model / f"{run.split_id}.pt"
    progress(
        f"training {run} ({spec.cls.task} model{', ' + data.positives if data.positives else ''}) on {dev} "
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
        write_json(out / "config.json", {**config, "monitor": result.monitor.name})
        record = TrainRecord(
            dataset=run.dataset,
            model=run.model,
            split_id=run.split_id,
            protocol=run.protocol,
            seed=run.seed,
            task=spec.cls.task,
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
    resume.unlink(missing_ok=True)
    progress(
        f"done {run}: best {result.monitor.name} {result.best_value:.4f} at epoch {result.best_epoch} "
        f"({result.epochs} epochs, {result.train_seconds:.1f}s)"
    )
    return record


def history_frame(history: list[dict[str, float]]) -> pl.DataFrame:
    """One row per epoch: epoch, every logged scalar, the validation metrics, monitor, seconds, lr."""
    names: list[str] = []
    for row in history:
        names += [k for k in row if k not in names]
    tail = ["monitor", "seconds", "lr"]
    order = ["epoch", *[n for n in names if n not in ("epoch", *tail)], *tail]
    schema = {n: (pl.Int64 if n == "epoch" else pl.Float64) for n in order}
    return pl.DataFrame([{n: row.get(n) for n in order} for row in history], schema=schema)


def load_trained(
    layout: Layout, run: RunId, device: torch.device, params: Params | None = None
) -> tuple[Recommender, RunData]:
    """Rebuild a run's model from config.json and load its best checkpoint (weights only)."""
    out = layout.run(run.dataset, run.model, run.split_id)
    config = read_json(out / "config.json")
    spec = resolve_model(config.get("model_class") or run.model, {})
    threshold = config.get("positive_threshold") or 4.0
    data = build_run_data(layout, run.dataset, run.split_id, device, spec.cls.task, threshold,
                          params.split.loo_negatives if params else 99)  # fmt: skip
    spec = ModelSpec(run.model, spec.cls, config["model_config"], spec.base)
    model = build_from_spec(spec, config["model_config"], data.ctx)
    model.load_state_dict(load_torch(out / CHECKPOINT, device))
    model.eval()
    return model, data
