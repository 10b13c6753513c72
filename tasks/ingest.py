"""Acquire (when needed) and ingest a dataset into canonical Parquet tables plus statistics."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tasks.common.errors import DataError
from tasks.common.io import atomic_dir, file_sha256, read_json, write_json, write_parquet
from tasks.common.manifest import DatasetManifest, write_manifest
from tasks.common.paths import Layout
from tasks.datasets import get_dataset
from tasks.datasets.base import OPTIONAL_TABLES, TABLES, CanonicalTables, Dataset

log = logging.getLogger(__name__)


def quantiles(counts: np.ndarray) -> dict[str, float]:
    if len(counts) == 0:
        return {}
    q = np.percentile(counts, [0, 25, 50, 75, 100])
    return {
        "min": float(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "max": float(q[4]),
        "mean": float(counts.mean()),
    }


def dataset_stats(name: str, tables: CanonicalTables, raw_dir: Path) -> dict[str, Any]:
    r = tables.ratings
    n_u, n_i, n_r = tables.n_users, tables.n_items, r.height
    hist = r.group_by("rating").len().sort("rating")
    per_user = np.bincount(r["user_idx"].to_numpy(), minlength=n_u)
    per_item = np.bincount(r["item_idx"].to_numpy(), minlength=n_i)
    raw_files = sorted(p for p in raw_dir.iterdir() if p.is_file()) if raw_dir.is_dir() else []
    return {
        "dataset": name,
        "source": f"data/{name} ({tables.notes.get('raw_layout', 'native')} layout)",
        "n_users": n_u,
        "n_items": n_i,
        "n_ratings": n_r,
        "density": n_r / (n_u * n_i) if n_u and n_i else 0.0,
        "rating_mean": float(r["rating"].mean()) if n_r else None,  # type: ignore[arg-type]
        "rating_histogram": {str(float(k)): int(v) for k, v in hist.iter_rows()},
        "ratings_per_user": quantiles(per_user),
        "ratings_per_item": quantiles(per_item),
        "timestamps": _timestamp_range(r),
        "user_columns": [c for c in tables.users.columns if c != "user_idx"],
        "item_columns": [c for c in tables.items.columns if c != "item_idx"],
        "raw_files": {p.name: file_sha256(p) for p in raw_files},
        "notes": tables.notes,
        **_optional_stats(tables),
    }


def _timestamp_range(r: pl.DataFrame) -> dict[str, int]:
    known = r.filter(pl.col("timestamp") >= 0)["timestamp"]
    return {"min": int(known.min()), "max": int(known.max())} if len(known) else {}  # type: ignore[arg-type]


def _optional_stats(tables: CanonicalTables) -> dict[str, Any]:
    """Weights of implicit interactions, the published split and negatives, timestamps missing."""
    r = tables.ratings
    out: dict[str, Any] = {}
    missing = int((r["timestamp"] < 0).sum()) if r.height else 0
    if missing:
        out["ratings_without_timestamp"] = missing
    if "weight" in r.columns and r.height:
        out["weight"] = quantiles(r["weight"].to_numpy().astype(np.float64))
    if tables.predefined is not None:
        out["predefined_split"] = {str(k): int(v) for k, v in tables.predefined.group_by("part").len().iter_rows()}
    if tables.negatives is not None:
        per_user = tables.negatives.group_by("user_idx").len()["len"]
        out["listed_negatives"] = {
            "rows": tables.negatives.height,
            "users": per_user.len(),
            "per_user_min": int(per_user.min()),  # type: ignore[arg-type]
            "per_user_max": int(per_user.max()),  # type: ignore[arg-type]
        }
    return out


def build_manifest(ds: Dataset, tables: CanonicalTables) -> DatasetManifest:
    """What the later stages may know about the dataset (they never read the raw folder)."""
    return DatasetManifest(
        dataset=ds.name,
        rating_scale=(float(ds.rating_scale[0]), float(ds.rating_scale[1])),
        implicit=bool(ds.implicit),
        has_timestamps=bool(ds.has_timestamps),
        has_weight="weight" in tables.ratings.columns,
        predefined_split=ds.predefined_split,
        user_side=tuple(f"{f.column}:{f.kind}" for f in ds.user_side),
        item_side=tuple(f"{f.column}:{f.kind}" for f in ds.item_side),
        n_users=tables.n_users,
        n_items=tables.n_items,
        n_ratings=tables.ratings.height,
        expected=(ds.expected.users, ds.expected.items, ds.expected.ratings),
    )


def ingest_dataset(layout: Layout, name: str) -> dict[str, Any]:
    """Parse ``data/<name>`` into ``artifacts/ingested/<name>/`` (all tables swapped in at once)."""
    ds = get_dataset(name)
    raw = layout.raw(name)
    try:
        tables = ds.parse(raw)
    except DataError as exc:
        hint = f"if the raw copy is damaged, fetch it again: python -m flows.acquire --dataset {name} --force"
        exc.args = (f"{exc.args[0]} ({hint})",)
        raise
    stats = dataset_stats(name, tables, raw)
    manifest = build_manifest(get_dataset(name, raw_dir=raw), tables)
    out = layout.ingested(name)
    with atomic_dir(out) as tmp:
        for t, frame in tables.as_dict().items():
            write_parquet(tmp / f"{t}.parquet", frame)
        write_json(tmp / "stats.json", stats)
        write_manifest(tmp, manifest)
    log.info("%s: %d users, %d items, %d ratings", name, stats["n_users"], stats["n_items"], stats["n_ratings"])
    return stats


def load_tables(layout: Layout, name: str) -> dict[str, pl.DataFrame]:
    d = layout.ingested(name)
    out = {t: pl.read_parquet(d / f"{t}.parquet") for t in TABLES}
    out.update({t: pl.read_parquet(d / f"{t}.parquet") for t in OPTIONAL_TABLES if (d / f"{t}.parquet").exists()})
    return out


def load_stats(layout: Layout, name: str) -> dict[str, Any]:
    return read_json(layout.ingested(name) / "stats.json")
