"""WMF with uniform weights on the unobserved entries (Hu et al. 2008; Pan et al. 2008), fitted by alternating least
squares: minimise Σ_observed (1 − p_u·q_i)² + c Σ_unobserved (p_u·q_i)² + λ(‖P‖² + ‖Q‖²).

One epoch is one ALS sweep (all users, then all items). With weight 1 on observed and c on unobserved entries, the
user update is exact and costs O(observed · k² + users · k³), never O(users × items):

    p_u = (c QᵀQ + (1 − c) Σ_{i ∈ u} q_i q_iᵀ + λI)⁻¹ Σ_{i ∈ u} q_i

(and the same for items with P). The per-user Gram matrices are accumulated with ``index_add_`` over blocks of
observed entries and solved in batches (``torch.linalg.solve``), float32 on the model's device; memory is bounded
by ``block_entries`` · k² and ``block_rows`` · k². Full ranking is one matmul of P and Q.
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
class WMFConfig(ModelConfig):
    factors: int = 64
    """Latent dimension k."""
    c: float = 0.05
    """Weight of every unobserved entry (observed entries weigh 1)."""
    l2: float = 0.1
    """λ on ‖P‖² + ‖Q‖²."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation."""
    block_rows: int = 4096
    """Users (items) solved together."""
    block_entries: int = 16384
    """Observed entries whose outer products are accumulated at once (memory: block_entries · k² floats)."""

    def check(self, model: str) -> None:
        super().check(model)
        for key, ok, what in (
            ("factors", self.factors >= 1, "an integer >= 1"),
            ("c", 0.0 <= self.c <= 1.0, "a weight in [0, 1]"),
            ("l2", self.l2 > 0, "a number > 0"),
            ("block_rows", self.block_rows >= 1, "an integer >= 1"),
            ("block_entries", self.block_entries >= 1, "an integer >= 1"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))


def als_side(
    matrix: sp.csr_matrix, other: torch.Tensor, c: float, l2: float, block_rows: int, block_entries: int
) -> torch.Tensor:
    """Exact least-squares update of every row's factors given the other side's factors ``other``: prior
    c·OᵀO + λI, observed entries weigh 1 − c more (values are 1: a ranking model's binary matrix)."""
    k = other.shape[1]
    base = c * (other.T @ other) + l2 * torch.eye(k, device=other.device)
    return solve_rows(matrix, other, lambda lengths: base.expand(len(lengths), k, k).clone(), 1.0 - c, block_rows,
                      block_entries)  # fmt: skip


@register_model("wmf")
class WMF(Recommender):
    config_cls = WMFConfig
    task = "ranking"
    fits_itself = True

    def __init__(self, cfg: WMFConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        # binary: a ranking model's training interactions are all 1 (CSR, sorted indices, both orientations)
        self._by_user, self._by_item = ctx.user_matrix, ctx.item_matrix
        self.p = nn.Parameter(torch.randn(ctx.n_users, cfg.factors) * cfg.init_std, requires_grad=False)
        self.q = nn.Parameter(torch.randn(ctx.n_items, cfg.factors) * cfg.init_std, requires_grad=False)

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        cfg = self.cfg
        with torch.no_grad():
            self.p.copy_(als_side(self._by_user, self.q, cfg.c, cfg.l2, cfg.block_rows, cfg.block_entries))
            self.q.copy_(als_side(self._by_item, self.p, cfg.c, cfg.l2, cfg.block_rows, cfg.block_entries))
        return {"factor_norm": float(self.p.norm() * self.q.norm())}

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.p[users] * self.q[items]).sum(-1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p, self.q

    def n_parameters(self) -> int:
        return self.p.numel() + self.q.numel()  # fitted by ALS, not by gradients
