"""The generic training loop: determinism, early stopping, checkpoints, history, resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import torch

from tasks.common.config import load_params
from tasks.common.device import seed_everything
from tasks.common.errors import DataError
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import evaluate_run
from tasks.training import RunId, build_model, build_run_data, fit, train_run

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.parametrize(
    ("model", "threads", "device"),
    [
        ("biased-mf", 1, "cpu"),
        ("autorec-i", 1, "cpu"),
        ("nrp-direct", 1, "cpu"),
        ("nrp-direct", 2, "cpu"),
        *(pytest.param(m, 1, "cuda", marks=needs_cuda) for m in ("biased-mf", "autorec-i", "nrp-direct")),
    ],
)
def test_same_seed_gives_identical_metrics(
    prepared_root: Path, model: str, threads: int, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HYBRIDREC_THREADS", str(threads))  # multi-threaded kernels must not change results
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", model, "random-80-10-10-s0")
    first = train_run(layout, params, run, progress=lambda s: None, device=device)
    m1 = evaluate_run(layout, params, run, device=device)
    hist1 = (layout.run("ml-100k", model, run.split_id) / "history.csv").read_text()
    second = train_run(layout, params, run, progress=lambda s: None, device=device)
    m2 = evaluate_run(layout, params, run, device=device)
    hist2 = (layout.run("ml-100k", model, run.split_id) / "history.csv").read_text()
    assert m1.metrics == m2.metrics
    assert first.best_monitor == second.best_monitor
    # identical runs write identical checkpoint bytes (DVC sees no change where there is none)
    assert first.monitor == "valid_rmse"
    assert pl.read_csv(hist1.encode())["valid_rmse"].to_list() == pl.read_csv(hist2.encode())["valid_rmse"].to_list()


def test_run_outputs_and_metrics_json(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", "autorec-i", "leave-one-out-s0")
    lines: list[str] = []
    summary = train_run(layout, params, run, progress=lines.append)
    out = layout.run("ml-100k", "autorec-i", "leave-one-out-s0")
    assert {"model.pt", "config.json", "history.csv", "train.json"} <= {p.name for p in out.iterdir()}
    assert any(line.startswith("epoch   1/") for line in lines)
    hist = pl.read_csv(out / "history.csv")
    assert hist.columns == [
        "epoch", "loss", "mse", "reg", "valid_rmse", "valid_mae", "monitor", "fit_seconds", "seconds", "lr"
    ]  # fmt: skip
    assert summary.best_monitor == pytest.approx(hist["valid_rmse"].min())
    torch.load(out / "model.pt", weights_only=True)
    result = evaluate_run(layout, params, run)
    saved = json.loads(layout.evaluation("ml-100k", "autorec-i", "leave-one-out-s0").read_text())
    assert saved == json.loads(json.dumps(result.to_json()))
    numbers = json.loads(layout.metrics("ml-100k", "autorec-i", "leave-one-out-s0").read_text())
    assert numbers == saved["metrics"]  # the metrics file: metric values only (dvc metrics show/diff)
    for key in ("rmse", "mae", "hr@10_sampled", "ndcg@10_sampled", "mrr_sampled", "hr@5_full", "ndcg@10_full",
                "recall@10_full", "mrr_full"):  # fmt: skip
        assert key in saved["metrics"]
    assert "precision@10%" not in saved["metrics"]  # one test item per user
    assert saved["n_candidates"] == 21
    for key in ("dataset", "protocol", "model", "seed", "task", "tie_rule", "negatives", "history"):
        assert key in saved
    trained = json.loads((out / "train.json").read_text())
    for key in ("epochs", "best_epoch", "train_seconds", "seconds_per_epoch", "n_params", "device", "monitor"):
        assert key in trained


@pytest.mark.parametrize(
    ("model", "device"),
    [
        ("biased-mf", "cpu"),
        pytest.param("biased-mf", "cuda", marks=needs_cuda),
        # input dropout draws from the device's generator: its state must survive the kill too
        pytest.param("nrp-direct", "cuda", marks=needs_cuda),
    ],
)
def test_resume_after_kill_continues_identically(prepared_root: Path, tmp_path: Path, model: str, device: str) -> None:
    layout = Layout(prepared_root)
    torch.manual_seed(0)
    data = build_run_data(layout, "ml-100k", "random-80-10-10-s0", torch.device(device))
    cfg = {
        "biased-mf": {"factors": 8, "lr": 0.01, "l2": 0.05, "batch_size": 256},
        "nrp-direct": {"encoder": [16, 8], "predictor": [16, 8], "input_dropout": 0.5, "batch_size": 128},
    }[model]

    def run(max_epochs: int, resume: Path | None, tag: str):  # type: ignore[no-untyped-def]
        seed_everything(0)
        model_ = build_model(model, cfg, data.ctx)
        return fit(
            model_,
            data,
            seed=0,
            max_epochs=max_epochs,
            patience=100,
            best_path=tmp_path / f"{tag}.pt",
            resume_path=resume,
            fp="same",
            progress=lambda s: None,
        )

    straight = run(6, None, "straight")
    resume = tmp_path / "resume.pt"
    run(3, resume, "killed")  # "killed" after epoch 3: its resume state stays on disk
    assert resume.exists()
    resumed = run(6, resume, "resumed")
    assert resumed.resumed_from == 4
    assert (tmp_path / "resumed.pt").exists()  # the best state survives the kill even if later epochs are worse
    best_straight = torch.load(tmp_path / "straight.pt", weights_only=True)
    best_resumed = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert all(torch.equal(best_straight[k], best_resumed[k]) for k in best_straight)
    assert [h["valid_rmse"] for h in resumed.history] == [h["valid_rmse"] for h in straight.history]
    assert (tmp_path / "resumed.pt").read_bytes() == (tmp_path / "straight.pt").read_bytes()


def test_empty_validation_split_is_refused(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    split_dir = layout.split("ml-100k", "random-80-10-10-s0")
    valid = pl.read_parquet(split_dir / "valid.parquet")
    valid.clear().write_parquet(split_dir / "valid.parquet")
    with pytest.raises(DataError, match="empty validation set"):
        train_run(layout, params, RunId("ml-100k", "biased-mf", "random-80-10-10-s0"), progress=lambda s: None)


def test_identical_runs_write_identical_checkpoint_bytes(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", "biased-mf", "random-80-10-10-s0")
    train_run(layout, params, run, progress=lambda s: None)
    first = (layout.run(*_parts(run)) / "model.pt").read_bytes()
    train_run(layout, params, run, progress=lambda s: None)
    assert (layout.run(*_parts(run)) / "model.pt").read_bytes() == first


def _parts(run: RunId) -> tuple[str, str, str]:
    return run.dataset, run.model, run.split_id


class _Planted:
    """A pickle that would run code when unpickled without ``weights_only``."""

    def __reduce__(self):  # type: ignore[no-untyped-def]
        import os

        return (os.system, ("touch PWNED",))


def test_planted_resume_pickle_is_refused(prepared_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    monkeypatch.chdir(prepared_root)
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", "biased-mf", "random-80-10-10-s0")
    resume = prepared_root / "artifacts" / ".resume" / "ml-100k" / "biased-mf" / "random-80-10-10-s0.pt"
    resume.parent.mkdir(parents=True)
    resume.write_bytes(pickle.dumps({"fingerprint": _Planted()}))
    with pytest.raises(DataError, match="refused to load: not a weights-only checkpoint"):
        train_run(layout, params, run, progress=lambda s: None)
    assert not (prepared_root / "PWNED").exists()
    assert not layout.run(*_parts(run)).exists()  # nothing written


def test_ranking_model_on_explicit_ratings_uses_positives(prepared_root: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    run = RunId("ml-100k", "bpr", "random-80-10-10-s0")
    record = train_run(layout, params, run, progress=lambda s: None)
    assert record.task == "ranking" and record.monitor == "valid_ndcg@10"
    assert record.positives is not None and record.positives.startswith("ratings >= 4 are positives")
    result = evaluate_run(layout, params, run)
    assert "rmse" not in result.metrics and "ndcg@10_full" in result.metrics and "recall@10_full" in result.metrics
    assert result.relevant == "test ratings >= 4"


def test_threshold_outside_the_scale_is_refused(prepared_root: Path) -> None:
    from tasks.common.config import params_from_dict
    from tasks.common.errors import ConfigError

    raw = __import__("yaml").safe_load((prepared_root / "params.yaml").read_text())
    raw["train"]["positive_threshold"] = 7
    params = params_from_dict(raw)
    with pytest.raises(ConfigError, match=r"train.positive_threshold.*\[1, 5\].*7"):
        train_run(Layout(prepared_root), params, RunId("ml-100k", "bpr", "random-80-10-10-s0"), progress=print)


def test_ranking_monitor_needs_validation_negatives_on_leave_one_out(prepared_root: Path) -> None:
    from tasks.common.errors import ConfigError

    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    (layout.split("ml-100k", "leave-one-out-s0") / "valid_negatives.parquet").unlink()
    with pytest.raises(ConfigError, match="validation negatives"):
        train_run(layout, params, RunId("ml-100k", "bpr", "leave-one-out-s0"), progress=lambda s: None)
