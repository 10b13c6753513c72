"""AutoRec (Sedhain et al. 2015): I-AutoRec reconstructs each item's rating vector over users, U-AutoRec
each user's vector over items.

h(r) = f(W · g(V r + μ) + b) (f, g ∈ {identity, sigmoid, ...}; a bounded f is mapped onto the rating scale);
loss Σ ‖r − h(r)‖²_O (observed entries only) + (λ/2)(‖W‖²_F + ‖V‖²_F).
Both the encoder (``embedding_bag`` over the observed entries) and the decoder (only the observed outputs
are computed during training) cost O(observed · k). Prediction of R̂_ui uses the TRAINING vector as input;
users or items without a training rating get ``default_rating`` (3 in the paper). ``hidden`` with more
than one size gives the deep variant, e.g. [500, 250, 500].

The regulariser is spread over minibatches in proportion to their share of vectors, so summed over an
epoch it equals the paper's (λ/2)(‖W‖² + ‖V‖²) once: λ keeps the paper's meaning.

``sparse_updates`` (``models/common/sparse_optim.py``; default false = the above, bit for bit): V (the first
layer) and W (the decoder) get row-sparse gradients over the minibatch's observed entries, the optimizer steps
those rows only (Adam lazily), and their share of the regulariser is taken over the touched rows r, each weighted
by m_r (steps per epoch / expected minibatches touching r), an unbiased per-step estimate of ‖W‖² + ‖V‖².
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.common.base import Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import activation, mlp
from models.common.registry import register_model
from models.common.sparse import RowBlock, SparseLinear, SparseRows, weighted_sq_norm
from models.common.sparse_optim import SparseGradientConfig, row_steps_of, sparse_optimizer
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class AutoRecConfig(SparseGradientConfig):
    hidden: tuple[int, ...] = (500,)
    """Hidden layer sizes; more than one gives the deep variant, e.g. [500, 250, 500]."""
    activation: str = "sigmoid"
    """g, the hidden activation."""
    output_activation: str = "identity"
    """f, the output activation."""
    optimizer: str = "adam"
    lr: float = 1e-3
    l2: float = 1.0
    """λ of (λ/2)(‖W‖² + ‖V‖²)."""
    batch_size: int = 64
    default_rating: float = 3.0
    """Prediction for a user or item without any training rating."""


class AutoRec(Recommender):
    config_cls = AutoRecConfig
    task = "rating"
    item_based: bool = True

    def __init__(self, cfg: AutoRecConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        if not cfg.hidden or any(not isinstance(h, int) or h < 1 for h in cfg.hidden):
            raise ConfigError(f"models.{self.name}.hidden", "one or more positive hidden sizes", list(cfg.hidden))
        # vectors: one per item (over users) for I-AutoRec, one per user (over items) for U-AutoRec
        self.vectors = ctx.item_matrix if self.item_based else ctx.user_matrix
        n_vec, dim = self.vectors.shape
        self.n_vectors, self.dim = n_vec, dim
        self.rows = SparseRows(self.vectors, ctx.device)
        self.encoder = SparseLinear(dim, cfg.hidden[0])
        self.g = activation(cfg.activation, f"models.{self.name}.activation")
        self.deep = (
            mlp(list(cfg.hidden), cfg.activation, f"models.{self.name}.activation")
            if len(cfg.hidden) > 1
            else nn.Identity()
        )
        k = cfg.hidden[-1]
        bound = 1.0 / np.sqrt(k)
        self.dec_w = nn.Parameter(torch.empty(dim, k).uniform_(-bound, bound))
        self.f = output_map(cfg.output_activation, ctx.rating_scale, f"models.{self.name}.output_activation")
        self.dec_b = nn.Parameter(torch.full((dim,), self.f.inverse(float(ctx.global_mean))))
        counts = np.diff(self.vectors.indptr)
        self.register_buffer("vec_known", torch.as_tensor(counts > 0, device=ctx.device))
        other = ctx.user_counts if self.item_based else ctx.item_counts
        self.register_buffer("dim_known", torch.as_tensor(other > 0, device=ctx.device))
        self._active = np.flatnonzero(counts > 0)
        self.sparse = cfg.use_sparse(dim)
        self.row_steps: torch.Tensor | None = None  # m_r of the lazy regulariser (not a buffer: data, not state)
        if self.sparse:
            self.row_steps = row_steps_of(self.vectors, self._active, dim, cfg.batch_size, ctx.device)

    def make_optimizer(self) -> torch.optim.Optimizer | None:
        if not self.sparse:
            return super().make_optimizer()
        params = [p for p in self.parameters() if p.requires_grad]
        return sparse_optimizer(params, self.cfg.optimizer, self.cfg.lr, f"models.{self.name}.optimizer")

    def encode(self, vec_ids: torch.Tensor) -> torch.Tensor:
        cols, offsets, vals = self.rows.gather(vec_ids)
        return self.deep(self.g(self.encoder(cols, offsets, vals)))

    def weight_norm(self) -> torch.Tensor:
        total = self.encoder.weight.pow(2).sum() + self.dec_w.pow(2).sum()
        for m in self.deep.modules():
            if isinstance(m, nn.Linear):
                total = total + m.weight.pow(2).sum()
        return total

    def deep_norm(self) -> torch.Tensor:
        total = torch.zeros((), device=self.dec_w.device)
        for m in self.deep.modules():
            if isinstance(m, nn.Linear):
                total = total + m.weight.pow(2).sum()
        return total

    def train_batches(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        order = rng.permutation(self._active)
        bs = self.cfg.batch_size
        dev = self.dec_w.device
        for s in range(0, len(order), bs):
            yield torch.as_tensor(order[s : s + bs], dtype=torch.long, device=dev)

    def batch_loss(self, vec_ids: torch.Tensor) -> StepLoss:
        if self.sparse:
            return self._sparse_batch_loss(vec_ids)
        h = self.encode(vec_ids)
        cols, _, vals, row_of = self.rows.gather_with_rows(vec_ids)
        out = self.f((self.dec_w[cols] * h[row_of]).sum(-1) + self.dec_b[cols])
        sse = (out - vals).pow(2).sum()
        share = len(vec_ids) / max(len(self._active), 1)
        norm = self.weight_norm()
        objective = sse + 0.5 * self.cfg.l2 * share * norm
        n = max(len(vals), 1)
        return StepLoss(objective, {"mse": sse.detach() / n, "reg": 0.5 * self.cfg.l2 * norm.detach()}, weight=n)

    def _sparse_batch_loss(self, vec_ids: torch.Tensor) -> StepLoss:
        """``sparse_updates``: the same loss over the touched rows of V and W (``RowBlock``); the regulariser's V, W
        part is Σ_{touched r} m_r (‖V_r‖² + ‖W_r‖²), an unbiased estimate of ‖V‖² + ‖W‖²."""
        assert self.row_steps is not None
        cols, offsets, vals, row_of = self.rows.gather_with_rows(vec_ids)
        block = RowBlock(cols)
        v_rows, w_rows = block.take(self.encoder.weight), block.take(self.dec_w)
        h = self.deep(self.g(self.encoder.forward_block(block, v_rows, offsets, vals)))
        out = self.f((w_rows[block.local] * h[row_of]).sum(-1) + self.dec_b[cols])
        sse = (out - vals).pow(2).sum()
        share = len(vec_ids) / max(len(self._active), 1)
        m = self.row_steps[block.rows]
        norm = weighted_sq_norm(v_rows, m) + weighted_sq_norm(w_rows, m) + self.deep_norm()
        objective = sse + 0.5 * self.cfg.l2 * share * norm
        n = max(len(vals), 1)
        return StepLoss(objective, {"mse": sse.detach() / n, "reg": 0.5 * self.cfg.l2 * norm.detach()}, weight=n)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vec, pos = (items, users) if self.item_based else (users, items)
        uniq, inv = torch.unique(vec, return_inverse=True)
        h = self.encode(uniq)[inv]
        out = self.f((self.dec_w[pos] * h).sum(-1) + self.dec_b[pos])
        known = self.vec_known[vec] & self.dim_known[pos]
        return torch.where(known, out, torch.full_like(out, self.cfg.default_rating))

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """I-AutoRec: every item's code is computed once per ``scoring()`` block, then one matmul per chunk
        of users; U-AutoRec: the users' codes times the decoder."""
        self.eval()
        dev = self.dec_w.device
        u = users.to(dev)
        if self.item_based:
            codes = self.cached("item_codes", lambda: self._all_codes(dev))
            o = self.f(self.dec_w[u] @ codes.T + self.dec_b[u][:, None])  # (users, items)
            known = self.dim_known[u][:, None] & self.vec_known[None, :]
        else:
            o = self.f(self.encode(u) @ self.dec_w.T + self.dec_b)
            known = self.vec_known[u][:, None] & self.dim_known[None, :]
        return torch.where(known, o, torch.full_like(o, self.cfg.default_rating))

    def _all_codes(self, dev: torch.device, chunk: int = 4096) -> torch.Tensor:
        blocks = [torch.arange(s, min(s + chunk, self.n_items), device=dev) for s in range(0, self.n_items, chunk)]
        return torch.cat([self.encode(b) for b in blocks])


