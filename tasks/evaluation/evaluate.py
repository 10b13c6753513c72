"""Per-run evaluation on the test part; the metrics follow the model's task and the split's protocol.

* rating models on explicit data: RMSE, MAE and (several test items per user) precision@top-p%;
* protocols that hold out one positive per user with listed negatives (leave-one-out, the published DeepCF
  splits): HR/NDCG@k and MRR over the held-out item plus its negatives (sampled), for every model — a rating
  model ranks by its predicted rating;
* full ranking (``evaluate.full_ranking``): every item scored for every test user with a relevant item, the
  user's training AND validation items excluded, HR/NDCG/recall/precision@K and MRR over the user's relevant
  test items — for ranking models always, for rating models on the single-positive protocols (as before);
* a ranking model on explicit data counts test ratings ≥ ``train.positive_threshold`` as relevant.

Ties are pessimistic everywhere: a candidate scored equal to a relevant item ranks ahead of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from models.common.base import Recommender
from tasks.common.config import Params
from tasks.common.device import resolve_device, set_threads
from tasks.common.errors import DataError
from tasks.common.io import write_json
from tasks.common.paths import Layout
from tasks.common.records import JsonRecord
from tasks.evaluation.metrics import mae, precision_at_top_p, precision_at_top_p_ties, rmse
from tasks.evaluation.ranking import full_ranking, sampled_ranking
from tasks.training import RunData, RunId, load_trained

log = logging.getLogger(__name__)
TIE_RULE = "pessimistic (a candidate scored equal to the relevant item ranks ahead of it)"


def pct(p: float) -> str:
    return f"{p * 100:g}%"


def rating_metrics(
    model: Recommender, test: pl.DataFrame, scale: tuple[float, float], precision_p: tuple[float, ...]
) -> dict[str, float]:
    """RMSE, MAE and (when test users hold several items, i.e. not leave-one-out) precision@top-p%."""
    u, i = test["user_idx"].to_numpy(), test["item_idx"].to_numpy()
    y = test["rating"].to_numpy().astype(np.float64)
    raw = model.predict(u, i).astype(np.float64)
    pred = np.clip(raw, *scale)
    out = {"rmse": rmse(y, pred), "mae": mae(y, pred)}
    if test.height <= test["user_idx"].n_unique():
        return out  # one test item per user: precision@top-p% is 1 by construction, so it is not reported
    for p in precision_p:
        out[f"precision@{pct(p)}"] = precision_at_top_p(u, i, y, raw, p)
        out[f"precision@{pct(p)}_ties"] = precision_at_top_p_ties(u, i, y, raw, p)
    return out


@dataclass
class MetricsRecord(JsonRecord):
    """``artifacts/metrics/<dataset>/<model>/<split>.json``: one run's test metrics and how they were made.
    Training facts stay in the run's ``train.json`` (the report reads both)."""

    dataset: str
    model: str
    split_id: str
    protocol: str
    seed: int
    task: str
    metrics: dict[str, float]
    n_test: int
    eval_seconds: float
    history: str
    tie_rule: str = TIE_RULE
    relevant: str = ""
    negatives: str | None = None
    n_candidates: int | None = None
    n_candidates_min: int | None = None
    full_ranking_excludes: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def test_metrics(model: Recommender, data: RunData, params: Params, progress: Any = None) -> tuple[dict, dict]:
    """(metrics, notes) of a trained model on its test part."""
    ev = params.evaluate
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {}
    if model.task == "rating" and not data.manifest.implicit:
        metrics.update(rating_metrics(model, data.test, data.ctx.rating_scale, ev.precision_p))
    if data.split.negatives is not None and data.ranking_protocol:
        sampled = sampled_ranking(model, data.test, data.split.negatives, ev.sampled_k)
        notes["n_candidates"] = int(sampled.pop("n_candidates"))
        notes["n_candidates_min"] = int(sampled.pop("n_candidates_min"))
        notes["negatives"] = str(data.split.info.get("negatives", "sampled by the split"))
        metrics.update({f"{k}_sampled": v for k, v in sampled.items()})
    if ev.full_ranking and (model.task == "ranking" or data.ranking_protocol):
        full = full_ranking(model, data.test, data.known("train", "valid"), ev.full_k, progress=progress)
        notes["full_ranking_users"] = int(full.pop("n_users"))
        notes["full_ranking_excludes"] = "the user's training and validation items"
        metrics.update({f"{k}_full": v for k, v in full.items()})
    if not metrics:
        raise DataError(
            f"split {data.split.info.get('split_id', '')}",
            "no metric applies to this run",
            expected="a rating model on explicit data, a leave-one-out split, or evaluate.full_ranking: true",
            found=f"{model.task} model, full_ranking {ev.full_ranking}",
        )
    return metrics, notes


def evaluate_run(layout: Layout, params: Params, run: RunId, device: str | None = None) -> MetricsRecord:
    """Evaluate one trained run on its test part; writes and returns the run's metrics record."""
    set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    t0 = time.perf_counter()
    model, data = load_trained(layout, run, dev, params)
    metrics, notes = test_metrics(model, data, params, progress=log.info)
    relevant = "the held-out test interactions"
    if data.threshold is not None:
        relevant = f"test ratings >= {data.threshold:g}"
    record = MetricsRecord(
        dataset=run.dataset,
        model=run.model,
        split_id=run.split_id,
        protocol=run.protocol,
        seed=run.seed,
        task=model.task,
        metrics=metrics,
        n_test=data.test.height,
        eval_seconds=round(time.perf_counter() - t0, 3),
        history=f"artifacts/runs/{run.dataset}/{run.model}/{run.split_id}/history.csv",
        relevant=relevant,
        negatives=notes.get("negatives"),
        n_candidates=notes.get("n_candidates"),
        n_candidates_min=notes.get("n_candidates_min"),
        full_ranking_excludes=notes.get("full_ranking_excludes"),
        extra={k: v for k, v in notes.items() if k == "full_ranking_users"},
    )
    write_json(layout.metrics(run.dataset, run.model, run.split_id), record.to_json())
    log.info("%s: %s", run, {k: round(v, 4) for k, v in metrics.items()})
    return record
