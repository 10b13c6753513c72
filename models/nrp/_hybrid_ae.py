"""Shared pieces of the NRP paper's hybrid autoencoders (Raziperchikolaei et al. 2020, §3.1): DHA and aSDAE with
free MF representations U, V (NRP Eq. 1, ``dha`` / ``asdae``) and their NRP versions without U, V (NRP Eq. 2,
``nrp-dha`` / ``nrp-asdae``).

Two autoencoders, one per side. The user one maps (R_j, X_j) — the user's rating row and a side source — to the
code g^u(R_j, X_j) ∈ R^d (d = ``encoder[-1]``) and decodes it back to both; the item one does the same for
(R_:k, Y_k). Two structures (the encoder/decoder sizes are NRP-direct's, as the NRP paper fixes them):

* ``DHANet`` (DHA, Li et al. 2018, "Deep heterogeneous autoencoders for collaborative filtering"): one encoder
  branch per source (rating vector, side source; sizes ``encoder[:-1]``), late fusion by concatenation into the
  shared code layer (``encoder[-1]``); the decoder mirrors it: code → one branch per source → that source's
  reconstruction. A side without the side source is a plain deep autoencoder of its rating vectors.
* ``ASDAENet`` (aSDAE, Dong et al. 2017, "A hybrid collaborative filtering model with deep structure"): one
  stack over the rating vector, hidden sizes ``encoder`` then ``reversed(encoder[:-1])``, the side input added to
  EVERY hidden layer, h_l = σ(W_l h_{l−1} + V_l x̃ + b_l); the output layer reconstructs both the rating vector
  (ŝ = W_L h + b) and the side vector (x̂ = V_L h + b_x). The code is the middle layer.

Reconstruction loss of one vector (the L(·) of NRP Eq. 1–2): ``recon_weight`` · mean over its OBSERVED rating
entries of (R̂ − R)² (only those outputs are computed: O(observed), like AutoRec) + ``side_weight`` · mean over
the side vector's dims of (x̂ − x)² (``side_loss: mse``; aSDAE's ‖X − X̂‖²) or of the sigmoid cross-entropy
(``bce``, BoW only). Side vectors are short (ml100k: 879 / 2,479 BoW dims), so their reconstruction is one dense
block per batch; every side input is a sparse first layer (``SparseLinear``) over the BoW's nonzeros.
``input_dropout`` q: masking noise of the denoising autoencoders (aSDAE's x̃, s̃): each observed rating entry
and each side entry of an input is dropped with probability q and the kept ones scaled by 1/(1 − q); targets
stay clean. ``center: global`` feeds r − μ and predicts μ + (dot product) instead of the plain dot product.

First layers are ``embedding_bag`` over observed entries; weights start from Keras' defaults (Glorot-uniform,
zero biases; LeCun-normal for selu), the NRP paper's framework. Everything runs on ``ctx.device``; noise draws
come from torch's generator (saved with the resume state).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import ACTIVATIONS, activation
from models.common.samplers import PairBatch, pair_batches
from models.common.sparse import SparseLinear, SparseRows, dense_or_sparse_rows
from models.nrp.nrp_direct import check_choices, check_sizes
from tasks.common.errors import ConfigError

SparseInput = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # embedding_bag (cols, offsets, values)
Input = SparseInput | torch.Tensor  # sparse rows or a dense block


# --- configs ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HybridAEConfig(GradientConfig):
    encoder: tuple[int, ...] = (500, 200, 100)
    """Encoder layer sizes (the decoder mirrors them); the last is d, the size of the code g(R, X)."""
    activation: str = "tanh"
    """Activation of every hidden layer and of the code (selu layers get LeCun-normal init)."""
    side: str = "bow"
    """bow | svd | none: the side source each autoencoder takes in and reconstructs."""
    side_loss: str = "mse"
    """mse | bce: squared error or sigmoid cross-entropy (BoW only) of the side reconstruction, over all dims."""
    recon_weight: float = 1.0
    """Weight of the rating-vector reconstruction (mean squared error over a vector's observed entries)."""
    side_weight: float = 1.0
    """Weight of the side-vector reconstruction (mean over the side vector's dims)."""
    input_dropout: float = 0.0
    """Masking noise: probability of dropping each observed rating entry and side entry of an input."""
    center: str = "none"
    """none | global: rating inputs r − μ and predictions μ + dot product (μ: training mean)."""
    recon_output: str = "sparse"
    """sparse: only the observed outputs of the rating reconstruction, O(observed · width); dense: one matmul
    per batch for the (batch × vector length) block, then its observed entries (faster on small dense data)."""
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 512

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        check_choices(p, self, (
            ("side", ("bow", "svd", "none")),
            ("side_loss", ("mse", "bce")),
            ("center", ("none", "global")),
            ("recon_output", ("sparse", "dense")),
            ("activation", tuple(ACTIVATIONS)),
        ))
        if not self.encoder:
            raise ConfigError(f"{p}.encoder", "at least one layer size", [])
        check_sizes(p, self, "encoder")
        if self.side_loss == "bce" and self.side == "svd":
            raise ConfigError(f"{p}.side_loss", "mse for svd side information (bce needs a 0/1 BoW)", "bce")
        if not 0.0 <= self.input_dropout < 1.0:
            raise ConfigError(f"{p}.input_dropout", "a probability in [0, 1)", self.input_dropout)
        for key in ("recon_weight", "side_weight"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{p}.{key}", "a number >= 0", getattr(self, key))


@dataclass(frozen=True)
class AlternatingConfig(HybridAEConfig):
    """DHA / aSDAE (NRP Eq. 1): the autoencoders' optimizer is ``optimizer`` / ``lr`` / ``l2`` (λ‖θ‖² per step)
    over batches of ``batch_size`` rating vectors; U, V take plain SGD steps of ``uv_lr`` over pair batches."""

    lambda1: float = 1.0
    """λ1: weight of the MF term Σ_obs (R_jk − U_j·V_k)²."""
    lambda2: float = 0.5
    """λ2: weight of ‖U − g^u(R, X)‖²."""
    lambda3: float = 0.5
    """λ3: weight of ‖V − g^i(R, Y)‖²."""
    uv_lr: float = 0.1
    """Learning rate of the plain SGD steps on U and V (the θ-fixed half of the alternation)."""
    uv_batch_size: int = 128
    """Observed pairs per SGD step on U, V (the loss is the mean over the batch)."""
    uv_passes: int = 1
    """Passes over the observed pairs (U, V steps) per epoch, after one pass of the autoencoders."""
    uv_l2: float = 0.0
    """Extra λ(‖U_j‖² + ‖V_k‖²) per observed pair in the U, V steps."""
    init_std: float = 0.1
    """Standard deviation of the normal initialisation of U and V."""
    optimizer: str = "sgd"
    lr: float = 0.1
    l2: float = 1e-5
    batch_size: int = 64

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        for key, ok, what in (
            ("lambda1", self.lambda1 > 0, "a number > 0"),
            ("lambda2", self.lambda2 >= 0, "a number >= 0"),
            ("lambda3", self.lambda3 >= 0, "a number >= 0"),
            ("uv_lr", self.uv_lr > 0, "a number > 0"),
            ("uv_batch_size", self.uv_batch_size >= 1, "an integer >= 1"),
            ("uv_passes", self.uv_passes >= 1, "an integer >= 1"),
            ("uv_l2", self.uv_l2 >= 0, "a number >= 0"),
            ("init_std", self.init_std > 0, "a number > 0"),
        ):
            if not ok:
                raise ConfigError(f"{p}.{key}", what, getattr(self, key))


@dataclass(frozen=True)
class NRPAEConfig(HybridAEConfig):
    """NRP-DHA / NRP-aSDAE (NRP Eq. 2): one optimizer, pair batches, λ‖θ‖² (``l2``) added per step."""

    lambda1: float = 1.0
    """λ1: weight of the prediction term Σ_obs (R_jk − g^u(R_j, X_j)·g^i(R_:k, Y_k))²."""
    mask_target: bool = True
    """Remove R_jk from both rating vectors of the prediction codes when training on (j, k)."""
    l2: float = 0.03

    def check(self, model: str) -> None:
        super().check(model)
        if self.lambda1 <= 0:
            raise ConfigError(f"models.{model}.lambda1", "a number > 0", self.lambda1)


# --- inputs ----------------------------------------------------------------------------------------------
def _keep_mask(n: int | tuple[int, ...], q: float, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, device=device) >= q).float() / (1.0 - q)


def side_input(src: SparseRows | torch.Tensor, rows: torch.Tensor, q: float) -> Input:
    """The side vectors of ``rows`` as a first-layer input, with masking noise q."""
    if isinstance(src, SparseRows):
        cols, offsets, vals = src.gather(rows)
        return (cols, offsets, vals * _keep_mask(len(vals), q, vals.device) if q > 0 else vals)
    x = src[rows]
    return x * _keep_mask(tuple(x.shape), q, x.device) if q > 0 else x


def dense_rows(src: SparseRows | torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The clean side vectors of ``rows`` as a dense block (the reconstruction target)."""
    if not isinstance(src, SparseRows):
        return src[rows]
    cols, _, vals, row_of = src.gather_with_rows(rows)
    out = torch.zeros(len(rows), src.shape[1], device=vals.device)
    out[row_of, cols] = vals
    return out


def first_layer(layer: SparseLinear, inp: Input) -> torch.Tensor:
    if isinstance(inp, tuple):
        return layer(*inp)
    return inp @ layer.weight + layer.bias


@dataclass
class RatingInput:
    """Rating vectors of distinct rows: the (noisy) first-layer input, the clean observed values (targets), each
    entry's row position, and each row's number of observed entries."""

    inp: SparseInput
    clean: torch.Tensor
    row_of: torch.Tensor
    nnz: torch.Tensor


def rating_input(src: SparseRows, rows: torch.Tensor, q: float) -> tuple[RatingInput, torch.Tensor | None]:
    """``RatingInput`` of ``rows`` and, under noise, the per-entry keep factors (None without noise)."""
    cols, offsets, vals, row_of = src.gather_with_rows(rows)
    nnz = src.indptr[rows + 1] - src.indptr[rows]
    keep = _keep_mask(len(vals), q, vals.device) if q > 0 else None
    noisy = vals * keep if keep is not None else vals
    return RatingInput((cols, offsets, noisy), vals, row_of, nnz), keep


def target_factor(ri: RatingInput, keep: torch.Tensor | None, n_cols: int, inv: torch.Tensor, other: torch.Tensor
                  ) -> torch.Tensor:  # fmt: skip
    """Per pair, the factor R_jk got in its (noisy) input row: 1 without noise, else 0 or 1/(1 − q). Entries come
    row by row with sorted columns, so (row position, column) keys are sorted."""
    if keep is None:
        return torch.ones(len(inv), device=other.device)
    cols = ri.inp[0]
    keys = ri.row_of * n_cols + cols
    want = inv * n_cols + other
    pos = torch.searchsorted(keys, want).clamp_max(len(keys) - 1)
    return keep[pos] * (keys[pos] == want).float()


# --- the two autoencoder structures ------------------------------------------------------------------------
class HybridNet(nn.Module):
    """One side's autoencoder: ``pre`` (first layer over the rating input), ``side_parts`` (per distinct row: the
    side input's contribution), ``encode`` (pre, side parts → code), ``decode`` (code → the last hidden layers
    of the rating and side reconstructions), ``rating_at`` / ``side_out`` (the outputs)."""

    first: SparseLinear
    rating_out: nn.Linear
    side_head: nn.Linear | None

    def pre(self, inp: SparseInput) -> torch.Tensor:
        return self.first(*inp)

    def side_parts(self, inp: Input | None) -> torch.Tensor | None:
        raise NotImplementedError

    def encode(self, pre: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, code: torch.Tensor, side: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def rating_at(self, h: torch.Tensor, cols: torch.Tensor, row_of: torch.Tensor, dense: bool = False
                  ) -> torch.Tensor:  # fmt: skip
        """R̂ at the observed entries (row ``row_of``, column ``cols``): only those outputs, O(observed · width),
        or (``dense``) the batch's whole output block by one matmul, then those entries."""
        if dense:
            return self.rating_out(h)[row_of, cols]
        return (self.rating_out.weight[cols] * h[row_of]).sum(-1) + self.rating_out.bias[cols]


class ASDAENet(HybridNet):
    """aSDAE: h_l = σ(W_l h_{l−1} + V_l x + b_l) for every hidden layer (encoder ``sizes``, decoder their mirror);
    ŝ = W_L h + b, x̂ = V_L h + b_x. All V_l x come from one sparse layer over x (its outputs side by side)."""

    def __init__(self, n_in: int, side_dim: int, sizes: tuple[int, ...], act: str, param: str) -> None:
        super().__init__()
        hidden = [*sizes, *reversed(sizes[:-1])]
        self.hidden, self.n_enc = hidden, len(sizes)
        self.bounds = [0, *itertools.accumulate(hidden)]
        self.first = SparseLinear(n_in, hidden[0])
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(hidden))
        self.act = activation(act, param)
        self.side_in = SparseLinear(side_dim, sum(hidden)) if side_dim else None
        self.rating_out = nn.Linear(hidden[-1], n_in)
        self.side_head = nn.Linear(hidden[-1], side_dim) if side_dim else None

    def side_parts(self, inp: Input | None) -> torch.Tensor | None:
        return None if inp is None or self.side_in is None else first_layer(self.side_in, inp)

    def _layer(self, level: int, z: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        if side is not None:
            z = z + side[:, self.bounds[level] : self.bounds[level + 1]]
        return self.act(z)

    def encode(self, pre: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        h = self._layer(0, pre, side)
        for level in range(1, self.n_enc):
            h = self._layer(level, self.layers[level - 1](h), side)
        return h

    def decode(self, code: torch.Tensor, side: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        h = code
        for level in range(self.n_enc, len(self.hidden)):
            h = self._layer(level, self.layers[level - 1](h), side)
        return h, h


class DHANet(HybridNet):
    """DHA: per-source encoder branches (sizes ``sizes[:-1]``) fused by concatenation into the code layer
    (``sizes[-1]``); the decoder splits the code back into per-source branches (mirrored sizes) and outputs."""

    def __init__(self, n_in: int, side_dim: int, sizes: tuple[int, ...], act: str, param: str) -> None:
        super().__init__()
        if len(sizes) < 2:
            raise ConfigError(param.rsplit(".", 1)[0] + ".encoder", "at least two sizes for DHA (branches, code)",
                              list(sizes))  # fmt: skip
        branch, d = list(sizes[:-1]), sizes[-1]
        n_src = 2 if side_dim else 1
        self.width = branch[-1]
        self.act = activation(act, param)
        self.first = SparseLinear(n_in, branch[0])
        self.rating_enc = _stack(branch, act, param)
        self.side_first = SparseLinear(side_dim, branch[0]) if side_dim else None
        self.side_enc = _stack(branch, act, param) if side_dim else None
        self.fuse = nn.Linear(n_src * self.width, d)
        self.unfuse = nn.Linear(d, n_src * self.width)
        mirror = branch[::-1]
        self.rating_dec = _stack(mirror, act, param)
        self.side_dec = _stack(mirror, act, param) if side_dim else None
        self.rating_out = nn.Linear(mirror[-1], n_in)
        self.side_head = nn.Linear(mirror[-1], side_dim) if side_dim else None

    def side_parts(self, inp: Input | None) -> torch.Tensor | None:
        if inp is None or self.side_first is None or self.side_enc is None:
            return None
        return self.side_enc(self.act(first_layer(self.side_first, inp)))

    def encode(self, pre: torch.Tensor, side: torch.Tensor | None) -> torch.Tensor:
        h = self.rating_enc(self.act(pre))
        return self.act(self.fuse(h if side is None else torch.cat([h, side], -1)))

    def decode(self, code: torch.Tensor, side: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.act(self.unfuse(code))
        h_r = self.rating_dec(u[:, : self.width])
        h_s = self.side_dec(u[:, self.width :]) if self.side_dec is not None else h_r
        return h_r, h_s


def _stack(sizes: list[int], act: str, param: str) -> nn.Module:
    """Dense layers between consecutive ``sizes`` (each activated); Identity for one size."""
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), activation(act, param)]
    return nn.Sequential(*layers) if layers else nn.Identity()


def keras_init_(module: nn.Module, act: str) -> None:
    """Keras' Dense defaults (the NRP paper's framework): Glorot-uniform weights, zero biases; LeCun-normal for selu."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, SparseLinear)):
            if act == "selu":
                fan_in = layer.in_features
                nn.init.normal_(layer.weight, 0.0, 1.0 / math.sqrt(max(fan_in, 1)))
            else:
                nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


# --- one optimizer, a rule per parameter group ---------------------------------------------------------
class GroupRuleOptimizer(torch.optim.Optimizer):
    """Each parameter group carries its own update ``rule``: sgd (plain), adam (torch defaults), rmsprop (Keras
    defaults: ρ 0.9, ε 1e-7) or adagrad. Parameters without a gradient are skipped, so a step whose loss does not
    reach a group leaves it (and its moments) untouched. Its state is plain tensors and integers:
    ``state_dict`` round-trips through a weights-only checkpoint."""

    RULES: ClassVar[tuple[str, ...]] = ("sgd", "adam", "rmsprop", "adagrad")

    def __init__(self, groups: list[dict[str, Any]]) -> None:
        for g in groups:
            if g.get("rule") not in self.RULES:
                raise ValueError(f"unknown update rule {g.get('rule')!r}; one of {self.RULES}")
        super().__init__(groups, defaults={})

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        for group in self.param_groups:
            rule, lr = group["rule"], float(group["lr"])
            for p in group["params"]:
                if p.grad is not None:
                    _update(p, p.grad, rule, lr, self.state[p])


def _update(p: torch.Tensor, g: torch.Tensor, rule: str, lr: float, st: dict[str, Any]) -> None:
    if rule == "sgd":
        p.add_(g, alpha=-lr)
        return
    if not st:
        st["step"] = 0
        st["m"] = torch.zeros_like(p)
        if rule == "adam":
            st["v"] = torch.zeros_like(p)
    st["step"] += 1
    if rule == "adam":  # torch.optim.Adam's arithmetic (betas 0.9 / 0.999, eps 1e-8)
        t = st["step"]
        st["m"].mul_(0.9).add_(g, alpha=0.1)
        st["v"].mul_(0.999).addcmul_(g, g, value=0.001)
        denom = (st["v"].sqrt() / math.sqrt(1 - 0.999**t)).add_(1e-8)
        p.addcdiv_(st["m"], denom, value=-lr / (1 - 0.9**t))
    elif rule == "rmsprop":  # square average ρ 0.9, ε 1e-7 outside the root (Keras / torch.optim.RMSprop)
        st["m"].mul_(0.9).addcmul_(g, g, value=0.1)
        p.addcdiv_(g, st["m"].sqrt().add_(1e-7), value=-lr)
    else:  # adagrad (torch.optim.Adagrad: eps 1e-10)
        st["m"].addcmul_(g, g, value=1.0)
        p.addcdiv_(g, st["m"].sqrt().add_(1e-10), value=-lr)


@dataclass
class Encoded:
    """Distinct rows encoded and reconstructed: the code, Σ_v w_v · mean over v's observed entries of (R̂ − R)²,
    Σ_v w_v · mean over v's side dims, and what a per-pair (masked) encoding reuses: the first-layer
    pre-activation, the side parts, the rating input and its keep factors."""

    code: torch.Tensor
    rating_loss: torch.Tensor
    side_loss: torch.Tensor
    pre: torch.Tensor
    side: torch.Tensor | None
    ri: RatingInput
    keep: torch.Tensor | None


# --- the models ------------------------------------------------------------------------------------------
class HybridAutoencoders(Recommender):
    """A user and an item autoencoder (``net_cls``) over rating vectors plus a side source; subclasses add the
    prediction (free U, V or the codes themselves)."""

    config_cls: ClassVar[type[GradientConfig]] = HybridAEConfig
    net_cls: ClassVar[type[HybridNet]] = ASDAENet
    task = "rating"

    def __init__(self, cfg: HybridAEConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = f"models.{self.name}"
        dev = ctx.device
        center = float(ctx.global_mean) if cfg.center == "global" else 0.0
        self.register_buffer("center", torch.tensor(center, device=dev))
        self.user_rows = SparseRows(_shifted(ctx.user_matrix, center), dev)
        self.item_rows = SparseRows(_shifted(ctx.item_matrix, center), dev)
        self.user_src = _side_source(ctx.user_side, cfg.side, ctx.n_users, p, dev)
        self.item_src = _side_source(ctx.item_side, cfg.side, ctx.n_items, p, dev)
        self.user_ae = self.net_cls(ctx.n_items, _width(self.user_src), cfg.encoder, cfg.activation, f"{p}.activation")
        self.item_ae = self.net_cls(ctx.n_users, _width(self.item_src), cfg.encoder, cfg.activation, f"{p}.activation")
        for ae in (self.user_ae, self.item_ae):
            keras_init_(ae, cfg.activation)
            nn.init.constant_(ae.rating_out.bias, float(ctx.global_mean) - center)
        self.d = cfg.encoder[-1]

    # --- pieces ----------------------------------------------------------------------------------------
    def _side(self, which: str) -> tuple[HybridNet, SparseRows, SparseRows | torch.Tensor | None]:
        if which == "user":
            return self.user_ae, self.user_rows, self.user_src
        return self.item_ae, self.item_rows, self.item_src

    def codes(self, which: str, rows: torch.Tensor) -> torch.Tensor:
        """Clean codes g(R, X) of ``rows`` (no noise; the prediction-time representation)."""
        ae, r_src, s_src = self._side(which)
        ri, _ = rating_input(r_src, rows, 0.0)
        side = ae.side_parts(None if s_src is None else side_input(s_src, rows, 0.0))
        return ae.encode(ae.pre(ri.inp), side)

    def all_codes(self, which: str, chunk: int = 4096) -> torch.Tensor:
        n = self.n_users if which == "user" else self.n_items
        dev = self.center.device
        return torch.cat([self.codes(which, torch.arange(s, min(s + chunk, n), device=dev))
                          for s in range(0, n, chunk)])  # fmt: skip

    def forward_side(self, which: str, rows: torch.Tensor, weight: torch.Tensor) -> Encoded:
        """Encode the distinct ``rows`` (with the training noise) and reconstruct them; the reconstruction losses
        are weighted per vector by ``weight``."""
        ae, r_src, s_src = self._side(which)
        q = self.cfg.input_dropout if self.training else 0.0
        ri, keep = rating_input(r_src, rows, q)
        side = ae.side_parts(None if s_src is None else side_input(s_src, rows, q))
        pre = ae.pre(ri.inp)
        code = ae.encode(pre, side)
        h_r, h_s = ae.decode(code, side)
        err = (ae.rating_at(h_r, ri.inp[0], ri.row_of, self.cfg.recon_output == "dense") - ri.clean).pow(2)
        per_entry = weight / ri.nnz.clamp_min(1).float()
        rating_loss = (err * per_entry[ri.row_of]).sum()
        side_loss = torch.zeros((), device=code.device)
        if s_src is not None and ae.side_head is not None:
            out, target = ae.side_head(h_s), dense_rows(s_src, rows)
            if self.cfg.side_loss == "bce":
                per = F.binary_cross_entropy_with_logits(out, target, reduction="none").mean(-1)
            else:
                per = (out - target).pow(2).mean(-1)
            side_loss = (per * weight).sum()
        return Encoded(code, rating_loss, side_loss, pre, side, ri, keep)

    def nn_parameters(self) -> int:
        """Parameters of the two autoencoders (NRP Table 2's "NN" count)."""
        return sum(p.numel() for m in (self.user_ae, self.item_ae) for p in m.parameters())

    def ae_weight_norm(self) -> torch.Tensor:
        return losses.weight_norm(self.user_ae) + losses.weight_norm(self.item_ae)


class AlternatingHybrid(HybridAutoencoders):
    """DHA / aSDAE with free U, V (NRP Eq. 1), optimised by alternation within each epoch:

    1. θ-step, U, V fixed: a pass over every user vector and every item vector (with at least one training
       rating), batches of ``batch_size`` vectors, loss mean_v [L(f(g(R_v, X_v))) + λ2 ‖U_v − g(R_v, X_v)‖²]
       (λ3 and V for item vectors) + l2 ‖θ‖², with ``optimizer`` / ``lr``;
    2. U, V-step, θ fixed: ``uv_passes`` passes over the observed pairs, plain SGD (``uv_lr``) on
       mean_pairs [λ1 (R_jk − U_j·V_k)² + λ2 ‖U_j − g^u_j‖² / n_j + λ3 ‖V_k − g^i_k‖² / n_k] (n_j: j's number of
       training ratings, so a pass sums each pull once: Eq. 1 up to the 1/batch scale), codes computed once per
       pass from the θ just trained.

    One optimizer (``GroupRuleOptimizer``) holds θ (group 0, its own rule) and U, V (group 1, plain SGD); each
    step's loss reaches one group only. Prediction: U_j·V_k (+ μ with ``center: global``)."""

    config_cls = AlternatingConfig

    def __init__(self, cfg: AlternatingConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        self.U = nn.Parameter(torch.randn(ctx.n_users, self.d) * cfg.init_std)
        self.V = nn.Parameter(torch.randn(ctx.n_items, self.d) * cfg.init_std)
        dev = ctx.device
        self.register_buffer("u_deg", torch.as_tensor(ctx.user_counts, dtype=torch.float32, device=dev))
        self.register_buffer("i_deg", torch.as_tensor(ctx.item_counts, dtype=torch.float32, device=dev))
        self._active = {"user": np.flatnonzero(ctx.user_counts > 0), "item": np.flatnonzero(ctx.item_counts > 0)}

    def make_optimizer(self) -> torch.optim.Optimizer:
        theta = [p for m in (self.user_ae, self.item_ae) for p in m.parameters()]
        return GroupRuleOptimizer([
            {"params": theta, "lr": self.cfg.lr, "rule": self.cfg.optimizer},
            {"params": [self.U, self.V], "lr": self.cfg.uv_lr, "rule": "sgd"},
        ])  # fmt: skip

    def train_batches(self, rng: np.random.Generator) -> Iterator[tuple[Any, ...]]:
        cfg = self.cfg
        dev = self.center.device
        for which in ("user", "item"):
            order = rng.permutation(self._active[which])
            for s in range(0, len(order), cfg.batch_size):
                yield ("ae", which, torch.as_tensor(order[s : s + cfg.batch_size], dtype=torch.long, device=dev))
        for _ in range(cfg.uv_passes):
            with torch.no_grad():  # θ is fixed for the whole pass: every code once
                g_u, g_i = self.all_codes("user"), self.all_codes("item")
            for batch in pair_batches(self.ctx.interactions, cfg.uv_batch_size, rng, dev):
                yield ("uv", batch, g_u, g_i)

    def batch_loss(self, batch: tuple[Any, ...]) -> StepLoss:
        if batch[0] == "ae":
            return self._ae_loss(batch[1], batch[2])
        return self._uv_loss(batch[1], batch[2], batch[3])

    def _ae_loss(self, which: str, rows: torch.Tensor) -> StepLoss:
        cfg = self.cfg
        n = len(rows)
        w = torch.full((n,), 1.0 / n, device=rows.device)
        enc = self.forward_side(which, rows, w)
        code, r_loss, s_loss = enc.code, enc.rating_loss, enc.side_loss
        target, lam = (self.U, cfg.lambda2) if which == "user" else (self.V, cfg.lambda3)
        pull = (target.detach()[rows] - code).pow(2).sum(-1).mean()
        objective = cfg.recon_weight * r_loss + cfg.side_weight * s_loss + lam * pull
        norm = self.ae_weight_norm()
        if cfg.l2 > 0:
            objective = objective + cfg.l2 * norm
        logs = {f"recon_{which}": r_loss.detach(), f"side_{which}": s_loss.detach(), f"pull_{which}": pull.detach()}
        return StepLoss(objective, logs, weight=float(n))

    def _uv_loss(self, b: PairBatch, g_u: torch.Tensor, g_i: torch.Tensor) -> StepLoss:
        cfg = self.cfg
        u, v = self.U[b.users], self.V[b.items]
        err = (self.center + (u * v).sum(-1) - b.ratings).pow(2)
        pull_u = (u - g_u[b.users]).pow(2).sum(-1) / self.u_deg[b.users]
        pull_i = (v - g_i[b.items]).pow(2).sum(-1) / self.i_deg[b.items]
        per = cfg.lambda1 * err + cfg.lambda2 * pull_u + cfg.lambda3 * pull_i
        if cfg.uv_l2 > 0:
            per = per + cfg.uv_l2 * (u.pow(2).sum(-1) + v.pow(2).sum(-1))
        return StepLoss(per.mean(), {"mse": err.mean().detach()}, weight=float(len(err)))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.center + (self.U[users] * self.V[items]).sum(-1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        ones_u = torch.ones(self.n_users, 1, device=self.U.device)
        ones_i = torch.ones(self.n_items, 1, device=self.U.device)
        return torch.cat([self.U, ones_u * self.center], 1), torch.cat([self.V, ones_i], 1)


class NRPHybrid(HybridAutoencoders):
    """NRP-DHA / NRP-aSDAE (NRP Eq. 2): no U, V; R̂_jk = g^u(R_j, X_j)·g^i(R_:k, Y_k) (+ μ with ``center:
    global``), trained end to end on pair batches with one optimizer:

    mean_pairs λ1 (R_jk − R̂_jk)² + Σ_distinct users (c_j / B) L_u(j) + Σ_distinct items (c_k / B) L_i(k) + l2 ‖θ‖²,

    c_j = the pair count of j in the batch (B pairs): each pair reconstructs its user's and its item's vectors,
    the per-sample reconstruction outputs of a Keras model over pairs. Each distinct vector is encoded and
    decoded once per batch. ``mask_target``: the prediction codes take R_jk out of both input vectors (its
    first-layer contribution is subtracted per pair, then the rest of the encoder runs per pair); a test rating is
    never in its own input, so training does not either. The reconstructions use the unmasked vectors."""

    config_cls = NRPAEConfig

    def batch_loss(self, b: PairBatch) -> StepLoss:
        cfg = self.cfg
        n = len(b.users)
        codes, r_total, s_total = [], torch.zeros((), device=b.users.device), torch.zeros((), device=b.users.device)
        for which, ids, other in (("user", b.users, b.items), ("item", b.items, b.users)):
            uniq, inv, counts = torch.unique(ids, return_inverse=True, return_counts=True)
            enc = self.forward_side(which, uniq, counts.float() / n)
            r_total, s_total = r_total + enc.rating_loss, s_total + enc.side_loss
            if cfg.mask_target:
                ae = self._side(which)[0]
                n_cols = self.n_items if which == "user" else self.n_users
                val = (b.ratings - self.center) * target_factor(enc.ri, enc.keep, n_cols, inv, other)
                pre = enc.pre.index_select(0, inv) - val[:, None] * ae.first.weight[other]
                codes.append(ae.encode(pre, None if enc.side is None else enc.side.index_select(0, inv)))
            else:
                codes.append(enc.code.index_select(0, inv))
        err = (self.center + (codes[0] * codes[1]).sum(-1) - b.ratings).pow(2)
        mse = err.mean()
        objective = cfg.lambda1 * mse + cfg.recon_weight * r_total + cfg.side_weight * s_total
        if cfg.l2 > 0:
            objective = objective + cfg.l2 * self.ae_weight_norm()
        logs = {"mse": mse.detach(), "recon": r_total.detach(), "side": s_total.detach()}
        return StepLoss(objective, logs, weight=float(n))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        uu, u_inv = torch.unique(users, return_inverse=True)
        iu, i_inv = torch.unique(items, return_inverse=True)
        zu = self.codes("user", uu).index_select(0, u_inv)
        zi = self.codes("item", iu).index_select(0, i_inv)
        return self.center + (zu * zi).sum(-1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        zu, zi = self.all_codes("user"), self.all_codes("item")
        return (torch.cat([zu, torch.ones(len(zu), 1, device=zu.device) * self.center], 1),
                torch.cat([zi, torch.ones(len(zi), 1, device=zi.device)], 1))  # fmt: skip


def _shifted(matrix: sp.csr_matrix, center: float) -> sp.csr_matrix:
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    m.data = (m.data - center).astype(np.float32)
    return m


def _side_source(side: dict[str, sp.csr_matrix | np.ndarray], source: str, n: int, p: str, device: torch.device
                 ) -> SparseRows | torch.Tensor | None:  # fmt: skip
    """The side matrix ``source`` (sparse rows or dense on the device); None for ``none`` or where this side has
    no such source (that autoencoder is then rating-only)."""
    if source == "none" or source not in side or side[source].shape[1] == 0:
        return None
    mat = side[source]
    if mat.shape[0] != n:
        raise ConfigError(f"{p}.side", f"{n} rows of side information", mat.shape[0])
    return dense_or_sparse_rows(mat, device)


def _width(src: SparseRows | torch.Tensor | None) -> int:
    return 0 if src is None else int(src.shape[1])


__all__ = ["ASDAENet", "AlternatingHybrid", "DHANet", "GroupRuleOptimizer", "NRPHybrid"]
