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
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
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

    def _score(self, p: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.q(items)
        s = (p * q).sum(-1)
        if self.b is None:
            return s, q.pow(2).sum(-1)
        b = self.b(items).squeeze(-1)
        return s + b, q.pow(2).sum(-1) + b.pow(2)

    def batch_loss(self, batch: TripleBatch) -> StepLoss:
        p = self.p(batch.users)
        pos, reg_i = self._score(p, batch.pos_items)
        neg, reg_j = self._score(p, batch.neg_items)
        bpr = losses.bpr(pos, neg)
        reg = (p.pow(2).sum(-1) + reg_i + reg_j).mean()
        objective = bpr + self.cfg.l2 * reg
        return StepLoss(objective, {"bpr": bpr.detach(), "reg": reg.detach()}, weight=len(pos))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score(self.p(users), items)[0]

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.b is None:
            return self.p.weight, self.q.weight
        ones = torch.ones(self.n_users, 1, device=self.p.weight.device)
        return torch.cat([self.p.weight, ones], 1), torch.cat([self.q.weight, self.b.weight], 1)
