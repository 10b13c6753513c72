"""The dataset report's breakdown section: per protocol, each model's test error by item-popularity group (CFN Table
2) and by user-activity bucket (NCAE Table 4), mean over its seeds, as a table and a plot, plus the cold rows.

Read from the evaluate stage's ``artifacts/breakdowns/<dataset>/<model>/<split>.json`` (groups and rules are
documented in ``tasks/evaluation/breakdowns.py``); a run without that file is named, not silently dropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from tasks.common.io import read_json
from tasks.common.paths import Layout
from tasks.report.document import DASH, Doc
from tasks.report.figures import _png

# (record key, sub-key or None, label column, value column, title)
VIEWS: tuple[tuple[str, str | None, str, str, str], ...] = (
    ("rating_by_item_popularity", None, "group", "rmse", "test RMSE by item popularity (fifths of the items by "
     "training count, least popular first)"),
    ("rating_by_user_activity", None, "bucket", "rmse", "test RMSE by user activity (training ratings per user)"),
    ("ranking_by_user_activity", "full", "bucket", "hr@10", "full-ranking HR@10 by user activity"),
    ("ranking_by_user_activity", "sampled", "bucket", "hr@10", "sampled HR@10 by user activity"),
)


def _rows(record: dict[str, Any], key: str, sub: str | None) -> list[dict[str, Any]]:
    part = record.get(key)
    if sub is not None:
        part = part.get(sub) if isinstance(part, dict) else None
    return part if isinstance(part, list) else []


def collect_breakdowns(root: Path, dataset: str, runs: list[dict[str, Any]]
                       ) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:  # fmt: skip
    """model → its runs' breakdown records, and the runs that have none."""
    layout = Layout(root)
    found: dict[str, list[dict[str, Any]]] = {}
    missing: list[str] = []
    for run in runs:
        path = layout.breakdowns(dataset, run["model"], run["split_id"])
        if not path.exists():
            missing.append(f"{run['model']} {run['split_id']}")
            continue
        found.setdefault(run["model"], []).append(read_json(path))
    return found, missing


def mean_by_label(records: list[dict[str, Any]], key: str, sub: str | None, label: str, value: str
                  ) -> tuple[list[str], list[float | None], list[int]]:  # fmt: skip
    """Group labels (in the records' order), the mean of ``value`` over the seeds that have one, and the mean
    number of test rows per group."""
    labels: list[str] = []
    values: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for record in records:
        for row in _rows(record, key, sub):
            name = str(row.get(label))
            if name not in values:
                labels.append(name)
                values[name], counts[name] = [], []
            if row.get(value) is not None:
                values[name].append(float(row[value]))
            counts[name].append(int(row.get("n") or 0))
    means = [sum(values[n]) / len(values[n]) if values[n] else None for n in labels]
    return labels, means, [round(sum(counts[n]) / len(counts[n])) for n in labels]


def _png_lines(title: str, labels: list[str], series: dict[str, list[float | None]], ylabel: str) -> bytes:
    fig = Figure(figsize=(7.5, 3.4))
    ax = fig.add_subplot()
    x = list(range(len(labels)))
    for model, ys in series.items():
        pts = [(i, y) for i, y in zip(x, ys, strict=True) if y is not None and math.isfinite(y)]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=model)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def breakdown_section(doc: Doc, root: Path, dataset: str, protocol: str, runs: list[dict[str, Any]],
                      image_prefix: str) -> None:  # fmt: skip
    """Tables + plots of every view some run of this protocol has, and the cold test rows."""
    found, missing = collect_breakdowns(root, dataset, runs)
    if not found:
        doc.note(f"no breakdowns for {protocol}: `artifacts/breakdowns/{dataset}/` has no file of its runs "
                 "(rerun evaluate)")
        return
    models = sorted(found)
    for key, sub, label, value, title in VIEWS:
        per_model = {m: mean_by_label(found[m], key, sub, label, value) for m in models}
        per_model = {m: v for m, v in per_model.items() if v[0]}
        if not per_model:
            continue
        labels = max((v[0] for v in per_model.values()), key=len)
        counts = next(v[2] for v in per_model.values() if v[0] == labels)
        doc.para(f"{protocol}: {title}, mean over seeds (n: the group's test rows, mean over seeds).")
        header = ["model", *(f"{lab} (n {n:,})" for lab, n in zip(labels, counts, strict=True))]
        rows = []
        for m, (labs, means, _) in per_model.items():
            by = dict(zip(labs, means, strict=True))
            rows.append([m, *(DASH if by.get(lab) is None else f"{by[lab]:.4f}" for lab in labels)])
        doc.table(header, rows)
        series = {m: [dict(zip(v[0], v[1], strict=True)).get(lab) for lab in labels] for m, v in per_model.items()}
        name = f"{image_prefix}_{key}{'_' + sub if sub else ''}.png"
        short = title.split(" (")[0]
        doc.image(name, _png_lines(f"{dataset} {protocol}: {short}", labels, series, value), title)
    cold = next((r.get("cold") for records in found.values() for r in records if isinstance(r.get("cold"), dict)),
                None)  # fmt: skip
    if cold:
        doc.para("Cold test rows (no training row for the user / the item), first run: "
                 + ", ".join(f"{k.replace('_', ' ')} {v:,}" if isinstance(v, int) else f"{k} {v}"
                             for k, v in cold.items()) + ".")
    if missing:
        doc.note(f"runs without a breakdowns file: {', '.join(missing)}")
