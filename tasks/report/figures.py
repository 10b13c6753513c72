"""The report's plots (PNG bytes): the rating histogram and the learning curves read from each run's history."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tasks.report.inputs import _rel


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def rating_histogram_png(histogram: dict[str, int], dataset: str) -> bytes:
    pairs = sorted((float(k), int(v)) for k, v in histogram.items())
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    labels = [f"{k:g}" for k, _ in pairs]
    ax.bar(labels, [v for _, v in pairs], color="#4C72B0")
    ax.set_xlabel("rating")
    ax.set_ylabel("number of ratings")
    ax.set_title(f"{dataset}: rating histogram")
    fig.tight_layout()
    return _png(fig)


@dataclass(frozen=True)
class Curve:
    model: str
    seed: str
    epoch: list[float]
    valid_rmse: list[float | None]  # the validation monitor (valid_rmse for rating models, valid_ndcg@10 ...)
    train_loss: list[float | None]  # the training objective
    monitor: str = "valid_rmse"


def learning_curves_png(curves: list[Curve], title: str) -> bytes:
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    models = sorted({c.model for c in curves})
    seeds = sorted({c.seed for c in curves})
    colours = [f"C{i % 10}" for i in range(len(models))]
    styles = ["-", "--", ":", "-."]
    for ax, column, label in (
        (axes[0], "valid_rmse", "validation monitor (legend: which)"),
        (axes[1], "train_loss", "training loss (data term: mse / bpr)"),
    ):
        drawn: list[float] = []
        for c in curves:
            xs, ys = _points(c.epoch, getattr(c, column))
            if not xs:
                continue
            ax.plot(
                xs,
                ys,
                color=colours[models.index(c.model)],
                linestyle=styles[seeds.index(c.seed) % 4],
                linewidth=1.3,
                label=f"{c.model} s{c.seed}" + (f" ({c.monitor})" if column == "valid_rmse" else ""),
            )
            drawn += ys
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if drawn:
            _clip_first_epochs(ax, drawn)
            ax.legend(fontsize=7, ncol=2 if len(ax.get_lines()) > 8 else 1)
        else:
            ax.text(0.5, 0.5, f"no {column} recorded", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return _png(fig)


def _clip_first_epochs(ax: Any, values: list[float]) -> None:
    """Keep the early-epoch spike from flattening the part of the curves that matters."""
    ordered = sorted(values)
    low, high = ordered[0], ordered[int(0.95 * (len(ordered) - 1))]
    if ordered[-1] > high and high > low:
        pad = 0.05 * (high - low)
        ax.set_ylim(low - pad, high + pad)
        ax.set_title("y axis clipped at the 95th percentile", fontsize=8, color="#555")


def _points(xs: list[float], ys: list[float | None]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)]
    return [x for x, _ in pairs], [y for _, y in pairs]


def _read_history(run: dict[str, Any], root: Path) -> tuple[Curve | None, str | None]:
    raw = run.get("history")
    label = f"{run['model']} {run['split_id']}"
    if not raw:
        return None, f"{label}: no history path in the metrics file"
    path = Path(raw) if Path(raw).is_absolute() else root / raw
    if not path.exists():
        return None, f"{label}: `{_rel(path, root)}` not found"
    try:
        frame = pl.read_csv(path, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        return None, f"{label}: `{_rel(path, root)}` could not be read ({type(exc).__name__})"
    if "epoch" not in frame.columns or frame.height == 0:
        return None, f"{label}: `{_rel(path, root)}` has no epoch rows"
    monitor_col = "monitor" if "monitor" in frame.columns else "valid_rmse"
    # the data term (comparable across models) before the whole objective (AutoRec's is a batch sum)
    loss_col = next((c for c in ("mse", "bpr", "bce", "loss", "train_loss") if c in frame.columns), "loss")
    col = {c: _floats(frame, c) for c in ("epoch", monitor_col, loss_col)}
    seed = run.get("seed")
    curve = Curve(
        run["model"],
        str(seed if seed is not None else run["split_id"]),
        [x if x is not None else math.nan for x in col["epoch"]],
        col[monitor_col],
        col[loss_col],
        str(run.get("monitor") or "valid_rmse"),
    )
    return curve, None


def _floats(frame: pl.DataFrame, column: str) -> list[float | None]:
    if column not in frame.columns:
        return [None] * frame.height
    return frame.get_column(column).cast(pl.Float64, strict=False).to_list()
