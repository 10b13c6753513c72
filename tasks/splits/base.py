"""The split protocol interface, the on-disk format of a split, and its checks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import polars as pl

from tasks.common.errors import DataError
from tasks.common.io import read_json, write_json, write_parquet

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class SplitResult:
    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    negatives: pl.DataFrame | None = None  # user_idx, item_idx: sampled negatives per test user (LOO)
    info: dict[str, object] = field(default_factory=dict)
    # user_idx, item_idx: negatives per validation user, drawn like the test ones (ranking monitors)
    valid_negatives: pl.DataFrame | None = None
    # training rows left out by a training-fraction protocol (``<protocol>-d<D>``): in no part, kept for the record
    unused: pl.DataFrame | None = None

    def part(self, name: str) -> pl.DataFrame:
        return getattr(self, name)


class SplitProtocol(ABC):
    name: ClassVar[str]
    implicit_eval: ClassVar[bool] = False  # True: evaluate by ranking (HR/NDCG) as well as by rating error
    # False where negatives are kept as a dataset published them (a few may be rated items): counted, not rejected
    negatives_must_be_unrated: ClassVar[bool] = True
    # ingested tables beyond ``OPTIONAL_TABLES`` that ``split`` reads from ``extras`` (the stage loads them)
    requires: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        """Split canonical ratings deterministically for ``seed``. ``extras`` holds the dataset's optional
        ingested tables (``predefined``, ``negatives``) for protocols that reproduce a published split."""

    def expected_fractions(self) -> tuple[float, float, float] | None:
        return None


def check_split(split_id: str, ratings: pl.DataFrame, result: SplitResult, protocol: SplitProtocol) -> dict:
    """Disjoint, covering, proportions, non-empty test; negatives never rated. Raises ``DataError``.

    A training-fraction split (``unused`` set) covers the ratings with its unused rows counted in; its
    proportions are checked on train + unused (the training part before subsampling)."""
    where = f"split {split_id}"
    if result.test.is_empty():
        raise DataError(where, "empty test set", expected="at least one test rating", found="0 rows")
    if result.train.is_empty():
        raise DataError(where, "empty training set", expected="at least one training rating", found="0 rows")
    names = (*PARTS, "unused") if result.unused is not None else PARTS
    keys = {name: result.part(name).select("user_idx", "item_idx") for name in names}
    for n, a in enumerate(names):
        for b in names[n + 1 :]:
            overlap = keys[a].join(keys[b], on=["user_idx", "item_idx"], how="inner").height
            if overlap:
                raise DataError(where, f"{a} and {b} overlap", expected="disjoint parts",
                                found=f"{overlap} shared pairs")  # fmt: skip
    total = sum(k.height for k in keys.values())
    if total != ratings.height:
        raise DataError(where, "parts do not cover the ratings", expected=f"{ratings.height} rows", found=total)
    counts = {name: keys[name].height for name in names}
    fractions = {name: counts[name] / ratings.height for name in names}
    exp = protocol.expected_fractions()
    if exp is not None:
        pool = {**counts, "train": counts["train"] + counts.get("unused", 0)}
        for name, f in zip(PARTS, exp, strict=True):
            if abs(pool[name] - f * ratings.height) > 1.0 + 1e-9:
                raise DataError(where, f"{name} proportion off", expected=f"{f:.3f}",
                                found=round(pool[name] / ratings.height, 4))  # fmt: skip
    report: dict[str, object] = {"counts": counts, "fractions": fractions, "disjoint": True, "covering": True}
    if result.negatives is not None:
        neg = result.negatives
        rated = ratings.select("user_idx", "item_idx")
        clash = neg.join(rated, on=["user_idx", "item_idx"], how="inner").height
        if clash and protocol.negatives_must_be_unrated:
            raise DataError(where, "a sampled negative was rated by its user", expected="0", found=clash)
        report["negatives_rated_by_their_user"] = clash
        dup = neg.select(pl.struct("user_idx", "item_idx").is_duplicated().sum()).item()
        if dup:
            raise DataError(where, "duplicate sampled negatives", expected="0", found=dup)
        per_user = neg.group_by("user_idx").len()["len"]
        report["negatives_per_user"] = {"min": int(per_user.min()), "max": int(per_user.max())}  # type: ignore[arg-type]
    if result.valid_negatives is not None:
        vneg = result.valid_negatives
        clash = vneg.join(ratings.select("user_idx", "item_idx"), on=["user_idx", "item_idx"], how="inner").height
        if clash:
            raise DataError(where, "a validation negative was an interaction of its user", expected="0", found=clash)
        dup = vneg.select(pl.struct("user_idx", "item_idx").is_duplicated().sum()).item()
        if dup:
            raise DataError(where, "duplicate validation negatives", expected="0", found=dup)
        missing = result.valid.select("user_idx").unique().join(vneg.select("user_idx").unique(), on="user_idx",
                                                                how="anti").height  # fmt: skip
        if missing:
            raise DataError(where, "validation users without negatives", expected="0", found=missing)
        report["valid_negatives_per_user"] = int(vneg.group_by("user_idx").len()["len"].max())  # type: ignore[arg-type]
    report["users"] = {name: result.part(name)["user_idx"].n_unique() for name in PARTS}
    cold_u = result.test.join(result.train.select("user_idx").unique(), on="user_idx", how="anti").height
    cold_i = result.test.join(result.train.select("item_idx").unique(), on="item_idx", how="anti").height
    report["test_rows_with_cold_user"] = cold_u
    report["test_rows_with_cold_item"] = cold_i
    return report


def write_split(out_dir: Path, result: SplitResult, report: dict) -> None:
    for name in PARTS:
        write_parquet(out_dir / f"{name}.parquet", result.part(name))
    if result.negatives is not None:
        write_parquet(out_dir / "negatives.parquet", result.negatives)
    if result.valid_negatives is not None:
        write_parquet(out_dir / "valid_negatives.parquet", result.valid_negatives)
    if result.unused is not None:
        write_parquet(out_dir / "unused.parquet", result.unused)
    write_json(out_dir / "split.json", {**report, **result.info})


def load_split(split_dir: Path) -> SplitResult:
    from tasks.common.io import read_parquet

    if not (split_dir / "train.parquet").exists():
        raise DataError(split_dir, "split not found", expected="train/valid/test.parquet", found="nothing")
    neg = split_dir / "negatives.parquet"
    vneg = split_dir / "valid_negatives.parquet"
    unused = split_dir / "unused.parquet"
    info = read_json(split_dir / "split.json") if (split_dir / "split.json").exists() else {}
    return SplitResult(
        *(read_parquet(split_dir / f"{n}.parquet") for n in PARTS),
        negatives=read_parquet(neg) if neg.exists() else None,
        info=info,
        valid_negatives=read_parquet(vneg) if vneg.exists() else None,
        unused=read_parquet(unused) if unused.exists() else None,
    )


def validation_negatives(
    ratings: pl.DataFrame, valid: pl.DataFrame, n_items: int, k: int, seed: int
) -> pl.DataFrame:
    """``k`` distinct items per validation user that the user never interacted with in any part, drawn with
    their own generator (``default_rng([seed, 2])``) so that the split's other rows never move."""
    from models.common.samplers import pair_keys, sample_negatives

    users = np.sort(valid["user_idx"].unique().to_numpy()).astype(np.int64)
    keys = pair_keys(ratings["user_idx"].to_numpy(), ratings["item_idx"].to_numpy(), n_items)
    rng = np.random.default_rng([seed, 2])
    items = sample_negatives(users, k, keys, n_items, rng, distinct=True, param="split.loo_negatives")
    return pl.DataFrame(
        {"user_idx": np.repeat(users, k).astype(np.int32), "item_idx": items.ravel().astype(np.int32)}
    )


def take(ratings: pl.DataFrame, idx: np.ndarray) -> pl.DataFrame:
    return ratings[np.sort(idx)]
