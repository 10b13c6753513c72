"""AutoRec (Sedhain et al. 2015): I-AutoRec reconstructs each item's rating vector over users, U-AutoRec
each user's vector over items.

h(r) = f(W · g(V r + μ) + b); loss Σ ‖r − h(r)‖²_O (observed entries only) + (λ/2)(‖W‖²_F + ‖V‖²_F).
Both the encoder (``embedding_bag`` over the observed entries) and the decoder (only the observed outputs
are computed during training) cost O(observed · k). Prediction of R̂_ui uses the TRAINING vector as input;
users or items without a training rating get ``default_rating`` (3 in the paper). ``hidden`` with more
than one size gives the deep variant, e.g. [500, 250, 500].

The regulariser is spread over minibatches in proportion to their share of vectors, so summed over an
epoch it equals the paper's (λ/2)(‖W‖² + ‖V‖²) once: λ keeps the paper's meaning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.base import ModelConfig, RatingModel, activation, mlp
from models.context import TrainContext
from models.registry import register_model
from models.sparse import SparseLinear, SparseRows
from tasks.errors import ConfigError


@dataclass(frozen=True)
class AutoRecConfig(ModelConfig):
    hidden: tuple[int, ...] = (500,)
    activation: str = "sigmoid"  # g
    output_activation: str = "identity"  # f
    optimizer: str = "adam"
    lr: float = 1e-3
    l2: float = 1.0  # λ
    batch_size: int = 64
    default_rating: float = 3.0


class AutoRec(RatingModel):
    config_cls = AutoRecConfig
    item_based: bool = True

    def __init__(self, cfg: AutoRecConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        if not cfg.hidden:
            raise ConfigError(f"models.{self.name}.hidden", "at least one hidden size", list(cfg.hidden))
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
        self.dec_b = nn.Parameter(torch.full((dim,), float(ctx.global_mean)))
        self.f = activation(cfg.output_activation, f"models.{self.name}.output_activation")
        counts = np.diff(self.vectors.indptr)
        self.register_buffer("vec_known", torch.as_tensor(counts > 0, device=ctx.device))
        other = ctx.user_counts if self.item_based else ctx.item_counts
        self.register_buffer("dim_known", torch.as_tensor(other > 0, device=ctx.device))
        self._active = np.flatnonzero(counts > 0)

    def encode(self, vec_ids: torch.Tensor) -> torch.Tensor:
        cols, offsets, vals = self.rows.gather(vec_ids)
        return self.deep(self.g(self.encoder(cols, offsets, vals)))

    def weight_norm(self) -> torch.Tensor:
        total = self.encoder.weight.pow(2).sum() + self.dec_w.pow(2).sum()
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

    def batch_loss(self, vec_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        h = self.encode(vec_ids)
        cols, _, vals, row_of = self.rows.gather_with_rows(vec_ids)
        out = self.f((self.dec_w[cols] * h[row_of]).sum(-1) + self.dec_b[cols])
        sse = (out - vals).pow(2).sum()
        share = len(vec_ids) / max(len(self._active), 1)
        objective = sse + 0.5 * self.cfg.l2 * share * self.weight_norm()
        return objective, sse.detach(), len(vals)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vec, pos = (items, users) if self.item_based else (users, items)
        uniq, inv = torch.unique(vec, return_inverse=True)
        h = self.encode(uniq)[inv]
        out = self.f((self.dec_w[pos] * h).sum(-1) + self.dec_b[pos])
        known = self.vec_known[vec] & self.dim_known[pos]
        return torch.where(known, out, torch.full_like(out, self.cfg.default_rating))

    @torch.no_grad()
    def score_users(self, users: np.ndarray) -> np.ndarray:
        self.eval()
        dev = self.dec_w.device
        u = torch.from_numpy(np.array(users, dtype=np.int64)).to(dev)
        if self.item_based:
            outs = []
            for s in range(0, self.n_items, 1024):
                it = torch.arange(s, min(s + 1024, self.n_items), device=dev)
                h = self.encode(it)  # (items, k)
                o = self.f(h @ self.dec_w[u].T + self.dec_b[u])  # (items, users)
                known = self.vec_known[it][:, None] & self.dim_known[u][None, :]
                outs.append(torch.where(known, o, torch.full_like(o, self.cfg.default_rating)))
            return torch.cat(outs, 0).T.cpu().numpy()
        h = self.encode(u)
        o = self.f(h @ self.dec_w.T + self.dec_b)
        known = self.vec_known[u][:, None] & self.dim_known[None, :]
        return torch.where(known, o, torch.full_like(o, self.cfg.default_rating)).cpu().numpy()


@register_model("autorec-i")
class ItemAutoRec(AutoRec):
    name = "autorec-i"
    item_based = True


@register_model("autorec-u")
class UserAutoRec(AutoRec):
    name = "autorec-u"
    item_based = False
