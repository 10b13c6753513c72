"""The contract every registered model keeps, run over ``model_names()`` (a model added later is covered
without a new test): it trains through the shared loop on a tiny dataset and beats a trivial baseline there
(the global mean for rating models, POP for ranking models), ``score_users`` equals ``predict`` on the same
pairs, the checkpoint round-trips through ``torch.load(weights_only=True)``, two CPU runs are bit-identical,
and a run killed after epoch 1 resumes to the same checkpoint as an uninterrupted one.

Models listed in ``TINY`` (or in a ``tests/models/tiny/<family>.yaml`` file, one per model family, merged into it)
get a small config; any other model trains with its defaults (capped epochs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch
import yaml

from models.common.context import TrainContext
from models.common.registry import get_model_class, model_names
from tasks.common.device import seed_everything
from tasks.common.manifest import DatasetManifest
from tasks.evaluation.ranking import full_ranking
from tasks.splits import SplitResult
from tasks.training import FitResult, RunData, build_model, fit

TINY: dict[str, dict] = {
    "biased-mf": {"factors": 4, "lr": 0.05, "l2": 0.01, "batch_size": 128},
    "autorec-i": {"hidden": [16], "l2": 1.0, "lr": 0.01, "batch_size": 16},
    "autorec-u": {"hidden": [16], "l2": 1.0, "lr": 0.01, "batch_size": 16},
    "nrp-direct": {"encoder": [16, 8], "predictor": [16, 8], "lr": 0.003, "batch_size": 128},
    "bpr": {"factors": 8, "lr": 0.05, "l2": 1e-4, "batch_size": 128},
    "gf": {"factors": 8, "lr": 0.02, "batch_size": 64},
    "dssm": {"encoder": [16, 8], "predictor": [16, 8], "lr": 0.003, "batch_size": 128},
    "accm": {"encoder": [16, 8], "lr": 0.01, "batch_size": 128},
    "nrp-neumf": {"encoder": [16, 8], "predictor": [16, 8], "factors": 8, "lr": 0.003, "l2": 0.0, "batch_size": 128},
    "neumf": {"gmf_factors": 8, "mlp_factors": 8, "predictor": [16, 8], "lr": 0.01, "batch_size": 64},
    "cfnet": {"rl_user_layers": [16], "rl_item_layers": [16], "rl_factors": 8, "ml_factors": 8, "predictor": [16, 8],
              "lr": 0.01, "batch_size": 64},
}
for _file in sorted((Path(__file__).parent / "tiny").glob("*.yaml")):
    TINY.update(yaml.safe_load(_file.read_text(encoding="utf-8")) or {})
TRIVIAL = ("global-mean", "item-mean")  # the tiny data's item means carry no signal by design (two taste groups)
EPOCHS = 12
N_USERS, N_ITEMS = 60, 48


def tiny_frames(implicit: bool, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Two taste groups: users of group g rate items of group g high (explicit) / interact mostly with
    them (implicit); item popularity is flat, so POP has nothing to go on but a personal model has."""
    rng = np.random.default_rng(seed)
    ug, ig = np.arange(N_USERS) % 2, np.arange(N_ITEMS) % 2
    rows = []
    for u in range(N_USERS):
        if implicit:
            own = np.flatnonzero(ig == ug[u])
            items = np.r_[rng.choice(own, 14, replace=False), rng.choice(np.flatnonzero(ig != ug[u]), 2, replace=False)]
        else:
            items = rng.choice(N_ITEMS, 20, replace=False)
        for i in items:
            r = 1.0 if implicit else float(np.clip(np.rint(4.5 if ig[i] == ug[u] else 1.5) + rng.normal(0, 0.3), 1, 5))
            rows.append((u, int(i), r))
    frame = pl.DataFrame(rows, schema={"user_idx": pl.Int32, "item_idx": pl.Int32, "rating": pl.Float32}, orient="row")
    frame = frame.with_columns(pl.lit(0, dtype=pl.Int64).alias("timestamp"))
    perm = rng.permutation(frame.height)
    n_tr, n_va = int(0.7 * frame.height), int(0.15 * frame.height)
    return frame[np.sort(perm[:n_tr])], frame[np.sort(perm[n_tr : n_tr + n_va])], frame[np.sort(perm[n_tr + n_va :])]


