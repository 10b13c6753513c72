"""The generalized framework ``gf``: every GF variant of params.yaml builds and trains on the tiny two-taste data
through the shared loop, learns (beats the trivial baseline of its task), keeps score_users == predict, and
round-trips its checkpoint; the modules compose as the paper says (MF = ID embeddings × product × linear; target
masking equals encoding the vector without the target); impossible combinations are refused naming the
parameter, the expected and the found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.common.registry import resolve_model
from models.common.samplers import PairBatch
from tasks.common.config import load_params
from tasks.common.device import seed_everything
from tasks.common.errors import ConfigError
from tasks.training import build_model, fit
from tests.models.test_contract import N_ITEMS, N_USERS, baseline, tiny_run_data

REPO = Path(__file__).resolve().parents[2]
ENTRIES = load_params(REPO / "params.yaml").models
GF_VARIANTS = sorted(n for n, e in ENTRIES.items() if isinstance(e, dict) and e.get("base") == "gf")
# small sizes for the tiny data; everything else (modules, loss, batching) is the variant's own
SMALL = {"lr": 0.01, "batch_size": 32}
SMALL_SIZES = {"factors": 8, "user_layers": [16], "item_layers": [16], "predictor": [16, 8], "cnn_channels": 4}


def _small(name: str) -> dict:
    raw = resolve_model(name, ENTRIES).raw
    out = dict(SMALL)
    for key, value in SMALL_SIZES.items():
        if key in raw or key == "factors":
            out[key] = value
    if raw.get("l2", 0) > 10:
        out["l2"] = 1.0
    if raw.get("batching", "pairs") != "pairs":  # batches of whole vectors: as many steps as AutoRec's test
        out["batch_size"] = 8
    return out


def test_every_table_i_preset_has_a_variant() -> None:
    presets = resolve_model("gf", ENTRIES).cls.presets
    assert {f"gf-{p}" for p in presets} <= set(GF_VARIANTS)


@pytest.mark.parametrize("name", GF_VARIANTS)
def test_gf_variant_trains_and_keeps_the_contract(name: str, tmp_path: Path) -> None:
    spec = resolve_model(name, ENTRIES)
    data = tiny_run_data(spec.task)
    seed_everything(0)
    model = build_model(name, _small(name), data.ctx, ENTRIES)
    result = fit(model, data, seed=0, max_epochs=15, patience=100, best_path=tmp_path / "m.pt", resume_path=None,
                 fp=name, progress=lambda s: None)  # fmt: skip
    base = baseline(data)
    if result.monitor.mode == "min":
        assert result.best_value < base, (name, result.best_value, base)
    else:
        assert result.best_value > base, (name, result.best_value, base)
    users = np.array([0, 5, N_USERS - 1])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).cpu().numpy()
    pairs = model.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)).reshape(3, -1)
    np.testing.assert_allclose(full, pairs, rtol=1e-4, atol=1e-4)
    fresh = build_model(name, _small(name), data.ctx, ENTRIES)
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    np.testing.assert_allclose(fresh.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)),
                               pairs.ravel(), rtol=1e-6, atol=1e-6)  # fmt: skip


def test_mf_preset_is_a_dot_product_of_embeddings() -> None:
    data = tiny_run_data("rating")
    model = build_model("gf", {"task": "rating", "factors": 4}, data.ctx)
    u, i = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    p, q = model.user_rep.first.weight[u], model.item_rep.first.weight[i]
    expect = (p * q).sum(-1) + model.head.out.bias
    torch.testing.assert_close(model.predict_pairs(u, i), expect)


def test_fixed_h_keeps_the_plain_inner_product_through_training(tmp_path: Path) -> None:
    """``fixed_h``: h stays 1 and the bias 0 while the embeddings learn; the score is exactly p·q (NCF's MF)."""
    data = tiny_run_data("ranking")
    seed_everything(0)
    model = build_model("gf", {"factors": 4, "loss": "bpr", "fixed_h": True, "lr": 0.05, "batch_size": 32}, data.ctx)
    before = model.user_rep.first.weight.detach().clone()
    fit(model, data, seed=0, max_epochs=3, patience=100, best_path=tmp_path / "m.pt", resume_path=None, fp="h",
        progress=lambda s: None)  # fmt: skip
    assert torch.equal(model.head.out.weight, torch.ones_like(model.head.out.weight))
    assert float(model.head.out.bias) == 0.0
    assert not torch.equal(model.user_rep.first.weight, before)
    u, i = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6])
    p, q = model.user_rep.first.weight[u], model.item_rep.first.weight[i]
    torch.testing.assert_close(model.predict_pairs(u, i), (p * q).sum(-1))
    assert model.n_parameters() == (N_USERS + N_ITEMS) * 4


