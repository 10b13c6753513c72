"""Full-batch optimizers (AutoRec's Rprop and L-BFGS) through the shared loop: a step sees the gradient of the whole
training objective however the model cuts it into minibatches, training beats the global mean, CPU runs are
bit-identical and a killed run resumes to the same checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.common.base import GradientConfig
from tasks.common.device import seed_everything
from tasks.common.errors import ConfigError
from tasks.training import build_model, fit
from tests.models.test_contract import baseline, tiny_run_data

BASE = {"hidden": [16], "l2": 1.0, "full_batch_steps": 5}
OPTS = {"rprop": {"optimizer": "rprop", "lr": 0.01}, "lbfgs": {"optimizer": "lbfgs", "lr": 1.0}}


def _train(tmp: Path, tag: str, cfg: dict, max_epochs: int = 8, resume: Path | None = None):  # type: ignore[no-untyped-def]
    data = tiny_run_data("rating")
    seed_everything(0)
    model = build_model("autorec-i", cfg, data.ctx)
    result = fit(model, data, seed=0, max_epochs=max_epochs, patience=100, best_path=tmp / f"{tag}.pt",
                 resume_path=resume, fp="fb", progress=lambda s: None)  # fmt: skip
    return model, result, data


@pytest.mark.parametrize("opt", sorted(OPTS))
def test_full_batch_trains_is_deterministic_and_resumes(opt: str, tmp_path: Path) -> None:
    cfg = {**BASE, **OPTS[opt], "batch_size": 7}
    _, result, data = _train(tmp_path, "a", cfg)
    assert result.best_value < baseline(data)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0]  # the whole objective goes down
    _train(tmp_path, "b", cfg)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    resume = tmp_path / "resume.pt"
    _train(tmp_path, "killed", cfg, max_epochs=1, resume=resume)
    _, resumed, _ = _train(tmp_path, "resumed", cfg, resume=resume)
    assert resumed.resumed_from == 2
    assert (tmp_path / "resumed.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()


def test_full_batch_step_does_not_depend_on_the_minibatch_size(tmp_path: Path) -> None:
    """Rprop on the accumulated gradient: cutting the vectors into batches of 5 or taking them all at once gives
    the same parameters after an epoch (up to float summation order)."""
    states = []
    for bs in (5, 10_000):
        model, _, _ = _train(tmp_path, f"bs{bs}", {**BASE, **OPTS["rprop"], "batch_size": bs}, max_epochs=1)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    for k in states[0]:
        torch.testing.assert_close(states[0][k], states[1][k], rtol=1e-4, atol=1e-5)


def test_full_batch_loss_is_the_paper_objective(tmp_path: Path) -> None:
    """With full batch the logged loss is Σ_observed (r − h(r))² + (λ/2)(‖W‖² + ‖V‖²) of the epoch's last
    evaluation, recomputed here from the model after a zero-step check."""
    data = tiny_run_data("rating")
    seed_everything(0)
    model = build_model("autorec-i", {**BASE, **OPTS["rprop"], "batch_size": 9}, data.ctx)
    ids = torch.arange(model.n_items)
    step = model.batch_loss(ids[torch.as_tensor(model._active)])
    cols, _, vals, row_of = model.rows.gather_with_rows(torch.as_tensor(model._active))
    h = model.encode(torch.as_tensor(model._active))
    out = (model.dec_w[cols] * h[row_of]).sum(-1) + model.dec_b[cols]
    expected = (out - vals).pow(2).sum() + 0.5 * 1.0 * model.weight_norm()
    torch.testing.assert_close(step.objective, expected)


def test_full_batch_steps_must_be_positive() -> None:
    data = tiny_run_data("rating")
    with pytest.raises(ConfigError, match="full_batch_steps"):
        build_model("autorec-i", {**BASE, "optimizer": "rprop", "full_batch_steps": 0}, data.ctx)
    assert GradientConfig(optimizer="lbfgs").full_batch and not GradientConfig().full_batch
    with pytest.raises(ConfigError, match="optimizer"):
        build_model("autorec-i", {**BASE, "optimizer": "bfgs"}, data.ctx)
    assert np.isfinite(GradientConfig().full_batch_steps)


@pytest.mark.parametrize(("f", "g"), [("identity", "identity"), ("sigmoid", "identity"), ("identity", "sigmoid"),
                                      ("sigmoid", "sigmoid")])  # fmt: skip
def test_every_activation_pair_trains_and_stays_on_the_rating_scale(f: str, g: str, tmp_path: Path) -> None:
    """AutoRec Table 1(b): (f, g) ∈ {identity, sigmoid}²; a sigmoid f is mapped onto the 1–5 scale."""
    cfg = {"hidden": [16], "l2": 1.0, "optimizer": "adam", "lr": 0.01, "batch_size": 16, "activation": g,
           "output_activation": f}  # fmt: skip
    model, result, data = _train(tmp_path, f"{f}-{g}", cfg, max_epochs=10)
    assert result.best_value < baseline(data)
    users, items = data.valid["user_idx"].to_numpy(), data.valid["item_idx"].to_numpy()
    pred = model.predict(users, items)
    if f == "sigmoid":
        assert pred.min() > 1.0 and pred.max() < 5.0
