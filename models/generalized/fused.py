"""Fused GF models: two GF branches, each with its own inputs and representations, whose prediction features are
concatenated into one output layer, ŷ = σ(hᵀ[φ_A(j, k), φ_B(j, k)]).

* ``neumf`` — NeuMF (He et al. 2017, "Neural Collaborative Filtering", Eq. 12): GMF (ID embeddings, element-wise
  product: φ = p_j ⊙ q_k) ⊕ MLP (ID embeddings, concatenation, ReLU tower ``predictor``).
* ``cfnet`` — CFNet (Deng et al. 2019, "DeepCF", Eq. 11): CFNet-rl (interaction vectors, MLP representations,
  element-wise product) ⊕ CFNet-ml (interaction vectors, linear representations, concatenation, ReLU tower).

Both train with BCE on every positive plus ``negatives`` sampled unobserved items (label 0), Adam; ``predict``
returns the logit (the ranking of σ(·)).

**Pre-training** (NCF §3.4.1, DeepCF §3.3): with ``pretrain: [run A, run B]`` (e.g. ``[gf-gmf, gf-mlp]``), the
branches start from the weights of those two trained runs of the SAME dataset and split (they are trained
first: DVC's ``train_pretrained`` stage and the Prefect flow order them), and the output layer from theirs,
h = [α·h_A, (1 − α)·h_B]. Each source must be a ``gf`` run whose modules have this branch's shapes; anything
else is refused, naming the parameter.

Interaction-vector inputs are masked as in ``gf`` (R_jk removed from both vectors when training on (j, k)).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.samplers import PairBatch, TripleBatch, negative_batches, triple_batches
from models.generalized.gf import GFConfig, Head, representations
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class FusedConfig(GradientConfig):
    loss: str = "bce"
    """bce | mse (on σ(score)) | bpr."""
    negatives: int = 4
    """Sampled unobserved items (label 0) per positive for bce / mse."""
    predictor: tuple[int, ...] = (64, 32, 16)
    """The ReLU tower of the second branch (MLP / CFNet-ml)."""
    mask_target: bool = True
    """Remove R_jk from both interaction vectors when training on (j, k) (vector inputs only)."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of ID embeddings."""
    pretrain: tuple[str, ...] = ()
    """Two trained runs (model names) of the same dataset and split that initialise branch A and branch B."""
    alpha: float = 0.5
    """With pre-training, the output layer starts as [α·h_A, (1 − α)·h_B]."""
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 256

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        if self.loss not in ("bce", "mse", "bpr"):
            raise ConfigError(f"{p}.loss", "bce | mse | bpr", self.loss)
        if self.negatives < 1:
            raise ConfigError(f"{p}.negatives", "an integer >= 1", self.negatives)
        if not self.predictor or any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in self.predictor):
            raise ConfigError(f"{p}.predictor", "one or more positive layer sizes", list(self.predictor))
        if self.pretrain and (len(self.pretrain) != 2 or not all(isinstance(r, str) and r for r in self.pretrain)):
            raise ConfigError(f"{p}.pretrain", "two run names [branch A, branch B] (or [] for none)",
                              list(self.pretrain))  # fmt: skip
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"{p}.alpha", "a number in [0, 1]", self.alpha)
        if self.init_std <= 0:
            raise ConfigError(f"{p}.init_std", "a number > 0", self.init_std)


class Branch(nn.Module):
    """One GF model without its biases: the same module names as ``gf`` (user_rep, item_rep, head), so a trained
    ``gf`` run's state loads into it."""

    def __init__(self, cfg: GFConfig, ctx: TrainContext, param: str) -> None:
        super().__init__()
        self.cfg = cfg
        self.user_rep, self.item_rep = representations(cfg, ctx, param)
        self.head = Head(cfg, self.user_rep.size, self.item_rep.size, f"{param}.predictor")

    def features(self, users: torch.Tensor, items: torch.Tensor, value: torch.Tensor | None) -> torch.Tensor:
        mask = value is not None and self.cfg.mask_target
        p = self.user_rep(users, items if mask else None, value if mask else None)
        q = self.item_rep(items, users if mask else None, value if mask else None)
        return self.head.features(p, q)


