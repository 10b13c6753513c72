"""Seeded, vectorized training-data samplers (no Python loop per sample or per user).

* ``index_batches``: a fresh permutation of ``n`` indices per epoch, cut into batches (observed pairs,
  user or item vectors, full batch with ``batch_size >= n``).
* ``sample_negatives``: for each given user, ``k`` uniform items that are not among that user's positives
  (a sorted key array), rejection-sampled in whole arrays; ``distinct`` draws without replacement within a
  user's row. A user with too few free items is a clear error naming the parameter.
* ``pair_batches`` / ``negative_batches`` / ``triple_batches``: observed pairs; pairs plus ``k`` sampled
  negatives per positive (labels 1/0); BPR triples (u, i, j) — negatives drawn afresh every epoch.

All draws come from the ``numpy.random.Generator`` the training loop owns (seeded by the split's seed and
saved with the resume state), so a run is reproducible and resumable.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from tasks.common.errors import ConfigError


def pair_keys(users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    """Sorted unique int64 keys user·n_items + item: O(log n) membership tests by searchsorted."""
    return np.unique(np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64))


def contains(keys: np.ndarray, users: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    q = np.asarray(users, np.int64) * n_items + np.asarray(items, np.int64)
    if len(keys) == 0:
        return np.zeros(q.shape, dtype=bool)
    pos = np.searchsorted(keys, q).clip(max=len(keys) - 1)
    return keys[pos] == q


def _duplicates_in_rows(block: np.ndarray) -> np.ndarray:
    """True at every entry that repeats an earlier-sorted entry of its row."""
    order = np.argsort(block, axis=1, kind="stable")
    s = np.take_along_axis(block, order, axis=1)
    dup = np.zeros(block.shape, dtype=bool)
    rep = s[:, 1:] == s[:, :-1]
    rows = np.nonzero(rep)[0]
    dup[rows, order[:, 1:][rep]] = True
    return dup


def sample_negatives(
    users: np.ndarray,
    k: int,
    positive_keys: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    *,
    distinct: bool = False,
    param: str = "negatives",
    max_rounds: int = 64,
) -> np.ndarray:
    """(len(users), k) int64 items, none a positive of its user (``positive_keys`` from ``pair_keys``)."""
    users = np.asarray(users, np.int64)
    if k < 1 or len(users) == 0:
        if k < 1:
            raise ConfigError(param, "at least 1 negative per positive", k)
        return np.zeros((0, k), dtype=np.int64)
    pos_users = positive_keys // n_items
    uniq = np.unique(users)
    n_pos = np.searchsorted(pos_users, uniq, side="right") - np.searchsorted(pos_users, uniq, side="left")
    free = n_items - n_pos
    need = k if distinct else 1
    if (free < need).any():
        worst = int(np.argmin(free))
        raise ConfigError(
            param,
            f"at most {int(free[worst])} negatives for user {int(uniq[worst])} "
            f"({int(n_pos[worst])} of {n_items} items are its positives)",
            k,
        )
    out = rng.integers(0, n_items, size=(len(users), k), dtype=np.int64)
    bad = contains(positive_keys, users[:, None], out, n_items)
    if distinct:
        bad |= _duplicates_in_rows(out)
    rounds = 0
    while bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        if rounds >= max_rounds:  # nearly saturated users: draw from their explicit complement (few rows)
            for r in rows:
                _fill_from_complement(out, int(r), users[int(r)], bad[int(r)], positive_keys, n_items, rng, distinct)
            break
        r_idx, c_idx = np.nonzero(bad)
        out[r_idx, c_idx] = rng.integers(0, n_items, size=len(r_idx), dtype=np.int64)
        sub = out[rows]
        b = contains(positive_keys, users[rows][:, None], sub, n_items)
        if distinct:
            b |= _duplicates_in_rows(sub)
        bad[rows] = b
        rounds += 1
    return out


def _fill_from_complement(
    out: np.ndarray,
    r: int,
    user: int,
    bad: np.ndarray,
    positive_keys: np.ndarray,
    n_items: int,
    rng: np.random.Generator,
    distinct: bool,
) -> None:
    lo, hi = np.searchsorted(positive_keys, [user * n_items, (user + 1) * n_items])
    taken = positive_keys[lo:hi] - user * n_items
    if distinct:
        taken = np.union1d(taken, out[r][~bad])
    pool = np.setdiff1d(np.arange(n_items), taken)
    out[r, bad] = rng.choice(pool, size=int(bad.sum()), replace=not distinct)


def index_batches(n: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    order = rng.permutation(n)
    for s in range(0, n, batch_size):
        yield order[s : s + batch_size]


@dataclass(frozen=True)
class PairBatch:
    """Training pairs (already on the device). ``ratings``: the observed values, or 1/0 labels when negatives
    were sampled; ``weights``: interaction strengths (play counts ...) where the dataset has them."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor
    weights: torch.Tensor | None = None


