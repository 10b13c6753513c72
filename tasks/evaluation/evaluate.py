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

Training rows a ``-d<D>`` split left unused are known interactions of their users: full ranking excludes them too.
Breakdowns (``breakdowns.py``: RMSE/MAE by item-popularity quintile and by user activity, HR/NDCG by user
activity, cold test rows) go to ``artifacts/breakdowns/<dataset>/<model>/<split>.json``, not into the metrics.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.common.base import Recommender
from tasks.common.config import Params
from tasks.common.device import resolve_device, set_threads
from tasks.common.digest import EVALUATION_CODE, code_digest, folder_digest
from tasks.common.errors import DataError
from tasks.common.io import atomic_path, read_json, write_json
from tasks.common.paths import Layout
from tasks.common.records import JsonRecord
from tasks.evaluation import breakdowns as bd
from tasks.evaluation.metrics import mae, precision_at_top_p, precision_at_top_p_ties, rmse
from tasks.evaluation.ranking import full_ranking_per_user, sampled_ranks
from tasks.training import RunData, RunId, fingerprint, load_trained
from tasks.training.loop import CHECKPOINT

log = logging.getLogger(__name__)
TIE_RULE = "pessimistic (a candidate scored equal to the relevant item ranks ahead of it)"


def pct(p: float) -> str:
    return f"{p * 100:g}%"


def rating_metrics(
    model: Recommender, test: pl.DataFrame, scale: tuple[float, float], precision_p: tuple[float, ...]
) -> dict[str, float]:
    """RMSE, MAE and (when test users hold several items, i.e. not leave-one-out) precision@top-p%."""
    return rating_metrics_from(test, model.predict(test["user_idx"].to_numpy(), test["item_idx"].to_numpy()),
                               scale, precision_p)  # fmt: skip


def rating_metrics_from(
    test: pl.DataFrame, predicted: np.ndarray, scale: tuple[float, float], precision_p: tuple[float, ...]
) -> dict[str, float]:
    """``rating_metrics`` from the model's raw predictions of the test rows (clipped to the scale here)."""
    u, i = test["user_idx"].to_numpy(), test["item_idx"].to_numpy()
    y = test["rating"].to_numpy().astype(np.float64)
    raw = np.asarray(predicted).astype(np.float64)
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
    """``artifacts/evaluations/<dataset>/<model>/<split>.json``: one run's test metrics and how they were made.
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
    # what the metrics were computed from (the run's fingerprint and checkpoint, the split, the evaluate params and
    # code): an evaluation with the same fingerprint is current and is not recomputed (``current_evaluation``)
    fingerprint: str = ""


@dataclass
class TestOutcome:
    metrics: dict[str, float]
    notes: dict[str, Any]
    breakdowns: dict[str, Any]
    per_user: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """metric → (users, the metric's per-user value: squared / absolute error for rmse / mae, the user's HR, NDCG ...
    for ranking metrics) — what the experiments' significance tests pair across models."""


def test_metrics(model: Recommender, data: RunData, params: Params, progress: Any = None) -> tuple[dict, dict]:
    """(metrics, notes) of a trained model on its test part."""
    out = evaluate_test(model, data, params, progress)
    return out.metrics, out.notes


def known_pairs(data: RunData) -> pl.DataFrame:
    """What full ranking masks for each user: its training and validation items, and a ``-d<D>`` split's unused
    training rows (known interactions: neither relevant nor fair negatives)."""
    known = data.known("train", "valid")
    if data.split.unused is not None:
        known = pl.concat([known, data.split.unused.select("user_idx", "item_idx")])
    return known


