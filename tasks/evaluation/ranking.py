"""Ranking evaluation shared by the validation monitor and the test evaluation.

* ``full_ranking``: every item scored for each user with relevant items (``model.score_users`` per chunk of
  users, on the model's device); the user's known items (training, plus validation at test time) are masked
  on the device; HR/NDCG/recall/precision@K and MRR over any number of relevant items per user, pessimistic
  ties. Memory is bounded by the chunk (chunk × n_items scores), never by users × items, and the result does
  not depend on the chunk size (each user's row is computed independently).
* ``sampled_ranking``: each held-out positive against its own listed negatives (the split's
  ``negatives.parquet`` for test, ``valid_negatives.parquet`` for validation); users may hold different
  numbers of negatives (missing slots never outrank).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from models.common.base import Recommender
from models.common.sparse import SparseRows
from tasks.common.errors import DataError
from tasks.evaluation.metrics import hit_ratio, mrr, ndcg, rank_of_positive, relevant_positions, set_ranking_metrics

log = logging.getLogger(__name__)


def pairs_csr(frame: pl.DataFrame, n_users: int, n_items: int) -> sp.csr_matrix:
    """(user_idx, item_idx) pairs as a users × items 0/1 CSR matrix (duplicates collapse)."""
    u = frame["user_idx"].to_numpy().astype(np.int64)
    i = frame["item_idx"].to_numpy().astype(np.int64)
    m = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(n_users, n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    m.sort_indices()
    return m


def full_ranking(
    model: Recommender,
    relevant: pl.DataFrame,
    known: pl.DataFrame,
    ks: tuple[int, ...],
    *,
    chunk: int = 256,
    progress: Callable[[str], None] | None = None,
    part: str = "test",
) -> dict[str, float]:
    """Mean over users with at least one relevant item of HR/NDCG/recall/precision@K and MRR."""
    users, per_user = full_ranking_per_user(model, relevant, known, ks, chunk=chunk, progress=progress, part=part)
    out = {name: float(np.mean(values)) for name, values in per_user.items()}
    out["n_users"] = float(len(users))
    return out


def full_ranking_per_user(
    model: Recommender,
    relevant: pl.DataFrame,
    known: pl.DataFrame,
    ks: tuple[int, ...],
    *,
    chunk: int = 256,
    progress: Callable[[str], None] | None = None,
    part: str = "test",
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(users with a relevant item, ascending; each metric of ``full_ranking`` per user in that order)."""
    n_users, n_items, dev = model.n_users, model.n_items, model.device
    rel = pairs_csr(relevant, n_users, n_items)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    if len(users) == 0:
        raise DataError(f"{part} part", "no user has a relevant item to rank", expected="at least one",
                        found="0 (all filtered out?)")  # fmt: skip
    rel_rows = SparseRows(rel, dev)
    known_rows = SparseRows(pairs_csr(known, n_users, n_items), dev)
    per_user: dict[str, list[np.ndarray]] = {}  # kept per user, summed once: exact whatever the chunk size
    t0, next_log = time.perf_counter(), 0.1
    with model.scoring():
        for s in range(0, len(users), chunk):
            block = torch.as_tensor(users[s : s + chunk], dtype=torch.long, device=dev)
            scores = model.score_users(block).float()
            rows = torch.arange(len(block), device=dev)
            cols, _, _, row_of = known_rows.gather_with_rows(block)
            scores[rows[row_of], cols] = -torch.inf
            mask = torch.zeros(len(block), n_items, dtype=torch.bool, device=dev)
            cols, _, _, row_of = rel_rows.gather_with_rows(block)
            mask[rows[row_of], cols] = True
            for name, values in set_ranking_metrics(relevant_positions(scores, mask), ks).items():
                per_user.setdefault(name, []).append(values.double().cpu().numpy())
            done = min(s + chunk, len(users)) / len(users)
            if progress is not None and done >= next_log and done < 1:
                elapsed = time.perf_counter() - t0
                progress(f"full ranking: {100 * done:.0f}% of {len(users)} users, {elapsed:.0f}s elapsed, "
                         f"~{elapsed / done * (1 - done):.0f}s left")  # fmt: skip
                next_log = done + 0.1
    return users, {name: np.concatenate(parts) for name, parts in per_user.items()}


def sampled_ranking(model: Recommender, positives: pl.DataFrame, negatives: pl.DataFrame, k: int) -> dict[str, float]:
    """HR/NDCG@k and MRR of each user's held-out positive among that user's negatives (one positive per user)."""
    _, ranks, width, min_len = sampled_ranks(model, positives, negatives)
    return {
        f"hr@{k}": hit_ratio(ranks, k),
        f"ndcg@{k}": ndcg(ranks, k),
        "mrr": mrr(ranks),
        "n_candidates": float(width + 1),
        "n_candidates_min": float(min_len + 1 if len(ranks) else 0),
    }


def sampled_ranks(
    model: Recommender, positives: pl.DataFrame, negatives: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(users ascending, 0-based pessimistic rank of each user's positive among its negatives, the largest and the
    smallest number of negatives per user); a positive without a score ranks last."""
    test = positives.sort("user_idx")
    users = test["user_idx"].to_numpy()
    pos = model.predict(users, test["item_idx"].to_numpy()).astype(np.float64)
    neg_items = negatives.group_by("user_idx", maintain_order=True).agg("item_idx").sort("user_idx")
    neg_items = neg_items.join(test.select("user_idx"), on="user_idx", how="right").select("user_idx", "item_idx")
    lists = [np.asarray(x if x is not None else [], dtype=np.int64) for x in neg_items["item_idx"].to_list()]
    lens = np.array([len(x) for x in lists], dtype=np.int64)
    width = int(lens.max()) if len(lens) else 0
    filled = np.arange(width)[None, :] < lens[:, None]
    cand = np.zeros((len(lists), width), dtype=np.int64)
    cand[filled] = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    scores = np.full(cand.shape, np.nan)
    scores[filled] = model.predict(np.repeat(users, lens), cand[filled]).astype(np.float64)
    ranks = rank_of_positive(pos, scores)
    ranks[np.isnan(pos)] = width  # a positive without a score ranks last
    return users, ranks, width, int(lens.min()) if len(lens) else 0
