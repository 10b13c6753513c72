"""The split stage: every configured split instance of a dataset, written and checked."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from tasks.common.config import Params, parse_split_id
from tasks.common.errors import ConfigError
from tasks.common.io import atomic_dir
from tasks.common.manifest import read_manifest
from tasks.common.paths import Layout
from tasks.datasets.base import MISSING_TIMESTAMP, OPTIONAL_TABLES
from tasks.splits import check_split, get_protocol, write_split

log = logging.getLogger(__name__)


def make_split(
    out_dir: Path,
    split_id: str,
    ratings: pl.DataFrame,
    n_items: int,
    loo_negatives: int,
    extras: dict[str, pl.DataFrame] | None = None,
) -> dict[str, Any]:
    """Split, check and write one instance into ``out_dir`` (its folder)."""
    protocol_name, seed = parse_split_id(split_id)
    protocol = get_protocol(protocol_name, loo_negatives)
    result = protocol.split(ratings, n_items, seed, extras=extras)
    report = check_split(split_id, ratings, result, protocol)
    write_split(out_dir, result, {"split_id": split_id, **report})
    log.info("%s: %s", split_id, report["counts"])
    return {"split_id": split_id, **report, **result.info}


def make_splits(layout: Layout, params: Params, dataset: str) -> list[dict[str, Any]]:
    """Write every instance of ``split.instances`` into a new splits folder that replaces the old one whole
    (under its write lock, see ``atomic_dir``). An empty or repeated list is refused before anything is read:
    swapping in an empty folder would delete every existing split."""
    instances = params.split.instances
    if not instances or len(set(instances)) != len(instances):
        raise ConfigError("split.instances", "a non-empty list of distinct split instances", list(instances))
    ratings, n_items, extras = _split_inputs(layout, params, dataset, instances)
    with atomic_dir(layout.splits(dataset)) as tmp:  # every instance is replaced together, or none
        return [make_split(tmp / sid, sid, ratings, n_items, params.split.loo_negatives, extras) for sid in instances]


def add_splits(layout: Layout, params: Params, dataset: str, instances: list[str]) -> list[dict[str, Any]]:
    """Write those of ``instances`` that the splits folder lacks, each into its own folder (atomically, under that
    folder's lock), and leave every other instance untouched. The experiments' shared workspace grows this way:
    several experiments, in several processes, add instances to one dataset while others train on the existing
    ones (replacing the whole folder, as the split stage does, would pull it from under them)."""
    missing = [sid for sid in dict.fromkeys(instances) if not (layout.split(dataset, sid) / "split.json").is_file()]
    if not missing:
        return []
    ratings, n_items, extras = _split_inputs(layout, params, dataset, tuple(missing))
    out = []
    for sid in missing:
        with atomic_dir(layout.split(dataset, sid)) as tmp:
            out.append(make_split(tmp, sid, ratings, n_items, params.split.loo_negatives, extras))
    return out


def _split_inputs(layout: Layout, params: Params, dataset: str, instances: tuple[str, ...]
                  ) -> tuple[pl.DataFrame, int, dict[str, pl.DataFrame]]:  # fmt: skip
    """The ingested ratings, the item count and the tables the protocols of ``instances`` read; a protocol the
    dataset cannot support is refused before any split is written."""
    d = layout.ingested(dataset)
    ratings = pl.read_parquet(d / "ratings.parquet")
    if not read_manifest(d).has_timestamps:
        ratings = ratings.with_columns(pl.lit(MISSING_TIMESTAMP, dtype=pl.Int64).alias("timestamp"))
    n_items = pl.read_parquet(d / "item_ids.parquet").height
    protocols = {sid: get_protocol(parse_split_id(sid)[0], params.split.loo_negatives) for sid in instances}
    wanted = {*OPTIONAL_TABLES, *(t for p in protocols.values() for t in p.requires)}
    extras = {t: pl.read_parquet(d / f"{t}.parquet") for t in sorted(wanted) if (d / f"{t}.parquet").exists()}
    for sid, protocol in protocols.items():  # refused before any split is written
        missing = [t for t in protocol.requires if t not in extras]
        if missing:
            raise ConfigError(
                "split.instances",
                f"a protocol that {dataset} supports ({protocol.name} reads the ingested table(s) {missing}, "
                f"which {dataset} lacks; grouplens-<fold> needs ml-100k ingested from the GroupLens files)",
                sid,
            )
    return ratings, n_items, extras
