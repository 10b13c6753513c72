"""The NRP paper's baselines (dssm, accm / accm-mlp, nrp-neumf) and NRP-direct's ID-embedding source, on the
contract test's tiny two-taste-group data with BoW side information that carries the group."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.common.context import TrainContext
from tasks.common.errors import ConfigError
from tasks.training import build_model
from tests.models.test_contract import N_ITEMS, N_USERS, tiny_run_data

SMALL = {
    "dssm": {"encoder": [16, 8], "predictor": [16, 8], "lr": 0.003, "batch_size": 128},
    "accm": {"encoder": [16, 8], "lr": 0.01, "batch_size": 128},
    "accm-mlp": {"encoder": [16, 8], "prediction": "mlp", "predictor": [16, 8], "lr": 0.01, "batch_size": 128},
    "nrp-neumf": {"encoder": [16, 8], "predictor": [16, 8], "factors": 8, "lr": 0.003, "batch_size": 128},
    "nrp-direct-id": {"encoder": [16, 8], "predictor": [16, 8], "id_embedding": 6, "lr": 0.003, "batch_size": 128},
}
VARIANTS = {"accm-mlp": {"base": "accm"}, "nrp-direct-id": {"base": "nrp-direct"}}


def bow(groups: np.ndarray, n_noise: int, seed: int) -> sp.csr_matrix:
    """One token for the taste group, two random tokens out of ``n_noise``."""
    rng = np.random.default_rng(seed)
    x = np.zeros((len(groups), 2 + n_noise), dtype=np.float32)
    x[np.arange(len(groups)), groups] = 1.0
    for row in x:
        row[2 + rng.choice(n_noise, 2, replace=False)] = 1.0
    return sp.csr_matrix(x)


def side_context(user_side: bool = True, item_side: bool = True) -> TrainContext:
    ctx = tiny_run_data("rating").ctx
    if user_side:
        ctx.user_side = {"bow": bow(np.arange(N_USERS) % 2, 9, 1)}
    if item_side:
        ctx.item_side = {"bow": bow(np.arange(N_ITEMS) % 2, 7, 2)}
    return ctx


def build(name: str, ctx: TrainContext, **over: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, {**SMALL.get(name, {}), **over}, ctx, entries=VARIANTS)


def epoch_mses(model: torch.nn.Module, epochs: int) -> list[float]:
    opt = model.make_optimizer()
    rng = np.random.default_rng(0)
    out = []
    for _ in range(epochs):
        model.train()
        total = n = 0.0
        for batch in model.train_batches(rng):
            opt.zero_grad()
            step = model.batch_loss(batch)
            step.objective.backward()
            opt.step()
            total += float(step.logs["mse"]) * step.weight
            n += step.weight
        out.append(total / n)
    return out


@pytest.mark.parametrize("name", sorted(SMALL))
def test_trains_and_scores(name: str) -> None:
    ctx = side_context()
    model = build(name, ctx)
    mses = epoch_mses(model, 8)
    assert mses[-1] < 0.8 * mses[0], mses
    users = np.array([0, 5, N_USERS - 1])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).numpy()
    pairs = model.predict(np.repeat(users, N_ITEMS), np.tile(np.arange(N_ITEMS), 3)).reshape(3, -1)
    np.testing.assert_allclose(full, pairs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("user_side", "item_side", "found"), [(False, True, "user"), (True, False, "item")], ids=["no-user", "no-item"]
)
def test_dssm_refuses_a_dataset_without_side_information(user_side: bool, item_side: bool, found: str) -> None:
    ctx = side_context(user_side, item_side)
    with pytest.raises(ConfigError, match="not applicable") as err:
        build("dssm", ctx)
    assert err.value.param == "models.dssm.side" and found in err.value.expected
    ctx.user_side = {"bow": sp.csr_matrix((N_USERS, 0), dtype=np.float32)}  # a source with no columns: the same
    with pytest.raises(ConfigError, match="NA"):
        build("dssm", ctx)


def test_dssm_is_content_only() -> None:
    """Two users with the same side vector get the same predictions, whatever they rated."""
    ctx = side_context()
    x = ctx.user_side["bow"].toarray()
    x[1] = x[0]  # users 0 and 1 are in different taste groups and rated different items
    ctx.user_side["bow"] = sp.csr_matrix(x)
    model = build("dssm", ctx)
    epoch_mses(model, 1)
    p = model.predict(np.repeat([0, 1], N_ITEMS), np.tile(np.arange(N_ITEMS), 2)).reshape(2, -1)
    np.testing.assert_array_equal(p[0], p[1])


def test_accm_attention_and_dot_prediction() -> None:
    model = build("accm", side_context())
    epoch_mses(model, 2)
    model.eval()
    users, items = torch.arange(N_USERS), torch.arange(N_USERS) % N_ITEMS
    with torch.no_grad():
        z_u, a_u, cf_u, cb_u = model.side_vectors("user", users)
        z_i, a_i, cf_i, cb_i = model.side_vectors("item", items)
        for z, a, cf, cb in ((z_u, a_u, cf_u, cb_u), (z_i, a_i, cf_i, cb_i)):
            assert a.shape == (len(z), 1) and bool(((a > 0) & (a < 1)).all())
            assert a.std() > 0  # a per user / item, not a constant
            torch.testing.assert_close(z, a * cf + (1 - a) * cb)
        want = (z_u * z_i).sum(-1) + model.user_bias.weight[users, 0] + model.item_bias.weight[items, 0]
        want = want + model.global_bias
        torch.testing.assert_close(model.predict_pairs(users, items), want)
    # cold sampling while training draws from torch's generator: evaluation does not
    torch.testing.assert_close(model.predict_pairs(users, items), model.predict_pairs(users, items))


def test_accm_side_without_features_is_cf_only() -> None:
    model = build("accm", side_context(user_side=False))
    assert model.user_content is None and model.item_content is not None
    users = torch.arange(N_USERS)
    with torch.no_grad():
        z, a, cf, _ = model.side_vectors("user", users)
    torch.testing.assert_close(z, cf)
    assert bool((a == 1).all())
    assert epoch_mses(model, 3)[-1] < epoch_mses(build("accm", side_context(user_side=False)), 1)[0]


def test_accm_aux_loss_and_cold_sampling_switch_off() -> None:
    model = build("accm", side_context(), aux_loss=False, cold_sampling=0.0)
    batch = next(iter(model.train_batches(np.random.default_rng(0))))
    model.train()
    step = model.batch_loss(batch)
    assert set(step.logs) == {"mse"}
    torch.testing.assert_close(step.objective, (model(batch.users, batch.items) - batch.ratings).pow(2).mean())
    with_aux = build("accm", side_context())
    assert {"mse", "mse_cf", "mse_content"} <= set(with_aux.batch_loss(batch).logs)


def test_nrp_neumf_fuses_deep_and_gmf_branches() -> None:
    model = build("nrp-neumf", side_context())
    epoch_mses(model, 1)
    model.eval()
    users, items = torch.arange(N_USERS), torch.arange(N_USERS) % N_ITEMS
    with torch.no_grad():
        deep = model.predictor(model.pair_representations(users, items))
        gmf = model.user_gmf(users) * model.item_gmf(items)
        want = torch.cat([deep, gmf], -1) @ model.out.weight[0] + model.out.bias
        torch.testing.assert_close(model.predict_pairs(users, items), want)
    assert model.out.in_features == 16 // 2 + 8  # predictor[-1] + factors


def test_nrp_direct_id_embedding() -> None:
    ctx = side_context()
    plain = build("nrp-direct", ctx, **{**SMALL["nrp-direct-id"], "id_embedding": 0})
    with_id = build("nrp-direct-id", ctx)
    d = 6
    extra = set(with_id.state_dict()) - set(plain.state_dict())
    assert extra == {"user_id.weight", "item_id.weight"}
    assert with_id.user_id.weight.shape == (N_USERS, d) and with_id.item_id.weight.shape == (N_ITEMS, d)
    width = plain.predictor[0].out_features
    assert with_id.n_parameters() - plain.n_parameters() == (N_USERS + N_ITEMS) * d + 2 * d * width
    # id_embedding 0 adds nothing: no parameter, no random draw (the same initial weights as before the option)
    assert list(plain.state_dict()) == [k for k in with_id.state_dict() if k not in extra]
    again = build("nrp-direct", ctx, **{k: v for k, v in SMALL["nrp-direct-id"].items() if k != "id_embedding"})
    for key, value in plain.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    # z_j = [rating, side, ID] and z_k likewise: zero ID columns in the first prediction layer → plain's outputs
    enc, first = SMALL["nrp-direct-id"]["encoder"][-1], "predictor.0.weight"
    state = {k: v.clone() for k, v in plain.state_dict().items()}
    w = state[first]
    zeros = torch.zeros(w.shape[0], d)
    state[first] = torch.cat([w[:, : 2 * enc], zeros, w[:, 2 * enc :], zeros], 1)
    state["user_id.weight"], state["item_id.weight"] = with_id.user_id.weight, with_id.item_id.weight
    with_id.load_state_dict(state)
    users, items = np.repeat(np.arange(N_USERS), 4), np.tile(np.arange(4), N_USERS)
    np.testing.assert_allclose(with_id.predict(users, items), plain.predict(users, items), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("dssm", "side", "none"),
        ("dssm", "encoder", []),
        ("dssm", "activation", "swish"),
        ("accm", "prediction", "cosine"),
        ("accm", "side", "tags"),
        ("accm", "attention", 0),
        ("accm", "cold_sampling", 1.0),
        ("accm", "init_std", 0.0),
        ("accm-mlp", "predictor", [8, 0]),
        ("nrp-neumf", "factors", 0),
        ("nrp-neumf", "init_std", -1.0),
        ("nrp-neumf", "encoder", [16, -8]),
        ("nrp-direct", "id_embedding", -1),
        ("nrp-direct", "activation", "swish"),
        ("nrp-direct-id", "id_embedding", -5),
    ],
)
def test_bad_config_values_name_the_parameter(name: str, key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        build(name, side_context(), **{key: value})
    assert err.value.param == f"models.{name}.{key}"
