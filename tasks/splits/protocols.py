"""The split protocols: ``random-<train>-<valid>-<test>`` (percentages) and ``leave-one-out``."""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from tasks.errors import ConfigError, UnknownNameError
from tasks.splits.base import SplitProtocol, SplitResult, take

RANDOM = re.compile(r"^random-(\d+)-(\d+)-(\d+)$")


class RandomSplit(SplitProtocol):
    """Shuffle all ratings with ``default_rng(seed).permutation`` and cut at the given fractions."""

    name = "random-80-10-10"

    def __init__(self, name: str = "random-80-10-10") -> None:
        m = RANDOM.match(name)
        if not m or sum(int(x) for x in m.groups()) != 100:
            raise ConfigError("split.instances", "random-<train>-<valid>-<test> percentages summing to 100", name)
        self.name = name  # type: ignore[misc]
        self.fractions = tuple(int(x) / 100 for x in m.groups())

    def expected_fractions(self) -> tuple[float, float, float]:
        return self.fractions  # type: ignore[return-value]

    def split(self, ratings: pl.DataFrame, n_items: int, seed: int) -> SplitResult:
        n = ratings.height
        perm = np.random.default_rng(seed).permutation(n)
        n_train = round(self.fractions[0] * n)
        n_valid = round(self.fractions[1] * n)
        parts = (perm[:n_train], perm[n_train : n_train + n_valid], perm[n_train + n_valid :])
        return SplitResult(*(take(ratings, p) for p in parts), info={"protocol": self.name, "seed": seed})


class LeaveOneOut(SplitProtocol):
    """Per user: latest interaction → test, one random other → valid, the rest → train.

    Ties in timestamp are broken by the larger item_idx (documented, deterministic). Users with one
    interaction keep it in train; with two, the older goes to train. ``n_negatives`` items the user never
    rated are sampled without replacement for every test user (seeded).
    """

    name = "leave-one-out"
    implicit_eval = True

    def __init__(self, n_negatives: int = 99) -> None:
        self.n_negatives = n_negatives

    def split(self, ratings: pl.DataFrame, n_items: int, seed: int) -> SplitResult:
        rng = np.random.default_rng(seed)
        r = ratings.with_row_index("_row").sort(["user_idx", "timestamp", "item_idx"])
        users = r["user_idx"].to_numpy()
        rows = r["_row"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        sizes = ends - starts
        test_mask = np.zeros(len(users), dtype=bool)
        valid_mask = np.zeros(len(users), dtype=bool)
        has_test = sizes >= 2
        test_mask[ends[has_test] - 1] = True
        has_valid = sizes >= 3
        offs = (rng.random(int(has_valid.sum())) * (sizes[has_valid] - 1)).astype(np.int64)
        valid_mask[starts[has_valid] + offs] = True
        train_rows = rows[~(test_mask | valid_mask)]
        parts = SplitResult(
            take(ratings, train_rows),
            take(ratings, rows[valid_mask]),
            take(ratings, rows[test_mask]),
            negatives=self.sample_negatives(ratings, users[test_mask], n_items, rng),
            info={
                "protocol": self.name,
                "seed": seed,
                "n_negatives": self.n_negatives,
                "tie_break": "latest timestamp, then largest item_idx",
            },
        )
        return parts

    def sample_negatives(
        self, ratings: pl.DataFrame, test_users: np.ndarray, n_items: int, rng: np.random.Generator
    ) -> pl.DataFrame:
        """Rejection-sample ``n_negatives`` distinct never-rated items per user: O(ratings + users·k)."""
        by_user = ratings.group_by("user_idx").agg(pl.col("item_idx").sort()).sort("user_idx")
        rated = dict(zip(by_user["user_idx"].to_list(), (np.asarray(x) for x in by_user["item_idx"].to_list())))
        k = self.n_negatives
        out_u: list[np.ndarray] = []
        out_i: list[np.ndarray] = []
        for u in np.sort(test_users):
            seen = rated[int(u)]
            free = n_items - len(seen)
            if free < k:
                raise ConfigError("split.loo_negatives", f"at most {free} (items user {u} never rated)", k)
            chosen: list[int] = []
            taken: set[int] = set()
            while len(chosen) < k:
                cand = rng.integers(0, n_items, size=2 * (k - len(chosen)) + 8)
                pos = np.searchsorted(seen, cand)
                pos[pos == len(seen)] = 0
                ok = seen[pos] != cand if len(seen) else np.ones(len(cand), bool)
                for c in cand[ok]:
                    c = int(c)
                    if c not in taken:
                        taken.add(c)
                        chosen.append(c)
                        if len(chosen) == k:
                            break
            out_u.append(np.full(k, u, dtype=np.int32))
            out_i.append(np.asarray(chosen, dtype=np.int32))
        return pl.DataFrame(
            {
                "user_idx": np.concatenate(out_u) if out_u else np.zeros(0, np.int32),
                "item_idx": np.concatenate(out_i) if out_i else np.zeros(0, np.int32),
            }
        )


def protocol_names() -> list[str]:
    return ["random-<train>-<valid>-<test> (e.g. random-80-10-10)", "leave-one-out"]


def get_protocol(name: str, loo_negatives: int = 99) -> SplitProtocol:
    if RANDOM.match(name):
        return RandomSplit(name)
    if name == "leave-one-out":
        return LeaveOneOut(loo_negatives)
    raise UnknownNameError("split protocol", name, protocol_names(), param="split.instances")
