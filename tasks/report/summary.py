"""The summary table: one row per (dataset, protocol, model, metric) with mean ± std over seeds and the published
figure beside it (``reports/summary.csv``)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import polars as pl

from tasks.common.io import atomic_path
from tasks.common.paths import Layout
from tasks.report.inputs import collect_runs
from tasks.report.published import lookup

KEYS = ["dataset", "protocol", "model", "metric"]


SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "dataset": pl.String(),
    "protocol": pl.String(),
    "model": pl.String(),
    "metric": pl.String(),
    "mean": pl.Float64(),
    "std": pl.Float64(),
    "n_runs": pl.Int64(),
    "published": pl.Float64(),
    "published_source": pl.String(),
}


METRIC_ORDER = ("rmse", "mae", "precision", "recall", "hr", "ndcg")


LOWER_IS_BETTER = re.compile(r"^(rmse|mae|mse|loss|error)", re.IGNORECASE)


def summarize(runs: list[dict]) -> pl.DataFrame:
    """Mean and sample std (ddof=1; 0.0 for a single run) of every metric, with the published figure."""
    rows = [
        {
            "dataset": r["dataset"],
            "protocol": r["protocol"],
            "model": r["model"],
            "metric": str(k),
            "value": v,
        }
        for r in runs
        for k, v in (r.get("metrics") or {}).items()
        if _is_number(v)
    ]
    if not rows:
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    schema = {**{k: pl.String() for k in KEYS}, "value": pl.Float64()}
    long = pl.DataFrame(rows, schema=schema)
    agg = (
        long.group_by(KEYS)
        .agg(
            mean=pl.col("value").mean(),
            std=pl.col("value").std(ddof=1),
            n_runs=pl.len().cast(pl.Int64),
        )
        .with_columns(std=pl.when(pl.col("n_runs") <= 1).then(0.0).otherwise(pl.col("std")))
        .sort(KEYS)
    )
    found = [lookup(*key) for key in agg.select(KEYS).iter_rows()]
    return agg.with_columns(
        pl.Series("published", [p.value if p else None for p in found], dtype=pl.Float64),
        pl.Series("published_source", [p.source if p else None for p in found], dtype=pl.String),
    ).select(list(SUMMARY_SCHEMA))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def write_summary_csv(root: Path, datasets: list[str]) -> Path:
    """``reports/summary.csv``: ``summarize`` over every run of every dataset, written atomically."""
    frames = [summarize(collect_runs(Path(root), d)) for d in dict.fromkeys(datasets)]
    table = pl.concat(frames) if frames else pl.DataFrame(schema=SUMMARY_SCHEMA)
    target = Layout(Path(root)).reports() / "summary.csv"
    with atomic_path(target, ".csv") as tmp:
        table.sort(KEYS).write_csv(tmp)
    return target


def lower_is_better(metric: str) -> bool:
    return bool(LOWER_IS_BETTER.match(metric))


def verdict(metric: str, mean: float, published: float) -> str:
    """'beats ✓' / 'meets ✓' / 'behind', comparing ours at the published number's precision."""
    ours = round(mean, _decimals(published))
    if math.isclose(ours, published, abs_tol=1e-9):
        return "meets ✓"
    better = ours < published if lower_is_better(metric) else ours > published
    return "beats ✓" if better else "behind"


def metric_sort_key(metric: str) -> tuple[int, str, str, float, str]:
    """rmse, mae, precision@…, recall@…, hr@…, ndcg@… first; numbers after '@' in numeric order."""
    head, _, tail = metric.partition("@")
    rank = METRIC_ORDER.index(head.lower()) if head.lower() in METRIC_ORDER else len(METRIC_ORDER)
    m = re.match(r"(\d+(?:\.\d+)?)(.*)", tail)
    number, suffix = (float(m[1]), m[2]) if m else (-1.0, tail)
    return rank, head, suffix, number, metric

def _decimals(value: float) -> int:
    """Decimal places a published figure was printed with: at least 3 (every paper prints 0.940, not 0.94)."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 4
    return min(max(len(text.split(".")[1]), 3), 6)
