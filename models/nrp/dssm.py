"""DSSM for explicit ratings, as the NRP paper's baseline (Raziperchikolaei et al. 2020, §4 and supplementary;
after Huang et al. 2013, "Learning Deep Structured Semantic Models for Web Search using Clickthrough Data").

Side information only, no ratings and no IDs as input: user j's side vector x_j → MLP g^u, item k's side vector
y_k → MLP g^i (each branch NRP-direct's encoder), then the NRP paper's modification for explicit feedback: the two
representations concatenated into a prediction MLP with a linear output,

    r̂_jk = h([g^u(x_j), g^i(y_k)]),   min Σ_obs (R_jk − r̂_jk)² / |batch| + λ‖θ‖²  (weights, not biases).

Users (or items) with the same side vector get the same representation: DSSM is content-based. Without user side
information (Amazon in the paper) the paper marks DSSM not applicable (NA); so does this model (``ConfigError``
naming ``models.<name>.side``). ``needs_side`` declares it.

Defaults (NRP Table 6, ml100k): encoders [500, 200, 100], prediction MLP [500, 200, 100, 50, 1] (NRP-direct's),
selu with LeCun-normal init, RMSprop (Keras defaults) lr 1e-3, λ 1e-3, batch 512; ``side`` bow (the paper's
BoW side information) or svd. Each batch encodes every distinct user / item once; the sparse BoW first layers
cost O(nonzeros). Full ranking caches the item side and splits the first prediction layer (``split_scores``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import ACTIVATIONS, mlp
from models.common.registry import register_model
from models.common.samplers import PairBatch
from models.nrp.nrp_direct import check_sizes, side_encoder, split_scores
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class DSSMConfig(GradientConfig):
    encoder: tuple[int, ...] = (500, 200, 100)
    """Layer sizes of the user and the item side encoder (the last is each representation's width)."""
    predictor: tuple[int, ...] = (500, 200, 100, 50)
    """Hidden sizes of the prediction MLP over [g^u(x_j), g^i(y_k)] (a linear output follows)."""
    activation: str = "selu"
    """Activation of every layer (selu layers get LeCun-normal init)."""
    side: str = "bow"
    """bow | svd: which side information both branches read."""
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    l2: float = 1e-3
    batch_size: int = 512

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        if self.side not in ("bow", "svd"):
            raise ConfigError(f"{p}.side", "bow | svd (DSSM reads side information only)", self.side)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"{p}.activation", " | ".join(ACTIVATIONS), self.activation)
        for key in ("encoder", "predictor"):
            if not getattr(self, key):
                raise ConfigError(f"{p}.{key}", "at least one layer size", [])
        check_sizes(p, self, "encoder", "predictor")


@register_model("dssm")
class DSSM(Recommender):
    config_cls = DSSMConfig
    task = "rating"
    needs_side: ClassVar[tuple[str, ...]] = ("user", "item")
    """Sides whose side information the model cannot do without."""

    def __init__(self, cfg: DSSMConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = f"models.{self.name}"
        found = {}
        for what, side, n in (("user", ctx.user_side, ctx.n_users), ("item", ctx.item_side, ctx.n_items)):
            enc = side_encoder(side, cfg.side, n, cfg.encoder, cfg.activation, p, ctx.device)
            if enc is None:
                raise ConfigError(
                    f"{p}.side",
                    f"{what} side information (source {cfg.side!r} with at least one column): DSSM learns from "
                    f"side information only, and the NRP paper marks it not applicable (NA) on datasets without it",
                    f"{what} side sources {sorted(k for k, m in side.items() if m.shape[1] > 0)}",
                )
            found[what] = enc
        self.user_source, self.user_enc = found["user"]
        self.item_source, self.item_enc = found["item"]
        self.predictor = mlp([2 * cfg.encoder[-1], *cfg.predictor], cfg.activation, f"{p}.activation")
        self.out = nn.Linear(cfg.predictor[-1], 1)
        nn.init.normal_(self.out.weight, 0.0, 1.0 / cfg.predictor[-1] ** 0.5)
        nn.init.constant_(self.out.bias, float(ctx.global_mean))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        uu, u_inv = torch.unique(users, return_inverse=True)
        iu, i_inv = torch.unique(items, return_inverse=True)
        z_u = self.user_enc(self.user_source, uu).index_select(0, u_inv)
        z_i = self.item_enc(self.item_source, iu).index_select(0, i_inv)
        return self.out(self.predictor(torch.cat([z_u, z_i], -1))).squeeze(-1)

    def batch_loss(self, batch: PairBatch) -> StepLoss:
        err = (self(batch.users, batch.items) - batch.ratings).pow(2)
        loss = err.mean()
        logs: dict[str, torch.Tensor | float] = {"mse": loss.detach()}
        if self.cfg.l2 > 0:
            reg = losses.weight_norm(self)
            loss = loss + self.cfg.l2 * reg
            logs["reg"] = float(reg.detach())
        return StepLoss(loss, logs, weight=len(err))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, block: int = 8192) -> torch.Tensor:
        """First prediction layer split as W_u z_u + (W_i z_i + b), the item part once per ``scoring()``."""
        self.eval()
        u = users.to(self.device)
        first = self.predictor[0]
        assert isinstance(first, nn.Linear)
        width = self.cfg.encoder[-1]
        a = self.user_enc(self.user_source, u) @ first.weight[:, :width].T
        b = self.cached("item_part", self._item_part)
        rest = self.predictor[1:]
        return split_scores(a, b, lambda r, sl, h: self.out(rest(h)).squeeze(-1), block)

    def _item_part(self) -> torch.Tensor:
        first = self.predictor[0]
        assert isinstance(first, nn.Linear)
        z_i = self.item_enc(self.item_source, torch.arange(self.n_items, device=self.device))
        return z_i @ first.weight[:, self.cfg.encoder[-1] :].T + first.bias
