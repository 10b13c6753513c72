"""ALS-WR (Zhou et al. 2008, "Large-Scale Parallel Collaborative Filtering for the Netflix Prize"): matrix
factorization of EXPLICIT ratings with weighted-λ regularisation,

    minimise Σ_{(u,i) observed} (r_ui − p_u·q_i)² + λ (Σ_u n_u ‖p_u‖² + Σ_i n_i ‖q_i‖²),

(n_u, n_i: the numbers of training ratings), by exact alternating least squares. One epoch is one sweep: every user
given Q, then every item given P,

    p_u = (Q_uᵀ Q_u + λ n_u I)⁻¹ Q_uᵀ r_u        (Q_u: the factors of the items u rated, r_u their ratings)

and the same for items with P. The per-user Gram matrices are accumulated with ``index_add_`` over blocks of
observed entries and solved in batches (``torch.linalg.solve``): O(|R| K² + (M + N) K³) per sweep, float32 on the
model's device; users × items is never formed. As in the paper, Q starts with each item's mean training rating in
its first column and small random numbers elsewhere. Predictions are clipped to the rating scale; a user or item
without training ratings gets the global mean.

Defaults: K = 50 (the paper's best Netflix runs use far larger ranks), λ = 0.05. ALS keeps improving over sweeps, so
``finished()`` stays False: early stopping on ``valid_rmse`` ends training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.common.base import ModelConfig, Recommender
from models.common.context import TrainContext
from models.common.registry import register_model
from models.factorization._ridge import solve_rows
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class ALSWRConfig(ModelConfig):
    factors: int = 50
    """Latent dimension K (rank)."""
    l2: float = 0.05
    """λ of the weighted-λ regulariser λ (Σ_u n_u ‖p_u‖² + Σ_i n_i ‖q_i‖²)."""
    init_std: float = 0.01
    """Standard deviation of the random entries of the initial Q (its first column is the item means)."""
    block_rows: int = 4096
    """Users (items) solved together."""
    block_entries: int = 16384
    """Observed entries whose outer products are accumulated at once (memory: block_entries · K² floats)."""

    def check(self, model: str) -> None:
        super().check(model)
        for key, ok, what in (
            ("factors", self.factors >= 1, "an integer >= 1"),
            ("l2", self.l2 > 0, "a number > 0"),
            ("init_std", self.init_std >= 0, "a number >= 0"),
            ("block_rows", self.block_rows >= 1, "an integer >= 1"),
            ("block_entries", self.block_entries >= 1, "an integer >= 1"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))


def wr_side(matrix: sp.csr_matrix, other: torch.Tensor, l2: float, block_rows: int, block_entries: int
            ) -> torch.Tensor:  # fmt: skip
    """Every row's exact update (Σ_{j ∈ row} o_j o_jᵀ + λ n_row I)⁻¹ Σ_{j ∈ row} r_j o_j given the other side's
    factors ``other``; a row without entries gets 0."""
    eye = torch.eye(other.shape[1], device=other.device)

    def prior(lengths: np.ndarray) -> torch.Tensor:
        n = torch.as_tensor(np.maximum(lengths, 1), dtype=torch.float32, device=other.device)  # λ I for empty rows
        return (l2 * n)[:, None, None] * eye

    return solve_rows(matrix, other, prior, 1.0, block_rows, block_entries)


@register_model("als-wr")
class ALSWR(Recommender):
    config_cls = ALSWRConfig
    task = "rating"
    fits_itself = True

    def __init__(self, cfg: ALSWRConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        dev = ctx.device
        self._by_user, self._by_item = ctx.user_matrix, ctx.item_matrix
        n_items_rated = np.diff(self._by_item.indptr)
        sums = np.asarray(self._by_item.sum(axis=1)).ravel()
        item_mean = np.where(n_items_rated > 0, sums / np.maximum(n_items_rated, 1), ctx.global_mean)
        q = torch.randn(ctx.n_items, cfg.factors) * cfg.init_std
        q[:, 0] = torch.as_tensor(item_mean, dtype=torch.float32)
        self.p = nn.Parameter(torch.zeros(ctx.n_users, cfg.factors, device=dev), requires_grad=False)
        self.q = nn.Parameter(q.to(dev), requires_grad=False)
        self.register_buffer("user_known", torch.as_tensor(np.diff(self._by_user.indptr) > 0, device=dev))
        self.register_buffer("item_known", torch.as_tensor(n_items_rated > 0, device=dev))
        self._rows = torch.as_tensor(ctx.users, dtype=torch.long, device=dev)
        self._cols = torch.as_tensor(ctx.items, dtype=torch.long, device=dev)
        self._r = torch.as_tensor(np.array(ctx.ratings, dtype=np.float32), device=dev)

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        cfg = self.cfg
        with torch.no_grad():
            self.p.copy_(wr_side(self._by_user, self.q, cfg.l2, cfg.block_rows, cfg.block_entries))
            self.q.copy_(wr_side(self._by_item, self.p, cfg.l2, cfg.block_rows, cfg.block_entries))
            err = torch.zeros((), device=self.p.device)
            for s in range(0, len(self._r), 1 << 16):
                u, i = self._rows[s : s + (1 << 16)], self._cols[s : s + (1 << 16)]
                err += ((self.p[u] * self.q[i]).sum(-1) - self._r[s : s + (1 << 16)]).pow(2).sum()
            nu = torch.as_tensor(np.diff(self._by_user.indptr), dtype=torch.float32, device=self.p.device)
            ni = torch.as_tensor(np.diff(self._by_item.indptr), dtype=torch.float32, device=self.p.device)
            reg = cfg.l2 * ((nu * self.p.pow(2).sum(1)).sum() + (ni * self.q.pow(2).sum(1)).sum())
        n = max(len(self._r), 1)
        return {"train_rmse": float((err / n).sqrt()), "objective": float(err + reg)}

    def _clip(self, raw: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        lo, hi = self.rating_scale
        return torch.where(known, raw.clamp(lo, hi), torch.full_like(raw, float(self.ctx.global_mean)))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raw = (self.p[users] * self.q[items]).sum(-1)
        return self._clip(raw, self.user_known[users] & self.item_known[items])

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        u = users.to(self.p.device)
        raw = self.p[u] @ self.q.T
        return self._clip(raw, self.user_known[u][:, None] & self.item_known[None, :])

    def n_parameters(self) -> int:
        return self.p.numel() + self.q.numel()  # fitted by ALS, not by gradients
