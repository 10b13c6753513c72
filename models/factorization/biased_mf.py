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
        k = cfg.factors
        # one table per side, [p_j, b_j] and [q_k, b_k]: two lookups, two embedding backwards and two optimizer
        # tensors per step instead of four (elementwise the same model and the same Adam)
        self.k = k
        self.P = nn.Embedding(ctx.n_users, k + int(cfg.biases))
        self.Q = nn.Embedding(ctx.n_items, k + int(cfg.biases))
        with torch.no_grad():
            for table, n in ((self.P, ctx.n_users), (self.Q, ctx.n_items)):
                factors = torch.empty(n, k)
                nn.init.normal_(factors, 0.0, cfg.init_std)
                table.weight.zero_()
                table.weight[:, :k] = factors
        self.register_buffer("mu", torch.tensor(ctx.global_mean if cfg.biases else 0.0, dtype=torch.float32))

    def _score(self, pu: torch.Tensor, qi: torch.Tensor) -> torch.Tensor:
        k = self.k
        if pu.shape[-1] == k:  # plain MF
            return (pu * qi).sum(-1)
        return self.mu + pu[:, k] + qi[:, k] + (pu[:, :k] * qi[:, :k]).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score(self.P(users), self.Q(items))

    def batch_loss(self, batch: PairBatch) -> StepLoss:
        pu, qi = self.P(batch.users), self.Q(batch.items)
        err = (self._score(pu, qi) - batch.ratings).pow(2)
        reg = pu.pow(2).sum(-1) + qi.pow(2).sum(-1)  # ‖p_j‖² + ‖q_k‖² (+ b_j² + b_k²)
        objective = (err + self.cfg.l2 * reg).mean()
        return StepLoss(objective, {"mse": err.mean().detach(), "reg": reg.mean().detach()}, weight=len(err))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        k, P, Q = self.k, self.P.weight, self.Q.weight
        if P.shape[1] == k:
            return P, Q
        ones_u = torch.ones(self.n_users, 1, device=P.device)
        ones_i = torch.ones(self.n_items, 1, device=P.device)
        return torch.cat([P[:, :k], P[:, k:] + self.mu, ones_u], 1), torch.cat([Q[:, :k], ones_i, Q[:, k:]], 1)
