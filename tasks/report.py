"""Reports: the per-run metrics summarised over seeds, set against the papers' figures.

``build_report`` writes ``reports/<dataset>/report.md`` (figures referenced as ``figures/*.png``) and a
self-contained ``report.html`` (the same content, PNGs embedded as base64 data URIs, inline CSS, no scripts
and no external links), from the same document blocks so the two never disagree. ``write_summary_csv``
writes the long table of every (dataset, protocol, model, metric) to ``reports/summary.csv``.

Every input is optional: a missing or unreadable file becomes a note in the report, never a crash. Outputs are
written atomically and hold no timestamp, so the same inputs give byte-identical files.
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tasks.config import PARAMS_FILE, load_params, parse_split_id
from tasks.errors import ConfigError
from tasks.io import atomic_dir, atomic_path, read_json, write_text
from tasks.paths import Layout
from tasks.published import Published, lookup, published_for

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
DASH = "—"


# --- inputs


def collect_runs(root: Path, dataset: str) -> list[dict]:
    """Every metrics JSON of ``dataset`` (sorted by model, then split id); unreadable files are skipped."""
    runs, _ = _collect(Path(root), dataset)
    return runs


def _metrics_dir(layout: Layout, dataset: str) -> Path:
    return layout.metrics(dataset, "_", "_").parent.parent


def _collect(root: Path, dataset: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(runs, problems): problems name the metrics files that could not be read."""
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    configured = _configured_runs(root)
    for path in sorted(_metrics_dir(Layout(root), dataset).glob("*/*.json")):
        if configured is not None and (path.parent.name, path.stem) not in configured:
            continue  # left over from a model or split no longer in params.yaml
        try:
            raw = read_json(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{_rel(path, root)}: {exc}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{_rel(path, root)}: expected a JSON object, found {type(raw).__name__}")
            continue
        run = _normalise_run(raw, dataset, path)
        train_json = Layout(root).run(dataset, run["model"], run["split_id"]) / "train.json"
        if train_json.exists():  # the run's training facts live with the run, not in the metrics file
            try:
                record = read_json(train_json)
            except (OSError, ValueError) as exc:
                problems.append(f"{_rel(train_json, root)}: {exc}")
            else:
                if isinstance(record, dict):
                    run = {**{k: v for k, v in record.items() if k not in ("metrics",)}, **run}
        runs.append(run)
    return runs, problems


def _configured_runs(root: Path) -> set[tuple[str, str]] | None:
    """(model, split_id) pairs of params.yaml's train.models × split.instances; None without params."""
    if not (root / PARAMS_FILE).exists():
        return None
    params = load_params(root / PARAMS_FILE)
    return {(m, s) for m in params.train.models for s in params.split.instances}


def _normalise_run(raw: dict[str, Any], dataset: str, path: Path) -> dict[str, Any]:
    """Fill the identifying fields a metrics file may lack from its location."""
    run = dict(raw)
    run["dataset"] = str(run.get("dataset") or dataset)
    run["model"] = str(run.get("model") or path.parent.name)
    run["split_id"] = str(run.get("split_id") or path.stem)
    if not run.get("protocol") or run.get("seed") is None:
        try:
            protocol, seed = parse_split_id(run["split_id"])
        except ConfigError:
            protocol, seed = run["split_id"], None
        run.setdefault("seed", seed)
        run["protocol"] = str(run.get("protocol") or protocol)
    if not isinstance(run.get("metrics"), dict):
        run["metrics"] = {}
    return run


def _load_json(path: Path, root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None) or (None, a sentence saying why there is no data)."""
    if not path.exists():
        return None, f"`{_rel(path, root)}` not found"
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        return None, f"`{_rel(path, root)}` could not be read ({exc})"
    if not isinstance(data, dict):
        return None, f"`{_rel(path, root)}` is not a JSON object"
    return data, None


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()


# --- summary


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


# --- document model


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Link:
    text: str
    href: str


Inline = str | Code | Link


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Bullets:
    items: tuple[tuple[Inline, ...], ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    name: str
    alt: str


Block = Heading | Paragraph | Bullets | Table | Image


@dataclass
class Doc:
    """Blocks plus the PNGs they show (file name under figures/ → bytes)."""

    blocks: list[Block] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(Heading(level, text))

    def para(self, *parts: Inline) -> None:
        self.blocks.append(Paragraph(tuple(parts)))

    def note(self, text: str) -> None:
        self.para(*_code_spans(f"Note: {text}."))

    def bullets(self, items: Iterable[str | tuple[Inline, ...]]) -> None:
        self.blocks.append(Bullets(tuple(_code_spans(i) if isinstance(i, str) else i for i in items)))

    def table(self, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
        self.blocks.append(Table(tuple(header), tuple(tuple(r) for r in rows)))

    def image(self, name: str, png: bytes, alt: str) -> None:
        self.figures[name] = png
        self.blocks.append(Image(name, alt))


def _code_spans(text: str) -> tuple[Inline, ...]:
    """Split ``a `b` c`` into text and Code parts."""
    pieces = text.split("`")
    return tuple(Code(p) if i % 2 else p for i, p in enumerate(pieces) if p)


# --- rendering


def render_markdown(doc: Doc) -> str:
    out: list[str] = []
    for block in doc.blocks:
        out.append(_md_block(block))
    return "\n\n".join(out).rstrip() + "\n"


def _md_inline(parts: Sequence[Inline]) -> str:
    text = []
    for p in parts:
        if isinstance(p, Code):
            text.append(f"`{p.text}`")
        elif isinstance(p, Link):
            text.append(f"[{p.text}]({p.href})")
        else:
            text.append(p)
    return "".join(text)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Paragraph):
        return _md_inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join(f"- {_md_inline(item)}" for item in block.items)
    if isinstance(block, Table):
        lines = [
            "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
            "|" + "|".join("---" for _ in block.header) + "|",
        ]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    return f"![{block.alt}](figures/{block.name})"


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { border-bottom: 1px solid #bbb; padding-bottom: .15em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
tr:nth-child(even) td { background: #fafafa; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
"""


def render_html(doc: Doc, title: str) -> str:
    body = "\n".join(_html_block(b, doc.figures) for b in doc.blocks)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def _html_inline(parts: Sequence[Inline]) -> str:
    text = []
    for p in parts:
        if isinstance(p, Code):
            text.append(f"<code>{html.escape(p.text)}</code>")
        elif isinstance(p, Link):
            text.append(f'<a href="{html.escape(p.href, quote=True)}">{html.escape(p.text)}</a>')
        else:
            text.append(html.escape(p))
    return "".join(text)


def _html_block(block: Block, figures: dict[str, bytes]) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{_html_inline(block.parts)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{_html_inline(item)}</li>" for item in block.items)
        return f"<ul>{items}</ul>"
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.header)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>{rows}</tbody>\n</table>"
    data = base64.b64encode(figures[block.name]).decode("ascii")
    alt = html.escape(block.alt, quote=True)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(block.alt)}</figcaption></figure>"
    )


