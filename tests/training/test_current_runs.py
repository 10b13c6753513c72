"""What the runs@<dataset> stage keeps and what it redoes: a run (or evaluation) whose fingerprint shows the same
config, code and data is current; a changed hyperparameter, split file or evaluate parameter is not; runs no
longer in the grid are removed (``--prune``)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl

from tasks.common.config import load_params
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import current_evaluation, evaluate_run
from tasks.training import RunId, train_run
from tasks.training.stale import remove_stale_runs, runs_on_disk

SPLIT = "random-80-10-10-s0"


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_current_runs_and_evaluations_are_kept_and_changed_ones_redone(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", "biased-mf", SPLIT)
    ckpt = layout.run("ml-100k", "biased-mf", SPLIT) / "model.pt"
    quiet = {"progress": lambda s: None}

    train_run(layout, params, run, skip_current=True, **quiet)
    assert layout.curve("ml-100k", "biased-mf", SPLIT).read_text().startswith("epoch")  # what `dvc plots` draws
    first = _mtime(ckpt)
    assert current_evaluation(layout, params, run) is None  # never evaluated
    record = evaluate_run(layout, params, run)
    assert current_evaluation(layout, params, run) == record

    # the same inputs: neither is redone
    train_run(layout, params, run, skip_current=True, **quiet)
    assert _mtime(ckpt) == first and current_evaluation(layout, params, run) == record

    # an evaluate parameter: the evaluation is stale, the run is not
    other_eval = dataclasses.replace(params, evaluate=dataclasses.replace(params.evaluate, full_k=(5,)))
    assert current_evaluation(layout, other_eval, run) is None

    # a hyperparameter of the model: retrained, and its old evaluation is stale
    models = {**params.models, "biased-mf": {**params.models["biased-mf"], "lr": 0.02}}
    changed = dataclasses.replace(params, models=models)
    train_run(layout, changed, run, skip_current=True, **quiet)
    assert _mtime(ckpt) != first and current_evaluation(layout, changed, run) is None
    second = _mtime(ckpt)

    # a split file that changed under the run (same row count and sum would fool a cheaper check): retrained
    valid = layout.split("ml-100k", SPLIT) / "valid.parquet"
    frame = pl.read_parquet(valid)
    frame.reverse().write_parquet(valid)
    train_run(layout, changed, run, skip_current=True, **quiet)
    assert _mtime(ckpt) != second


def test_runs_no_longer_in_the_grid_are_removed(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    quiet = {"progress": lambda s: None}
    for model in ("biased-mf", "global-mean"):
        run = RunId("ml-100k", model, SPLIT)
        train_run(layout, params, run, **quiet)
        evaluate_run(layout, params, run)
    assert runs_on_disk(layout, "ml-100k") == {("biased-mf", SPLIT), ("global-mean", SPLIT)}

    assert remove_stale_runs(layout, "ml-100k", [("biased-mf", SPLIT)]) == [("global-mean", SPLIT)]
    assert runs_on_disk(layout, "ml-100k") == {("biased-mf", SPLIT)}
    for path in (layout.run("ml-100k", "global-mean", SPLIT).parent, layout.curve("ml-100k", "global-mean", SPLIT),
                 layout.metrics("ml-100k", "global-mean", SPLIT).parent,
                 layout.per_user("ml-100k", "global-mean", SPLIT), layout.breakdowns("ml-100k", "global-mean", SPLIT)):
        assert not path.exists(), path
    assert (layout.run("ml-100k", "biased-mf", SPLIT) / "model.pt").exists()
