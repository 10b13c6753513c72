"""The NRP paper's hybrid autoencoders (dha, asdae, nrp-dha, nrp-asdae): reconstruction losses against a hand
computation, noise only on observed entries, target masking, the alternation's two parameter groups, the
two-rule optimizer against torch's, bad configs, and the side-information path through the training loop
(the contract test runs these models without side information)."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from models.common.samplers import pair_batches
from models.common.sparse import SparseRows
from models.nrp._hybrid_ae import GroupRuleOptimizer, rating_input
from tasks.common.device import seed_everything
from tasks.common.errors import ConfigError
from tasks.training import build_model, fit
from tests.models.test_contract import N_ITEMS, N_USERS, tiny_run_data
from tests.models.test_nrp_baselines import side_context

SMALL = {
    "dha": {"encoder": [6, 4], "lr": 0.05, "l2": 0.0, "batch_size": 16, "uv_batch_size": 32, "uv_lr": 0.5,
            "center": "global"},
    "asdae": {"encoder": [6, 4], "lr": 0.05, "l2": 0.0, "batch_size": 16, "uv_batch_size": 32, "uv_lr": 0.5,
              "center": "global"},
    "nrp-dha": {"encoder": [6, 4], "lr": 0.003, "l2": 0.0, "batch_size": 64, "center": "global"},
    "nrp-asdae": {"encoder": [6, 4], "lr": 0.003, "l2": 0.0, "batch_size": 64, "center": "global"},
}  # fmt: skip


def build(name: str, ctx=None, **over: object):  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return build_model(name, {**SMALL[name], **over}, ctx if ctx is not None else side_context())


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("output", ["sparse", "dense"])
def test_reconstruction_matches_a_hand_computation(name: str, output: str) -> None:
    """Σ_v w_v · mean over v's observed entries of (R̂ − R)², and Σ_v w_v · mean over side dims of (x̂ − x)²,
    from the full decoder output computed densely here."""
    model = build(name, recon_output=output).eval()
    rows = torch.tensor([0, 3, 7])
    w = torch.tensor([0.5, 0.25, 0.25])
    ae, src = model.user_ae, model.user_src
    with torch.no_grad():
        enc = model.forward_side("user", rows, w)
        h_r, h_s = ae.decode(enc.code, enc.side)
    full = ae.rating_out(h_r).detach().numpy()
    r = model.ctx.user_matrix[rows.numpy()].toarray() - float(model.center)
    seen = model.ctx.user_matrix[rows.numpy()].toarray() != 0
    want = sum(float(w[v]) * ((full[v] - r[v])[seen[v]] ** 2).mean() for v in range(3))
    assert float(enc.rating_loss) == pytest.approx(want, rel=1e-5)
    x = model.ctx.user_side["bow"][rows.numpy()].toarray()
    x_hat = ae.side_head(h_s).detach().numpy()
    want_side = sum(float(w[v]) * ((x_hat[v] - x[v]) ** 2).mean() for v in range(3))
    assert float(enc.side_loss) == pytest.approx(want_side, rel=1e-5)
    assert src is not None and float(enc.side_loss) > 0


def test_side_bce_and_svd_refused() -> None:
    model = build("nrp-asdae", side_loss="bce").eval()
    with torch.no_grad():
        enc = model.forward_side("item", torch.tensor([1, 2]), torch.tensor([1.0, 1.0]))
        logits = model.item_ae.side_head(model.item_ae.decode(enc.code, enc.side)[1])
    x = torch.as_tensor(model.ctx.item_side["bow"][[1, 2]].toarray())
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").mean(-1).sum()
    assert float(enc.side_loss) == pytest.approx(float(want), rel=1e-5)
    with pytest.raises(ConfigError) as err:
        build("nrp-asdae", side="svd", side_loss="bce")
    assert err.value.param == "models.nrp-asdae.side_loss"


def test_noise_only_on_observed_entries() -> None:
    m = sp.csr_matrix(np.array([[0, 3, 0, 5], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
    src = SparseRows(m, torch.device("cpu"))
    torch.manual_seed(0)
    ri, keep = rating_input(src, torch.tensor([0, 1, 2]), 0.5)
    cols, _, noisy = ri.inp
    assert cols.tolist() == [1, 3, 0]  # only the observed columns ever enter the input
    assert ri.clean.tolist() == [3.0, 5.0, 1.0]  # targets stay clean
    assert keep is not None and set(keep.tolist()) <= {0.0, 2.0}
    np.testing.assert_allclose(noisy.numpy(), (ri.clean * keep).numpy())
    assert ri.nnz.tolist() == [2, 1, 0]


@pytest.mark.parametrize("name", ["nrp-dha", "nrp-asdae"])
def test_mask_target_is_the_encoding_without_the_rating(name: str) -> None:
    """The per-pair prediction code equals the code of the rating vector with R_jk removed."""
    ctx = side_context()
    model = build(name, ctx).eval()
    j, k = int(ctx.users[0]), int(ctx.items[0])
    r = float(ctx.ratings[0])
    ae = model.user_ae
    enc = model.forward_side("user", torch.tensor([j]), torch.ones(1))
    masked_pre = enc.pre - (r - float(model.center)) * ae.first.weight[k]
    masked = ae.encode(masked_pre, enc.side)
    m = ctx.user_matrix.tolil()
    m[j, k] = 0
    m = sp.csr_matrix(m)
    m.eliminate_zeros()
    m.data -= float(model.center)
    cols, offsets, vals = SparseRows(m, torch.device("cpu")).gather(torch.tensor([j]))
    direct = ae.encode(ae.first(cols, offsets, vals), enc.side)
    torch.testing.assert_close(masked, direct, rtol=1e-5, atol=1e-6)


def test_alternation_steps_touch_one_group_each() -> None:
    model = build("asdae").train()
    opt = model.make_optimizer()
    assert [g["rule"] for g in opt.param_groups] == ["sgd", "sgd"] and opt.param_groups[1]["lr"] == 0.5
    kinds: list[str] = []
    for batch in model.train_batches(np.random.default_rng(0)):
        theta = [p.detach().clone() for p in model.user_ae.parameters()]
        uv = (model.U.detach().clone(), model.V.detach().clone())
        opt.zero_grad(set_to_none=True)
        model.batch_loss(batch).objective.backward()
        opt.step()
        same_theta = all(torch.equal(a, b) for a, b in zip(theta, model.user_ae.parameters(), strict=True))
        same_uv = torch.equal(uv[0], model.U) and torch.equal(uv[1], model.V)
        if batch[0] == "uv":
            assert same_theta and not same_uv
        else:
            assert same_uv and (batch[1] == "item" or not same_theta)
        kinds.append(batch[0])
    n_ae = int(np.ceil(N_USERS / 16) + np.ceil(N_ITEMS / 16))
    assert kinds[:n_ae] == ["ae"] * n_ae and set(kinds[n_ae:]) == {"uv"}  # θ pass, then U, V pass


@pytest.mark.parametrize("rule", ["adam", "rmsprop", "adagrad"])
def test_group_rule_optimizer_matches_torch_and_round_trips(rule: str) -> None:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(5, 3))
    b = torch.nn.Parameter(a.detach().clone())
    c = torch.nn.Parameter(torch.randn(4))
    mine = GroupRuleOptimizer([{"params": [a], "lr": 0.01, "rule": rule}, {"params": [c], "lr": 0.1, "rule": "sgd"}])
    ref = {"adam": lambda: torch.optim.Adam([b], lr=0.01),
           "rmsprop": lambda: torch.optim.RMSprop([b], lr=0.01, alpha=0.9, eps=1e-7),
           "adagrad": lambda: torch.optim.Adagrad([b], lr=0.01)}[rule]()  # fmt: skip
    grads = [torch.randn(5, 3) for _ in range(6)]
    for g in grads[:3]:
        a.grad, b.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    buf = io.BytesIO()
    torch.save(mine.state_dict(), buf)
    buf.seek(0)
    a2 = torch.nn.Parameter(a.detach().clone())
    c2 = torch.nn.Parameter(c.detach().clone())
    again = GroupRuleOptimizer([{"params": [a2], "lr": 0.01, "rule": rule}, {"params": [c2], "lr": 0.1, "rule": "sgd"}])
    again.load_state_dict(torch.load(buf, weights_only=True))
    for g in grads[3:]:
        a.grad, a2.grad = g.clone(), g.clone()
        mine.step()
        again.step()
    assert torch.equal(a, a2) and torch.equal(c, c2)  # c had no gradient: untouched


@pytest.mark.parametrize(
    ("over", "param"),
    [({"side": "text"}, "side"), ({"center": "user"}, "center"), ({"recon_output": "x"}, "recon_output"),
     ({"input_dropout": 1.0}, "input_dropout"), ({"lambda2": -1.0}, "lambda2"), ({"uv_passes": 0}, "uv_passes"),
     ({"encoder": [8]}, "encoder"), ({"activation": "gelu"}, "activation")],
)  # fmt: skip
def test_bad_config_names_the_parameter(over: dict, param: str) -> None:
    with pytest.raises(ConfigError) as err:
        build("dha", **over)
    assert err.value.param == f"models.dha.{param}"
    if param == "side":
        assert "bow | svd | none" in str(err.value)


def test_parameter_counts() -> None:
    """aSDAE adds the side input to every hidden layer; DHA has one branch per source; U, V are d per row."""
    ctx = side_context()
    p_u, p_i = ctx.user_side["bow"].shape[1], ctx.item_side["bow"].shape[1]
    h = [6, 4, 6]
    asdae = build("asdae", ctx)

    def asdae_side(n_in: int, p: int) -> int:
        dense = sum(a * b + b for a, b in itertools.pairwise(h))
        return n_in * 6 + 6 + dense + p * sum(h) + sum(h) + 6 * n_in + n_in + 6 * p + p

    assert asdae.nn_parameters() == asdae_side(N_ITEMS, p_u) + asdae_side(N_USERS, p_i)
    assert asdae.n_parameters() == asdae.nn_parameters() + 4 * (N_USERS + N_ITEMS)
    dha = build("nrp-dha", ctx)

    def dha_side(n_in: int, p: int) -> int:
        enc = n_in * 6 + 6 + p * 6 + 6 + 12 * 4 + 4
        dec = 4 * 12 + 12 + 6 * n_in + n_in + 6 * p + p
        return enc + dec

    assert dha.n_parameters() == dha_side(N_ITEMS, p_u) + dha_side(N_USERS, p_i)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_side_path_trains_and_resumes(name: str, tmp_path: Path) -> None:
    """With BoW side information (the contract test runs these models without): beats the global mean, and a run
    killed after epoch 1 resumes to the uninterrupted run's checkpoint."""
    data = tiny_run_data("rating")
    ctx = side_context()
    data.ctx.user_side, data.ctx.item_side = ctx.user_side, ctx.item_side

    def run(tag: str, epochs: int, resume: Path | None = None):  # type: ignore[no-untyped-def]
        seed_everything(0)
        model = build_model(name, dict(SMALL[name]), data.ctx)
        return fit(model, data, seed=0, max_epochs=epochs, patience=100, best_path=tmp_path / f"{tag}.pt",
                   resume_path=resume, fp="side", progress=lambda s: None)  # fmt: skip

    result = run("a", 5)
    y = data.valid["rating"].to_numpy().astype(np.float64)
    assert result.best_value < float(np.sqrt(np.mean((y - data.ctx.global_mean) ** 2)))
    resume = tmp_path / "resume.pt"
    run("killed", 1, resume)
    run("resumed", 5, resume)
    assert (tmp_path / "resumed.pt").read_bytes() == (tmp_path / "a.pt").read_bytes()


@pytest.mark.parametrize("name", ["nrp-dha", "nrp-asdae"])
def test_lambda1_weights_only_the_prediction_term(name: str) -> None:
    """NRP Eq. 2: objective = λ1 · mean_pairs (R − g^u·g^i)² + reconstructions + l2‖θ‖²; λ1 scales the first term
    and leaves the logged terms as they are (the shipped λ1 is 20–50, so the weighting must be exact)."""
    ctx = side_context()
    batch = next(pair_batches(ctx.interactions, 64, np.random.default_rng(0), torch.device("cpu")))
    one, seven = (build(name, ctx, lambda1=lam, l2=0.01).eval().batch_loss(batch) for lam in (1.0, 7.0))
    for key in ("mse", "recon", "side"):
        assert float(one.logs[key]) == pytest.approx(float(seven.logs[key]), rel=1e-6)
    assert float(one.logs["mse"]) > 0 and float(one.logs["recon"]) > 0
    gap = float(seven.objective) - float(one.objective)
    assert gap == pytest.approx(6.0 * float(one.logs["mse"]), rel=1e-5)
