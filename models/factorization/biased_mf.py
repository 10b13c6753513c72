"""BiasedMF: r̂_jk = μ + b_j + b_k + p_j·q_k, squared error on observed ratings + λ(‖p_j‖² + ‖q_k‖² + b_j² + b_k²).

The L2 term is applied per observed rating (the classic SGD formulation, as in Koren 2009 / Surprise),
so entities with many ratings are regularised in proportion. Full ranking is one matmul over the augmented
vectors [p_j, μ + b_j, 1] · [q_k, 1, b_k].

Training computes the gradient in closed form (``analytic_gradients``: no autograd graph per step) and steps Adam
as PyTorch's fused kernel: at these sizes a step is a few dozen tiny tensor operations, so autograd's bookkeeping
was most of its cost (``bench.peers.side_by_side`` pairs it with Surprise's SVD).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.common.base import GradientConfig, Recommender, StepLoss, add_row_grads
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
    analytic_gradients = True

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
        # for the closed-form gradient: [x_1..x_k, 1] = x · mask + e_{k+1}
        # (buffers so that they follow the model's device; not persistent: checkpoints hold the weights only)
        self._factor_mask: torch.Tensor | None
        self._bias_one: torch.Tensor | None
        self.register_buffer("_factor_mask", torch.cat([torch.ones(k), torch.zeros(1)]) if cfg.biases else None,
                             persistent=False)  # fmt: skip
        self.register_buffer("_bias_one", torch.cat([torch.zeros(k), torch.ones(1)]) if cfg.biases else None,
                             persistent=False)  # fmt: skip
        self.register_buffer("mu", torch.tensor(ctx.global_mean if cfg.biases else 0.0, dtype=torch.float32))

    def _score(self, pu: torch.Tensor, qi: torch.Tensor) -> torch.Tensor:
        k = self.k
        if pu.shape[-1] == k:  # plain MF
            return (pu * qi).sum(-1)
        return self.mu + pu[:, k] + qi[:, k] + (pu[:, :k] * qi[:, :k]).sum(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self._score(self.P(users), self.Q(items))

    @torch.no_grad()
    def batch_loss(self, batch: PairBatch) -> StepLoss:
        """Objective (1/n) Σ_batch (r̂ − r)² + λ(‖p_j‖² + ‖q_k‖² (+ b_j² + b_k²)), and its gradient in closed form
        (``analytic_gradients``): ∂/∂p_j = (2/n)[(r̂ − r)·q̃_k + λ·p_j] summed over the batch's rows of user j, with
        q̃_k = [q_k, 1] when biased (∂r̂/∂b_j = 1), and symmetrically for q_k. Autograd gives the same numbers
        (a test compares them)."""
        P, Q = self.P.weight, self.Q.weight
        pu, qi = P.index_select(0, batch.users), Q.index_select(0, batch.items)
        err = self._score(pu, qi) - batch.ratings
        n = len(err)
        sq = err.square().mean()
        reg = (pu.square().sum() + qi.square().sum()) / n  # mean of ‖p_j‖² + ‖q_k‖² (+ b_j² + b_k²)
        d = (err * (2.0 / n)).unsqueeze(1)
        shrink = 2.0 * self.cfg.l2 / n
        if self._bias_one is not None:  # [x, 1]: the bias column's partial derivative of r̂ is 1
            pu_d = torch.addcmul(self._bias_one, pu, self._factor_mask)
            qi_d = torch.addcmul(self._bias_one, qi, self._factor_mask)
        else:
            pu_d, qi_d = pu, qi
        add_row_grads(P, batch.users, torch.addcmul(pu * shrink, d, qi_d))
        add_row_grads(Q, batch.items, torch.addcmul(qi * shrink, d, pu_d))
        return StepLoss(sq + self.cfg.l2 * reg, {"mse": sq, "reg": reg}, weight=n)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        k, P, Q = self.k, self.P.weight, self.Q.weight
        if P.shape[1] == k:
            return P, Q
        ones_u = torch.ones(self.n_users, 1, device=P.device)
        ones_i = torch.ones(self.n_items, 1, device=P.device)
        return torch.cat([P[:, :k], P[:, k:] + self.mu, ones_u], 1), torch.cat([Q[:, :k], ones_i, Q[:, k:]], 1)
