"""One source of truth: the fanned-out pipeline flow ends with ``dvc commit``, after which ``dvc repro`` finds
nothing to do and ``dvc status`` reports everything up to date."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import small_params, write_params
from tests.pipeline.test_pipeline import project_copy, run, stage_env

pytestmark = pytest.mark.slow


def test_pipeline_on_a_local_cluster_then_dvc_repro_has_nothing_to_do(
    prefect_harness, tmp_path: Path, ml100k_small: Path
) -> None:  # type: ignore[no-untyped-def]

    root = project_copy(tmp_path / "repo")
    write_params(root, small_params(ml100k_small, max_epochs=2, instances=["random-80-10-10-s0"],
                                    models=["biased-mf", "autorec-i"]))  # fmt: skip
    env = stage_env(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    run([sys.executable, "-m", "flows.acquire"], root, env)
    run([*dvc, "add", "-q", "data"], root, env)
    out = run([sys.executable, "-m", "flows.pipeline", "--runner", "dask", "--workers", "2"], root, env)
    assert "dvc commit" in out
    assert (root / "dvc.lock").is_file()
    assert (root / "artifacts" / "metrics" / "ml-100k" / "autorec-i" / "random-80-10-10-s0.json").is_file()

    repro = run([*dvc, "repro"], root, env)
    assert "Running stage" not in repro, repro[-3000:]
    assert "up to date" in run([*dvc, "status"], root, env)
