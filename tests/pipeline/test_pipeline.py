"""End-to-end: the real pipeline on small data in the MovieLens-100K raw format, through Prefect and
through ``dvc repro`` in a temporary copy of the repository; plus the real ml-100k files when present."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import REPO, small_params, write_params

pytestmark = pytest.mark.slow

SUMMARY_COLUMNS = ["dataset", "protocol", "model", "metric", "mean", "std", "n_runs", "published", "published_source"]


def check_outputs(root: Path, models: list[str], splits: list[str]) -> pl.DataFrame:
    for m in models:
        for s in splits:
            metrics = json.loads((root / "artifacts" / "evaluations" / "ml-100k" / m / f"{s}.json").read_text())
            numbers = json.loads((root / "artifacts" / "metrics" / "ml-100k" / m / f"{s}.json").read_text())
            assert numbers == metrics["metrics"] and all(isinstance(v, float) for v in numbers.values())
            assert metrics["model"] == m and metrics["split_id"] == s
            if metrics["task"] == "rating":
                assert metrics["metrics"]["rmse"] > 0
            else:  # ranking models on explicit ratings: positives >= the threshold, full ranking
                assert 0 <= metrics["metrics"]["ndcg@10_full"] <= 1 and "rmse" not in metrics["metrics"]
                assert metrics["relevant"] == "test ratings >= 4"
            assert (root / "artifacts" / "runs" / "ml-100k" / m / s / "model.pt").exists()
    summary = pl.read_csv(root / "reports" / "summary.csv")
    assert summary.columns == SUMMARY_COLUMNS
    assert set(summary.filter(pl.col("dataset") == "ml-100k")["model"]) == set(models)
    html = (root / "reports" / "ml-100k" / "report.html").read_text()
    assert "data:image/png;base64," in html and "<script src=" not in html
    md = (root / "reports" / "ml-100k" / "report.md").read_text()
    assert "test RMSE by item popularity" in md and "test RMSE by user activity" in md and "Cold test rows" in md
    assert "runs without a breakdowns file" not in md
    assert (root / "reports" / "ml-100k" / "data_docs" / "index.html").exists()
    return summary


def test_pipeline_flow_through_prefect(prefect_harness, tmp_path: Path, ml100k_small: Path) -> None:  # type: ignore[no-untyped-def]
    from prefect.client.orchestration import get_client

    from flows.pipeline import pipeline_flow
    from flows.validate import validate_flow
    from tasks.common.errors import ValidationFailed

    models = ["biased-mf", "autorec-i", "nrp-direct", "pop", "bpr"]
    root = write_params(tmp_path / "proj", small_params(ml100k_small, max_epochs=2, models=models))
    out = pipeline_flow(root=str(root))
    assert set(out["timings"]) == {"acquire", "ingest", "validate", "features", "split", "train+evaluate", "report"}
    summary = check_outputs(root, models, ["random-80-10-10-s0", "leave-one-out-s0"])
    assert {"ndcg@10_full", "recall@10_full", "mrr_full", "hr@10_sampled"} <= set(summary["metric"])

    async def keys() -> set[str]:
        async with get_client() as client:
            return {a.key for a in await client.read_artifacts() if a.key}

    import asyncio

    published = asyncio.run(keys())
    for stage in ("ingest", "validate", "features", "split", "train", "evaluate", "report", "pipeline"):
        assert f"ml-100k-{stage}-summary" in published
    assert "ml-100k-validate-table" in published

    # a failed expectation stops the pipeline, naming the table, the expectation and offending values
    ratings_path = root / "artifacts" / "ingested" / "ml-100k" / "ratings.parquet"
    bad = pl.read_parquet(ratings_path)
    bad = bad.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(7.0).otherwise(pl.col("rating")).cast(pl.Float32).alias("rating")
    )
    bad.write_parquet(ratings_path)
    with pytest.raises(ValidationFailed) as exc:
        validate_flow(root=str(root))
    assert "ratings" in str(exc.value) and "rating" in str(exc.value) and "7" in str(exc.value)


def project_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / f)
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], cwd=dest, check=True)
    return dest


def stage_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a `dvc repro` / stage process in a test: this venv first on PATH, one torch thread, the
    session's Prefect server (``prefect_harness``), a private PREFECT_HOME."""
    from prefect.settings import PREFECT_API_URL

    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "HYBRIDREC_THREADS": "1",
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
    }


