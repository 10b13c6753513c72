"""BiasedMF: r̂_jk = μ + b_j + b_k + p_j·q_k, squared error on observed ratings + λ(‖p_j‖² + ‖q_k‖² + b_j² + b_k²).

The L2 term is applied per observed rating (the classic SGD formulation, as in Koren 2009 / Surprise),
so entities with many ratings are regularised in proportion. Full ranking is one matmul over the augmented
vectors [p_j, μ + b_j, 1] · [q_k, 1, b_k].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.samplers import PairBatch


@dataclass(frozen=True)
class BiasedMFConfig(GradientConfig):
    factors: int = 64
    """Latent dimension of p_j and q_k."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of the factors (biases start at 0)."""
    biases: bool = True
    """μ + b_j + b_k in the score; false gives plain MF, r̂_jk = p_j·q_k (NRP's `mf` baseline: a params variant)."""
    lr: float = 0.005
    l2: float = 0.05
    batch_size: int = 1024


@register_model("biased-mf")
class BiasedMF(Recommender):
    config_cls = BiasedMFConfig
    task = "rating"

    def __init__(self, cfg: BiasedMFConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        self.p = nn.Embedding(ctx.n_users, cfg.factors)
        self.q = nn.Embedding(ctx.n_items, cfg.factors)
        self.bu = nn.Embedding(ctx.n_users, 1)
        self.bi = nn.Embedding(ctx.n_items, 1)
        nn.init.normal_(self.p.weight, 0.0, cfg.init_std)
        nn.init.normal_(self.q.weight, 0.0, cfg.init_std)
        nn.init.zeros_(self.bu.weight)
        nn.init.zeros_(self.bi.weight)
        self.register_buffer("mu", torch.tensor(ctx.global_mean if cfg.biases else 0.0, dtype=torch.float32))
        if not cfg.biases:  # plain MF: the bias tables stay zero and out of the optimizer
            self.bu.weight.requires_grad_(False)
            self.bi.weight.requires_grad_(False)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        p, q = self.p(users), self.q(items)
        return self.mu + self.bu(users).squeeze(-1) + self.bi(items).squeeze(-1) + (p * q).sum(-1)

    def batch_loss(self, batch: PairBatch) -> StepLoss:
        pred = self(batch.users, batch.items)
        err = (pred - batch.ratings).pow(2)
        reg = (
            self.p(batch.users).pow(2).sum(-1)
            + self.q(batch.items).pow(2).sum(-1)
            + self.bu(batch.users).squeeze(-1).pow(2)
            + self.bi(batch.items).squeeze(-1).pow(2)
        )
        objective = (err + self.cfg.l2 * reg).mean()
        return StepLoss(objective, {"mse": err.mean().detach(), "reg": reg.mean().detach()}, weight=len(err))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        ones_u = torch.ones(self.n_users, 1, device=self.mu.device)
        ones_i = torch.ones(self.n_items, 1, device=self.mu.device)
        users = torch.cat([self.p.weight, self.bu.weight + self.mu, ones_u], 1)
        items = torch.cat([self.q.weight, ones_i, self.bi.weight], 1)
        return users, items
