"""POP: every user gets the items ranked by their training popularity (number of training interactions,
or the sum of interaction weights with ``weighted``). Fitted by counting in one epoch, no optimizer.

Ties between equally popular items fall under the evaluation's pessimistic rule (a tied rival ranks ahead).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.common.base import ModelConfig, Recommender
from models.common.context import TrainContext
from models.common.registry import register_model


@dataclass(frozen=True)
class PopConfig(ModelConfig):
    weighted: bool = False
    """Sum the interaction weights (play counts ...) instead of counting interactions."""


@register_model("pop")
class Pop(Recommender):
    config_cls = PopConfig
    task = "ranking"
    fits_itself = True

    def __init__(self, cfg: PopConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        self.register_buffer("popularity", torch.zeros(ctx.n_items, dtype=torch.float32, device=ctx.device))

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        data = self.ctx.interactions
        w = data.weights if (self.cfg.weighted and data.weights is not None) else None  # type: ignore[attr-defined]
        counts = np.bincount(data.items, weights=w, minlength=self.n_items).astype(np.float32)
        self.popularity.copy_(torch.as_tensor(counts, device=self.popularity.device))
        return {"items_seen": float(np.count_nonzero(counts))}

    def finished(self) -> bool:
        return True  # counting converges in one epoch

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.popularity[items]

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.popularity[None, :].expand(len(users), -1).clone()
