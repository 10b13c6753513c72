"""An experiment's table: per (model, dataset, metric) cell, our mean ± std over seeds beside the published figure,
the difference, and significance against the paper's proposed model — a paired t-test and a Wilcoxon signed-rank
test across seeds (same split per seed), and the same two across test users (the per-user values the evaluation
wrote, pooled over the seeds' test parts: a user's mean squared / absolute error for rmse / mae, its HR / NDCG /
MRR for ranking metrics). Cells of a dataset that is not
present read "data not available"; rows of models not implemented here keep their published figure only.

Written to ``reports/experiments/<name>/``: ``table.csv`` (every number, p-values included), ``table.md`` (its plot in
``figures/``), a self-contained ``index.html`` (the plot embedded) and, for an experiment with ``curves``, one line
plot per curve and ``curves.csv`` (their points)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from tasks.common.io import atomic_dir
from tasks.common.paths import Layout
from tasks.experiments.curves import curve_png, curve_points
from tasks.experiments.spec import Experiment, lower_is_better

NA = "data not available"


@dataclass
class Cell:
    model: str
    dataset: str
    protocol: str
    metric: str
    status: str  # ok | data not available | not run | not implemented
    values: list[float]
    published: float | None = None
    spread: float | None = None
    provenance: str = ""
    p_seeds_t: float | None = None
    p_seeds_wilcoxon: float | None = None
    p_users_t: float | None = None
    p_users_wilcoxon: float | None = None
    run: str = ""  # the model this row runs on this dataset

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else (0.0 if self.values else None)

    @property
    def diff(self) -> float | None:
        return None if self.mean is None or self.published is None else self.mean - self.published


def _metric_values(layout: Layout, exp: Experiment, model: str, dataset: str, protocol: str, metric: str
                   ) -> list[float] | None:  # fmt: skip
    out = []
    for split_id in exp.split_ids(dataset, protocol):
        if "[" in metric:
            path = layout.breakdowns(dataset, model, split_id)
            value = breakdown_value(json.loads(path.read_text(encoding="utf-8")), metric) if path.exists() else None
        else:
            path = layout.metrics(dataset, model, split_id)
            value = json.loads(path.read_text(encoding="utf-8")).get(metric) if path.exists() else None
        if value is None:
            return None
        out.append(float(value))
    return out


def _missing(layout: Layout, exp: Experiment, model: str, dataset: str, protocol: str, metric: str) -> str:
    """Why a cell has no value: its runs are not evaluated yet, or they are and do not measure ``metric``."""
    files = [layout.breakdowns(dataset, model, s) if "[" in metric else layout.metrics(dataset, model, s)
             for s in exp.split_ids(dataset, protocol)]  # fmt: skip
    return "metric not measured" if all(f.exists() for f in files) else "not run"


def breakdown_value(record: dict[str, Any], key: str) -> float | None:
    """The value of ``metric[popularity=<group>]`` / ``metric[activity=<bucket>]`` in a run's breakdowns record
    (None when the run has no such group or the group had no test row)."""
    metric, _, group = key.rstrip("]").partition("[")
    kind, _, label = group.partition("=")
    if kind == "popularity":
        rows, name, label_key = record.get("rating_by_item_popularity") or [], metric, "group"
    elif metric in ("rmse", "mae"):
        rows, name, label_key = record.get("rating_by_user_activity") or [], metric, "bucket"
    else:  # hr@10_sampled → the "sampled" activity table's hr@10 column
        name, _, protocol = metric.rpartition("_")
        rows, label_key = (record.get("ranking_by_user_activity") or {}).get(protocol) or [], "bucket"
    for row in rows:
        if row.get(label_key) == label:
            value = row.get(name)
            return None if value is None else float(value)
    return None


def per_user_values(layout: Layout, dataset: str, model: str, split_id: str, metric: str) -> pl.DataFrame | None:
    """(user_idx, value) of ``metric`` for each test user of a run, as its evaluation wrote them (rmse / mae: the
    user's mean squared / absolute error); None when the run has no per-user values for it."""
    path = layout.per_user(dataset, model, split_id)
    if not path.exists():
        return None
    frame = pl.read_parquet(path).filter(pl.col("metric") == metric).select("user_idx", "value").sort("user_idx")
    return frame if frame.height else None


def _p(test: Any, a: np.ndarray, b: np.ndarray) -> float | None:
    d = a - b
    if len(d) < 2 or not np.any(d):
        return None
    try:
        p = float(test(a, b).pvalue)
    except ValueError:
        return None
    return p if math.isfinite(p) else None


def build_cells(exp: Experiment, layout: Layout, available: dict[str, bool]) -> list[Cell]:
    cells: list[Cell] = []
    for dataset, protocol in exp.columns:
        for metric in exp.metrics:
            proposed = exp.model_for(exp.proposed, dataset)
            ref = (_metric_values(layout, exp, proposed, dataset, protocol, metric)
                   if available[dataset] and proposed else None)  # fmt: skip
            for row in exp.rows:
                model = exp.model_for(row, dataset)
                fig = exp.figure(row, dataset, protocol, metric)
                cell = Cell(row, dataset, protocol, metric, "ok", [], fig.value if fig else None,
                            fig.spread if fig else None, fig.provenance if fig else "", run=model or "")  # fmt: skip
                if row not in exp.models:
                    cell.status = fig.note if fig else "not implemented"
                elif model is None:
                    cell.status = "not applicable"
                elif not available[dataset]:
                    cell.status = NA
                else:
                    values = _metric_values(layout, exp, model, dataset, protocol, metric)
                    if values is None:
                        cell.status = _missing(layout, exp, model, dataset, protocol, metric)
                    else:
                        cell.values = values
                        if ref is not None and model != proposed:
                            a, b = np.array(values), np.array(ref)
                            cell.p_seeds_t = _p(stats.ttest_rel, a, b)
                            cell.p_seeds_wilcoxon = _p(stats.wilcoxon, a, b)
                            _users(cell, exp, layout, proposed)
                cells.append(cell)
    return cells


def _users(cell: Cell, exp: Experiment, layout: Layout, proposed: str) -> None:
    ours, theirs = [], []
    for split_id in exp.split_ids(cell.dataset, cell.protocol):
        a = per_user_values(layout, cell.dataset, cell.run, split_id, cell.metric)
        b = per_user_values(layout, cell.dataset, proposed, split_id, cell.metric)
        if a is None or b is None:
            return
        joined = a.join(b, on="user_idx", suffix="_ref")
        ours.append(joined["value"].to_numpy())
        theirs.append(joined["value_ref"].to_numpy())
    x, y = np.concatenate(ours), np.concatenate(theirs)
    cell.p_users_t = _p(stats.ttest_rel, x, y)
    cell.p_users_wilcoxon = _p(stats.wilcoxon, x, y)


def _fmt(v: float | None, digits: int = 4) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def cell_text(c: Cell) -> str:
    if c.status != "ok":
        return c.status
    marks = ("†" if c.p_seeds_t is not None and c.p_seeds_t < 0.05 else "") + (
        "*" if c.p_users_wilcoxon is not None and c.p_users_wilcoxon < 0.05 else ""
    )
    return f"{_fmt(c.mean)} ± {_fmt(c.std)}{marks}"


def cells_frame(cells: list[Cell]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "model": c.model, "run": c.run, "dataset": c.dataset, "protocol": c.protocol, "metric": c.metric,
                "status": c.status,
                "n_seeds": len(c.values), "mean": c.mean, "std": c.std,
                "values": json.dumps([round(v, 6) for v in c.values]),
                "published": c.published, "published_spread": c.spread, "diff": c.diff,
                "p_seeds_ttest": c.p_seeds_t, "p_seeds_wilcoxon": c.p_seeds_wilcoxon,
                "p_users_ttest": c.p_users_t, "p_users_wilcoxon": c.p_users_wilcoxon, "provenance": c.provenance,
            }
            for c in cells
        ],
        schema_overrides={k: pl.Float64 for k in ("mean", "std", "published", "published_spread", "diff",
                                                  "p_seeds_ttest", "p_seeds_wilcoxon", "p_users_ttest",
                                                  "p_users_wilcoxon")},
    )


