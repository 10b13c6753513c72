"""Model-level checks on small synthetic data: sparse layers, masking, cold-start fallback, learning."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.common.context import TrainContext
from models.common.registry import get_model_class, model_names
from models.common.sparse import SparseLinear, SparseRows
from tasks.training import build_model


def tiny_context(n_users: int = 30, n_items: int = 40, seed: int = 0, side: bool = True) -> TrainContext:
    rng = np.random.default_rng(seed)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, n_users - 1, 400), rng.integers(0, n_items - 1, 400))}
    users, items = map(np.asarray, zip(*sorted(pairs)))  # user n_users-1 and item n_items-1 stay cold
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    ctx = TrainContext(n_users, n_items, users.astype(np.int64), items.astype(np.int64), ratings, (1.0, 5.0))
    if side:
        ctx.user_side = {
            "bow": sp.csr_matrix((rng.random((n_users, 12)) > 0.7).astype(np.float32)),
            "svd": rng.normal(size=(n_users, 4)).astype(np.float32),
        }
        ctx.item_side = {
            "bow": sp.csr_matrix((rng.random((n_items, 15)) > 0.7).astype(np.float32)),
            "svd": rng.normal(size=(n_items, 4)).astype(np.float32),
        }
    return ctx


def test_registry_has_the_foundation_models() -> None:
    assert {"biased-mf", "autorec-i", "autorec-u", "nrp-direct", "pop", "bpr"} <= set(model_names())


def test_sparse_linear_matches_dense_matmul() -> None:
    rng = np.random.default_rng(1)
    dense = (rng.random((7, 11)) > 0.6) * rng.integers(1, 6, (7, 11))
    rows = SparseRows(sp.csr_matrix(dense.astype(np.float32)), torch.device("cpu"))
    layer = SparseLinear(11, 5)
    sel = torch.tensor([3, 0, 6, 3])
    got = layer(*rows.gather(sel))
    want = torch.as_tensor(dense[[3, 0, 6, 3]], dtype=torch.float32) @ layer.weight + layer.bias
    torch.testing.assert_close(got, want)


def test_nrp_direct_masking_equals_removing_the_rating_from_both_inputs() -> None:
    torch.manual_seed(0)
    ctx = tiny_context()
    model = build_model("nrp-direct", {"encoder": [16, 8], "predictor": [8, 4]}, ctx)
    j, k, r = int(ctx.users[5]), int(ctx.items[5]), float(ctx.ratings[5])
    u, i, rt = torch.tensor([j]), torch.tensor([k]), torch.tensor([r])
    masked = model(u, i, rt)
    # rebuild the same weights on a context without that rating
    keep = np.arange(len(ctx.users)) != 5
    ctx2 = TrainContext(
        ctx.n_users,
        ctx.n_items,
        ctx.users[keep],
        ctx.items[keep],
        ctx.ratings[keep],
        (1.0, 5.0),
        user_side=ctx.user_side,
        item_side=ctx.item_side,
    )
    model2 = build_model("nrp-direct", {"encoder": [16, 8], "predictor": [8, 4]}, ctx2)
    model2.load_state_dict(model.state_dict())
    torch.testing.assert_close(masked, model2(u, i))
    assert not torch.allclose(masked, model(u, i))  # unmasked input does see R_jk


def test_autorec_predicts_default_for_cold_users_and_items() -> None:
    ctx = tiny_context(side=False)
    model = build_model("autorec-i", {"hidden": [8], "default_rating": 3.0}, ctx)
    cold_u, cold_i = ctx.n_users - 1, ctx.n_items - 1
    pred = model.predict(np.array([cold_u, 0]), np.array([0, cold_i]))
    assert pred.tolist() == [3.0, 3.0]


def test_state_dict_round_trip_with_weights_only(tmp_path) -> None:  # type: ignore[no-untyped-def]
    ctx = tiny_context()
    model = build_model("nrp-direct", {"encoder": [16, 8], "predictor": [8, 4]}, ctx)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    other = build_model("nrp-direct", {"encoder": [16, 8], "predictor": [8, 4]}, ctx)
    other.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    u, i = np.array([0, 1]), np.array([2, 3])
    np.testing.assert_array_equal(model.predict(u, i), other.predict(u, i))


def test_config_classes_reject_unknown_keys() -> None:
    from tasks.common.errors import ConfigError

    for name in model_names():
        with pytest.raises(ConfigError, match=f"models.{name}.nonsense"):
            get_model_class(name).config_cls.from_dict({"nonsense": 1}, name)


CUDA_CONFIGS = {
    "biased-mf": {"factors": 4},
    "autorec-i": {"hidden": [8]},
    "autorec-u": {"hidden": [8, 4, 8]},
    "nrp-direct": {"encoder": [16, 8], "predictor": [8, 4], "side": "bow"},  # masking on, BoW sources (sparse)
    "nrp-direct-svd": {"encoder": [16, 8], "predictor": [8, 4], "side": "svd", "input_norm": "sqrt"},
    "nrp-direct-dropout": {"encoder": [16, 8], "predictor": [8, 4], "input_dropout": 0.5, "center": "global"},
}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("variant", sorted(CUDA_CONFIGS))
def test_cuda_matches_cpu(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same weights on CPU and CUDA: predictions, full scoring, one batch's objective and every gradient
    agree to float32 rounding (the CUDA kernels compute the same function). Input-dropout masks are drawn
    on the CPU from one seed for both, so the dropout + masking path is compared too."""
    name = variant.removesuffix("-svd").removesuffix("-dropout")
    cfg = CUDA_CONFIGS[variant]
    models = {}
    for dev in ("cpu", "cuda"):
        ctx = tiny_context()
        ctx.device = torch.device(dev)
        torch.manual_seed(0)
        models[dev] = build_model(name, cfg, ctx)
    cpu, gpu = models["cpu"], models["cuda"]
    gpu.load_state_dict(cpu.state_dict())
    users = np.repeat(np.arange(cpu.n_users), cpu.n_items)
    items = np.tile(np.arange(cpu.n_items), cpu.n_users)
    np.testing.assert_allclose(gpu.predict(users, items), cpu.predict(users, items), rtol=1e-5, atol=1e-5)
    some = np.array([0, 3, cpu.n_users - 1])
    some_t = torch.as_tensor(some)
    np.testing.assert_allclose(
        gpu.score_users(some_t).cpu().numpy(), cpu.score_users(some_t).numpy(), rtol=1e-5, atol=1e-5
    )
    for m in (cpu, gpu):
        m.train()
        m.zero_grad()
    objectives = {}
    cpu_rand = torch.rand
    for dev, m in models.items():
        gen = torch.Generator().manual_seed(1)
        monkeypatch.setattr(
            torch, "rand", lambda *size, device=None, g=gen, **kw: cpu_rand(*size, generator=g).to(device)
        )
        batch = next(iter(m.train_batches(np.random.default_rng(0))))
        objective = m.batch_loss(batch).objective
        objective.backward()
        objectives[dev] = float(objective.detach())
    assert objectives["cuda"] == pytest.approx(objectives["cpu"], rel=1e-5)
    for (pname, pc), pg in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        assert pc.grad is not None and pg.grad is not None, pname
        ref = pc.grad.double()
        err = (pg.grad.double().cpu() - ref).norm() / max(float(ref.norm()), 1e-12)
        assert err < 1e-4, (pname, float(err))