def evaluate_test(model: Recommender, data: RunData, params: Params, progress: Any = None) -> TestOutcome:
    """Metrics, notes and breakdowns of a trained model on its test part."""
    ev = params.evaluate
    metrics: dict[str, float] = {}
    notes: dict[str, Any] = {}
    ctx = data.ctx
    outcome_per_user: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    test_u, test_i = data.test["user_idx"].to_numpy(), data.test["item_idx"].to_numpy()
    parts: dict[str, Any] = {
        "training_counts": "the training pairs the model was fitted on (the split's training part; positives only "
        "for a ranking model on explicit data)",
        "cold": bd.cold_counts(test_u, test_i, ctx.users, ctx.items, ctx.n_users, ctx.n_items),
        "popularity_rule": bd.POPULARITY_RULE,
        "activity_rule": bd.ACTIVITY_RULE,
        "activity_edges": list(bd.ACTIVITY_EDGES),
    }
    if model.task == "rating" and not data.manifest.implicit:
        predicted = model.predict(test_u, test_i)
        metrics.update(rating_metrics_from(data.test, predicted, ctx.rating_scale, ev.precision_p))
        y = data.test["rating"].to_numpy().astype(np.float64)
        pred = np.clip(np.asarray(predicted, np.float64), *ctx.rating_scale)
        parts["rating_by_item_popularity"] = bd.popularity_table(ctx.items, ctx.n_items, test_i, y, pred)
        sq, ab = (y - pred) ** 2, np.abs(y - pred)
        for name, err in (("rmse", sq), ("mae", ab)):
            per_user_err = pl.DataFrame({"u": test_u, "e": err}).group_by("u").agg(pl.col("e").mean()).sort("u")
            outcome_per_user[name] = (per_user_err["u"].to_numpy(), per_user_err["e"].to_numpy())
        table = bd.activity_table(ctx.users, ctx.n_users, test_u, {"mse": sq, "mae": ab})
        for row in table:  # RMSE per bucket = sqrt of its mean squared error
            mse = row.pop("mse")
            row["rmse"] = None if mse is None else float(np.sqrt(mse))
        parts["rating_by_user_activity"] = table
    ranking: dict[str, Any] = {}
    if data.split.negatives is not None and data.ranking_protocol:
        users, ranks, width, min_len = sampled_ranks(model, data.test, data.split.negatives)
        k = ev.sampled_k
        per_user = {f"hr@{k}": (ranks < k).astype(np.float64), f"ndcg@{k}": _ndcg_gains(ranks, k),
                    "mrr": 1.0 / (ranks.astype(np.float64) + 1.0)}  # fmt: skip
        metrics.update({f"{name}_sampled": float(np.mean(v)) for name, v in per_user.items()})
        outcome_per_user.update({f"{name}_sampled": (users, v) for name, v in per_user.items()})
        notes["n_candidates"] = width + 1
        notes["n_candidates_min"] = min_len + 1 if len(ranks) else 0
        notes["negatives"] = str(data.split.info.get("negatives", "sampled by the split"))
        ranking["sampled"] = bd.activity_table(ctx.users, ctx.n_users, users, per_user)
    if ev.full_ranking and (model.task == "ranking" or data.ranking_protocol):
        users, per_user = full_ranking_per_user(model, data.test, known_pairs(data), ev.full_k, progress=progress)
        notes["full_ranking_users"] = len(users)
        notes["full_ranking_excludes"] = "the user's training and validation items" + (
            " and its training rows left unused by the training fraction" if data.split.unused is not None else ""
        )
        metrics.update({f"{name}_full": float(np.mean(v)) for name, v in per_user.items()})
        outcome_per_user.update({f"{name}_full": (users, v) for name, v in per_user.items()})
        kept = {n: v for n, v in per_user.items() if n.startswith(("hr@", "ndcg@"))}
        ranking["full"] = bd.activity_table(ctx.users, ctx.n_users, users, kept)
    if ranking:
        parts["ranking_by_user_activity"] = ranking
    if not metrics:
        raise DataError(
            f"split {data.split.info.get('split_id', '')}",
            "no metric applies to this run",
            expected="a rating model on explicit data, a leave-one-out split, or evaluate.full_ranking: true",
            found=f"{model.task} model, full_ranking {ev.full_ranking}",
        )
    return TestOutcome(metrics, notes, parts, outcome_per_user)


