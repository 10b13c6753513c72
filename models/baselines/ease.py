"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"): an item-item weight matrix B with a
zero diagonal, in closed form: P = (XᵀX + λI)⁻¹, B = I − P · diag(1 / diag(P)), so B_ij = −P_ij / P_jj (i ≠ j).
Scores x̂_u = x_u B, where x_u is the user's binary training row. No optimizer: one "epoch" solves it.

The solve is float32 on the model's device (CUDA when present). It needs about three items × items float32
matrices at once (the Gram matrix, its inverse, B); a dataset whose item count would need more than
``max_memory_gib`` is refused before anything is allocated, with the figure it would need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from models.common.base import ModelConfig, Recommender
from models.common.context import TrainContext
from models.common.registry import register_model
from models.common.sparse import SparseRows
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    l2: float = 250.0
    """λ added to the Gram matrix's diagonal (RecBole's default 250)."""
    max_memory_gib: float = 12.0
    """Refuse when the three items × items float32 matrices of the solve would need more than this."""

    def check(self, model: str) -> None:
        super().check(model)
        if self.l2 <= 0:
            raise ConfigError(f"models.{model}.l2", "a number > 0", self.l2)


def ease_memory_gib(n_items: int) -> float:
    return 3 * n_items * n_items * 4 / 2**30


@register_model("ease")
class EASE(Recommender):
    config_cls = EASEConfig
    task = "ranking"
    fits_itself = True

    def __init__(self, cfg: EASEConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        name = getattr(self, "name", "ease")
        need = ease_memory_gib(ctx.n_items)
        if need > cfg.max_memory_gib:
            raise ConfigError(
                f"models.{name}.max_memory_gib",
                f"at least {need:.1f} GiB for {ctx.n_items:,} items (3 × items² float32; raise it if the machine "
                "has the memory)",
                cfg.max_memory_gib,
            )
        self._x = ctx.user_matrix  # binary: a ranking model's training interactions are all 1
        self.rows = SparseRows(self._x, ctx.device)
        self.register_buffer("B", torch.zeros(ctx.n_items, ctx.n_items, device=ctx.device))

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        # XᵀX from the sparse rows (O(Σ|x_u|²)), then the dense solve on the device
        gram = torch.as_tensor((self._x.T @ self._x).toarray(), dtype=torch.float32, device=self.B.device)
        gram.diagonal().add_(self.cfg.l2)
        p = torch.linalg.inv(gram)
        del gram
        b = p / (-p.diagonal())[None, :]
        b.diagonal().zero_()
        self.B.copy_(b)
        return {"l2": float(self.cfg.l2)}

    def finished(self) -> bool:
        return True  # a closed form: another epoch gives the same B

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        cols, _, vals, row_of = self.rows.gather_with_rows(users)
        contrib = self.B[cols, items[row_of]] * vals
        return torch.zeros(len(users), device=self.B.device).index_add_(0, row_of, contrib)

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        users = users.to(self.B.device)
        cols, _, vals, row_of = self.rows.gather_with_rows(users)
        x = torch.zeros(len(users), self.n_items, device=self.B.device)
        x[row_of, cols] = vals
        return x @ self.B
