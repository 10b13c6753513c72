"""A model whose task is a config field (gf) is rebuilt for evaluation on the data it was trained on: a gf rating
run must not be evaluated on the binarised positives a ranking run would get (a regression: it was, and its
test RMSE came out as 1.21 against a validation RMSE of 0.886)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import yaml

from tasks.common.config import params_from_dict
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import evaluate_run
from tasks.training import RunId, load_trained, train_run


def test_gf_rating_run_is_evaluated_as_trained(prepared_root: Path) -> None:
    raw = yaml.safe_load((prepared_root / "params.yaml").read_text())
    raw["models"]["gf-rating"] = {"base": "gf", "task": "rating", "factors": 8, "lr": 0.01}
    params = params_from_dict(raw)
    layout = Layout(prepared_root)
    run = RunId("ml-100k", "gf-rating", "random-80-10-10-s0")
    record = train_run(layout, params, run, progress=lambda s: None)
    model, data = load_trained(layout, run, torch.device("cpu"), params)
    assert data.task == "rating" and model.task == "rating"
    assert not np.all(data.ctx.ratings == 1.0)  # real ratings, not positives
    metrics = evaluate_run(layout, params, run).metrics
    assert abs(metrics["rmse"] - record.best_valid["valid_rmse"]) < 0.15
