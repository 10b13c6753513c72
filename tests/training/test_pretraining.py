"""Run-to-run pre-training (NeuMF from GMF + MLP, NCF §3.4.1): the fused model starts from the weights of two
trained runs of the same dataset and split; a missing source, one trained on another split, or one whose modules
do not match the branch is refused naming ``models.<name>.pretrain``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from tasks.common.config import params_from_dict
from tasks.common.errors import ConfigError
from tasks.common.io import read_json, write_json
from tasks.common.paths import Layout
from tasks.training import RunId, train_run
from tasks.training.data import build_from_spec, build_run_data
from tasks.training.run import load_pretraining

REPO = Path(__file__).resolve().parents[2]
SOURCES = {
    "src-gmf": {"base": "gf", "preset": "gmf", "loss": "bce", "factors": 8, "lr": 0.01},
    "src-mlp": {"base": "gf", "preset": "mlp", "loss": "bce", "factors": 8, "predictor": [16, 8], "lr": 0.01},
}
NEUMF = {"base": "neumf", "gmf_factors": 8, "mlp_factors": 8, "predictor": [16, 8], "pretrain": ["src-gmf", "src-mlp"]}


def _params(root: Path, **neumf: object):  # type: ignore[no-untyped-def]
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["models"].update(SOURCES)
    raw["models"]["my-neumf"] = {**NEUMF, **neumf}
    raw["train"]["max_epochs"] = 2
    return params_from_dict(raw)


def _sources(layout: Layout, params, split: str = "leave-one-out-s0") -> None:  # type: ignore[no-untyped-def]
    for name in SOURCES:
        train_run(layout, params, RunId("ml-100k", name, split), progress=lambda s: None)


def test_neumf_starts_from_its_two_trained_branches(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), _params(prepared_root)
    _sources(layout, params)
    run = RunId("ml-100k", "my-neumf", "leave-one-out-s0")
    from models.common.registry import resolve_model

    spec = resolve_model("my-neumf", params.models)
    data = build_run_data(layout, "ml-100k", run.split_id, torch.device("cpu"), spec.task)
    model = build_from_spec(spec, spec.raw, data.ctx)
    digests = load_pretraining(layout, run, model, torch.device("cpu"))
    assert set(digests) == {"src-gmf", "src-mlp"}
    gmf = torch.load(layout.run("ml-100k", "src-gmf", run.split_id) / "model.pt", weights_only=True)
    mlp = torch.load(layout.run("ml-100k", "src-mlp", run.split_id) / "model.pt", weights_only=True)
    assert torch.equal(model.a.user_rep.first.weight, gmf["user_rep.first.weight"])
    assert torch.equal(model.b.head.body[0].weight, mlp["head.body.0.weight"])
    h = torch.cat([0.5 * gmf["head.out.weight"], 0.5 * mlp["head.out.weight"]], 1)
    assert torch.equal(model.out.weight, h)
    record = train_run(layout, params, run, progress=lambda s: None)
    assert record.epochs >= 1
    cfg = read_json(layout.run("ml-100k", "my-neumf", run.split_id) / "config.json")
    assert cfg["pretrained_from"] == digests


def test_missing_source_run_is_refused(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), _params(prepared_root)
    with pytest.raises(ConfigError) as err:
        train_run(layout, params, RunId("ml-100k", "my-neumf", "leave-one-out-s0"), progress=lambda s: None)
    assert err.value.param == "models.my-neumf.pretrain" and "no run at" in str(err.value)


def test_source_trained_on_another_split_is_refused(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), _params(prepared_root)
    _sources(layout, params)
    # a run directory whose config says it was trained on another split (copied by hand)
    for name in SOURCES:
        where = layout.run("ml-100k", name, "leave-one-out-s0")
        cfg = read_json(where / "config.json")
        write_json(where / "config.json", {**cfg, "split_id": "random-80-10-10-s0"})
    with pytest.raises(ConfigError, match="random-80-10-10-s0"):
        train_run(layout, params, RunId("ml-100k", "my-neumf", "leave-one-out-s0"), progress=lambda s: None)


def test_source_with_other_shapes_is_refused(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), _params(prepared_root, gmf_factors=16)
    _sources(layout, params)
    with pytest.raises(ConfigError) as err:
        train_run(layout, params, RunId("ml-100k", "my-neumf", "leave-one-out-s0"), progress=lambda s: None)
    assert err.value.param == "models.my-neumf.pretrain" and "src-gmf" in str(err.value)


def _grid(**train: object) -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["train"].update({"models": ["gf-gmf", "gf-mlp"], **train})
    raw["models"]["neumf-pre"] = {"base": "neumf", "pretrain": ["gf-gmf", "gf-mlp"]}
    return raw


def test_the_grid_trains_the_sources_before_the_pretrained_run(tmp_path: Path) -> None:
    """dvc.yaml's runs@<dataset> stage runs the dataset's grid (flows/grid.py): the sources come first in it and
    the pre-trained run waits for both of them on the same split."""
    from flows.grid import grid_runs

    raw = _grid(pretrained=[{"model": "neumf-pre", "from": ["gf-gmf", "gf-mlp"]}])
    raw["split"]["instances"] = ["leave-one-out-s0", "leave-one-out-s1"]
    runs, sources = grid_runs(params_from_dict(raw))
    assert runs.index(("neumf-pre", "leave-one-out-s0")) > max(runs.index((s, "leave-one-out-s0")) for s in
                                                               ("gf-gmf", "gf-mlp"))  # fmt: skip
    assert sources[("neumf-pre", "leave-one-out-s1")] == [(s, "leave-one-out-s1") for s in ("gf-gmf", "gf-mlp")]
    # and DVC sees one stage per dataset for the whole grid
    shutil.copy(REPO / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    dvc = [sys.executable, "-m", "dvc"]
    subprocess.run([*dvc, "init", "--no-scm", "-q"], cwd=tmp_path, check=True)
    dot = subprocess.run([*dvc, "dag", "--dot"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    assert '"split@ml-100k" -> "runs@ml-100k"' in dot and '"runs@ml-100k" -> "report@ml-100k"' in dot


@pytest.mark.parametrize(
    ("pretrained", "param", "found"),
    [
        ([{"model": "neumf-pre", "from": ["gf-gmf", "gf-mf"]}], "train.pretrained[0].from", "gf-mf"),
        ([{"model": "neumf-pre", "from": ["gf-gmf"]}], "train.pretrained[0]", "gf-gmf"),
        ([{"model": "gf-gmf", "from": ["gf-gmf", "gf-mlp"]}], "train.pretrained[0].model", "gf-gmf"),
        ("neumf-pre", "train.pretrained", "neumf-pre"),
    ],
)
def test_inconsistent_pretraining_grids_are_refused(pretrained: object, param: str, found: str) -> None:
    with pytest.raises(ConfigError) as err:
        params_from_dict(_grid(pretrained=pretrained))
    assert err.value.param == param and found in str(err.value)


def test_a_source_missing_from_the_grid_is_refused() -> None:
    raw = _grid(pretrained=[{"model": "neumf-pre", "from": ["gf-gmf", "gf-mlp"]}])
    raw["train"]["models"] = ["gf-gmf"]
    with pytest.raises(ConfigError, match=r"train\.pretrained\[0\]\.from.*gf-mlp"):
        params_from_dict(raw)
