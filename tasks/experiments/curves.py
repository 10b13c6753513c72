"""A paper's figure as an experiment: line plots whose points are cells of the experiment's grid.

An experiment file may carry ``curves:`` next to its table — a sweep (NCAE Figs 7–8: HR@100 vs the number of
hidden factors K), a training-fraction curve (CFN Fig. 4: RMSE vs the share of the training ratings), a
top-M curve (NCAE Figs 9–10: HR@M for M = 50 … 250) or a complexity curve (GF Fig. 2)::

    curves:
      - title: "NCAE Fig. 8: HR@100 vs K on Last.fm"
        dataset: lastfm            # default: the experiment's first dataset
        protocol: leave-one-out    # default: that dataset's first protocol
        metric: hr@100_full        # the y axis (not with over: metric)
        over: model                # what changes along a line: model | protocol | metric
        x_label: "hidden factors K"
        x_log: true                # optional: a log-scaled x axis
        lines:                     # line label → {x value: the model (or protocol, or metric) at that x}
          NCAE: {8: ncae-k8, 16: ncae-k16, 32: ncae-k32}
          BPR: {8: bpr-k8, 16: bpr-k16, 32: bpr-k32}

With ``over: protocol`` or ``over: metric`` each line is one model: its label is the model's name (or set
``model:`` per line as ``{model: m, points: {x: ...}}``). Every point is the mean ± std over the experiment's
seeds, exactly the table's cell for that (model, dataset, protocol, metric); the figure's numbers are in
``curves.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

OVER = ("model", "protocol", "metric")
KEYS = {"title", "dataset", "protocol", "metric", "over", "x_label", "x_log", "lines"}


@dataclass(frozen=True)
class Line:
    label: str
    model: str | None  # fixed model (over protocol / metric); None when the points are models
    points: tuple[tuple[float, str], ...]  # (x, the model / protocol / metric at x), x ascending


@dataclass(frozen=True)
class Curve:
    title: str
    dataset: str
    protocol: str
    metric: str  # "" when over == "metric"
    over: str
    x_label: str
    lines: tuple[Line, ...]
    x_log: bool = False

    def point_key(self, line: Line, value: str) -> tuple[str, str, str, str]:
        """(model, dataset, protocol, metric) of the table cell behind one point."""
        if self.over == "model":
            return value, self.dataset, self.protocol, self.metric
        if self.over == "protocol":
            return str(line.model), self.dataset, value, self.metric
        return str(line.model), self.dataset, self.protocol, value


def parse_curves(value: Any, datasets: dict[str, tuple[str, ...]], metrics: list[str], models: list[str],
                 err: Any) -> tuple[Curve, ...]:  # fmt: skip
    """Check ``curves:`` against the experiment's datasets, protocols, metrics and models (every point must be one
    of the table's cells)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise err("curves", "a list of curves {title, over, lines, ...}", value)
    return tuple(_curve(f"curves[{i}]", c, datasets, metrics, models, err) for i, c in enumerate(value))


def _curve(key: str, c: Any, datasets: dict[str, tuple[str, ...]], metrics: list[str], models: list[str],
           err: Any) -> Curve:  # fmt: skip
    if not isinstance(c, dict):
        raise err(key, "a mapping {title, over, lines, ...}", c)
    unknown = sorted(set(c) - KEYS)
    if unknown:
        raise err(f"{key}.{unknown[0]}", f"one of {sorted(KEYS)}", unknown[0])
    for k in ("title", "over", "lines"):
        if k not in c:
            raise err(f"{key}.{k}", "present", None)
    over = c["over"]
    if over not in OVER:
        raise err(f"{key}.over", f"one of {list(OVER)}", over)
    dataset = c.get("dataset", next(iter(datasets)))
    if dataset not in datasets:
        raise err(f"{key}.dataset", f"one of the experiment's datasets {sorted(datasets)}", dataset)
    protocol = c.get("protocol", datasets[dataset][0])
    if protocol not in datasets[dataset]:
        raise err(f"{key}.protocol", f"one of {dataset}'s protocols {list(datasets[dataset])}", protocol)
    metric = c.get("metric", "" if over == "metric" else metrics[0])
    if over == "metric" and "metric" in c:
        raise err(f"{key}.metric", "absent (the metric changes along the line: over: metric)", metric)
    if over != "metric" and metric not in metrics:
        raise err(f"{key}.metric", f"one of the experiment's metrics {metrics}", metric)
    lines_raw = c["lines"]
    if not isinstance(lines_raw, dict) or not lines_raw:
        raise err(f"{key}.lines", "a mapping line label → {x: name}", lines_raw)
    valid = {"model": models, "protocol": list(datasets[dataset]), "metric": metrics}[over]
    lines = []
    for label, spec in lines_raw.items():
        where = f"{key}.lines.{label}"
        model: str | None = None
        points_raw = spec
        if over != "model":
            model = str(label)
            if isinstance(spec, dict) and set(spec) == {"model", "points"}:
                model, points_raw = str(spec["model"]), spec["points"]
            if model not in models:
                raise err(where, f"a line per model of the experiment {models} (or {{model: m, points: ...}})", model)
        if not isinstance(points_raw, dict) or not points_raw:
            raise err(where, f"a mapping x value → {over}", points_raw)
        points = []
        for x, name in points_raw.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)):
                raise err(where, "numbers as x values", x)
            if name not in valid:
                raise err(f"{where}.{x}", f"one of the experiment's {over}s {valid}", name)
            points.append((float(x), str(name)))
        lines.append(Line(str(label), model, tuple(sorted(points))))
    return Curve(str(c["title"]), dataset, protocol, metric, over, str(c.get("x_label") or over), tuple(lines),
                 bool(c.get("x_log", False)))  # fmt: skip


def curve_points(curve: Curve, cells: list[Any]) -> pl.DataFrame:
    """One row per point: the curve, the line, x and the cell's mean ± std over seeds (null where not run)."""
    by_key = {(c.model, c.dataset, c.protocol, c.metric): c for c in cells}
    rows = []
    for line in curve.lines:
        for x, name in line.points:
            model, dataset, protocol, metric = curve.point_key(line, name)
            cell = by_key.get((model, dataset, protocol, metric))
            rows.append({"curve": curve.title, "line": line.label, "x": x, "model": model, "protocol": protocol,
                         "metric": metric, "mean": cell.mean if cell else None, "std": cell.std if cell else None,
                         "n_seeds": len(cell.values) if cell else 0})  # fmt: skip
    schema = {"curve": pl.String, "line": pl.String, "x": pl.Float64, "model": pl.String, "protocol": pl.String,
              "metric": pl.String, "mean": pl.Float64, "std": pl.Float64, "n_seeds": pl.Int64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema)


def curve_png(curve: Curve, points: pl.DataFrame) -> bytes:
    """Lines with mean ± std error bars; a missing point leaves a gap."""
    from matplotlib.figure import Figure

    from tasks.report.figures import _png

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    for line in curve.lines:
        mine = points.filter(pl.col("line") == line.label).sort("x")
        y = np.array([np.nan if v is None else v for v in mine["mean"].to_list()], dtype=float)
        err = np.array([0.0 if v is None else v for v in mine["std"].to_list()], dtype=float)
        ax.errorbar(mine["x"].to_numpy(), y, yerr=err, marker="o", capsize=3, label=line.label)
    if curve.x_log:
        ax.set_xscale("log")
    ax.set_xlabel(curve.x_label)
    ax.set_ylabel(curve.metric or "metric")
    ax.set_title(f"{curve.title} ({curve.dataset}, {curve.protocol})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)