def _json_part(output: str) -> str:
    """The JSON document in a command's output (DVC may print log lines around it)."""
    start = min(i for i in (output.find("{"), output.find("[")) if i >= 0)
    end = max(output.rfind("}"), output.rfind("]"))
    return output[start : end + 1]


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return proc.stdout + proc.stderr


SYNTHETIC_SPEC = {"n_users": 120, "n_items": 90, "n_ratings": 2500}  # the second dataset of the pipeline


def _mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*")) if p.is_file()}


def test_dvc_repro_in_a_temporary_copy(prefect_harness, tmp_path: Path, ml100k_small: Path) -> None:  # type: ignore[no-untyped-def]
    """Two datasets side by side in one dvc.lock (ml-100k with its models on a random split, synthetic-implicit
    with ranking models on leave-one-out), then one hyperparameter changed: only its model's runs retrain."""

    root = project_copy(tmp_path / "repo")
    (ml100k_small / "SPEC.json").write_text(json.dumps(SYNTHETIC_SPEC))  # read by the synthetic dataset only
    params = small_params(ml100k_small, max_epochs=2, instances=["random-80-10-10-s0"])
    params["pipeline"] = {
        "ml-100k": {},
        "synthetic-implicit": {"splits": ["leave-one-out-s0"], "models": ["pop", "bpr"]},
    }
    write_params(root, params)
    env = stage_env(tmp_path)
    dvc = [sys.executable, "-m", "dvc"]
    run([sys.executable, "-m", "flows.acquire", "--pipeline"], root, env)
    run([*dvc, "add", "-q", "data"], root, env)
    first = run([*dvc, "repro"], root, env)
    assert "Running stage 'runs@ml-100k'" in first and "Running stage 'runs@synthetic-implicit'" in first
    check_outputs(root, ["biased-mf", "autorec-i", "nrp-direct"], ["random-80-10-10-s0"])
    for model in ("pop", "bpr"):  # the second dataset's own models on its own split, nothing else
        found = root / "artifacts/metrics/synthetic-implicit" / model / "leave-one-out-s0.json"
        assert 0 <= json.loads(found.read_text())["ndcg@10_full"] <= 1
    assert sorted(p.name for p in (root / "artifacts/runs/synthetic-implicit").iterdir()) == ["bpr", "pop"]
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    stages = ("ingest", "validate", "features", "split", "runs", "report")
    assert {f"{s}@{d}" for s in stages for d in ("ml-100k", "synthetic-implicit")} | {"summary"} <= set(lock)
    summary = pl.read_csv(root / "reports" / "summary.csv")
    assert set(summary["dataset"]) == {"ml-100k", "synthetic-implicit"}
    index = (root / "reports" / "index.html").read_text()
    assert "ml-100k/report.html" in index and "synthetic-implicit/report.html" in index

    second = run([*dvc, "repro"], root, env)
    assert "Running stage" not in second and "up to date" in second

    # commit the reproduced state, then one param changes through `dvc exp run -S`: only the stages that depend on
    # it rerun, inside them only that model's run trains again, and `dvc metrics diff` shows the change, with metric
    # values only (no run metadata columns)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    run([*git, "add", "-A"], root, env)
    run([*git, "commit", "-qm", "reproduced"], root, env)
    runs = root / "artifacts" / "runs"
    before = {d: _mtimes(runs / d) for d in ("ml-100k", "synthetic-implicit")}
    third = run([*dvc, "exp", "run", "-S", "models.biased-mf.lr=0.02"], root, env)
    ran = {line.split("'")[1] for line in third.splitlines() if line.startswith("Running stage")}
    # every runs@ stage depends on the `models` params (DVC cannot list one dataset's models): the other dataset's
    # stage reruns, finds its runs current and trains nothing, so its report stays up to date
    assert ran <= {"runs@ml-100k", "runs@synthetic-implicit", "report@ml-100k", "summary"}, ran
    assert "runs@ml-100k" in ran and "report@ml-100k" in ran
    after = _mtimes(runs / "ml-100k")
    retrained = {k.split("/")[0] for k, v in after.items() if before["ml-100k"].get(k) != v}
    assert retrained == {"biased-mf"}, retrained
    assert _mtimes(runs / "synthetic-implicit") == before["synthetic-implicit"]
    assert "up to date" in third  # the other runs say so in the stage's log
    diff = json.loads(_json_part(run([*dvc, "metrics", "diff", "--json"], root, env)))
    changed = {path for path, values in diff.items() for key, v in values.items() if v.get("diff")}
    assert changed == {"artifacts/metrics/ml-100k/biased-mf/random-80-10-10-s0.json"}, diff
    shown = json.loads(_json_part(run([*dvc, "metrics", "show", "--json"], root, env)))
    keys = {k for rev in shown.values() for f in rev.get("data", {}).values() for k in f.get("data", {})}
    assert "rmse" in keys and not keys & {"history", "device", "dataset", "split_id", "model", "task"}, keys
    run([*dvc, "plots", "show", "-o", str(tmp_path / "plots")], root, env)
    assert (tmp_path / "plots" / "index.html").exists()

    # push every artifact to a local remote, drop them, pull them back
    remote = tmp_path / "remote"
    run([*dvc, "remote", "add", "-f", "-d", "--local", "test", str(remote)], root, env)
    run([*dvc, "push"], root, env)
    model_pt = root / "artifacts" / "runs" / "ml-100k" / "autorec-i" / "random-80-10-10-s0" / "model.pt"
    digest = model_pt.read_bytes()
    shutil.rmtree(root / "artifacts")
    shutil.rmtree(root / ".dvc" / "cache")
    run([*dvc, "pull"], root, env)
    assert model_pt.read_bytes() == digest
    assert "up to date" in run([*dvc, "status"], root, env)