@dataclass(frozen=True)
class TripleBatch:
    """BPR triples: user, a positive item, a sampled negative item (and the positive's weight)."""

    users: torch.Tensor
    pos_items: torch.Tensor
    neg_items: torch.Tensor
    weights: torch.Tensor | None = None


@dataclass
class Interactions:
    """The training interactions as arrays (CPU) with their membership keys; samplers draw from these."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    weights: np.ndarray | None
    n_users: int
    n_items: int

    def __post_init__(self) -> None:
        self.keys = pair_keys(self.users, self.items, self.n_items)

    def __len__(self) -> int:
        return len(self.users)

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(users, items, ratings, weights) on ``device``, built once."""
        cached = getattr(self, "_tensors", None)
        if cached is None or getattr(self, "_tensors_on", None) != str(device):
            cached = (
                _t(self.users, device, torch.long),
                _t(self.items, device, torch.long),
                _t(self.ratings, device, torch.float32),
                None if self.weights is None else _t(self.weights, device, torch.float32),
            )
            self._tensors, self._tensors_on = cached, str(device)
        return cached


def _t(a: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # arrays viewed from polars are read-only
        a = a.copy()
    return torch.as_tensor(a, dtype=dtype, device=device)


def pair_batches(data: Interactions, batch_size: int, rng: np.random.Generator, device: torch.device
                 ) -> Iterator[PairBatch]:  # fmt: skip
    """Every observed pair once per epoch, in a fresh seeded order (gathered once per epoch; batches are slices)."""
    u, i, r, w = data.tensors(device)
    order = torch.as_tensor(rng.permutation(len(data)), device=device)
    u, i, r = u[order], i[order], r[order]
    w = None if w is None else w[order]
    for s in range(0, len(order), batch_size):
        e = s + batch_size
        yield PairBatch(u[s:e], i[s:e], r[s:e], None if w is None else w[s:e])


def negative_batches(
    data: Interactions, k: int, batch_size: int, rng: np.random.Generator, device: torch.device,
    param: str = "negatives",
) -> Iterator[PairBatch]:  # fmt: skip
    """Each positive followed by ``k`` sampled negatives (label 0); batches hold ``batch_size`` positives.
    The epoch's negatives are drawn in one call (one array operation per rejection round)."""
    order = rng.permutation(len(data))
    neg = sample_negatives(data.users[order], k, data.keys, data.n_items, rng, param=param)
    labels = np.tile(np.r_[1.0, np.zeros(k)], batch_size).astype(np.float32)
    for s in range(0, len(order), batch_size):
        sel = order[s : s + batch_size]
        u = data.users[sel]
        items = np.concatenate([data.items[sel][:, None], neg[s : s + batch_size]], axis=1).ravel()
        yield PairBatch(
            _t(np.repeat(u, k + 1), device, torch.long),
            _t(items, device, torch.long),
            _t(labels[: len(items)], device, torch.float32),
        )


def triple_batches(data: Interactions, batch_size: int, rng: np.random.Generator, device: torch.device,
                   param: str = "negatives") -> Iterator[TripleBatch]:  # fmt: skip
    """Every training pair once per epoch, shuffled, each with one fresh uniform negative."""
    order = rng.permutation(len(data))
    users = data.users[order]
    neg = sample_negatives(users, 1, data.keys, data.n_items, rng, param=param)[:, 0]
    u_t = _t(users, device, torch.long)
    i_t = _t(data.items[order], device, torch.long)
    j_t = _t(neg, device, torch.long)
    w_t = None if data.weights is None else _t(data.weights[order], device, torch.float32)
    for s in range(0, len(order), batch_size):
        sl = slice(s, s + batch_size)
        yield TripleBatch(u_t[sl], i_t[sl], j_t[sl], None if w_t is None else w_t[sl])


def entity_batches(data: Interactions, by: str, batch_size: int, rng: np.random.Generator, device: torch.device
                   ) -> Iterator[PairBatch]:  # fmt: skip
    """Every observed pair once per epoch, grouped by entity: a batch is ``batch_size`` users (``by="users"``)
    or items (``"items"``) in a fresh seeded order, with all of their training pairs — AutoRec's minibatches
    of whole rating vectors, as pairs."""
    ent = data.users if by == "users" else data.items
    n = data.n_users if by == "users" else data.n_items
    order = np.argsort(ent, kind="stable")
    counts = np.bincount(ent, minlength=n)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    u, i, r, w = data.tensors(device)
    perm = rng.permutation(np.flatnonzero(counts))
    for s in range(0, len(perm), batch_size):
        sel = perm[s : s + batch_size]
        lengths = counts[sel]
        first = np.repeat(starts[sel] - (np.cumsum(lengths) - lengths), lengths)
        idx = torch.as_tensor(order[first + np.arange(int(lengths.sum()))], device=device)
        yield PairBatch(u[idx], i[idx], r[idx], None if w is None else w[idx])