def _ndcg_gains(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-row NDCG@k of a single positive at 0-based ``ranks`` (``metrics.ndcg`` is their mean)."""
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def breakdowns_path(layout: Layout, dataset: str, model: str, split_id: str) -> Path:
    """``artifacts/breakdowns/<dataset>/<model>/<split>.json`` (apart from ``artifacts/metrics``, which holds the
    metric values only)."""
    return layout.breakdowns(dataset, model, split_id)


def write_per_user(path: Path, per_user: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """One row per (metric, user): the per-user values behind each metric (atomic write)."""
    frames = [pl.DataFrame({"metric": name, "user_idx": users.astype(np.int64), "value": values.astype(np.float64)})
              for name, (users, values) in sorted(per_user.items())]  # fmt: skip
    frame = pl.concat(frames) if frames else pl.DataFrame(schema={"metric": pl.String, "user_idx": pl.Int64,
                                                                  "value": pl.Float64})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, ".parquet") as tmp:
        frame.write_parquet(tmp)
    return path


def evaluation_fingerprint(layout: Layout, params: Params, run: RunId) -> str:
    """The inputs of ``run``'s evaluation: its training fingerprint and checkpoint, its split's files, the
    ``evaluate`` params (and the negatives per positive) and the evaluation code."""
    folder = layout.run(run.dataset, run.model, run.split_id)
    try:
        trained = read_json(folder / "config.json").get("fingerprint")
    except (OSError, ValueError):
        trained = None
    return fingerprint({
        "run": trained,
        "checkpoint": folder_digest(folder / CHECKPOINT),
        "split_files": folder_digest(layout.split(run.dataset, run.split_id)),
        "evaluate": dataclasses.asdict(params.evaluate),
        "loo_negatives": params.split.loo_negatives,
        "code": code_digest(EVALUATION_CODE),
    })  # fmt: skip


def current_evaluation(layout: Layout, params: Params, run: RunId) -> MetricsRecord | None:
    """The run's metrics record when every file of its evaluation exists and was made from the current inputs
    (same ``evaluation_fingerprint``); None when it must be evaluated (again)."""
    ds, model, split = run.dataset, run.model, run.split_id
    files = (layout.metrics(ds, model, split), layout.evaluation(ds, model, split), layout.per_user(ds, model, split),
             breakdowns_path(layout, ds, model, split))  # fmt: skip
    if not all(f.is_file() for f in files):
        return None
    try:
        record = MetricsRecord.from_json(read_json(files[1]))
    except (OSError, ValueError, TypeError):
        return None
    return record if record.fingerprint and record.fingerprint == evaluation_fingerprint(layout, params, run) else None


def evaluate_run(layout: Layout, params: Params, run: RunId, device: str | None = None) -> MetricsRecord:
    """Evaluate one trained run on its test part; writes and returns the run's metrics record."""
    set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    t0 = time.perf_counter()
    model, data = load_trained(layout, run, dev, params)
    outcome = evaluate_test(model, data, params, progress=log.info)
    metrics, notes = outcome.metrics, outcome.notes
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
        fingerprint=evaluation_fingerprint(layout, params, run),
    )
    # the numbers alone (what `dvc metrics show / diff` lists), and the record of how they were made
    write_json(layout.metrics(run.dataset, run.model, run.split_id), dict(metrics))
    write_json(layout.evaluation(run.dataset, run.model, run.split_id), record.to_json())
    write_per_user(layout.per_user(run.dataset, run.model, run.split_id), outcome.per_user)
    header = {"dataset": run.dataset, "model": run.model, "split_id": run.split_id, "task": model.task}
    write_json(breakdowns_path(layout, run.dataset, run.model, run.split_id), {**header, **outcome.breakdowns})
    log.info("%s: %s", run, {k: round(v, 4) for k, v in metrics.items()})
    return record
