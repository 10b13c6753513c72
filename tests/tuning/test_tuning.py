"""The tuning flow's machinery: search spaces are checked; a study is seeded and reproducible, scores the validation
part only (rewriting the test part changes nothing), runs trials side by side with the same result, and writes its
best configuration into params.yaml as a variant without touching anything else."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from tasks.acquire import acquire_dataset
from tasks.common.config import load_params
from tasks.common.errors import ConfigError
from tasks.common.paths import Layout
from tasks.ingest import ingest_dataset
from tasks.splits.stage import make_splits
from tasks.tuning.search import tune, tuning_dir, write_variant
from tasks.tuning.space import parse_space

REPO = Path(__file__).resolve().parents[2]
SPACE = {"lr": {"low": 0.001, "high": 0.05, "log": True}, "factors": {"choices": [2, 4]}}


@pytest.mark.parametrize(
    ("space", "key"),
    [
        ({"lr": {"low": 0.1, "high": 0.01}}, "tune.x.lr"),
        ({"lr": {"low": 0.0, "high": 0.1, "log": True}}, "tune.x.lr.low"),
        ({"lr": {"choices": []}}, "tune.x.lr"),
        ({"lr": {"lo": 0.1}}, "tune.x.lr.lo"),
        ({}, "tune.x"),
    ],
)
def test_bad_spaces_are_refused(space: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(space, "tune.x")
    assert key in str(info.value)


def _project(tmp: Path) -> Path:
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["dataset"] = "synthetic"
    raw["split"]["instances"] = ["random-80-10-10-s0"]
    raw["train"]["max_epochs"] = 3
    raw["tune"] = {"trials": 4, "seed": 3, "workers": 1, "spaces": {"biased-mf": SPACE}}
    (tmp / "params.yaml").write_text(yaml.safe_dump(raw))
    layout = Layout(tmp)
    layout.raw("synthetic").mkdir(parents=True)
    (layout.raw("synthetic") / "SPEC.json").write_text(json.dumps({"n_users": 80, "n_items": 60, "n_ratings": 2000}))
    params = load_params(tmp / "params.yaml")
    acquire_dataset(layout, "synthetic", None, 30)
    ingest_dataset(layout, "synthetic")
    make_splits(layout, params, "synthetic")
    return tmp


@pytest.mark.slow
def test_study_is_seeded_validation_only_and_parallel_safe(tmp_path: Path) -> None:
    root = _project(tmp_path)
    params = load_params(root / "params.yaml")
    say = lambda s: None  # noqa: E731
    best = tune(root, params, "synthetic", "biased-mf", "random-80-10-10-s0", progress=say)
    out = tuning_dir(Layout(root), "synthetic", "biased-mf", "random-80-10-10-s0")
    trials = pl.read_csv(out / "trials.csv")
    assert trials.height == 4 and set(trials.columns) >= {"trial", "lr", "factors", "score", "epochs"}
    assert best["monitor"] == "valid_rmse" and best["best_value"] == trials["score"].min()
    assert best["tuned"] == ["factors", "lr"] and "test part is never read" in best["scored_on"]

    # the test part plays no role: rewriting every test rating leaves the study unchanged
    test = Layout(root).split("synthetic", "random-80-10-10-s0") / "test.parquet"
    frame = pl.read_parquet(test)
    frame.with_columns(pl.lit(1.0, dtype=frame["rating"].dtype).alias("rating")).write_parquet(test)
    again = tune(root, params, "synthetic", "biased-mf", "random-80-10-10-s0", progress=say)
    assert pl.read_csv(out / "trials.csv").drop("seconds").equals(trials.drop("seconds"))
    assert again["best_params"] == best["best_params"]

    # two trials at a time in separate processes: the same (random start-up) trials, the same scores
    parallel = tune(root, params, "synthetic", "biased-mf", "random-80-10-10-s0", workers=2, progress=say)
    assert pl.read_csv(out / "trials.csv")["score"].to_list() == trials["score"].to_list()
    assert parallel["best_params"] == best["best_params"]


def test_missing_space_is_refused(tmp_path: Path) -> None:
    params = load_params(REPO / "params.yaml")
    with pytest.raises(ConfigError, match=r"tune\.spaces\.pop"):
        tune(tmp_path, params, "ml-100k", "pop", "random-80-10-10-s0")


def test_write_variant_keeps_every_other_line(tmp_path: Path) -> None:
    params_file = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params_file)
    before = params_file.read_text().splitlines()
    name = write_variant(params_file, "autorec-i", {"l2": 120.5, "hidden": [300]})
    write_variant(params_file, "autorec-i", {"l2": 99.0, "hidden": [500]})  # replaced, not duplicated
    after = params_file.read_text().splitlines()
    assert [ln for ln in after if not ln.startswith(f"  {name}:")] == before
    entry = load_params(params_file).models[name]
    assert entry == {"base": "autorec-i", "l2": 99.0, "hidden": [500]}
