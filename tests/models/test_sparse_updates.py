"""``sparse_updates`` (models/common/sparse_optim.py): the sparse path computes the dense path's loss and
gradients, a step moves only the touched rows, the lazy regulariser / decay weights, determinism, the optimizer
state's checkpoint round trip, and the config errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from models.common.context import TrainContext
from models.common.sparse_optim import LazyAdam, steps_per_touch
from models.common.torch7_sgd import Torch7SGD
from tasks.common.errors import ConfigError
from tasks.training import build_model
from tasks.training.loop import _epoch

N_U, N_I = 30, 20


def ctx(implicit: bool = False) -> TrainContext:
    rng = np.random.default_rng(0)
    pairs = rng.choice(N_U * N_I, 150, replace=False)
    users, items = (pairs // N_I).astype(np.int64), (pairs % N_I).astype(np.int64)
    ratings = np.ones(len(pairs), np.float32) if implicit else rng.integers(1, 6, len(pairs)).astype(np.float32)
    c = TrainContext(N_U, N_I, users, items, ratings, (1.0, 1.0) if implicit else (1.0, 5.0))
    c.implicit = implicit
    return c


def build(name: str, sparse: bool, implicit: bool = False, **cfg: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, {"hidden": [6], "sparse_updates": sparse, **cfg}, ctx(implicit))


def first_batch(m: torch.nn.Module) -> object:
    return next(iter(m.train_batches(np.random.default_rng(3))))


def grads(m: torch.nn.Module) -> dict[str, torch.Tensor]:
    named = [(n, p.grad) for n, p in m.named_parameters() if p.grad is not None]
    return {n: (g.to_dense() if g.is_sparse else g) for n, g in named}


CASES = [
    ("autorec-i", {"l2": 0.0}),
    ("autorec-u", {"l2": 0.0}),
    ("cfn-i", {}),  # Torch7 SGD: the decay is in the optimizer, the objective is Eq. 1 alone
    ("cfn-u", {"hidden": [6, 4], "masking": 0.5}),
    ("ncae", {"pretrain": "none", "l2": 0.0}),
]


@pytest.mark.parametrize(("name", "cfg"), CASES)
def test_sparse_path_gives_the_dense_loss_and_gradients(name: str, cfg: dict) -> None:
    out = []
    for sparse in (False, True):
        m = build(name, sparse, **cfg)
        m.train()
        torch.manual_seed(5)  # NCAE's dropout draw
        step = m.batch_loss(first_batch(m))
        step.objective.backward()
        out.append((step.objective.detach(), grads(m), m))
    (l0, g0, _), (l1, g1, m1) = out
    torch.testing.assert_close(l1, l0)
    assert g0.keys() == g1.keys()
    for k in g0:
        torch.testing.assert_close(g1[k], g0[k], msg=k)
    wide = [p for p in m1.parameters() if p.grad is not None and p.grad.is_sparse]
    assert len(wide) == 2  # the first layer and the decoder rows


def test_lazy_regulariser_is_the_weighted_touched_rows() -> None:
    dense, sparse = build("autorec-i", False, l2=2.0), build("autorec-i", True, l2=2.0)
    vec = first_batch(sparse)
    l2_free = build("autorec-i", True, l2=0.0)
    cols, _, _, _ = sparse.rows.gather_with_rows(vec)
    rows = torch.unique(cols)
    m = sparse.row_steps[rows]
    by_hand = (m * (sparse.encoder.weight[rows].pow(2).sum(1) + sparse.dec_w[rows].pow(2).sum(1))).sum()
    share = len(vec) / len(sparse._active)
    got = sparse.batch_loss(vec).objective - l2_free.batch_loss(vec).objective
    torch.testing.assert_close(got, 0.5 * 2.0 * share * by_hand)
    assert dense.row_steps is None and sparse.row_steps is not None


def test_steps_per_touch_by_hand() -> None:
    # 4 vectors, batches of 2 (2 steps): a column in 1 vector is touched once (m = 2), in all 4 twice (m = 1),
    # in 2 vectors by a batch with probability 1 − C(2,2)/C(4,2) = 5/6, 5/3 times (m = 1.2); unused: 1
    m = steps_per_touch(np.array([1, 4, 2, 0]), 4, 2)
    np.testing.assert_allclose(m, [2.0, 1.0, 1.2, 1.0])
    # a shorter last batch: 5 vectors, batches 2, 2, 1; a column in 1 vector is touched exactly once (m = 3)
    np.testing.assert_allclose(steps_per_touch(np.array([1, 5]), 5, 2), [3.0, 1.0])
    # one batch larger than the epoch: every used column is touched by the only step
    np.testing.assert_allclose(steps_per_touch(np.array([1, 3, 0]), 3, 64), [1.0, 1.0, 1.0])


@pytest.mark.parametrize(("name", "cfg"), [("autorec-i", {}), ("cfn-i", {}), ("ncae", {"pretrain": "none"})])
def test_a_step_moves_only_the_touched_rows(name: str, cfg: dict) -> None:
    m = build(name, True, batch_size=2, **cfg)
    opt = m.make_optimizer()
    m.train()
    batch = first_batch(m)
    vec = batch[0] if isinstance(batch, tuple) else batch
    touched = torch.unique(m.rows.gather_with_rows(vec)[0])
    wide = {n: p for n, p in m.named_parameters() if p.dim() == 2 and p.shape[0] == m.dim and p.shape[1] > 1}
    before = {n: p.detach().clone() for n, p in wide.items()}
    opt.zero_grad(set_to_none=True)
    m.batch_loss(batch).objective.backward()
    opt.step()
    untouched = torch.ones(m.dim, dtype=torch.bool)
    untouched[touched] = False
    assert untouched.any() and len(wide) >= 2
    for n, p in wide.items():
        assert torch.equal(p.detach()[untouched], before[n][untouched]), n
        assert not torch.equal(p.detach()[touched], before[n][touched]), n


@pytest.mark.parametrize(("name", "cfg"), [("autorec-i", {}), ("cfn-u", {}),
                                         ("ncae", {"hidden": [6, 6], "pretrain_epochs": 1})])  # S, U, V stages
def test_sparse_training_is_deterministic_and_resumes_from_a_checkpoint(name: str, cfg: dict) -> None:
    def run(epochs: int, resume: bytes | None = None) -> tuple[bytes, torch.nn.Module]:
        m = build(name, True, **cfg)
        opt = m.make_optimizer()
        rng = np.random.default_rng(1)
        torch.manual_seed(2)
        if resume is not None:
            state = torch.load(io.BytesIO(resume), weights_only=True)
            m.load_state_dict(state["model"])
            opt.load_state_dict(state["opt"])
            rng.bit_generator.state = state["rng"]
            torch.set_rng_state(state["torch_rng"])
        for _ in range(epochs):
            _epoch(m, opt, rng)
        buf = io.BytesIO()
        torch.save({"model": m.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state()}, buf)  # fmt: skip
        return buf.getvalue(), m

    full, m_full = run(3)
    again, _ = run(3)
    assert full == again  # bit-identical bytes
    first, _ = run(1)
    _, m_resumed = run(2, resume=first)
    for (k, a), (_, b) in zip(m_full.state_dict().items(), m_resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_lazy_adam_equals_adam_when_every_row_is_touched() -> None:
    torch.manual_seed(0)
    w0 = torch.randn(5, 3)
    a, b = torch.nn.Parameter(w0.clone()), torch.nn.Parameter(w0.clone())
    opt_a, opt_b = torch.optim.Adam([a], lr=0.1), LazyAdam([b], lr=0.1)
    for t in range(3):
        g = torch.randn(5, 3) * (t + 1)
        a.grad = g.clone()
        b.grad = g.to_sparse(1)  # every row present
        opt_a.step()
        opt_b.step()
        torch.testing.assert_close(b.detach(), a.detach())
    # a row missing from the gradient keeps its value and moments (lazy)
    b.grad = torch.sparse_coo_tensor(torch.tensor([[0, 2]]), torch.ones(2, 3), (5, 3), check_invariants=True)
    before = b.detach().clone()
    m_before = opt_b.state[b]["exp_avg"].clone()
    opt_b.step()
    assert torch.equal(b.detach()[1], before[1]) and torch.equal(opt_b.state[b]["exp_avg"][1], m_before[1])
    assert not torch.equal(b.detach()[0], before[0])


def test_torch7_sparse_step_decays_touched_rows_by_row_steps() -> None:
    p = torch.nn.Parameter(torch.ones(3, 2))
    opt = Torch7SGD([p], lr=0.5, weight_decay=0.2, row_steps=torch.tensor([1.0, 2.0, 4.0]))
    # row 2 twice in the gradient: summed
    p.grad = torch.sparse_coo_tensor(torch.tensor([[1, 2, 2]]), torch.ones(3, 2), (3, 2), check_invariants=True)
    opt.step()
    decay = 1 - 0.5 * 0.2
    expected = torch.tensor([[1.0, 1.0], [decay**2 - 0.5] * 2, [decay**4 - 1.0] * 2])
    torch.testing.assert_close(p.detach(), expected)


def test_config_choices_and_errors() -> None:
    assert build("autorec-i", True).sparse and not build("autorec-i", False).sparse
    assert not build_model("autorec-i", {"hidden": [4], "sparse_updates": "auto"}, ctx()).sparse  # 30 rows < AUTO
    with pytest.raises(ConfigError) as e:
        build_model("autorec-i", {"sparse_updates": "maybe"}, ctx())
    assert "models.autorec-i.sparse_updates" in str(e.value) and "false | true | auto" in str(e.value)
    for name, opt in (("autorec-i", "rmsprop"), ("autorec-i", "lbfgs"), ("ncae", "rmsprop"), ("cfn-i", "rmsprop")):
        with pytest.raises(ConfigError) as e:
            build_model(name, {"sparse_updates": True, "optimizer": opt}, ctx())
        assert f"models.{name}.sparse_updates" in str(e.value) and "adam | sgd | adagrad | sgd-torch7" in str(e.value)
    # auto with an optimizer that has no sparse step stays dense instead of failing
    assert not build_model("autorec-i", {"hidden": [4], "sparse_updates": "auto", "optimizer": "rmsprop"}, ctx()).sparse
