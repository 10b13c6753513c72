"""The trivial rating baselines every rating table carries, so a reader sees at once whether a model learned
anything: ``global-mean`` predicts the training mean μ for every pair; ``item-mean`` predicts each item's shrunk
mean (μ·β + Σ_u r_ui) / (β + n_i) (β = ``shrinkage`` pseudo-ratings at μ; an unseen item gets μ), plus, with
``user_offset``, the user's shrunk mean residual (the classic baseline predictor of Koren 2010, §2.1, fitted in
one pass: item term first, then the user term on the residuals). Fitted by counting in one epoch, no optimizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.common.base import ModelConfig, Recommender
from models.common.context import TrainContext
from models.common.registry import register_model
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class MeanRatingConfig(ModelConfig):
    shrinkage: float = 10.0
    """β: pseudo-ratings at the global mean added to every item's (and user's) ratings (0: plain means)."""
    user_offset: bool = False
    """Add the user's shrunk mean residual after the item term (μ + b_i + b_u)."""

    def check(self, model: str) -> None:
        super().check(model)
        if self.shrinkage < 0:
            raise ConfigError(f"models.{model}.shrinkage", "a number >= 0", self.shrinkage)


class _MeanRating(Recommender):
    config_cls = MeanRatingConfig
    task = "rating"
    fits_itself = True
    per_item: bool = True

    def __init__(self, cfg: MeanRatingConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        dev = ctx.device
        self.register_buffer("mu", torch.zeros((), dtype=torch.float32, device=dev))
        self.register_buffer("item_bias", torch.zeros(ctx.n_items, dtype=torch.float32, device=dev))
        self.register_buffer("user_bias", torch.zeros(ctx.n_users, dtype=torch.float32, device=dev))

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        c = self.ctx
        r = c.ratings.astype(np.float64)
        mu = float(r.mean()) if len(r) else float(np.mean(c.rating_scale))
        self.mu.fill_(mu)
        if not self.per_item:
            return {"mu": mu}
        beta = self.cfg.shrinkage  # type: ignore[attr-defined]
        bi = np.bincount(c.items, weights=r - mu, minlength=self.n_items) / (
            beta + np.bincount(c.items, minlength=self.n_items)
        )
        bi = np.nan_to_num(bi)
        self.item_bias.copy_(torch.as_tensor(bi, dtype=torch.float32))
        if self.cfg.user_offset:  # type: ignore[attr-defined]
            resid = r - mu - bi[c.items]
            bu = np.bincount(c.users, weights=resid, minlength=self.n_users) / (
                beta + np.bincount(c.users, minlength=self.n_users)
            )
            self.user_bias.copy_(torch.as_tensor(np.nan_to_num(bu), dtype=torch.float32))
        return {"mu": mu, "items_seen": float(np.count_nonzero(np.bincount(c.items, minlength=self.n_items)))}

    def finished(self) -> bool:
        return True  # counting converges in one epoch

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self.mu + self.item_bias[items] + self.user_bias[users]

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        users = users.to(self.mu.device)
        return self.mu + self.user_bias[users][:, None] + self.item_bias[None, :]


@register_model("global-mean")
class GlobalMean(_MeanRating):
    per_item = False


@register_model("item-mean")
class ItemMean(_MeanRating):
    per_item = True
