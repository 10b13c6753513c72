"""The validation monitor that picks the best epoch: ``valid_rmse`` (min) for rating models on explicit data,
``valid_ndcg@10`` (max, or any ``valid_{hr,ndcg,recall,precision}@K`` / ``valid_mrr``) otherwise. Ranking monitors use
the split's validation negatives on leave-one-out style splits (sampled) and full ranking of the held-out items on
random splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from models.common.base import Recommender, parse_monitor
from tasks.common.errors import ConfigError
from tasks.evaluation.metrics import mae, rmse
from tasks.evaluation.ranking import full_ranking, sampled_ranking
from tasks.training.data import RunData


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
        known = data.known("train")
        if data.split.unused is not None:  # a -d<D> split's unused training rows: known, not negatives
            known = pl.concat([known, data.split.unused.select("user_idx", "item_idx")])
        res = full_ranking(model, v, known, (k,), part="validation")
    keep = [f"hr@{k}", f"ndcg@{k}", "mrr"] + ([f"recall@{k}", f"precision@{k}"] if monitor.kind == "full" else [])
    return {f"valid_{name}": float(res[name]) for name in keep}
