"""Two protocol families built on the others:

* ``random-<train>-<test>-v<valid>`` (AutoRec, CFN, NCAE explicit: "random 90%–10% train-test sets, and hold out
  10% of the training set for hyperparameter tuning", repeated with seeds ``-s0`` … ``-s4``);
* ``<protocol>-d<D>``: any protocol with its training part subsampled to D% (CFN Fig. 4: 90/10 with 10–90% of the
  training ratings; NCAE Table 5: leave-one-out with D = 40/60/80%), test and validation unchanged.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np
import polars as pl

from tasks.common.errors import ConfigError
from tasks.splits.base import SplitProtocol, SplitResult, take

HOLDOUT = re.compile(r"^random-(\d+)-(\d+)-v(\d+)$")  # routes a name here; the checks below refuse bad numbers
FRACTION = re.compile(r"^(?P<base>.+)-d(?P<pct>\d+)$")
_PERCENT = re.compile(r"^[1-9]\d*$")  # no leading zero: one spelling per split (d40, never d040)
FRACTION_STREAM = 3  # default_rng([seed, 3]): the subsampling draw, apart from every other draw of the split


def _percent(text: str) -> int | None:
    return int(text) if _PERCENT.match(text) else None


class RandomHoldout(SplitProtocol):
    """``random-<train>-<test>-v<valid>``: a random train/test cut, then ``valid``% of the training part held out.

    ``default_rng(seed).permutation`` of all ratings: the first ``round(test% · n)`` are the test part, the next
    ``round(train% · valid% · n)`` the validation part, the rest the training part. The test part does not depend
    on ``valid`` (``random-90-10-v10`` and ``random-90-10-v20`` of one seed share it). ``train + test`` must be
    100 and ``0 < valid < 100`` (percentages written without leading zeros).
    """

    name = "random-90-10-v10"

    def __init__(self, name: str = "random-90-10-v10") -> None:
        m = HOLDOUT.match(name)
        nums = [_percent(g) for g in m.groups()] if m else [None]
        if not m or None in nums or nums[0] + nums[1] != 100 or not 0 < nums[2] < 100:  # type: ignore[operator]
            raise ConfigError(
                "split.instances",
                "random-<train>-<test>-v<valid>: train + test = 100 percent, 0 < valid < 100 percent of the "
                "training part (e.g. random-90-10-v10)",
                name,
            )
        train, test, valid = (int(x) for x in nums)  # type: ignore[arg-type]
        self.name = name  # type: ignore[misc]
        self.test_fraction = test / 100
        self.valid_fraction = valid / 100  # of the training part
        self.fractions = (train * (100 - valid) / 1e4, train * valid / 1e4, test / 100)

    def expected_fractions(self) -> tuple[float, float, float]:
        return self.fractions

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        n = ratings.height
        perm = np.random.default_rng(seed).permutation(n)
        n_test = round(self.fractions[2] * n)
        n_valid = round(self.fractions[1] * n)
        test, valid, train = perm[:n_test], perm[n_test : n_test + n_valid], perm[n_test + n_valid :]
        info = {
            "protocol": self.name,
            "seed": seed,
            "validation": f"{self.valid_fraction:.0%} of the training part (random), the test part "
            f"{self.test_fraction:.0%} of all ratings",
        }
        return SplitResult(take(ratings, train), take(ratings, valid), take(ratings, test), info=info)


class TrainingFraction(SplitProtocol):
    """``<protocol>-d<D>``: the split of ``<protocol>`` (same seed, so the same test and validation parts, and the
    same negatives) with only D% of its training rows kept; the others go to ``unused`` (in no part).

    Nested: one random order of the training rows per seed (``default_rng([seed, 3])``) and D% taken from its
    front, so for one seed d40 ⊂ d60 ⊂ d80 ⊂ the full training part. The count is rounded half up.

    * Protocols that hold out one test item per user with negatives (``leave-one-out``, ``predefined`` on the
      DeepCF files): NCAE samples "a D proportion of interaction data from each user", so each user keeps
      ``max(1, round(D · n_u))`` of its ``n_u`` training rows: every user keeps at least one (a user with no
      training row has no input vector, and cold users are not what Table 5 measures).
    * Every other protocol (CFN Fig. 4 "training set ratio"): ``round(D · n_train)`` rows kept uniformly at
      random over all training rows; a user or item may lose every training row (counted in ``split.json``
      as ``test_rows_with_cold_user`` / ``_item``).
    """

    def __init__(self, base: SplitProtocol, percent: int) -> None:
        if isinstance(base, TrainingFraction):
            raise ConfigError("split.instances", "one training fraction -d<D> per split, not two", f"{base.name}-d…")
        if not 0 < percent <= 100:
            raise ConfigError(
                "split.instances", "a training fraction -d<D> with 0 < D <= 100 (percent of the training rows kept)",
                f"{base.name}-d{percent}",
            )  # fmt: skip
        self.base = base
        self.percent = percent
        self.name = f"{base.name}-d{percent}"  # type: ignore[misc]
        self.implicit_eval = base.implicit_eval  # type: ignore[misc]
        self.negatives_must_be_unrated = base.negatives_must_be_unrated  # type: ignore[misc]
        self.requires = base.requires  # type: ignore[misc]

    @classmethod
    def from_name(cls, name: str, base: SplitProtocol) -> TrainingFraction:
        m = FRACTION.match(name)
        pct = _percent(m["pct"]) if m else None
        if pct is None:
            raise ConfigError(
                "split.instances", "a training fraction -d<D> with 0 < D <= 100 written without leading zeros", name
            )
        return cls(base, pct)

    def expected_fractions(self) -> tuple[float, float, float] | None:
        return self.base.expected_fractions()  # of train + unused (check_split counts both)

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        full = self.base.split(ratings, n_items, seed, extras=extras)
        per_user = full.negatives is not None
        keep = kept_rows(full.train["user_idx"].to_numpy(), self.percent, seed, per_user=per_user)
        idx = np.arange(full.train.height)
        train, unused = take(full.train, idx[keep]), take(full.train, idx[~keep])
        rule = (
            "per user: max(1, round(D * n_u)) of its n_u training rows (NCAE: a D proportion of each user's data)"
            if per_user
            else "round(D * n) training rows, uniformly at random (CFN Fig. 4 training ratio)"
        )
        info = {
            **full.info,
            "protocol": self.name,
            "train_fraction": self.percent / 100,
            "train_fraction_rule": f"{rule}; nested across D for one seed (one random order, its front kept)",
            "train_rows_before_subsampling": full.train.height,
            "train_users_before_subsampling": full.train["user_idx"].n_unique(),
        }
        return dataclasses.replace(full, train=train, unused=unused, info=info)


def kept_rows(users: np.ndarray, percent: int, seed: int, *, per_user: bool) -> np.ndarray:
    """Boolean mask of the training rows kept at ``percent``% (row order of ``users``, the rows' user ids).

    One random rank per row from ``default_rng([seed, FRACTION_STREAM])`` whatever ``percent`` is, so the kept set
    grows with ``percent`` (nested). ``per_user``: each user keeps its ``max(1, round_half_up(percent% · n_u))``
    lowest-ranked rows; else the ``round_half_up(percent% · n)`` lowest-ranked rows overall."""
    n = len(users)
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng([seed, FRACTION_STREAM]).permutation(n)] = np.arange(n)
    if not per_user:
        return rank < (2 * percent * n + 100) // 200
    order = np.lexsort((rank, users))
    su = users[order]
    starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]]) if n else np.zeros(0, np.int64)
    sizes = np.diff(np.r_[starts, n])
    quota = np.maximum(1, (2 * percent * sizes + 100) // 200)
    pos = np.arange(n) - np.repeat(starts, sizes)  # position of each sorted row within its user
    keep = np.zeros(n, dtype=bool)
    keep[order] = pos < np.repeat(quota, sizes)
    return keep