@pytest.mark.realdata
def test_real_ml100k_through_prefect(prefect_harness, tmp_path: Path, shared_ml100k: Path) -> None:  # type: ignore[no-untyped-def]
    from flows.pipeline import pipeline_flow

    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["acquire"]["source_dir"] = str(shared_ml100k)
    raw["split"]["instances"] = ["random-80-10-10-s0", "leave-one-out-s0"]
    raw["train"].update({"max_epochs": 1, "threads": 1})
    for cheap in ("biased-mf", "autorec-i"):  # a few cheap epochs; NRP-direct gets one (~10 s on one core)
        raw["models"][cheap]["max_epochs"] = 6
    root = write_params(tmp_path / "proj", raw)
    pipeline_flow(root=str(root))
    stats = json.loads((root / "artifacts" / "ingested" / "ml-100k" / "stats.json").read_text())
    assert (stats["n_users"], stats["n_items"], stats["n_ratings"]) == (943, 1682, 100_000)
    dims = json.loads((root / "artifacts" / "features" / "ml-100k" / "dims.json").read_text())
    assert dims["user_bow"] == 879
    summary = check_outputs(root, list(raw["train"]["models"]), raw["split"]["instances"])
    rmse = dict(
        summary.filter((pl.col("metric") == "rmse") & (pl.col("protocol") == "random-80-10-10"))
        .select("model", "mean")
        .iter_rows()
    )
    assert rmse["biased-mf"] < 1.0 and rmse["autorec-i"] < 1.0  # learning, not tuned (6 epochs)
    assert 0.5 < rmse["nrp-direct"] < 2.0  # one epoch: finite and on the rating scale
