"""Nothing after ingest reads the raw data folder: with ``data/<dataset>`` gone, validate, features, split,
train and evaluate still run from the ingest manifest and the canonical tables."""

from __future__ import annotations

import shutil
from pathlib import Path

from flows.features import features_task
from flows.validate import validate_task
from tasks.common.config import load_params
from tasks.common.manifest import read_manifest
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import evaluate_run
from tasks.splits.stage import make_splits
from tasks.training import RunId, train_run


def test_stages_after_ingest_run_without_the_raw_folder(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    manifest = read_manifest(layout.ingested("ml-100k"))
    assert manifest.rating_scale == (1.0, 5.0) and not manifest.implicit and manifest.has_timestamps
    assert "genres:multilabel" in manifest.item_side
    shutil.rmtree(layout.raw("ml-100k"))
    assert validate_task.fn(str(prepared_root), "ml-100k")["success"]
    features_task.fn(str(prepared_root), "ml-100k")
    make_splits(layout, params, "ml-100k")
    run = RunId("ml-100k", "biased-mf", "random-80-10-10-s0")
    train_run(layout, params, run, progress=lambda s: None)
    assert "rmse" in evaluate_run(layout, params, run).metrics
