"""BiasedMF: r̂_jk = μ + b_j + b_k + p_j·q_k, squared error on observed ratings + λ(‖p_j‖² + ‖q_k‖² + b_j² + b_k²).

The L2 term is applied per observed rating (the classic SGD formulation, as in Koren 2009 / Surprise),
so entities with many ratings are regularised in proportion. Full ranking is one matmul over the augmented
vectors [p_j, μ + b_j, 1] · [q_k, 1, b_k].

Training computes the gradient in closed form (``analytic_gradients``: no autograd graph per step) and steps Adam
as PyTorch's fused kernel: at these sizes a step is a few dozen tiny tensor operations, so autograd's bookkeeping
was most of its cost (``bench.peers.side_by_side`` pairs it with Surprise's SVD). On CPU with Adam an epoch runs as
one compiled kernel of the same algorithm (``_mf_kernel``, numba; ``cpu_kernel``), since even the fused tensor
step spends as much time dispatching its ~25 operations as computing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    cpu_kernel: bool = True
    """On CPU with Adam: run each epoch as one compiled kernel (``_mf_kernel``, numba): the same minibatch Adam as
    the tensor path, equal to float32 rounding, ~4× faster per epoch. false: the tensor path (``batch_loss`` and
    PyTorch's fused Adam), which every other optimizer and CUDA use."""


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
        self._kernel_data: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

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

    @torch.no_grad()
    def fused_epoch(self, opt: torch.optim.Optimizer, rng: np.random.Generator) -> dict[str, float] | None:
        """The epoch as one compiled CPU kernel (``cpu_kernel``); None where it does not apply (CUDA, another
        optimizer, weight decay / AMSGrad), so that the loop steps through ``batch_loss``. It draws the same
        epoch order as ``pair_batches`` and keeps the optimizer's own Adam state (moments, step count), so a
        checkpoint, a resume and an lr schedule behave as on the tensor path."""
        if not (self.cfg.cpu_kernel and self.device.type == "cpu" and type(opt) is torch.optim.Adam):
            return None
        group = opt.param_groups[0]
        if len(opt.param_groups) != 1 or group["weight_decay"] or group["amsgrad"] or group["maximize"]:
            return None
        tables = (self.P.weight, self.Q.weight)
        states = [opt.state[p] for p in tables]
        for p, st in zip(tables, states, strict=True):
            if not st:  # what torch's Adam creates at its first step (fused: a float32 step count)
                st["step"] = torch.zeros((), dtype=torch.float32)
                st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        arrays = [t.detach() for t in (*tables, *(st[m] for st in states for m in ("exp_avg", "exp_avg_sq")))]
        if not all(a.is_contiguous() and a.dtype == torch.float32 for a in arrays):
            return None
        data = self.ctx.interactions
        if self._kernel_data is None:
            self._kernel_data = (np.ascontiguousarray(data.users, dtype=np.int64),
                                 np.ascontiguousarray(data.items, dtype=np.int64),
                                 np.ascontiguousarray(data.ratings, dtype=np.float32))  # fmt: skip
        from models.factorization._mf_kernel import adam_epoch  # numba: imported (and compiled) on first use

        order = rng.permutation(len(data))  # the draw of pair_batches: the same epoch order
        P, Q, mp, vp, mq, vq = (a.numpy() for a in arrays)
        step, sse, sreg = adam_epoch(
            P, Q, (mp, vp, mq, vq), *self._kernel_data, order, self.cfg.batch_size, float(self.mu), self.cfg.l2,
            self.cfg.biases, group["lr"], group["betas"], group["eps"], float(states[0]["step"]),
        )  # fmt: skip
        for st in states:
            st["step"].fill_(step)
        n = max(len(data), 1)
        return {"loss": (sse + self.cfg.l2 * sreg) / n, "mse": sse / n, "reg": sreg / n}

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        k, P, Q = self.k, self.P.weight, self.Q.weight
        if P.shape[1] == k:
            return P, Q
        ones_u = torch.ones(self.n_users, 1, device=P.device)
        ones_i = torch.ones(self.n_items, 1, device=P.device)
        return torch.cat([P[:, :k], P[:, k:] + self.mu, ones_u], 1), torch.cat([Q[:, :k], ones_i, Q[:, k:]], 1)
