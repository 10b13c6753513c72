"""The split protocols: ``random-<train>-<valid>-<test>`` (percentages), ``leave-one-out``, and ``predefined`` /
``predefined-corrected`` (a dataset's own published split, with its negatives as listed or corrected); the
registry by name and pattern, with ``random-<train>-<test>-v<valid>`` and ``<protocol>-d<D>`` (``holdout.py``) and
``grouplens-<fold>`` (``grouplens.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

import numpy as np
import polars as pl

from tasks.common.errors import ConfigError, DataError
from tasks.common.registry import Registry
from tasks.datasets.ml100k import FOLDS
from tasks.splits.base import SplitProtocol, SplitResult, take, validation_negatives
from tasks.splits.grouplens import GroupLensFold
from tasks.splits.holdout import FRACTION, HOLDOUT, RandomHoldout, TrainingFraction

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

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        n = ratings.height
        perm = np.random.default_rng(seed).permutation(n)
        n_train = round(self.fractions[0] * n)
        n_valid = round(self.fractions[1] * n)
        parts = (perm[:n_train], perm[n_train : n_train + n_valid], perm[n_train + n_valid :])
        return SplitResult(*(take(ratings, p) for p in parts), info={"protocol": self.name, "seed": seed})


class LeaveOneOut(SplitProtocol):
    """Per user: latest interaction → test, one random other → valid, the rest → train.

    Ties in timestamp are broken by the larger item_idx (documented, deterministic). A missing timestamp
    (negative, ``MISSING_TIMESTAMP``) counts as older than any known one, and such rows are ordered by a
    seeded random key: a user without any timestamp gets a seeded random test item. Users with one
    interaction keep it in train; with two, the older goes to train. ``n_negatives`` items the user never
    rated are sampled without replacement for every test user (seeded).
    """

    name = "leave-one-out"
    implicit_eval = True

    def __init__(self, n_negatives: int = 99) -> None:
        self.n_negatives = n_negatives

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        rng = np.random.default_rng(seed)
        missing = (ratings["timestamp"] < 0).to_numpy()
        r = ratings.with_row_index("_row")
        if missing.any():  # unknown timestamps: -1 (older than any known), ties by a seeded random key
            tie = r["item_idx"].to_numpy().astype(np.float64)
            tie[missing] = np.random.default_rng([seed, 1]).random(int(missing.sum())) * len(tie)
            r = r.with_columns(pl.Series("_tie", tie), pl.col("timestamp").clip(lower_bound=-1))
            r = r.sort(["user_idx", "timestamp", "_tie"])
        else:
            r = r.sort(["user_idx", "timestamp", "item_idx"])
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
                "rows_without_timestamp": int(missing.sum()),
                "ordering": _ordering_note(ratings, missing),
                "valid_negatives": f"{self.n_negatives} per validation user, never an item of the user, "
                "seeded apart from the test draw",
            },
            valid_negatives=validation_negatives(
                ratings, take(ratings, rows[valid_mask]), n_items, self.n_negatives, seed
            ),
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


def _ordering_note(ratings: pl.DataFrame, missing: np.ndarray) -> str:
    if not missing.any():
        return "latest timestamp per user (ties: larger item_idx)"
    users_without = (
        ratings.filter(pl.Series(missing))
        .select("user_idx")
        .unique()
        .join(ratings.filter(pl.Series(~missing)).select("user_idx").unique(), on="user_idx", how="anti")
    )
    return (
        f"latest known timestamp per user; {int(missing.sum())} interactions have no timestamp and count as "
        f"older than any dated one; {users_without.height} users without any timestamp get a seeded random test item"
    )


class Predefined(SplitProtocol):
    """The dataset's own published split (``predefined`` table), reproduced row for row.

    The published test part is the test part. Validation comes out of the published training part (seeded):
    for a leave-one-out dataset one random training interaction per user with at least two (NCAE's protocol);
    for a fixed partition ``valid_fraction`` of the training rows (AutoRec / CFN hold 10% of train out).

    Negatives (leave-one-out datasets): ``predefined`` keeps them as published (the reference evaluation code
    scores a candidate list keyed by item, so an entry equal to the test positive and repeated entries count
    once; negatives the user rated in training stay). ``predefined-corrected`` replaces every such entry with a
    seeded never-rated item, so each test user has exactly as many distinct unrated negatives as listed.
    ``split.json`` records how many entries of each kind there were and which were replaced.
    """

    name = "predefined"
    implicit_eval = True
    negatives_must_be_unrated = False

    def __init__(self, corrected: bool = False, valid_fraction: float = 0.1) -> None:
        self.corrected = corrected
        self.valid_fraction = valid_fraction
        self.name = "predefined-corrected" if corrected else "predefined"  # type: ignore[misc]
        self.negatives_must_be_unrated = corrected  # type: ignore[misc]

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        extras = extras or {}
        if "predefined" not in extras:
            raise ConfigError(
                "split.instances",
                "a random-* or leave-one-out protocol (this dataset ships no split of its own)",
                self.name,
            )
        part = ratings.with_row_index("_row").join(
            extras["predefined"].select("user_idx", "item_idx", "part"), on=["user_idx", "item_idx"], how="left"
        )
        unassigned = part.filter(pl.col("part").is_null()).height
        if unassigned:
            raise DataError("predefined.parquet", "ratings without a predefined part", expected="0", found=unassigned)
        rng = np.random.default_rng(seed)
        train = part.filter(pl.col("part") == "train").sort("_row")
        test_rows = part.filter(pl.col("part") == "test")["_row"].to_numpy()
        negatives = extras.get("negatives")
        valid_mask = np.zeros(train.height, dtype=bool)
        if negatives is not None:  # leave-one-out: one random training interaction per user (≥ 2 of them)
            users = train["user_idx"].to_numpy()
            order = np.argsort(users, kind="stable")
            su = users[order]
            starts = np.flatnonzero(np.r_[True, su[1:] != su[:-1]]) if len(su) else np.zeros(0, np.int64)
            sizes = np.diff(np.r_[starts, len(su)])
            ok = sizes >= 2
            offs = (rng.random(int(ok.sum())) * sizes[ok]).astype(np.int64)
            valid_mask[order[starts[ok] + offs]] = True
            valid_rule = "one random training interaction per user with at least two"
        else:
            n_valid = round(self.valid_fraction * train.height)
            valid_mask[rng.permutation(train.height)[:n_valid]] = True
            valid_rule = f"{self.valid_fraction:g} of the published training rows, at random"
        rows = train["_row"].to_numpy()
        info: dict[str, object] = {
            "protocol": self.name,
            "seed": seed,
            "source": "the dataset's published split",
            "validation": valid_rule,
        }
        test = take(ratings, test_rows)
        valid = take(ratings, rows[valid_mask])
        neg = vneg = None
        if negatives is not None:
            neg, neg_info = self._negatives(ratings, test, negatives, n_items, rng)
            info.update(neg_info)
            k = int(negatives.group_by("user_idx").len()["len"].max())  # type: ignore[arg-type]
            vneg = validation_negatives(ratings, valid, n_items, k, seed)
            info["valid_negatives"] = f"{k} per validation user (as many as listed per test user), never an item "
            info["valid_negatives"] += "of the user, seeded"
        return SplitResult(take(ratings, rows[~valid_mask]), valid, test, neg, info, valid_negatives=vneg)

    def _negatives(
        self, ratings: pl.DataFrame, test: pl.DataFrame, listed: pl.DataFrame, n_items: int, rng: np.random.Generator
    ) -> tuple[pl.DataFrame, dict[str, object]]:
        listed = listed.select("user_idx", "item_idx").with_row_index("_pos")
        test_pairs = test.select("user_idx", pl.col("item_idx").alias("_pos_item"))
        missing = test_pairs.join(listed.select("user_idx").unique(), on="user_idx", how="anti").height
        if missing:
            raise DataError("negatives.parquet", "test users without listed negatives", expected="0", found=missing)
        tagged = (
            listed.join(test_pairs, on="user_idx", how="left")
            .join(
                ratings.select("user_idx", "item_idx", pl.lit(True).alias("_rated")),
                on=["user_idx", "item_idx"],
                how="left",
            )
            .sort("_pos")  # file order before marking repeats: the first listed copy is the one kept
            .with_columns(
                (pl.col("item_idx") == pl.col("_pos_item")).alias("is_positive"),
                pl.struct("user_idx", "item_idx").is_first_distinct().not_().alias("is_repeat"),
            )
            .with_columns((pl.col("_rated").fill_null(False) & ~pl.col("is_positive")).alias("is_rated"))
            .sort("_pos")
        )
        counts = {
            "listed_negatives": listed.height,
            "listed_negatives_equal_to_test_positive": int(tagged["is_positive"].sum()),
            "listed_negatives_rated_by_user": int(tagged["is_rated"].sum()),
            "listed_negatives_repeated": int((tagged["is_repeat"] & ~tagged["is_positive"]).sum()),
        }
        bad = pl.col("is_positive") | pl.col("is_repeat") | (pl.col("is_rated") if self.corrected else pl.lit(False))
        kept = tagged.filter(~bad).select("user_idx", "item_idx")
        if not self.corrected:
            return kept, {
                "negatives": "as published (entries equal to the test positive and repeats counted once, as the "
                "reference evaluation scores candidates by item; negatives rated in training kept)",
                **counts,
            }
        need = tagged.filter(bad).group_by("user_idx").len()
        replaced = self._resample(ratings, kept, need, n_items, rng)
        out = pl.concat([kept, replaced]).sort("user_idx", maintain_order=True)
        return out, {
            "negatives": "corrected: listed entries equal to the test positive, repeated, or rated by the user were "
            "replaced by seeded never-rated items",
            "replaced_negatives": replaced.height,
            **counts,
        }

    @staticmethod
    def _resample(
        ratings: pl.DataFrame, kept: pl.DataFrame, need: pl.DataFrame, n_items: int, rng: np.random.Generator
    ) -> pl.DataFrame:
        if need.is_empty():
            return pl.DataFrame(schema={"user_idx": pl.Int32, "item_idx": pl.Int32})
        taken = pl.concat([ratings.select("user_idx", "item_idx"), kept]).filter(
            pl.col("user_idx").is_in(need["user_idx"].implode())
        )
        by_user = {u: set(items) for u, items in taken.group_by("user_idx").agg("item_idx").iter_rows()}
        out_u: list[int] = []
        out_i: list[int] = []
        for u, k in need.sort("user_idx").iter_rows():
            seen = by_user.get(u, set())
            if n_items - len(seen) < k:
                raise DataError(
                    "negatives.parquet", f"user {u}: too few unrated items to correct negatives", expected=k
                )
            while k:
                c = int(rng.integers(0, n_items))
                if c not in seen:
                    seen.add(c)
                    out_u.append(u)
                    out_i.append(c)
                    k -= 1
        return pl.DataFrame({"user_idx": out_u, "item_idx": out_i}, schema={"user_idx": pl.Int32, "item_idx": pl.Int32})


# name → factory(name, loo_negatives); the families with numbers in their names are registered under their pattern
PROTOCOLS: Registry[Callable[[str, int], SplitProtocol]] = Registry("split protocol")
RANDOM_PATTERN = "random-<train>-<valid>-<test>"
HOLDOUT_PATTERN = "random-<train>-<test>-v<valid>"
FRACTION_PATTERN = "<protocol>-d<D>"
PROTOCOLS.add(RANDOM_PATTERN, lambda name, k: RandomSplit(name))
PROTOCOLS.add(HOLDOUT_PATTERN, lambda name, k: RandomHoldout(name))
PROTOCOLS.add("leave-one-out", lambda name, k: LeaveOneOut(k))
PROTOCOLS.add("predefined", lambda name, k: Predefined(corrected=False))
PROTOCOLS.add("predefined-corrected", lambda name, k: Predefined(corrected=True))
for _fold in FOLDS:
    PROTOCOLS.add(f"grouplens-{_fold}", lambda name, k: GroupLensFold(name))
PROTOCOLS.add(FRACTION_PATTERN, lambda name, k: get_protocol(name, k))


def protocol_names() -> list[str]:
    return PROTOCOLS.names()


def get_protocol(name: str, loo_negatives: int = 99) -> SplitProtocol:
    """The protocol ``name`` (e.g. ``random-80-10-10``, ``random-90-10-v10``, ``leave-one-out``, ``predefined``,
    ``grouplens-u1``, and any of them with ``-d<D>``: ``leave-one-out-d40``). A malformed name raises
    ``ConfigError`` (an unknown one ``UnknownNameError`` listing the valid names and patterns)."""
    m = FRACTION.match(name)
    if m:
        return TrainingFraction.from_name(name, get_protocol(m["base"], loo_negatives))
    key = RANDOM_PATTERN if RANDOM.match(name) else HOLDOUT_PATTERN if HOLDOUT.match(name) else name
    return PROTOCOLS.get(key, param="split.instances")(name, loo_negatives)
