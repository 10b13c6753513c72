"""CFN / CFN++ specifics (Strub et al.): Torch7 SGD semantics, masking noise on known inputs only, Eq. 1 against a
dense hand computation, the mean-centring / rescaling round trip, side information at every layer, the binary
``genres`` source and the config errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.autoencoders.cfn import CFN, masking_draw
from models.common.context import TrainContext
from models.common.torch7_sgd import Torch7SGD
from tasks.common.errors import ConfigError
from tasks.training import build_model
from tasks.training.data import multilabel_sources

# 5 users × 4 items, ratings 1-5; item 3 has no training rating (a cold vector for I-CFN)
USERS = np.array([0, 0, 1, 1, 2, 3, 4, 4, 2], dtype=np.int64)
ITEMS = np.array([0, 1, 0, 2, 1, 0, 1, 2, 2], dtype=np.int64)
RATINGS = np.array([5, 3, 4, 1, 2, 5, 4, 2, 3], dtype=np.float32)


def ctx(side: bool = False) -> TrainContext:
    c = TrainContext(5, 4, USERS, ITEMS, RATINGS, (1.0, 5.0))
    if side:
        c.item_side = {"bow": sp.csr_matrix(np.eye(4, 3, dtype=np.float32)), "svd": np.arange(8.0).reshape(4, 2)}
        c.user_side = {"friends_svd": np.ones((5, 2), dtype=np.float32)}
    return c


def model(name: str = "cfn-i", side: bool = False, **cfg: object) -> CFN:
    torch.manual_seed(0)
    m = build_model(name, {"hidden": [3], **cfg}, ctx(side))
    assert isinstance(m, CFN)
    return m


# --- optimizer --------------------------------------------------------------------------------------------
def test_torch7_sgd_matches_optim_sgd_by_hand() -> None:
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = Torch7SGD([p], lr=0.5, lr_decay=0.3, weight_decay=0.1)  # per-step counter (steps_per_epoch 0)
    x = p.detach().clone()
    for t in range(3):
        opt.zero_grad()
        (p * torch.tensor([2.0, 1.0])).sum().backward()
        opt.step()
        x = x - 0.5 / (1 + t * 0.3) * (torch.tensor([2.0, 1.0]) + 0.1 * x)
        torch.testing.assert_close(p.detach(), x)
    # the counter is in the state: a fresh optimizer loaded from it takes the 4th step at the same rate
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = Torch7SGD([q], lr=0.5, lr_decay=0.3, weight_decay=0.1)
    opt2.load_state_dict(opt.state_dict())
    for o, w in ((opt, p), (opt2, q)):
        o.zero_grad()
        w.sum().backward()
        o.step()
    torch.testing.assert_close(p.detach(), q.detach())


def test_torch7_sgd_epoch_counter_is_the_cfn_codes() -> None:
    # the CFN trainer sets evalCounter = epoch (1-based) before each step
    rates = [Torch7SGD.rate(1.0, 0.5, s, steps_per_epoch=3) for s in range(7)]
    assert rates == pytest.approx([1 / 1.5] * 3 + [1 / 2.0] * 3 + [1 / 2.5])
    assert Torch7SGD.rate(1.0, 0.5, 4, steps_per_epoch=0) == pytest.approx(1 / 3.0)


# --- masking noise and Eq. 1 -----------------------------------------------------------------------------
def test_masking_hides_known_entries_only_and_never_a_whole_vector() -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([1, 1, 1, 200, 0, 3] * 50)
    hidden = masking_draw(lengths, 0.25, rng)
    assert hidden.shape == (lengths.sum(),)  # one draw per KNOWN entry: unknown inputs are not candidates
    row_of = np.repeat(np.arange(len(lengths)), lengths)
    per_row = np.bincount(row_of, weights=hidden, minlength=len(lengths))
    assert np.all(per_row < np.maximum(lengths, 1))  # a vector always keeps an input
    assert abs(hidden[np.repeat(lengths == 200, lengths)].mean() - 0.25) < 0.02
    assert not masking_draw(lengths, 0.0, rng).any()


def test_batch_loss_is_eq1_against_a_dense_hand_computation() -> None:
    m = model(alpha=1.0, beta=0.5, optimizer="sgd-torch7")
    ids = torch.tensor([0, 2])
    cols, _, vals, row_of = m.rows.gather_with_rows(ids)
    hidden = torch.tensor([True, False, False, False, True, False])  # one entry masked in each item
    assert len(cols) == 6
    step = m.batch_loss((ids, hidden))
    # dense: x over users, known mask, x~ with the masked entry zeroed, nn = tanh(V tanh(W x~ + b1) + b2)
    w1, b1 = m.first.weight.detach(), m.first.bias.detach()
    v, b2 = m.dec_w.detach(), m.dec_b.detach()
    total = 0.0
    for r, item in enumerate(ids.tolist()):
        x = torch.zeros(5)
        known = torch.zeros(5, dtype=torch.bool)
        masked = torch.zeros(5, dtype=torch.bool)
        sel = row_of == r
        x[cols[sel]] = vals[sel]
        known[cols[sel]] = True
        masked[cols[sel]] = hidden[sel]
        xt = torch.where(masked, torch.zeros(5), x)
        out = torch.tanh(v @ torch.tanh(xt @ w1 + b1) + b2)
        err = (out - x) ** 2
        total += 1.0 * err[known & masked].sum().item() + 0.5 * err[known & ~masked].sum().item()
        # preprocessing: x = (r - item mean) / 2 on 1-5 stars
        r_item = RATINGS[np.equal(ITEMS, item)]
        users = USERS[np.equal(ITEMS, item)]
        np.testing.assert_allclose(x[users].numpy(), (r_item - r_item.mean()) / 2.0, rtol=1e-6)
    assert step.objective.item() == pytest.approx(total / 2, rel=1e-5)  # mean over the minibatch's vectors
    # no weight term in the objective with sgd-torch7 (weight decay is the optimizer's); with adam it is
    adam = model(optimizer="adam", l2=0.2)
    reg = 0.1 * sum(p.detach().pow(2).sum() for p in (adam.first.weight, adam.first_side, adam.dec_w))  # not biases
    assert adam.batch_loss((ids, hidden)).objective.item() == pytest.approx(total / 2 + reg.item(), rel=1e-5)


def test_train_batches_draw_masks_per_vector_from_the_loop_rng() -> None:
    m = model(batch_size=2)
    a = list(m.train_batches(np.random.default_rng(3)))
    b = list(m.train_batches(np.random.default_rng(3)))
    assert sorted(torch.cat([ids for ids, _ in a]).tolist()) == [0, 1, 2]  # cold item 3 is not trained on
    for (i1, h1), (i2, h2) in zip(a, b, strict=True):
        assert torch.equal(i1, i2) and torch.equal(h1, h2)
        assert len(h1) == int(m.rows.indptr[i1 + 1].sum() - m.rows.indptr[i1].sum())


# --- prediction -------------------------------------------------------------------------------------------
def test_prediction_inverts_the_preprocessing_and_cold_vectors_get_the_global_mean() -> None:
    for name in ("cfn-i", "cfn-u"):
        m = model(name)
        m.eval()
        with torch.no_grad():
            m.dec_w.zero_()
            m.dec_b.zero_()  # nn(x) = 0: the prediction is the vector's mean
            pred = m.predict(np.array([0, 1, 4, 3]), np.array([0, 2, 3, 1]))
        if name == "cfn-i":
            want = [RATINGS[ITEMS == 0].mean(), RATINGS[ITEMS == 2].mean(), RATINGS.mean(), RATINGS[ITEMS == 1].mean()]
        else:
            want = [RATINGS[np.equal(USERS, u)].mean() for u in (0, 1, 4, 3)]
        np.testing.assert_allclose(pred, want, rtol=1e-6)
        with torch.no_grad():
            m.dec_b.fill_(10.0)  # tanh → 1: mean + (5 - 1)/2
            pred = m.predict(np.array([0]), np.array([0]))
        assert pred[0] == pytest.approx(want[0] + 2.0, rel=1e-5)


# --- CFN++ -------------------------------------------------------------------------------------------------
def test_side_vector_enters_the_input_every_hidden_layer_and_the_output() -> None:
    torch.manual_seed(0)
    m = build_model("cfn-i", {"hidden": [4, 3], "side": ["bow", "svd"]}, ctx(side=True))
    assert isinstance(m, CFN) and m.n_side == 5
    assert m.first_side.shape == (5, 4)
    assert m.hidden_layers[0].in_features == 4 + 5
    assert m.dec_w.shape == (5, 3 + 5)  # 5 users out, {h, y} in
    y = m.side_block(torch.arange(4))
    np.testing.assert_array_equal(y.numpy(), np.c_[np.eye(4, 3), np.arange(8.0).reshape(4, 2)])
    z = m.code(torch.tensor([1, 3]))
    torch.testing.assert_close(z[:, 3:], y[[1, 3]])  # the decoder sees y
    # a cold item still gets the global mean (its side vector is not trusted without ratings)
    assert m.predict(np.array([0]), np.array([3]))[0] == pytest.approx(RATINGS.mean())
    # U-CFN++ takes the users' side
    u = build_model("cfn-u", {"hidden": [3], "side": ["friends_svd"]}, ctx(side=True))
    assert isinstance(u, CFN) and u.n_side == 2


def test_a_side_source_the_dataset_lacks_names_the_variant_and_the_choices() -> None:
    entries = {"cfn-i-side": {"base": "cfn-i", "side": ["genres"]}}
    with pytest.raises(ConfigError) as err:
        build_model("cfn-i-side", {"hidden": [3]}, ctx(side=True), entries)
    assert err.value.param == "models.cfn-i-side.side"
    assert err.value.found == "genres"
    assert "bow" in err.value.expected and "svd" in err.value.expected
    with pytest.raises(ConfigError) as err:  # U-CFN reads the USERS' sources
        build_model("cfn-u", {"side": ["svd"]}, ctx(side=True))
    assert err.value.param == "models.cfn-u.side" and "friends_svd" in err.value.expected


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("optimizer", "lbfgsx", "sgd-torch7"),
        ("masking", 1.0, "[0, 1)"),
        ("decay_per", "batch", "epoch"),
        ("hidden", [0], "positive"),
        ("side", ["bow", "bow"], "distinct"),
        ("beta", -1.0, ">= 0"),
    ],
)
def test_bad_config_names_the_parameter_and_the_valid_choices(key: str, value: object, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_model("cfn-i", {key: value}, ctx())
    assert err.value.param == f"models.cfn-i.{key}"
    assert words in err.value.expected


# --- binary genres source ---------------------------------------------------------------------------------
def test_multilabel_sources_are_the_binary_columns_of_the_field() -> None:
    vocab = ["genres=Action", "genres=Drama", "tags=funny", "title=story"]
    bow = sp.csr_matrix(np.array([[1, 0, 3, 1], [1, 1, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    out = multilabel_sources(bow, vocab, ("title:text", "genres:multilabel", "tags:bag"))
    assert list(out) == ["genres"]
    np.testing.assert_array_equal(out["genres"].toarray(), [[1, 0], [1, 1], [0, 0]])


def test_run_data_exposes_genres_after_the_existing_sources(prepared_root: Path) -> None:
    from tasks.common.paths import Layout
    from tasks.training.data import build_run_data

    data = build_run_data(Layout(prepared_root), "ml-100k", "random-80-10-10-s0", torch.device("cpu"))
    keys = list(data.ctx.item_side)
    assert keys[:2] == ["bow", "svd"] and keys[-1] == "genres"
    g = data.ctx.item_side["genres"]
    assert sp.issparse(g) and g.shape[0] == data.ctx.n_items and set(np.unique(g.data)) <= {1.0}
    assert 1 <= g.shape[1] <= 19 and g.nnz > 0


def test_weight_decay_covers_the_weights_and_the_biases_only_when_asked() -> None:
    m = model()
    opt = m.make_optimizer()
    assert isinstance(opt, Torch7SGD)
    wd = {id(p): g["weight_decay"] for g in opt.param_groups for p in g["params"]}
    assert wd[id(m.dec_w)] == m.cfg.l2 and wd[id(m.first.weight)] == m.cfg.l2
    assert wd[id(m.dec_b)] == 0.0 and wd[id(m.first.bias)] == 0.0
    assert len(wd) == len(list(m.parameters()))
    both = model(decay_biases=True).make_optimizer()
    assert all(g["weight_decay"] > 0 for g in both.param_groups)


def test_mean_shrinkage_pulls_the_centring_mean_towards_the_global_mean() -> None:
    mu = RATINGS.mean()
    plain, shrunk = model(), model(mean_shrinkage=2.0)
    r0 = RATINGS[np.equal(ITEMS, 0)]
    assert plain.vec_mean[0].item() == pytest.approx(r0.mean())
    assert shrunk.vec_mean[0].item() == pytest.approx((r0.sum() + 2 * mu) / (len(r0) + 2), rel=1e-6)


@pytest.mark.parametrize("sparse_updates", [False, True])
def test_known_offset_marks_the_known_inputs_and_leaves_the_targets_centred(sparse_updates: bool) -> None:
    """x + c on every kept known input (training and prediction), 0 on masked and unknown ones; Eq. 1's targets
    and the prediction's inverse are unchanged. The sparse path computes the same objective."""
    c = 0.75
    m = model(known_offset=c, optimizer="sgd-torch7", sparse_updates=sparse_updates)
    ids = torch.tensor([0, 2])
    cols, _, vals, row_of = m.rows.gather_with_rows(ids)
    hidden = torch.tensor([True, False, False, False, True, False])
    w1, b1 = m.first.weight.detach(), m.first.bias.detach()
    v, b2 = m.dec_w.detach(), m.dec_b.detach()

    def dense_in(r: int, masked: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        sel = row_of == r
        x, xin = torch.zeros(5), torch.zeros(5)
        x[cols[sel]] = vals[sel]
        keep = torch.ones(int(sel.sum()), dtype=torch.bool) if masked is None else ~masked[sel]
        xin[cols[sel][keep]] = vals[sel][keep] + c
        return x, xin, sel

    total = 0.0
    for r in range(2):
        x, xin, sel = dense_in(r, hidden)
        out = torch.tanh(v @ torch.tanh(xin @ w1 + b1) + b2)
        err = (out - x)[cols[sel]] ** 2
        total += err[hidden[sel]].sum().item() + 0.5 * err[~hidden[sel]].sum().item()
    assert m.batch_loss((ids, hidden)).objective.item() == pytest.approx(total / 2, rel=1e-5)
    # prediction: every known entry + c, then r̂ = b + s · nn(x)
    m.eval()
    _, xin, _ = dense_in(0, None)
    out = torch.tanh(v @ torch.tanh(xin @ w1 + b1) + b2)
    pred = m.predict(np.array([1]), np.array([0]))[0]
    assert pred == pytest.approx(RATINGS[ITEMS == 0].mean() + 2.0 * out[1].item(), rel=1e-5)
    # the offset changes the input (0 = the paper)
    assert model(optimizer="sgd-torch7").batch_loss((ids, hidden)).objective.item() != pytest.approx(total / 2)
