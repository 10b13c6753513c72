"""Per-run evaluation on the test part: rating error, precision@top-p%, and for leave-one-out splits
HR/NDCG over the sampled candidates and over the full item set.

Full ranking excludes the user's training AND validation items (both are known interactions); the
sampled ranking uses exactly the held-out item plus the split's sampled negatives.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from models.base import RatingModel
from tasks.config import Params
from tasks.datasets import get_dataset
from tasks.device import resolve_device, set_threads
from tasks.io import read_json, write_json
from tasks.metrics import (
    hit_ratio,
    mae,
    ndcg,
    precision_at_top_p,
    precision_at_top_p_ties,
    rank_of_positive,
    rmse,
)
from tasks.paths import Layout
from tasks.splits import SplitResult, get_protocol
from tasks.train import RunId, load_trained

log = logging.getLogger(__name__)


def pct(p: float) -> str:
    return f"{p * 100:g}%"


def rating_metrics(
    model: RatingModel, test: pl.DataFrame, scale: tuple[float, float], precision_p: tuple[float, ...]
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


def sampled_ranking(model: RatingModel, split: SplitResult, k: int) -> dict[str, float]:
    """HR/NDCG@k of each test positive among its own negatives. Users may hold different numbers of
    negatives (a published list with entries dropped): missing slots are NaN, which never outrank."""
    assert split.negatives is not None
    test = split.test.sort("user_idx")
    users = test["user_idx"].to_numpy()
    pos = model.predict(users, test["item_idx"].to_numpy()).astype(np.float64)
    neg_items = split.negatives.group_by("user_idx", maintain_order=True).agg("item_idx").sort("user_idx")
    assert neg_items["user_idx"].to_list() == users.tolist(), "negatives and test users differ"
    lists = [np.asarray(x, dtype=np.int64) for x in neg_items["item_idx"].to_list()]
    lens = np.array([len(x) for x in lists])
    width = int(lens.max()) if len(lens) else 0
    filled = np.arange(width)[None, :] < lens[:, None]
    cand = np.zeros((len(lists), width), dtype=np.int64)
    cand[filled] = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    scores = np.full(cand.shape, np.nan)
    scores[filled] = model.predict(np.repeat(users, lens), cand[filled]).astype(np.float64)
    ranks = rank_of_positive(pos, scores)
    return {
        f"hr@{k}_sampled": hit_ratio(ranks, k),
        f"ndcg@{k}_sampled": ndcg(ranks, k),
        "n_candidates": int(width) + 1,
        "n_candidates_min": int(lens.min()) + 1 if len(lens) else 0,
    }


def full_ranking(model: RatingModel, split: SplitResult, ks: tuple[int, ...], chunk: int = 256) -> dict[str, float]:
    test = split.test.sort("user_idx")
    users = test["user_idx"].to_numpy()
    pos_items = test["item_idx"].to_numpy()
    known = pl.concat([split.train.select("user_idx", "item_idx"), split.valid.select("user_idx", "item_idx")])
    known = known.filter(pl.col("user_idx").is_in(users.tolist()))
    ranks = np.empty(len(users), dtype=np.int64)
    row_of_user = {int(u): n for n, u in enumerate(users)}
    ku = known["user_idx"].to_numpy()
    ki = known["item_idx"].to_numpy()
    t0, next_log = time.perf_counter(), 0.1
    for s in range(0, len(users), chunk):
        done = min(s + chunk, len(users)) / len(users)
        if done >= next_log and s:
            elapsed = time.perf_counter() - t0
            log.info("full ranking: %.0f%% of %d users, %.0fs elapsed, ~%.0fs left", 100 * done, len(users),
                     elapsed, elapsed / done * (1 - done))  # fmt: skip
            next_log = done + 0.1
        block = users[s : s + chunk]
        scores = model.score_users(block).astype(np.float64)
        sel = (ku >= block.min()) & (ku <= block.max())
        rows = np.array([row_of_user[int(u)] - s for u in ku[sel]], dtype=np.int64)
        inside = (rows >= 0) & (rows < len(block))
        scores[rows[inside], ki[sel][inside]] = -np.inf
        pos = scores[np.arange(len(block)), pos_items[s : s + chunk]]
        scores[np.arange(len(block)), pos_items[s : s + chunk]] = -np.inf  # the positive is not its own rival
        ranks[s : s + chunk] = rank_of_positive(pos, scores)
    out: dict[str, float] = {}
    for k in ks:
        out[f"hr@{k}_full"] = hit_ratio(ranks, k)
        out[f"ndcg@{k}_full"] = ndcg(ranks, k)
    return out


def evaluate_run(layout: Layout, params: Params, run: RunId, device: str | None = None) -> dict[str, Any]:
    """Evaluate one trained run on its test part; writes and returns the run's metrics JSON."""
    set_threads(params.train.threads)
    dev = resolve_device(device or params.train.device)
    t0 = time.perf_counter()
    model, ctx, split = load_trained(layout, run, dev)
    protocol = get_protocol(run.protocol, params.split.loo_negatives)
    implicit = get_dataset(run.dataset, raw_dir=layout.raw(run.dataset)).implicit
    # implicit data: every interaction is a 1, so rating errors say nothing; only the ranking metrics count
    metrics = {} if implicit else rating_metrics(model, split.test, ctx.rating_scale, params.evaluate.precision_p)
    extra: dict[str, Any] = {}
    if protocol.implicit_eval and split.negatives is not None:
        sampled = sampled_ranking(model, split, params.evaluate.sampled_k)
        extra["n_candidates"] = sampled.pop("n_candidates")
        extra["n_candidates_min"] = sampled.pop("n_candidates_min")
        extra["negatives"] = split.info.get("negatives", "sampled by the split")
        metrics.update(sampled)
        if params.evaluate.full_ranking:
            metrics.update(full_ranking(model, split, params.evaluate.full_k))
    train_info = read_json(layout.run(run.dataset, run.model, run.split_id) / "train.json")
    result = {
        "dataset": run.dataset,
        "protocol": run.protocol,
        "split_id": run.split_id,
        "seed": run.seed,
        "model": run.model,
        "metrics": metrics,
        **{
            k: train_info[k]
            for k in (
                "epochs",
                "best_epoch",
                "best_valid_rmse",
                "train_seconds",
                "seconds_per_epoch",
                "n_params",
                "device",
            )
        },
        "history": str(Path("artifacts") / "runs" / run.dataset / run.model / run.split_id / "history.csv"),
        "n_test": split.test.height,
        "eval_seconds": round(time.perf_counter() - t0, 3),
        **extra,
    }
    write_json(layout.metrics(run.dataset, run.model, run.split_id), result)
    log.info("%s: %s", run, {k: round(v, 4) for k, v in metrics.items()})
    return result
