"""Mult-VAE: the L2-normalised sparse input, the multinomial likelihood against a dense reference, the KL annealing
schedule and its step counter, dropout/sampling only while training, the loss falls, a resumed run is identical,
bad config values."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.common.context import TrainContext
from tasks.common.errors import ConfigError
from tasks.training import build_model

SMALL = {"hidden": [16], "latent": 4, "batch_size": 8, "lr": 0.01}


def implicit_context(n_users: int = 30, n_items: int = 20, seed: int = 0) -> TrainContext:
    """Two taste groups; the last user has no training interaction."""
    rng = np.random.default_rng(seed)
    group_u, group_i = np.arange(n_users) % 2, np.arange(n_items) % 2
    dense = rng.random((n_users, n_items)) < np.where(group_u[:, None] == group_i[None, :], 0.6, 0.05)
    dense[-1] = False
    dense[0, :3] = True
    users, items = np.nonzero(dense)
    return TrainContext(n_users, n_items, users.astype(np.int64), items.astype(np.int64),
                        np.ones(len(users), np.float32), (1.0, 1.0), implicit=True)  # fmt: skip


def dense_rows(ctx: TrainContext) -> np.ndarray:
    x = np.zeros((ctx.n_users, ctx.n_items), np.float32)
    x[ctx.users, ctx.items] = 1.0
    return x


def build(ctx: TrainContext, **over: object):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build_model("multvae", {**SMALL, **over}, ctx)


def test_input_is_l2_normalised_and_dropout_only_while_training() -> None:
    ctx = implicit_context()
    model = build(ctx)
    users = torch.arange(ctx.n_users)
    cols, offsets, vals, row_of = model.normalized_input(users)
    x = dense_rows(ctx)
    n_u = x.sum(1)
    np.testing.assert_allclose(vals.numpy(), 1.0 / np.sqrt(n_u[row_of.numpy()]), rtol=1e-6)
    norms = torch.zeros(ctx.n_users).index_add_(0, row_of, vals**2).sqrt().numpy()
    np.testing.assert_allclose(norms[n_u > 0], 1.0, rtol=1e-6)
    assert norms[-1] == 0.0  # an empty row stays zero, no NaN
    # the encoder equals the dense first layer on x / ‖x‖ (no dropout at evaluation)
    mu, logvar = model.encode(cols, offsets, vals, training=False)
    xn = torch.as_tensor(x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12))
    h = torch.tanh(xn @ model.enc_in.weight + model.enc_in.bias)
    want = model.enc[0](h)
    torch.testing.assert_close(torch.cat([mu, logvar], 1), want, rtol=1e-5, atol=1e-6)
    # evaluation: deterministic; training: dropout changes the code
    torch.testing.assert_close(model.encode(cols, offsets, vals, training=False)[0], mu)
    assert not torch.allclose(model.encode(cols, offsets, vals, training=True)[0], mu)


def test_multinomial_likelihood_and_kl_equal_the_dense_reference() -> None:
    ctx = implicit_context()
    model = build(ctx)
    model.eval()  # z = μ: the loss is deterministic
    users = torch.tensor([0, 5, 7, ctx.n_users - 1])
    step = model.batch_loss(users)
    x = torch.as_tensor(dense_rows(ctx))[users]
    cols, offsets, vals, _ = model.normalized_input(users)
    mu, logvar = model.encode(cols, offsets, vals, training=False)
    logits = model.dec[1](torch.tanh(model.dec[0](mu)))
    nll = -(F.log_softmax(logits, -1) * x).sum(1).mean()
    kl = (0.5 * (-logvar + logvar.exp() + mu**2 - 1)).sum(1).mean()
    torch.testing.assert_close(step.logs["nll"], nll.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(step.logs["kl"], kl.detach(), rtol=1e-5, atol=1e-6)
    assert step.weight == 4
    # scores are the decoder logits at z = μ, equal for score_users and predict
    with model.scoring():
        full = model.score_users(users)
    torch.testing.assert_close(full, logits.detach())
    pairs = model.predict(np.repeat(users.numpy(), ctx.n_items), np.tile(np.arange(ctx.n_items), 4))
    np.testing.assert_allclose(pairs.reshape(4, -1), full.numpy(), rtol=1e-5, atol=1e-5)


def test_kl_annealing_schedule_and_step_counter() -> None:
    ctx = implicit_context()
    model = build(ctx, anneal_steps=10, beta_cap=0.2)
    model.train()
    betas = [float(model.batch_loss(torch.tensor([0, 1])).logs["beta"]) for _ in range(5)]
    np.testing.assert_allclose(betas, [0.0, 0.1, 0.2, 0.2, 0.2], atol=1e-7)  # min(cap, step / steps), step 0 first
    assert int(model.steps) == 5
    model.eval()
    model.batch_loss(torch.tensor([0, 1]))
    assert int(model.steps) == 5  # evaluation does not advance the schedule
    model = build(ctx, anneal_steps=200000)
    model.steps.fill_(100000)
    assert float(model.beta()) == pytest.approx(0.2) and float(build(ctx).beta()) == 0.0
    model.steps.fill_(30000)
    assert float(model.beta()) == pytest.approx(0.15)
    assert float(build(ctx, anneal_steps=0, beta_cap=0.3).beta()) == pytest.approx(0.3)
    assert "steps" in model.state_dict()


def train_epochs(model, opt, rng: np.random.Generator, epochs: int) -> list[float]:  # type: ignore[no-untyped-def]
    means = []
    for _ in range(epochs):
        model.train()
        total, n = 0.0, 0
        for batch in model.train_batches(rng):
            opt.zero_grad()
            step = model.batch_loss(batch)
            step.objective.backward()
            opt.step()
            total, n = total + float(step.logs["nll"]) * step.weight, n + step.weight
        means.append(total / n)
    return means


def test_loss_decreases() -> None:
    ctx = implicit_context(60, 30, seed=1)
    model = build(ctx, anneal_steps=50)
    model.eval()
    everyone = torch.arange(ctx.n_users - 1)
    before = float(model.batch_loss(everyone).logs["nll"])
    means = train_epochs(model, model.make_optimizer(), np.random.default_rng(0), 30)
    model.eval()
    after = float(model.batch_loss(everyone).logs["nll"])
    assert after < 0.9 * before, (before, after)
    assert means[-1] < means[0]
    assert int(model.steps) == 30 * 8  # 59 active users in batches of 8


def test_resumed_run_is_identical() -> None:
    ctx = implicit_context()
    torch.manual_seed(0)
    ref = build(ctx, anneal_steps=7)
    torch.manual_seed(1)
    train_epochs(ref, ref.make_optimizer(), np.random.default_rng(3), 3)

    torch.manual_seed(0)
    first = build(ctx, anneal_steps=7)
    opt, rng = first.make_optimizer(), np.random.default_rng(3)
    torch.manual_seed(1)
    train_epochs(first, opt, rng, 1)
    buf = io.BytesIO()
    torch.save({"model": first.state_dict(), "opt": opt.state_dict(), "torch": torch.get_rng_state()}, buf)
    rng_state = rng.bit_generator.state
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    torch.manual_seed(123)
    resumed = build(ctx, anneal_steps=7)
    resumed.load_state_dict(saved["model"])
    opt2 = resumed.make_optimizer()
    opt2.load_state_dict(saved["opt"])
    torch.set_rng_state(saved["torch"])
    rng2 = np.random.default_rng(0)
    rng2.bit_generator.state = rng_state
    train_epochs(resumed, opt2, rng2, 2)
    assert int(resumed.steps) == int(ref.steps) > 0
    for (name, a), (_, b) in zip(ref.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize(
    ("key", "value"),
    [("latent", 0), ("dropout", 1.0), ("dropout", -0.1), ("beta_cap", -0.1), ("anneal_steps", -1), ("hidden", [0]),
     ("hidden", []), ("lr", 0.0), ("batch_size", 0)],
)  # fmt: skip
def test_bad_config_values_name_the_parameter(key: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        build_model("multvae", {key: value}, implicit_context())
    assert err.value.param == f"models.multvae.{key}"