class Fused(Recommender):
    config_cls = FusedConfig
    task = "ranking"

    def branch_configs(self, cfg: Any) -> tuple[GFConfig, GFConfig]:
        raise NotImplementedError

    def __init__(self, cfg: FusedConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = f"models.{self.name}"
        a, b = self.branch_configs(cfg)
        a = replace(a, mask_target=cfg.mask_target, init_std=cfg.init_std)
        b = replace(b, mask_target=cfg.mask_target, init_std=cfg.init_std)
        a.check(self.name)
        b.check(self.name)
        self.a = Branch(a, ctx, p)
        self.b = Branch(b, ctx, p)
        self.out = nn.Linear(self.a.head.width + self.b.head.width, 1)

    # --- pre-training ---------------------------------------------------------------------------------------
    def pretrained_runs(self) -> tuple[str, ...]:
        return tuple(self.cfg.pretrain)  # type: ignore[attr-defined]

    def load_pretrained(self, states: list[dict[str, torch.Tensor]], names: list[str]) -> None:
        """Branch A from states[0], branch B from states[1]; the output layer [α·h_A, (1 − α)·h_B]."""
        alpha = float(self.cfg.alpha)  # type: ignore[attr-defined]
        param = f"models.{getattr(self, 'run_name', None) or self.name}.pretrain"
        outs = []
        for branch, state, name in zip((self.a, self.b), states, names, strict=True):
            own = {k: v for k, v in state.items() if not k.startswith("b_")}
            mine = branch.state_dict()
            if set(own) != set(mine) or any(own[k].shape != mine[k].shape for k in mine):
                diff = sorted(set(own) ^ set(mine)) or [k for k in mine if own[k].shape != mine[k].shape]
                raise ConfigError(param, f"a run whose modules match this branch ({type(self).__name__})",
                                  f"run {name!r} differs at {diff[:3]}")  # fmt: skip
            branch.load_state_dict(own)
            outs.append((own["head.out.weight"], own["head.out.bias"]))
        with torch.no_grad():
            self.out.weight.copy_(torch.cat([alpha * outs[0][0], (1 - alpha) * outs[1][0]], 1))
            self.out.bias.copy_(alpha * outs[0][1] + (1 - alpha) * outs[1][1])

    # --- scoring --------------------------------------------------------------------------------------------
    def _score(self, users: torch.Tensor, items: torch.Tensor, value: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.cat([self.a.features(users, items, value), self.b.features(users, items, value)], -1)
        return self.out(z).squeeze(-1)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score(users, items)

    def _all_reps(self) -> list[torch.Tensor]:
        return [br.user_rep.all(self.n_users) for br in (self.a, self.b)] + [
            br.item_rep.all(self.n_items) for br in (self.a, self.b)
        ]

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, pair_chunk: int = 1 << 17) -> torch.Tensor:
        """Representations once per ``scoring()`` block, then pairs through the two heads in blocks."""
        self.eval()
        users = users.to(self.device)
        pa, pb, qa, qb = self.cached("reps", self._all_reps)
        s = torch.empty(len(users), self.n_items, device=self.device)
        rows = max(1, pair_chunk // max(self.n_items, 1))
        for lo in range(0, len(users), rows):
            block = users[lo : lo + rows]
            n = len(block)
            za = self.a.head.features(pa[block].repeat_interleave(self.n_items, 0), qa.repeat(n, 1))
            zb = self.b.head.features(pb[block].repeat_interleave(self.n_items, 0), qb.repeat(n, 1))
            s[lo : lo + rows] = self.out(torch.cat([za, zb], -1)).reshape(n, self.n_items)
        return s

    # --- training -------------------------------------------------------------------------------------------
    def train_batches(self, rng: np.random.Generator) -> Iterator[PairBatch | TripleBatch]:
        cfg: Any = self.cfg
        param = f"models.{getattr(self, 'run_name', None) or self.name}.negatives"
        if cfg.loss == "bpr":
            return triple_batches(self.ctx.interactions, cfg.batch_size, rng, self.device, param=param)
        return negative_batches(self.ctx.interactions, cfg.negatives, cfg.batch_size, rng, self.device, param=param)

    def batch_loss(self, batch: PairBatch | TripleBatch) -> StepLoss:
        cfg: Any = self.cfg
        if isinstance(batch, TripleBatch):
            ones = torch.ones(len(batch.users), device=self.device)
            pos = self._score(batch.users, batch.pos_items, ones)
            neg = self._score(batch.users, batch.neg_items)
            data = losses.bpr(pos, neg)
            return StepLoss(data, {"bpr": data.detach()}, weight=len(pos))
        s = self._score(batch.users, batch.items, batch.ratings)
        if cfg.loss == "bce":
            data = losses.bce_with_logits(s, batch.ratings)
        else:
            data = losses.mse(torch.sigmoid(s), batch.ratings)
        return StepLoss(data, {cfg.loss: data.detach()}, weight=len(s))


@dataclass(frozen=True)
class NeuMFConfig(FusedConfig):
    gmf_factors: int = 32
    """Size of the GMF branch's embeddings (its predictive factors)."""
    mlp_factors: int = 32
    """Size of the MLP branch's embeddings (the tower's input is twice this)."""


@register_model("neumf")
class NeuMF(Fused):
    config_cls = NeuMFConfig

    def branch_configs(self, cfg: NeuMFConfig) -> tuple[GFConfig, GFConfig]:
        gmf = GFConfig(factors=cfg.gmf_factors, fusion="product", prediction="nonlinear", loss="bce")
        mlp = GFConfig(factors=cfg.mlp_factors, fusion="concat", prediction="mlp", predictor=cfg.predictor,
                       loss="bce")  # fmt: skip
        return gmf, mlp


@dataclass(frozen=True)
class CFNetConfig(FusedConfig):
    rl_user_layers: tuple[int, ...] = (512,)
    """CFNet-rl: hidden layers of the user representation MLP (over the user's interaction vector)."""
    rl_item_layers: tuple[int, ...] = (1024,)
    """CFNet-rl: hidden layers of the item representation MLP (over the item's interaction vector)."""
    rl_factors: int = 64
    """CFNet-rl: size of both representations (the element-wise product's length)."""
    ml_factors: int = 256
    """CFNet-ml: size of the linear representations (the tower's input is twice this)."""
    predictor: tuple[int, ...] = (256, 128, 64)


@register_model("cfnet")
class CFNet(Fused):
    config_cls = CFNetConfig

    def branch_configs(self, cfg: CFNetConfig) -> tuple[GFConfig, GFConfig]:
        vec = {"user_input": "vector", "item_input": "vector", "loss": "bce"}
        rl = GFConfig(**vec, user_repr="mlp", item_repr="mlp", user_layers=cfg.rl_user_layers,  # type: ignore[arg-type]
                      item_layers=cfg.rl_item_layers, factors=cfg.rl_factors, fusion="product",
                      prediction="nonlinear")  # fmt: skip
        ml = GFConfig(**vec, user_repr="linear", item_repr="linear", factors=cfg.ml_factors,  # type: ignore[arg-type]
                      fusion="concat", prediction="mlp", predictor=cfg.predictor)  # fmt: skip
        return rl, ml
