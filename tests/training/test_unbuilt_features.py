"""A model that reads side information refuses to train when the features stage has not run for a dataset that
declares side fields (it used to train silently without them); a model that reads none still trains."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from models.common.registry import resolve_model
from tasks.common.config import load_params
from tasks.common.errors import HybridrecError
from tasks.common.paths import Layout
from tasks.training import build_from_spec, build_run_data
from tests.conftest import SMALL_MODELS


def _build(root: Path, model: str):  # type: ignore[no-untyped-def]
    params = load_params(root / "params.yaml")
    spec = resolve_model(model, {**params.models, model: {**params.models.get(model, {}), **SMALL_MODELS[model]}})
    data = build_run_data(Layout(root), "ml-100k", "random-80-10-10-s0", torch.device("cpu"), spec.task)
    return build_from_spec(spec, spec.raw, data.ctx)


def test_a_side_model_without_features_names_the_stage_to_run(prepared_root: Path) -> None:
    assert _build(prepared_root, "nrp-direct") is not None  # features built: fine
    shutil.rmtree(Layout(prepared_root).features("ml-100k"))
    want = r"side information is not built.*dims\.json.*flows\.features --dataset ml-100k"
    with pytest.raises(HybridrecError, match=want):
        _build(prepared_root, "nrp-direct")
    assert _build(prepared_root, "biased-mf") is not None  # reads no side information: unaffected
