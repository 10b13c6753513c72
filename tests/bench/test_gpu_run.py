"""bench.gpu_run on CPU: every figure of a row (training, memory, full-ranking throughput, profiler split) for a model
of two families, on tiny synthetic data; the family discovery against the folders under models/."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from bench import gpu_run
from bench.scale_models import SPLIT, prepare_synthetic
from tasks.common.config import load_params
from tasks.common.paths import Layout
from tasks.training import RunId

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
OPTS = gpu_run.BenchOptions(rank_users=50, rank_chunk=16, profile_steps=2)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("gpu-run")
    prepare_synthetic(where, 80, 60, 1500)
    return where


def _check_common(row: dict, profile_step: str) -> None:
    assert "error" not in row, row.get("error")
    assert row["fit_seconds_per_epoch"] > 0 and row["epochs"] >= 1
    assert row["peak_rss_mib"] > 0 and row["peak_gpu_mib"] is None  # CPU: the process's peak RSS
    rank = row["rank"]
    assert rank["users"] == 50 and rank["items"] == 60 and rank["users_per_s"] > 0 and rank["seconds"] > 0
    prof = row["profile"]
    assert prof["step"] == profile_step and prof["steps"] >= 1
    assert prof["wall_ms_per_step"] > 0 and prof["cpu_op_ms_per_step"] > 0 and prof["ops_per_step"] > 0
    assert 0.0 <= prof["python_share"] <= 1.0 and prof["bound"] in ("python-bound", "op-bound")
    assert row["precision"] == "-" and row["family"] in gpu_run.discover_families()


def test_one_epoch_rows_have_every_figure(root: Path) -> None:
    params = gpu_run.apply_overrides(load_params(root / "params.yaml"), ["biased-mf.batch_size=64"])
    dev = torch.device("cpu")
    mf = gpu_run.run_epoch(Layout(root), params, RunId("synthetic", "biased-mf", SPLIT), dev, OPTS)
    _check_common(mf, "minibatch")
    assert mf["family"] == "factorization" and mf["n_train"] > 0 and mf["profile"]["steps"] == 2
    pop = gpu_run.run_epoch(Layout(root), params, RunId("synthetic", "pop", SPLIT), dev, OPTS)
    _check_common(pop, "fit_epoch")
    assert pop["family"] == "baselines" and pop["task"] == "ranking"
    table = gpu_run.format_table([mf, pop, {"model": "broken", "family": "x", "error": "ValueError: boom"}], False)
    assert len(table.splitlines()) == 4 and "failed: ValueError: boom" in table and "op ms" in table


def test_trained_row_and_precision_switch(root: Path) -> None:
    sets = ["nrp-direct.max_epochs=1", "nrp-direct.precision=bf16"]
    params = gpu_run.apply_overrides(load_params(root / "params.yaml"), sets)
    row = gpu_run.run_model(Layout(root), params, RunId("synthetic", "nrp-direct", SPLIT), torch.device("cpu"), OPTS)
    _check_common({**row, "precision": "-"}, "minibatch")
    assert row["precision"] == "bf16" and row["family"] == "nrp" and row["epochs"] == 1
    assert row["test_rmse"] is not None and row["seconds_per_epoch"] > 0


def test_isolated_run_writes_json(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "rows.json"
    # the split exists: prepare_synthetic leaves the tiny data alone; one worker process (its own peak memory)
    args = ["--root", str(root), "--synthetic", "ml-100k", "--models", "item-mean", "--isolate", "--device", "cpu"]
    gpu_run.main([*args, "--threads", "1", "--rank-users", "20", "--profile-steps", "1", "--json", str(out)])
    got = json.loads(out.read_text())
    assert got["isolated"] is True and [r["model"] for r in got["runs"]] == ["item-mean"]
    assert all("error" not in r and r["rank"]["users"] == 20 and r["n_users"] == 80 for r in got["runs"])
    assert got["families"] == {"baselines": ["item-mean"]}


def test_discovery_finds_every_family_folder() -> None:
    registering = {
        p.parent.name
        for p in MODELS_DIR.glob("*/*.py")
        if p.parent.name != "common" and not p.name.startswith("_") and re.search(r"@register_model\(", p.read_text())
    }
    found = gpu_run.discover_families()
    assert set(found) == registering
    files = gpu_run.model_files()
    for module, names in files.items():
        family = gpu_run.family_of(module)
        picked = [n for n in found[family] if n in names]
        assert len(picked) == 1  # one representative per file
        assert picked[0] == gpu_run.REPRESENTATIVE.get(module, names[0])
    assert files["models.autoencoders.autorec"][0] == "autorec-i"  # the file's first @register_model
    assert "item-mean" in found["baselines"] and "global-mean" not in found["baselines"]


def test_select_models() -> None:
    every = [m for ms in gpu_run.discover_families().values() for m in ms]
    assert gpu_run.select_models(None, None) == every
    assert gpu_run.select_models(None, ["all"]) == every
    picked = gpu_run.select_models(["bpr", "pop"], ["factorization"])
    assert picked[:2] == ["bpr", "pop"] and picked.count("bpr") == 1
    assert set(picked[2:]) == set(gpu_run.discover_families()["factorization"]) - {"bpr"}
    assert gpu_run.select_models(["ease"], None) == ["ease"]
    with pytest.raises(SystemExit, match="unknown"):
        gpu_run.select_models(None, ["nope"])


def test_rank_users_spread() -> None:
    assert gpu_run.rank_users_of(10, 0).tolist() == list(range(10))
    users = gpu_run.rank_users_of(1000, 5)
    assert users.tolist() == [0, 250, 500, 749, 999]