def plot_png(exp: Experiment, cells: list[Cell]) -> bytes:
    """Grouped bars: ours (mean ± std) and the published figure, per model, one panel per (dataset, metric)."""
    from matplotlib.figure import Figure

    from tasks.report.figures import _png

    panels = [(d, p, m) for d, p in exp.columns for m in exp.metrics]
    fig = Figure(figsize=(max(6.0, 0.7 * len(exp.rows) + 2), 3.2 * len(panels)))
    for i, (dataset, protocol, metric) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        mine = [c for c in cells if (c.dataset, c.protocol, c.metric) == (dataset, protocol, metric)]
        x = np.arange(len(mine))
        ours = [c.mean if c.mean is not None else np.nan for c in mine]
        errs = [c.std or 0.0 for c in mine]
        pub = [c.published if c.published is not None else np.nan for c in mine]
        ax.bar(x - 0.2, ours, 0.4, yerr=errs, label="ours (mean ± std)", color="#4477aa")
        ax.bar(x + 0.2, pub, 0.4, label="published", color="#cccccc", edgecolor="#666666")
        vals = [v for v in ours + pub if np.isfinite(v)]
        if vals:
            lo, hi = min(vals), max(vals)
            pad = max((hi - lo) * 0.3, 0.01)
            ax.set_ylim(max(0.0, lo - pad), hi + pad)
        ax.set_xticks(x, [c.model for c in mine], rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{exp.column_label(dataset, protocol)}: {metric} "
                     f"({'lower' if lower_is_better(metric) else 'higher'} is better)",
                     fontsize=9)  # fmt: skip
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def write_table(exp: Experiment, cells: list[Cell], out_dir: Path, notes: list[str]) -> dict[str, Path]:
    """table.csv, table.md, index.html (self-contained) into ``out_dir``, all at once."""
    from tasks.report.document import Doc
    from tasks.report.render import render_html, render_markdown

    doc = Doc()
    doc.heading(1, exp.title)
    doc.para(f"{exp.paper}, {exp.table}. Seeds {list(exp.seeds)}; protocols: "
             + ", ".join(f"{d}: {', '.join(p)}" for d, p in exp.datasets.items()) + ".")  # fmt: skip
    if exp.caption:
        doc.para(exp.caption)
    keys = [(d, p, m) for d, p in exp.columns for m in exp.metrics]
    labels = [f"{exp.column_label(d, p)} {m}" for d, p, m in keys]
    header = ["model", *labels, *(f"published {x}" for x in labels), *(f"diff {x}" for x in labels)]
    rows = []
    for model in exp.rows:
        mine = {(c.dataset, c.protocol, c.metric): c for c in cells if c.model == model}
        rows.append([model + (" (proposed)" if model == exp.proposed else "")]
                    + [cell_text(mine[k]) for k in keys]
                    + [_fmt(mine[k].published, 3) + (f" ± {mine[k].spread:g}" if mine[k].spread else "") for k in keys]
                    + [_fmt(mine[k].diff, 4) for k in keys])  # fmt: skip
    doc.table(header, rows)
    doc.bullets([
        f"† paired t-test across seeds against `{exp.proposed}` p < 0.05; * Wilcoxon signed-rank across test users "
        "(per-user errors or ranking metrics) p < 0.05; every p-value is in table.csv.",
        "diff = our mean − the published figure.",
        *notes,
    ])  # fmt: skip
    sources = sorted({c.provenance for c in cells if c.provenance})
    if sources:
        doc.heading(2, "Provenance of the published figures")
        doc.bullets(sources)
    doc.image("table.png", plot_png(exp, cells), f"{exp.title}: ours vs published")
    points = [curve_points(c, cells) for c in exp.curves]
    for i, (curve, frame) in enumerate(zip(exp.curves, points, strict=True)):
        doc.heading(2, curve.title)
        missing = frame.filter(pl.col("mean").is_null()).height
        doc.para(f"{curve.dataset}, {curve.protocol}; mean ± std over seeds {list(exp.seeds)} (the table's cells)"
                 + (f"; {missing} of {frame.height} points not run yet" if missing else "") + ".")  # fmt: skip
        doc.image(f"curve-{i + 1}.png", curve_png(curve, frame), curve.title)
    with atomic_dir(out_dir) as tmp:
        cells_frame(cells).write_csv(tmp / "table.csv")
        if points:
            pl.concat(points).write_csv(tmp / "curves.csv")
        (tmp / "table.md").write_text(render_markdown(doc), encoding="utf-8")
        (tmp / "index.html").write_text(render_html(doc, exp.title), encoding="utf-8")
        (tmp / "figures").mkdir()
        for name, png in doc.figures.items():  # table.md links them; index.html embeds them
            (tmp / "figures" / name).write_bytes(png)
    return {k: out_dir / k for k in ("table.csv", "table.md", "index.html")}
