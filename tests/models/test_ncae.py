"""NCAE's specifics (models/autoencoders/ncae.py): Eq. 5 and Eq. 11 against hand computations, Eq. 10's confidences,
input dropout only on observed entries, the layer-wise pre-training stages (frozen layers get no gradient, warm-up
epochs, the epoch count in the state dict), the sparsity-aware augmentation, config errors, and the implicit
setting trained on tiny implicit data beating POP."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.autoencoders.ncae import NCAE, augmented_rows, parse_pretrain
from models.common.registry import get_model_class
from tasks.common.device import seed_everything
from tasks.common.errors import ConfigError
from tasks.training import build_model, fit
from tests.models.test_contract import baseline, tiny_run_data


def _model(task: str = "rating", **cfg: object) -> NCAE:
    seed_everything(0)
    model = build_model("ncae", dict(cfg), tiny_run_data(task).ctx)
    assert isinstance(model, NCAE)
    return model


@pytest.mark.parametrize("loss_norm", ["vector", "rating"])
def test_explicit_loss_is_eq5_by_hand(loss_norm: str) -> None:
    """vector: Eq. 5 (each vector's errors over its |K(u)|); rating: every rating alike, over the batch's mean
    |K(u)| (the same total weight, so the same scale on average)."""
    model = _model(hidden=[4, 3], alpha=0.7, beta=1.3, pretrain="none", loss_norm=loss_norm)
    vec_ids = torch.tensor([0, 5])
    cols, _, vals, row_of = model.rows.gather_with_rows(vec_ids)
    kept = torch.arange(len(vals)) % 3 != 0  # entries 0, 3, 6 ... dropped (C)
    h = torch.randn(2, 3)
    got = model._supervised(h, model.out, cols, vals, row_of, kept, 2)
    lo, hi = model.rating_scale
    want = 0.0
    for r in range(2):
        sel = (row_of == r).numpy()
        c, v, k = cols.numpy()[sel], vals.numpy()[sel], kept.numpy()[sel]
        z = model.out.weight.detach().numpy()[c] @ h[r].numpy() + model.out.bias.detach().numpy()[c]
        pred = (lo + hi) / 2 + (hi - lo) / 2 * np.tanh(z)
        per = len(c) if loss_norm == "vector" else len(vals) / 2  # |K(u)|, or the batch's mean |K(u)|
        w = np.where(k, 1.3, 0.7) / per  # β on kept (K \ C), α on dropped (C ∩ K)
        want += float((w * (pred - v) ** 2).sum())
    assert float(got.detach()) == pytest.approx(want / 2, rel=1e-5)


def test_implicit_loss_is_eq11_by_hand_and_confidences_are_eq10() -> None:
    model = _model("ranking", setting="implicit", hidden=[5], c0=8.0, omega=0.5)
    counts = model.ctx.item_counts.astype(np.float64)
    f = counts / counts.sum()
    np.testing.assert_allclose(model.confidence.numpy(), 8.0 * f**0.5 / (f**0.5).sum(), rtol=1e-6)
    assert float(model.confidence.sum()) == pytest.approx(8.0, rel=1e-5)
    vec_ids = torch.tensor([1, 2, 7])
    cols, _, vals, row_of = model.rows.gather_with_rows(vec_ids)
    h = torch.randn(3, 5)
    got = model._supervised(h, model.out, cols, vals, row_of, torch.ones_like(vals, dtype=torch.bool), 3)
    out = np.tanh(h.numpy() @ model.out.weight.detach().numpy().T + model.out.bias.detach().numpy())
    known = np.zeros_like(out, dtype=bool)
    known[row_of.numpy(), cols.numpy()] = True
    c = model.confidence.numpy()[None, :]
    want = ((out - 1) ** 2 * known).sum() + (c * out**2 * ~known).sum()
    assert float(got.detach()) == pytest.approx(want / 3, rel=1e-5)


def test_input_dropout_touches_only_observed_entries() -> None:
    model = _model(hidden=[4, 3], pretrain="none", input_dropout=0.5, l2=0.0)  # no weight decay on every row
    model.train_batches(np.random.default_rng(0)).__next__()  # sets the stage (fine-tuning)
    vec_ids = torch.tensor([3])
    cols, _, _, _ = model.rows.gather_with_rows(vec_ids)
    torch.manual_seed(1)
    model.batch_loss(vec_ids).objective.backward()
    assert model.first.weight.grad is not None
    touched = set(np.flatnonzero(model.first.weight.grad.abs().sum(1).numpy() > 0))
    # only rows of observed inputs, and not all of them: some were dropped
    assert touched and touched < set(cols.numpy())
    # prediction uses the uncorrupted vector: deterministic
    model.eval()
    a = model.predict(np.array([0, 1, 2]), np.array([3, 3, 3]))
    b = model.predict(np.array([0, 1, 2]), np.array([3, 3, 3]))
    np.testing.assert_array_equal(a, b)


def test_pretraining_stages_freeze_layers_and_warm_up() -> None:
    model = _model(hidden=[4, 3], pretrain="S+U+S", pretrain_epochs=1)
    assert model.stages == [("S", 0), ("U", 1), ("V", 2)]
    assert "epochs_done" in model.state_dict()
    rng = np.random.default_rng(0)
    trained = {0: ["first", "decoders.S0"], 1: ["layers.0", "decoders.U1"], 2: ["out"], 3: ["first", "layers", "out"]}
    for epoch in range(4):
        batches = model.train_batches(rng)
        batch = next(batches)
        model.zero_grad(set_to_none=True)
        model.batch_loss(batch).objective.backward()
        with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
        assert with_grad and all(any(n.startswith(t) for t in trained[epoch]) for n in with_grad), (epoch, with_grad)
        assert model.warming_up() == (epoch < 3)
        assert int(model.epochs_done) == epoch + 1


def test_pretrain_strings_follow_fig5() -> None:
    assert parse_pretrain("auto", True, 2, "p") == [("S", 0), ("U", 1), ("V", 2)]
    assert parse_pretrain("auto", False, 1, "p") == []
    assert parse_pretrain("S+U", True, 2, "p") == [("S", 0), ("U", 1)]
    assert parse_pretrain("S+S", True, 2, "p") == [("S", 0), ("S", 1)]
    assert parse_pretrain("U+S", True, 2, "p") == [("U", 0), ("S", 1)]
    assert parse_pretrain("S+S", True, 1, "p") == [("S", 0), ("V", 1)]  # one hidden layer: SR then V
    with pytest.raises(ConfigError, match=r"models\.x\.pretrain"):
        parse_pretrain("S+U+S", True, 1, "models.x.pretrain")
    with pytest.raises(ConfigError, match=r"models\.x\.pretrain"):
        parse_pretrain("S+U", True, 1, "models.x.pretrain")  # the output layer's stage must be supervised


def test_augmentation_drops_the_most_popular_items_of_sparse_users() -> None:
    m = sp.csr_matrix(np.array([[1, 1, 1, 1, 0, 0], [1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=np.float32))
    pop = np.array([5, 9, 1, 9, 0, 0])
    out = augmented_rows(m, pop, eps=0.9, p=0.5).toarray()
    # row 0 (4/6 < 0.9): drops ⌊0.5·4⌋ = 2 most popular (items 1 and 3, tie → lower index first)
    # row 1 (1/6): drops ⌊0.5⌋ = 0 (an identical copy); row 2 (6/6) is not sparse
    np.testing.assert_array_equal(out, [[1, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0]])
    model = _model("ranking", setting="implicit", hidden=[4], augment=True, aug_eps=0.3, aug_p=0.8)
    assert model.n_augmented == model.n_users  # tiny users have 11-12 of 48 items: all under 0.3
    assert model.rows.shape[0] == 2 * model.n_users


@pytest.mark.parametrize(
    ("task", "raw", "param"),
    [
        ("rating", {"pretrain": "S+X"}, r"models\.ncae\.pretrain.*S\+U\+S \| S\+U \| S\+S \| U\+U \| U\+S \| none"),
        ("ranking", {"setting": "implicit", "augment": True, "aug_eps": 0.0}, r"models\.ncae\.aug_eps"),
        ("ranking", {"setting": "implicit", "augment": True, "aug_eps": 1.5}, r"models\.ncae\.aug_eps"),
        ("ranking", {"setting": "implicit", "augment": True, "aug_p": 1.0}, r"models\.ncae\.aug_p"),
        ("ranking", {"setting": "implicit", "aug_p": -0.1}, r"models\.ncae\.aug_p"),
        ("rating", {"setting": "sideways"}, r"models\.ncae\.setting.*auto \| explicit \| implicit"),
        ("rating", {"loss_norm": "user"}, r"models\.ncae\.loss_norm.*vector \| rating"),
        ("rating", {"augment": True}, r"models\.ncae\.augment.*explicit setting"),
        ("rating", {"hidden": [8], "pretrain": "S+U+S"}, r"models\.ncae\.pretrain"),
        ("rating", {"input_dropout": 1.0}, r"models\.ncae\.input_dropout"),
        ("rating", {"l2": -0.5}, r"models\.ncae\.l2"),
        ("rating", {"pretrain_epochs": 5, "max_epochs": 15}, r"models\.ncae\.max_epochs"),
    ],
)
def test_bad_config_names_the_parameter(task: str, raw: dict, param: str) -> None:
    with pytest.raises(ConfigError, match=param):
        build_model("ncae", raw, tiny_run_data(task).ctx)


def test_explicit_output_on_implicit_data_is_refused() -> None:
    ctx = tiny_run_data("ranking").ctx
    ctx.implicit = True
    with pytest.raises(ConfigError, match=r"models\.ncae\.setting.*implicit or auto"):
        build_model("ncae", {"setting": "explicit"}, ctx)


def test_task_and_defaults_follow_the_setting() -> None:
    cls = get_model_class("ncae")
    assert cls.task_of({"setting": "implicit"}) == "ranking"
    assert cls.task_of({}) == "rating" and cls.task_of({"setting": "explicit"}) == "rating"
    exp = _model()
    assert exp.explicit and exp.item_based and exp.hidden == (500, 500) and exp.l2 == 2e-4
    assert len(exp.stages) == 3 and exp.n_warm == 30
    ctx = tiny_run_data("ranking").ctx
    ctx.implicit = True
    imp = build_model("ncae", {}, ctx)
    assert isinstance(imp, NCAE)
    assert not imp.explicit and not imp.item_based and imp.hidden == (128,) and imp.l2 == 0.01 and imp.stages == []


@pytest.mark.parametrize("augment", [False, True])
def test_implicit_setting_beats_pop_and_scores_consistently(augment: bool, tmp_path: Path) -> None:
    data = tiny_run_data("ranking")
    seed_everything(0)
    cfg = {"setting": "implicit", "hidden": [16], "lr": 0.01, "batch_size": 16, "augment": augment, "aug_eps": 0.3}
    model = build_model("ncae", cfg, data.ctx)
    result = fit(model, data, seed=0, max_epochs=12, patience=100, best_path=tmp_path / "a.pt", resume_path=None,
                 fp="t", progress=lambda s: None)  # fmt: skip
    assert result.best_value > baseline(data)
    users = np.array([0, 7, 59])
    with model.scoring():
        full = model.score_users(torch.as_tensor(users)).cpu().numpy()
    pairs = model.predict(np.repeat(users, 48), np.tile(np.arange(48), 3)).reshape(3, -1)
    np.testing.assert_allclose(full, pairs, rtol=1e-5, atol=1e-5)