def test_target_masking_equals_encoding_the_vector_without_the_target() -> None:
    data = tiny_run_data("ranking")
    seed_everything(0)
    model = build_model("gf", {"user_input": "vector", "user_repr": "mlp", "user_layers": [8], "factors": 4,
                               "item_input": "vector", "item_repr": "linear"}, data.ctx)  # fmt: skip
    u0, i0 = int(data.ctx.users[0]), int(data.ctx.items[0])
    users, items = torch.tensor([u0]), torch.tensor([i0])
    masked = model.user_rep(users, items, torch.ones(1))
    row = torch.as_tensor(data.ctx.user_matrix[u0].toarray()[0])
    row[i0] = 0.0
    first = model.user_rep.first
    direct = model.user_rep.post(row @ first.weight + first.bias)
    torch.testing.assert_close(masked[0], direct, rtol=1e-5, atol=1e-6)
    loss = model.batch_loss(PairBatch(users, items, torch.ones(1)))
    assert torch.isfinite(loss.objective)


@pytest.mark.parametrize(
    ("raw", "param", "found"),
    [
        ({"fusion": "outer", "prediction": "cnn", "user_factors": 8, "item_factors": 16}, "models.gf.fusion", "user 8"),
        ({"fusion": "product", "user_factors": 8, "item_factors": 4}, "models.gf.fusion", "item 4"),
        ({"loss": "nbce", "fusion": "product"}, "models.gf.loss", "fusion product"),
        ({"fusion": "outer", "prediction": "mlp"}, "models.gf.prediction", "prediction mlp"),
        ({"fusion": "outer", "prediction": "cnn", "factors": 12}, "models.gf.factors", "12"),
        ({"user_input": "vector", "user_repr": "embedding"}, "models.gf.user_repr", "embedding"),
        ({"task": "rating", "loss": "bce"}, "models.gf.loss", "bce"),
        ({"batching": "items"}, "models.gf.batching", "items"),
        ({"fusion": "sum"}, "models.gf.fusion", "sum"),
        ({"loss": "bce", "output_activation": "identity"}, "models.gf.output_activation", "identity"),
        ({"fixed_h": True, "prediction": "nonlinear"}, "models.gf.fixed_h", "prediction nonlinear"),
        ({"fixed_h": True, "fusion": "concat", "prediction": "mlp"}, "models.gf.fixed_h", "fusion concat"),
    ],
)
def test_impossible_combinations_are_refused(raw: dict, param: str, found: str) -> None:
    data = tiny_run_data("ranking")
    with pytest.raises(ConfigError) as err:
        build_model("gf", raw, data.ctx)
    assert err.value.param == param and found in str(err.value)


def test_rating_task_on_implicit_feedback_is_refused() -> None:
    data = tiny_run_data("ranking")
    data.ctx.implicit = True
    with pytest.raises(ConfigError, match=r"models\.gf\.task"):
        build_model("gf", {"task": "rating"}, data.ctx)


def test_user_vector_input_refuses_evaluated_users_without_training_rows() -> None:
    data = tiny_run_data("ranking")
    ctx = data.ctx
    keep = ctx.users != 7  # user 7 loses every training interaction
    ctx.users, ctx.items, ctx.ratings = ctx.users[keep], ctx.items[keep], ctx.ratings[keep]
    model = build_model("gf", {"user_input": "vector", "user_repr": "linear"}, ctx)
    model.check_eval_users(np.array([1, 2]))  # users with training rows: fine
    with pytest.raises(ConfigError) as err:
        model.check_eval_users(np.array([1, 7]))
    assert err.value.param == "models.gf.user_input" and "user 7" in str(err.value)
    build_model("gf", {}, ctx).check_eval_users(np.array([7]))  # an id input scores any user