class OutputMap(nn.Module):
    """f of h(r) = f(W·g(V r + μ) + b), mapped onto the rating scale [lo, hi] when f is bounded: identity as is;
    sigmoid → lo + (hi − lo)·σ(z); tanh → (lo + hi)/2 + (hi − lo)/2·tanh(z) (a sigmoid output cannot reach a
    5-star rating otherwise; the paper's f = sigmoid rows imply this rescaling)."""

    def __init__(self, kind: str, scale: tuple[float, float]) -> None:
        super().__init__()
        self.kind = kind
        self.lo, self.hi = float(scale[0]), float(scale[1])
        if self.hi <= self.lo:  # implicit data (scale [1, 1] or [0, 1]): a bounded f maps onto [0, 1]
            self.lo, self.hi = 0.0, 1.0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.kind == "sigmoid":
            return self.lo + (self.hi - self.lo) * torch.sigmoid(z)
        if self.kind == "tanh":
            return 0.5 * (self.lo + self.hi) + 0.5 * (self.hi - self.lo) * torch.tanh(z)
        return activation(self.kind, "output_activation")(z) if self.kind != "identity" else z

    def inverse(self, y: float) -> float:
        """z with f(z) = y (clipped inside the scale): the output bias starts at the training mean."""
        if self.kind not in ("sigmoid", "tanh"):
            return y
        u = min(max((y - self.lo) / (self.hi - self.lo), 1e-3), 1 - 1e-3)
        return float(np.log(u / (1 - u))) if self.kind == "sigmoid" else float(np.arctanh(2 * u - 1))


def output_map(kind: str, scale: tuple[float, float], param: str) -> OutputMap:
    activation(kind, param)  # an unknown name is refused, listing the valid ones
    return OutputMap(kind, scale)


@register_model("autorec-i")
class ItemAutoRec(AutoRec):
    item_based = True


@register_model("autorec-u")
class UserAutoRec(AutoRec):
    item_based = False