# --- formatting


def _fmt(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return DASH
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def _decimals(value: float) -> int:
    """Decimal places a published figure was printed with: at least 3 (every paper prints 0.940, not 0.94)."""
    text = repr(float(value))
    if "e" in text or "." not in text:
        return 4
    return min(max(len(text.split(".")[1]), 3), 6)


def _fmt_published(p: Published | None) -> str:
    return DASH if p is None else f"{p.value:.{_decimals(p.value)}f}"


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


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


# --- figures


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
        (axes[1], "train_loss", "training objective"),
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
    loss_col = "loss" if "loss" in frame.columns else "train_loss"
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


# --- sections


def _title_section(doc: Doc, dataset: str) -> None:
    doc.heading(1, f"hybridrec report — {dataset}")
    doc.para(
        "Generated by ",
        Code("tasks/report.py"),
        " from the pipeline's artifacts (ingested statistics, "
        "validation outcome, side-information dimensions, per-run metrics and training histories). "
        "Results are mean ± sample standard deviation (ddof = 1) over the seeds of each split protocol; "
        "published figures are the papers' own, recorded in ",
        Code("tasks/published.py"),
        ". The report carries no timestamp: the same inputs give identical files.",
    )


def _stats_section(doc: Doc, root: Path, layout: Layout, dataset: str) -> None:
    doc.heading(2, "Dataset statistics")
    stats, problem = _load_json(layout.ingested(dataset) / "stats.json", root)
    if stats is None:
        doc.note(f"no dataset statistics: {problem} (run the ingest stage)")
        return
    rows = [
        ("users", _fmt(stats.get("n_users"))),
        ("items", _fmt(stats.get("n_items"))),
        ("ratings", _fmt(stats.get("n_ratings"))),
        ("density", _density(stats.get("density"))),
        ("source", _fmt(stats.get("source"))),
    ]
    doc.table(["quantity", "value"], rows)
    _distribution_table(doc, stats)
    hist = stats.get("rating_histogram")
    if isinstance(hist, dict) and hist:
        _histogram(doc, hist, dataset)
    else:
        doc.note("`stats.json` has no rating histogram")
    _implicit_rows(doc, stats)
    notes = stats.get("notes")
    if isinstance(notes, dict) and notes:
        doc.para("Ingest notes:")
        doc.bullets((f"{k}: ", Code(_compact(v))) for k, v in sorted(notes.items()))


def _implicit_rows(doc: Doc, stats: dict[str, Any]) -> None:
    """Interaction strengths, the dataset's published split and negatives, missing timestamps (when present)."""
    rows: list[tuple[str, str]] = []
    weight = stats.get("weight")
    if isinstance(weight, dict):
        rows.append(("interaction weight (e.g. play count)", ", ".join(f"{k} {_fmt(v, 1)}" for k, v in weight.items())))
    split = stats.get("predefined_split")
    if isinstance(split, dict):
        rows.append(("published split", ", ".join(f"{k} {_fmt(v)}" for k, v in sorted(split.items()))))
    neg = stats.get("listed_negatives")
    if isinstance(neg, dict):
        rows.append(
            (
                "published negatives",
                f"{_fmt(neg.get('rows'))} for {_fmt(neg.get('users'))} test users "
                f"({_fmt(neg.get('per_user_min'))}–{_fmt(neg.get('per_user_max'))} each)",
            )
        )
    if _is_number(stats.get("ratings_without_timestamp")):
        rows.append(("interactions without a timestamp", _fmt(stats["ratings_without_timestamp"])))
    if rows:
        doc.table(["", "value"], rows)


SPLIT_INFO_KEYS = (
    ("ordering", "leave-one-out ordering"),
    ("validation", "validation part"),
    ("negatives", "negatives"),
    ("listed_negatives_equal_to_test_positive", "listed negatives equal to the test positive"),
    ("listed_negatives_rated_by_user", "listed negatives the user rated"),
    ("listed_negatives_repeated", "listed negatives repeated"),
    ("replaced_negatives", "negatives replaced"),
    ("negatives_rated_by_their_user", "negatives the user rated (in the split)"),
)


def _splits_section(doc: Doc, root: Path, layout: Layout, dataset: str) -> None:
    """Each split instance: part sizes, cold test rows, and how it was made (ordering, negatives policy)."""
    base = layout.splits(dataset)
    files = sorted(base.glob("*/split.json")) if base.is_dir() else []
    if not files:
        return
    doc.heading(2, "Splits")
    rows, details = [], []
    for path in files:
        info, problem = _load_json(path, root)
        if info is None:
            doc.note(f"split {path.parent.name}: {problem}")
            continue
        counts = info.get("counts") if isinstance(info.get("counts"), dict) else {}
        rows.append(
            (
                path.parent.name,
                *(_fmt(counts.get(k)) for k in ("train", "valid", "test")),
                _fmt(info.get("test_rows_with_cold_user")),
                _fmt(info.get("test_rows_with_cold_item")),
            )
        )
        for key, label in SPLIT_INFO_KEYS:
            if key in info:
                details.append(f"`{path.parent.name}` {label}: {_compact(info[key])}")
    doc.table(["split", "train", "valid", "test", "test rows, cold user", "test rows, cold item"], rows)
    if details:
        doc.bullets(details)


def _density(value: Any) -> str:
    return f"{value:.6f} ({value:.2%})" if _is_number(value) else _fmt(value)


def _distribution_table(doc: Doc, stats: dict[str, Any]) -> None:
    quantiles = ("min", "p25", "median", "p75", "max", "mean")
    rows = []
    for key, label in (("ratings_per_user", "ratings per user"), ("ratings_per_item", "ratings per item")):
        dist = stats.get(key)
        if isinstance(dist, dict):
            rows.append(
                (
                    label,
                    *(_fmt(dist.get(q), 1) if isinstance(dist.get(q), float) else _fmt(dist.get(q)) for q in quantiles),
                )
            )
    if rows:
        doc.table(["", *quantiles], rows)


def _histogram(doc: Doc, hist: dict[str, Any], dataset: str) -> None:
    try:
        counts = {k: int(v) for k, v in hist.items()}
        order = sorted(counts, key=float)
    except (TypeError, ValueError):
        doc.note("the rating histogram in `stats.json` is malformed")
        return
    total = sum(counts.values()) or 1
    doc.table(["rating", "count", "share"], [(k, _fmt(counts[k]), f"{counts[k] / total:.1%}") for k in order])
    doc.image("rating_histogram.png", rating_histogram_png(counts, dataset), f"{dataset}: rating histogram")


def _compact(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_section(doc: Doc, root: Path, layout: Layout, dataset: str) -> None:
    doc.heading(2, "Data validation")
    outcome, problem = _load_json(layout.validation(dataset) / "outcome.json", root)
    if outcome is None:
        doc.note(f"no validation outcome: {problem} (run the validate stage)")
        return
    results = [o for o in outcome.get("outcomes") or [] if isinstance(o, dict)]
    failed = [o for o in results if not o.get("success")]
    status = "PASSED" if outcome.get("success") else "FAILED"
    doc.para(
        f"Overall: {status} — {len(results) - len(failed)} of {len(results)} expectations passed, {len(failed)} failed."
    )
    per_table: dict[str, list[int]] = {}
    for o in results:
        counts = per_table.setdefault(str(o.get("table", DASH)), [0, 0])
        counts[0 if o.get("success") else 1] += 1
    if per_table:
        doc.table(["table", "passed", "failed"], [(t, str(p), str(f)) for t, (p, f) in sorted(per_table.items())])
    if failed:
        doc.para("Failed expectations:")
        doc.table(
            ["table", "expectation", "column", "details"],
            [
                (
                    str(o.get("table", DASH)),
                    str(o.get("expectation", DASH)),
                    str(o.get("column") or DASH),
                    _compact(o.get("details")),
                )
                for o in failed
            ],
        )
    _data_docs_link(doc, root, layout, dataset, outcome.get("data_docs_index"))


def _data_docs_link(doc: Doc, root: Path, layout: Layout, dataset: str, index: Any) -> None:
    if not index:
        doc.para("No Great Expectations Data Docs were built for this run.")
        return
    target = Path(index) if Path(index).is_absolute() else root / index
    href = Path(os.path.relpath(target, layout.report_dir(dataset))).as_posix()
    missing = "" if target.exists() else " (not found when this report was built)"
    doc.para(
        "Great Expectations Data Docs: ",
        Link(href, href),
        f"{missing}. They load their styles from a "
        "CDN and render unstyled offline; the counts above are complete without them.",
    )


def _features_section(doc: Doc, root: Path, layout: Layout, dataset: str) -> None:
    doc.heading(2, "Side information")
    dims, problem = _load_json(layout.features(dataset) / "dims.json", root)
    if dims is None:
        doc.note(f"no side-information dimensions: {problem} (run the features stage)")
        return
    paper = dims.get("paper") if isinstance(dims.get("paper"), dict) else {}
    fields = {k: v for k, v in dims.items() if k.endswith("_fields") and isinstance(v, dict)}
    ours = {k: v for k, v in dims.items() if k != "paper" and k not in fields}
    order = ("user_bow", "item_bow", "user_svd", "item_svd")
    names = sorted(set(ours) | set(paper), key=lambda k: (order.index(k) if k in order else len(order), k))
    if not names:
        doc.note("`dims.json` lists no side-information sources")
        return
    doc.table(["source", "ours", "paper", "match"], [_dims_row(n, ours.get(n), paper.get(n)) for n in names])
    if fields:
        doc.para("BoW columns per side field (a `<side>_<field>_svd` row above is the SVD of that `bag` relation):")
        doc.bullets(
            f"{side.removesuffix('_fields')}: " + ", ".join(f"{name} {_fmt(n)}" for name, n in sorted(per.items()))
            for side, per in sorted(fields.items())
        )
    if not paper:
        doc.para("The papers give no dimensions for this dataset.")


def _dims_row(name: str, ours: Any, paper: Any) -> tuple[str, str, str, str]:
    if _is_number(ours) and _is_number(paper):
        match = "yes" if ours == paper else f"no ({ours - paper:+,})"
    else:
        match = DASH
    return name, _fmt(ours), _fmt(paper), match


def _results_section(doc: Doc, root: Path, runs: list[dict[str, Any]], summary: pl.DataFrame) -> None:
    doc.heading(2, "Results")
    if not runs:
        doc.note("no runs: no metrics files under `artifacts/metrics/` for this dataset (run train and evaluate)")
        return
    doc.para(
        "Cells are mean ± std over seeds (the mean alone for a single run; n shown when a metric has fewer "
        "values than the model has runs). "
        "Δ = ours − published. For rmse and mae lower is better, for the other metrics higher is better; "
        "✓ marks a model that meets or beats the published figure at the precision it was printed with.",
    )
    for protocol in sorted({r["protocol"] for r in runs}):
        prot_runs = [r for r in runs if r["protocol"] == protocol]
        _protocol_section(doc, root, protocol, prot_runs, summary.filter(pl.col("protocol") == protocol))


def _protocol_section(doc: Doc, root: Path, protocol: str, runs: list[dict[str, Any]], summary: pl.DataFrame) -> None:
    doc.heading(3, f"Protocol {protocol}")
    models = sorted({r["model"] for r in runs})
    seeds = sorted({str(r.get("seed")) for r in runs if r.get("seed") is not None})
    doc.para(
        f"{_plural(len(runs), 'run')}: {_plural(len(models), 'model')} ({', '.join(models)}); "
        f"{_plural(len(seeds), 'seed')} ({', '.join(seeds) or DASH})."
    )
    _results_table(doc, runs, summary)
    _comparison_table(doc, summary)
    _timing_table(doc, runs)
    _curves(doc, root, protocol, runs)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _primary_metric(summary: pl.DataFrame) -> str | None:
    with_pub = sorted(set(summary.filter(pl.col("published").is_not_null())["metric"]), key=metric_sort_key)
    if not with_pub:
        return None
    return "rmse" if "rmse" in with_pub else with_pub[0]


def _results_table(doc: Doc, runs: list[dict[str, Any]], summary: pl.DataFrame) -> None:
    if summary.is_empty():
        doc.note("the metrics files of this protocol hold no numeric metrics")
        return
    metrics = sorted(set(summary["metric"]), key=metric_sort_key)
    primary = _primary_metric(summary)
    header = ["model", "runs", *metrics]
    if primary:
        header += [f"published {primary}", "source", "Δ", "vs published"]
    cells = {(r["model"], r["metric"]): r for r in summary.iter_rows(named=True)}
    rows = []
    for model in sorted({r["model"] for r in runs}):
        n = sum(1 for r in runs if r["model"] == model)
        row = [model, str(n), *(_mean_std(cells.get((model, m)), n) for m in metrics)]
        if primary:
            row += _published_cells(cells.get((model, primary)), primary)
        rows.append(row)
    doc.table(header, rows)


def _mean_std(cell: dict[str, Any] | None, n_model_runs: int) -> str:
    if cell is None:
        return DASH
    text = f"{cell['mean']:.4f}" if cell["n_runs"] == 1 else f"{cell['mean']:.4f} ± {cell['std']:.4f}"
    return text if cell["n_runs"] == n_model_runs else f"{text} (n={cell['n_runs']})"


def _published_cells(cell: dict[str, Any] | None, metric: str) -> list[str]:
    if cell is None or cell["published"] is None:
        return [DASH, DASH, DASH, DASH]
    pub = cell["published"]
    return [
        f"{pub:.{_decimals(pub)}f}",
        cell["published_source"],
        f"{cell['mean'] - pub:+.4f}",
        verdict(metric, cell["mean"], pub),
    ]


def _comparison_table(doc: Doc, summary: pl.DataFrame) -> None:
    matched = summary.filter(pl.col("published").is_not_null()).rows(named=True)
    if not matched:
        doc.para("No published figure matches a model and metric of this protocol.")
        return
    matched.sort(key=lambda r: (r["model"], metric_sort_key(r["metric"])))
    doc.para("Every metric with a published figure:")
    doc.table(
        ["model", "metric", "ours", "published", "source", "Δ", "vs published"],
        [
            (r["model"], r["metric"], f"{r['mean']:.4f} ± {r['std']:.4f}", *_published_cells(r, r["metric"]))
            for r in matched
        ],
    )


TIMING_FIELDS = (
    ("epochs", "epochs", 1),
    ("best_epoch", "best epoch", 1),
    ("seconds_per_epoch", "s/epoch", 3),
    ("train_seconds", "train s", 1),
    ("n_params", "params", 0),
)


def _timing_table(doc: Doc, runs: list[dict[str, Any]]) -> None:
    rows = []
    for model in sorted({r["model"] for r in runs}):
        mine = [r for r in runs if r["model"] == model]
        cells = [_mean_field(mine, key, digits) for key, _, digits in TIMING_FIELDS]
        devices = sorted({str(r["device"]) for r in mine if r.get("device")})
        rows.append((model, str(len(mine)), *cells, ", ".join(devices) or DASH))
    doc.para("Training cost (mean over seeds):")
    doc.table(["model", "runs", *(label for _, label, _ in TIMING_FIELDS), "device"], rows)


def _mean_field(runs: list[dict[str, Any]], key: str, digits: int) -> str:
    values = [float(r[key]) for r in runs if _is_number(r.get(key))]
    if not values:
        return DASH
    mean = sum(values) / len(values)
    return f"{round(mean):,}" if digits == 0 else f"{mean:,.{digits}f}"


def _curves(doc: Doc, root: Path, protocol: str, runs: list[dict[str, Any]]) -> None:
    curves: list[Curve] = []
    problems: list[str] = []
    for run in runs:
        curve, problem = _read_history(run, root)
        if curve is not None:
            curves.append(curve)
        if problem:
            problems.append(problem)
    if curves:
        name = f"learning_curves_{_safe_name(protocol)}.png"
        title = f"{protocol}: learning curves (one line per model × seed)"
        doc.image(name, learning_curves_png(curves, title), title)
    else:
        doc.note(f"no learning curves for {protocol}: no training history could be read")
    if problems:
        doc.para("Training histories missing or unreadable:")
        doc.bullets(problems)


def _unmatched_published_section(doc: Doc, dataset: str, summary: pl.DataFrame) -> None:
    doc.heading(2, "Published figures without a matching run")
    figures = published_for(dataset)
    if not figures:
        doc.para(f"No published figures are recorded for {dataset} in ", Code("tasks/published.py"), ".")
        return
    measured = set(summary.select(KEYS).iter_rows())
    unmatched = [p for p in figures if (p.dataset, p.protocol, p.model, p.metric) not in measured]
    if not unmatched:
        doc.para("Every published figure for this dataset has a matching run.")
        return
    doc.para(
        "Figures the papers publish for this dataset that no run here measures under the same protocol, "
        "model and metric name:"
    )
    unmatched.sort(key=lambda p: (p.protocol, metric_sort_key(p.metric), p.model))
    if any(p.metric == "precision" for p in unmatched):
        doc.para(
            Code("precision"),
            " is NRP Table 2's top-p% precision: the paper does not state p (its ml1m column is "
            "within 0.5 points of Table 3's top-25% column, far from its top-10% one), so it is not "
            "compared with a measured ",
            Code("precision@10%"),
            " or ",
            Code("precision@25%"),
            ".",
        )
    doc.table(
        ["protocol", "model", "metric", "published", "source"],
        [(p.protocol, p.model, p.metric, _fmt_published(p), p.source) for p in unmatched],
    )


def _problems_section(doc: Doc, problems: list[str]) -> None:
    if problems:
        doc.heading(2, "Unreadable metrics files")
        doc.para("These metrics files were skipped:")
        doc.bullets(problems)


# --- build


def build_report(root: Path, dataset: str) -> dict[str, Path]:
    """Write reports/<dataset>/report.md, report.html and figures/*.png, keyed by path relative to the
    report directory (``report.md``, ``report.html``, ``figures/<name>.png``)."""
    root = Path(root)
    layout = Layout(root)
    runs, problems = _collect(root, dataset)
    summary = summarize(runs)
    doc = Doc()
    _title_section(doc, dataset)
    _stats_section(doc, root, layout, dataset)
    _validation_section(doc, root, layout, dataset)
    _features_section(doc, root, layout, dataset)
    _splits_section(doc, root, layout, dataset)
    _results_section(doc, root, runs, summary)
    _unmatched_published_section(doc, dataset, summary)
    _problems_section(doc, problems)
    return _write(doc, layout.report_dir(dataset), f"hybridrec report — {dataset}")


def _write(doc: Doc, out_dir: Path, title: str) -> dict[str, Path]:
    written: dict[str, Path] = {}
    with atomic_dir(out_dir / "figures") as tmp:
        for name, png in sorted(doc.figures.items()):
            (tmp / name).write_bytes(png)
    for name in sorted(doc.figures):
        written[f"figures/{name}"] = out_dir / "figures" / name
    written["report.md"] = write_text(out_dir / "report.md", render_markdown(doc))
    written["report.html"] = write_text(out_dir / "report.html", render_html(doc, title))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the per-dataset reports and reports/summary.csv.")
    parser.add_argument("--root", type=Path, default=Path("."), help="project root (default: .)")
    parser.add_argument(
        "--dataset",
        action="append",
        dest="datasets",
        help="dataset to report (repeatable; default: report.datasets in params.yaml)",
    )
    args = parser.parse_args(argv)
    datasets = args.datasets or list(load_params(args.root / PARAMS_FILE).report_datasets)
    for dataset in datasets:
        for path in build_report(args.root, dataset).values():
            print(path)
    print(write_summary_csv(args.root, datasets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
