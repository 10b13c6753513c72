"""BPR-MF (Rendle et al. 2009): x̂_ui = p_u · q_i (+ b_i), trained on triples (u, i, j) — i a training
positive of u, j a uniform item u never interacted with in training, drawn afresh every epoch — to minimise
−mean ln σ(x̂_ui − x̂_uj) + λ (‖p_u‖² + ‖q_i‖² + ‖q_j‖² (+ b_i² + b_j²)) / batch size.

Full ranking is one matmul of the user and item factors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.common.base import GradientConfig, Recommender, StepLoss, add_row_grads
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.samplers import TripleBatch, triple_batches


@dataclass(frozen=True)
class BPRConfig(GradientConfig):
    factors: int = 64
    """Latent dimension."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation."""
    item_bias: bool = False
    """Add a learned item bias b_i to the score."""
    lr: float = 1e-3
    l2: float = 1e-4
    batch_size: int = 2048


@register_model("bpr")
class BPR(Recommender):
    config_cls = BPRConfig
    analytic_gradients = True
    task = "ranking"

    def __init__(self, cfg: BPRConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        self.p = nn.Embedding(ctx.n_users, cfg.factors)
        self.q = nn.Embedding(ctx.n_items, cfg.factors)
        nn.init.normal_(self.p.weight, 0.0, cfg.init_std)
        nn.init.normal_(self.q.weight, 0.0, cfg.init_std)
        self.b = nn.Embedding(ctx.n_items, 1) if cfg.item_bias else None
        if self.b is not None:
            nn.init.zeros_(self.b.weight)

    def train_batches(self, rng: np.random.Generator) -> Iterator[TripleBatch]:
        return triple_batches(self.ctx.interactions, self.cfg.batch_size, rng, self.device,
                              param=f"models.{self.name}")  # fmt: skip

    @torch.no_grad()
    def batch_loss(self, batch: TripleBatch) -> StepLoss:
        """The objective and its gradient in closed form (``analytic_gradients``; a test compares it with
        autograd's). With x = x̂_ui − x̂_uj and g = ∂/∂x of −(1/n) ln σ(x) = −σ(−x)/n:
        ∂/∂p_u = g (q_i − q_j) + (2λ/n) p_u,  ∂/∂q_i = g p_u + (2λ/n) q_i,  ∂/∂q_j = −g p_u + (2λ/n) q_j,
        ∂/∂b_i = g + (2λ/n) b_i,  ∂/∂b_j = −g + (2λ/n) b_j."""
        P, Q = self.p.weight, self.q.weight
        u, i, j = batch.users, batch.pos_items, batch.neg_items
        p, qi, qj = P.index_select(0, u), Q.index_select(0, i), Q.index_select(0, j)
        n = len(u)
        diff = qi - qj
        x = (p * diff).sum(-1)
        reg = p.square().sum() + qi.square().sum() + qj.square().sum()
        if self.b is not None:
            B = self.b.weight
            bi, bj = B.index_select(0, i), B.index_select(0, j)
            x = x + (bi - bj).view(n)
            reg = reg + bi.square().sum() + bj.square().sum()
        bpr = -F.logsigmoid(x).mean()
        reg = reg / n
        g = (torch.sigmoid(-x) * (-1.0 / n)).unsqueeze(1)
        shrink = 2.0 * self.cfg.l2 / n
        add_row_grads(P, u, torch.addcmul(p * shrink, g, diff))
        add_row_grads(Q, i, torch.addcmul(qi * shrink, g, p))
        add_row_grads(Q, j, torch.addcmul(qj * shrink, g, p, value=-1.0))
        if self.b is not None:
            add_row_grads(B, i, bi * shrink + g)
            add_row_grads(B, j, bj * shrink - g)
        return StepLoss(bpr + self.cfg.l2 * reg, {"bpr": bpr, "reg": reg}, weight=n)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        s = (self.p(users) * self.q(items)).sum(-1)
        return s if self.b is None else s + self.b(items).squeeze(-1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.b is None:
            return self.p.weight, self.q.weight
        ones = torch.ones(self.n_users, 1, device=self.p.weight.device)
        return torch.cat([self.p.weight, ones], 1), torch.cat([self.q.weight, self.b.weight], 1)
