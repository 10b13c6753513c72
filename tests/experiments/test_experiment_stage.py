"""An experiment as a DVC stage (params.yaml ``experiments`` → ``experiment@<name>``): ``dvc repro`` runs it and
writes its table, a second ``dvc repro`` does nothing, and a changed variant reruns the stage, which retrains only
that variant's runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.experiments.test_experiments import spec
from tests.pipeline.test_pipeline import project_copy, run, stage_env

pytestmark = pytest.mark.slow


def test_experiment_stage_runs_once_and_reruns_only_what_changed(prefect_harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]

    root = project_copy(tmp_path / "repo")
    (root / "experiments" / "tiny.yaml").write_text(json.dumps(spec()))  # JSON is YAML, without anchors
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["experiments"] = ["tiny"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    raw = root / "artifacts" / "experiments" / "data" / "synthetic"
    raw.mkdir(parents=True)
    (raw / "SPEC.json").write_text(json.dumps({"n_users": 80, "n_items": 60, "n_ratings": 2000}))
    env = stage_env(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    first = run([*dvc, "repro", "experiment@tiny"], root, env)
    assert "Running stage 'experiment@tiny'" in first
    table = root / "reports" / "experiments" / "tiny"
    assert (table / "table.csv").is_file() and (table / "index.html").is_file()
    assert "trained 4 of 4 runs" in (table / "table.md").read_text()

    assert "Running stage" not in run([*dvc, "repro", "experiment@tiny"], root, env)

    changed = spec(variants={"bmf-small": {"base": "biased-mf", "factors": 3, "batch_size": 512}})
    (root / "experiments" / "tiny.yaml").write_text(json.dumps(changed))
    third = run([*dvc, "repro", "experiment@tiny"], root, env)
    assert "Running stage 'experiment@tiny'" in third
    assert "trained 2 of 4 runs" in (table / "table.md").read_text()  # bmf-small's two seeds, not biased-mf's
