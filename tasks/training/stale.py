"""Runs on disk that a dataset's grid no longer has (a model or split removed from params.yaml).

The DVC stage of a dataset's grid keeps its outputs between runs (``persist``) so that current runs are not
trained again; what the grid dropped would otherwise stay in its outputs (and in ``dvc.lock``) for ever. These
functions find and remove them: the run folder, its history curve, metrics, evaluation record, per-user values
and breakdowns.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from tasks.common.paths import Layout


def _files_of(layout: Layout, dataset: str, model: str, split_id: str) -> list[Path]:
    return [
        layout.run(dataset, model, split_id),
        layout.curve(dataset, model, split_id),
        layout.metrics(dataset, model, split_id),
        layout.evaluation(dataset, model, split_id),
        layout.per_user(dataset, model, split_id),
        layout.breakdowns(dataset, model, split_id),
    ]


def runs_on_disk(layout: Layout, dataset: str) -> set[tuple[str, str]]:
    """(model, split_id) of every run folder and every metrics file of ``dataset``."""
    found = set()
    runs = layout.run(dataset, "_", "_").parent.parent
    if runs.is_dir():
        found |= {(p.parent.name, p.name) for p in runs.glob("*/*") if p.is_dir()}
    metrics = layout.metrics(dataset, "_", "_").parent.parent
    if metrics.is_dir():
        found |= {(p.parent.name, p.stem) for p in metrics.glob("*/*.json")}
    return found


def remove_stale_runs(layout: Layout, dataset: str, keep: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Delete every run of ``dataset`` not in ``keep`` (and the model folders that end up empty); returns them."""
    stale = sorted(runs_on_disk(layout, dataset) - set(keep))
    for model, split_id in stale:
        for path in _files_of(layout, dataset, model, split_id):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
            if path.parent.is_dir() and not any(path.parent.iterdir()):
                path.parent.rmdir()
    return stale
