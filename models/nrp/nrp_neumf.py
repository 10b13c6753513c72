"""NeuMF as the NRP paper runs it for explicit ratings (Raziperchikolaei et al. 2020, Table 4 and supplementary;
after He et al. 2017, "Neural Collaborative Filtering").

Two branches, fused before one linear output (NeuMF's fusion):

* deep branch: NRP-direct's network without its output layer — encoders over user j's rating row R_j and
  item k's column R_:k (and each side source, ``side``), concatenated, the prediction MLP φ_deep = h'([z_j, z_k])
  (the NRP paper: "the structure of the deep branch is the same as the encoding networks of NRP-direct"); it
  reuses ``NRPDirect`` (target masking, input dropout, sparse first layers, per-batch distinct rows);
* shallow branch (GMF): ID embeddings p_j, q_k ∈ R^f, φ_gmf = p_j ⊙ q_k;
* r̂_jk = wᵀ[φ_deep, φ_gmf] + b; loss MSE on observed ratings + λ‖θ‖² over the weights (not biases).

Defaults (NRP Table 6, ml100k): RMSprop (Keras defaults) lr 1e-3, λ 0.01, selu; encoders [500, 200, 100],
prediction MLP [500, 200, 100, 50] (NRP-direct's); ``factors`` f = 50 (the deep branch's last width, NeuMF's
"predictive factors" shared by both branches), GMF embeddings N(0, 0.01²) as in NeuMF. Every other option is
NRP-direct's (``models.nrp.nrp_direct``). Full ranking: the deep branch's first layer split as in NRP-direct,
the GMF term one matmul per user chunk, (p_j ⊙ w_gmf) · q_k.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.common.context import TrainContext
from models.common.registry import register_model
from models.nrp.nrp_direct import NRPDirect, NRPDirectConfig, split_scores
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class NRPNeuMFConfig(NRPDirectConfig):
    factors: int = 50
    """Size f of the GMF branch's user and item ID embeddings."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of the GMF embeddings."""
    l2: float = 0.01

    def check(self, model: str) -> None:
        super().check(model)
        if self.factors < 1:
            raise ConfigError(f"models.{model}.factors", "an integer >= 1", self.factors)
        if self.init_std <= 0:
            raise ConfigError(f"models.{model}.init_std", "a number > 0", self.init_std)


@register_model("nrp-neumf")
class NRPNeuMF(NRPDirect):
    config_cls = NRPNeuMFConfig
    task = "rating"

    def __init__(self, cfg: NRPNeuMFConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        width = cfg.predictor[-1] + cfg.factors
        self.out = nn.Linear(width, 1)  # replaces NRP-direct's output: NeuMF's fusion layer over both branches
        nn.init.normal_(self.out.weight, 0.0, 1.0 / width**0.5)
        nn.init.constant_(self.out.bias, float(ctx.global_mean))
        self.user_gmf = nn.Embedding(ctx.n_users, cfg.factors)
        self.item_gmf = nn.Embedding(ctx.n_items, cfg.factors)
        for emb in (self.user_gmf, self.item_gmf):
            nn.init.normal_(emb.weight, 0.0, cfg.init_std)

    def forward(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor | None = None) -> torch.Tensor:
        """Predict; with ``ratings`` given (training) and masking on, R_jk is removed from both rating vectors."""
        with self._autocast():
            deep = self.predictor(self.dropout(self.pair_representations(users, items, ratings)))
            gmf = self.user_gmf(users) * self.item_gmf(items)
            return self.out(torch.cat([deep, gmf.to(deep.dtype)], -1)).squeeze(-1).float()

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, block: int = 8192) -> torch.Tensor:
        a, b = self._first_layer_parts(users)
        rest = self.predictor[1:]
        d = self.cfg.predictor[-1]
        w = self.out.weight[0]
        gmf = (self.user_gmf(users.to(a.device)) * w[d:]) @ self.item_gmf.weight.T + self.out.bias
        return split_scores(a, b, lambda r, sl, h: rest(h) @ w[:d] + gmf[r, sl], block)