def tiny_run_data(task: str, side: bool = False) -> RunData:
    """The tiny data for a model of ``task``; ``side``: with user and item BoW side information carrying the taste
    group (for models that declare ``needs_side``)."""
    implicit = task == "ranking"
    train, valid, test = tiny_frames(implicit)
    scale = (1.0, 1.0) if implicit else (1.0, 5.0)
    manifest = DatasetManifest("tiny", scale, implicit, False, False, None, (), (), N_USERS, N_ITEMS,
                               train.height + valid.height + test.height)  # fmt: skip
    ctx = TrainContext(
        N_USERS,
        N_ITEMS,
        train["user_idx"].to_numpy().astype(np.int64),
        train["item_idx"].to_numpy().astype(np.int64),
        train["rating"].to_numpy().astype(np.float32),
        scale,
        implicit=implicit,
    )
    if side:
        ctx.user_side = {"bow": sp.csr_matrix(np.eye(2, dtype=np.float32)[np.arange(N_USERS) % 2])}
        ctx.item_side = {"bow": sp.csr_matrix(np.eye(2, dtype=np.float32)[np.arange(N_ITEMS) % 2])}
    return RunData(ctx, SplitResult(train, valid, test), manifest, task, valid, test)


def train_once(name: str, tmp: Path, tag: str, max_epochs: int = EPOCHS, resume: Path | None = None
               ) -> tuple[torch.nn.Module, FitResult, RunData]:  # fmt: skip
    cls = get_model_class(name)
    data = tiny_run_data(cls.task, side=bool(cls.needs_side))
    seed_everything(0)
    model = build_model(name, dict(TINY.get(name, {})), data.ctx)
    result = fit(model, data, seed=0, max_epochs=max_epochs, patience=100, best_path=tmp / f"{tag}.pt",
                 resume_path=resume, fp="contract", progress=lambda s: None)  # fmt: skip
    return model, result, data


def baseline(data: RunData) -> float:
    """The trivial baseline's value of the model's monitor on the validation part."""
    if data.task == "rating":
        y = data.valid["rating"].to_numpy().astype(np.float64)
        return float(np.sqrt(np.mean((y - data.ctx.global_mean) ** 2)))
    pop = build_model("pop", {}, data.ctx)
    pop.fit_epoch(np.random.default_rng(0))
    return full_ranking(pop, data.valid, data.known("train"), (10,))["ndcg@10"]


@pytest.mark.parametrize("name", model_names())
def test_model_keeps_the_contract(name: str, tmp_path: Path) -> None:
    model, result, data = train_once(name, tmp_path, "a")
    assert result.epochs >= 1 and result.best_epoch >= 1
    base = baseline(data)
    if name in TRIVIAL:  # the trivial rating baselines themselves: the global mean exactly, the item mean near it
        assert result.best_value <= base + 0.05, (result.monitor.name, result.best_value, base)
    elif result.monitor.mode == "min":
        assert result.best_value < base, (result.monitor.name, result.best_value, base)
    elif name == "pop":
        assert result.best_value == pytest.approx(base)
    else:
        assert result.best_value > base, (result.monitor.name, result.best_value, base)

    # score_users equals predict on the same pairs
    users = np.array([0, 3, N_USERS - 1])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).cpu().numpy()
    assert full.shape == (3, N_ITEMS)
    pairs = model.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)).reshape(3, -1)
    np.testing.assert_allclose(full, pairs, rtol=1e-5, atol=1e-5)

    # the checkpoint is a weights-only state_dict that rebuilds the same model
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    seed_everything(1)
    fresh = build_model(name, dict(TINY.get(name, {})), data.ctx)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)),
                                  model.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)))  # fmt: skip

    # two CPU runs are bit-identical (checkpoint bytes and history)
    _, again, _ = train_once(name, tmp_path, "b")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    assert [h["monitor"] for h in again.history] == [h["monitor"] for h in result.history]

    # killed after epoch 1, resumed: the same checkpoint as the uninterrupted run
    resume = tmp_path / "resume.pt"
    train_once(name, tmp_path, "killed", max_epochs=1, resume=resume)
    assert resume.exists()
    _, resumed, _ = train_once(name, tmp_path, "resumed", resume=resume)
    if result.epochs > 1:
        assert resumed.resumed_from == 2
    assert (tmp_path / "resumed.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()


def test_history_has_one_column_per_logged_name(tmp_path: Path) -> None:
    from tasks.training import history_frame

    _, result, _ = train_once("biased-mf", tmp_path, "h", max_epochs=3)
    frame = history_frame(result.history)
    assert frame.columns == [
        "epoch", "loss", "mse", "reg", "valid_rmse", "valid_mae", "monitor", "fit_seconds", "seconds", "lr"
    ]  # fmt: skip
    _, result, _ = train_once("bpr", tmp_path, "h2", max_epochs=3)
    cols = history_frame(result.history).columns
    assert cols[:4] == ["epoch", "loss", "bpr", "reg"] and "valid_ndcg@10" in cols and "valid_hr@10" in cols
