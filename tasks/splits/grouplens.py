"""``grouplens-<fold>``: MovieLens-100K's published folds ``u1``–``u5`` (80/20, disjoint test parts) and
``ua`` / ``ub`` (ten test ratings per user), as shipped in the GroupLens zip (``<fold>.base`` / ``<fold>.test``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from tasks.common.errors import ConfigError, DataError
from tasks.datasets.ml100k import FOLDS, FOLDS_TABLE
from tasks.splits.base import SplitProtocol, SplitResult, take

VALID_FRACTION = 0.1


class GroupLensFold(SplitProtocol):
    """One published GroupLens fold of ml-100k, its test part reproduced row for row.

    The test part is exactly the fold's ``.test`` file (ingest checked each file against ``u.data``; rows come
    in the canonical (user, item) order, which is the file's). Validation: ``round(0.1 · |base|)`` rows of the
    fold's ``.base`` drawn with ``default_rng(seed).permutation``, the rest of ``.base`` is the training part; the
    seed only moves the validation rows. Needs the ingested ``grouplens_folds`` table: ml-100k parsed from the
    GroupLens files (the RecBole copy and every other dataset have none → ``ConfigError``).
    """

    name = "grouplens-u1"
    requires = (FOLDS_TABLE,)

    def __init__(self, name: str = "grouplens-u1", valid_fraction: float = VALID_FRACTION) -> None:
        fold = name.removeprefix("grouplens-")
        if fold not in FOLDS or not name.startswith("grouplens-"):
            raise ConfigError("split.instances", f"grouplens-<fold> with fold one of {list(FOLDS)}", name)
        self.name = name  # type: ignore[misc]
        self.fold = fold
        self.valid_fraction = valid_fraction

    def split(
        self, ratings: pl.DataFrame, n_items: int, seed: int, *, extras: Mapping[str, pl.DataFrame] | None = None
    ) -> SplitResult:
        folds = (extras or {}).get(FOLDS_TABLE)
        if folds is None:
            raise ConfigError(
                "split.instances",
                "grouplens-<fold> only on ml-100k ingested from the GroupLens files (u1.base … ub.test in the raw "
                "copy: python -m flows.acquire --dataset ml-100k --force from the official zip or a full copy); "
                "this dataset has no published folds",
                self.name,
            )
        listed = folds.filter(pl.col("fold") == self.fold).select("user_idx", "item_idx")
        if listed.is_empty():
            raise ConfigError("split.instances", f"a fold present in the raw copy ({sorted(set(folds['fold']))})",
                              self.name)  # fmt: skip
        marked = (
            ratings.select("user_idx", "item_idx")
            .with_row_index("_row")
            .join(
                listed.with_columns(pl.lit(True).alias("_test")),
                on=["user_idx", "item_idx"],
                how="left",
                maintain_order="left",
            )
        )
        is_test = marked["_test"].fill_null(False).to_numpy()
        if int(is_test.sum()) != listed.height:
            raise DataError(f"{FOLDS_TABLE}.parquet", f"{self.fold}.test rows missing from the ratings",
                            expected=f"{listed.height} rows", found=int(is_test.sum()))  # fmt: skip
        rows = marked["_row"].to_numpy()
        base = rows[~is_test]
        n_valid = round(self.valid_fraction * len(base))
        perm = np.random.default_rng(seed).permutation(len(base))
        info = {
            "protocol": self.name,
            "seed": seed,
            "source": f"GroupLens {self.fold}.base / {self.fold}.test (ml-100k)",
            "validation": f"{self.valid_fraction:g} of {self.fold}.base at random; the rest of it is the training part",
        }
        return SplitResult(
            take(ratings, base[perm[n_valid:]]), take(ratings, base[perm[:n_valid]]), take(ratings, rows[is_test]),
            info=info,
        )  # fmt: skip
