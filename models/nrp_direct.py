"""NRP-direct (Raziperchikolaei et al. 2020, Eq. 6): no decoders, representations learned for prediction.

User j: rating row R_j → MLP, and each user side source → its own MLP; z_j = concat. Item k likewise over
the column R_:k and the item side sources. h([z_j, z_k]) → rating through the prediction MLP. Loss: MSE on
observed ratings + λ‖θ‖².

First layers over rating vectors and bag-of-words are ``embedding_bag`` over the observed entries.

``mask_target``: when training on (j, k), R_jk sits in both input vectors while a test rating never does.
With masking on, its contribution r_jk·W[k] (resp. r_jk·W'[j]) is subtracted from the first-layer
pre-activation, which is exactly the encoding of the vector with R_jk removed, at O(batch · width) cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.base import Batch, ModelConfig, RatingModel, activation, lecun_normal_, mlp
from models.context import TrainContext
from models.registry import register_model
from models.sparse import SparseLinear, SparseRows, dense_or_sparse_rows
from tasks.errors import ConfigError


@dataclass(frozen=True)
class NRPDirectConfig(ModelConfig):
    encoder: tuple[int, ...] = (500, 200, 100)
    predictor: tuple[int, ...] = (500, 200, 100, 50)
    activation: str = "selu"
    side: str = "bow"            # bow | svd | none
    mask_target: bool = True
    input_norm: str = "none"     # none | sqrt: rating vectors scaled by 1/sqrt(#ratings in the vector)
    dropout: float = 0.0
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 512


class Encoder(nn.Module):
    """First layer over a sparse (or dense) input, then dense layers; all with the same activation."""

    def __init__(self, in_dim: int, sizes: tuple[int, ...], act: str, param: str, sparse: bool) -> None:
        super().__init__()
        self.sparse = sparse
        if sparse:
            self.first: nn.Module = SparseLinear(in_dim, sizes[0], init="lecun" if act == "selu" else "uniform")
        else:
            lin = nn.Linear(in_dim, sizes[0])
            self.first = lecun_normal_(lin) if act == "selu" else lin
        self.act = activation(act, param)
        self.rest = mlp(list(sizes), act, param) if len(sizes) > 1 else nn.Identity()

    def pre(self, source: SparseRows | torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        if self.sparse:
            assert isinstance(source, SparseRows)
            return self.first(*source.gather(rows))
        assert isinstance(source, torch.Tensor)
        return self.first(source[rows])

    def post(self, pre: torch.Tensor) -> torch.Tensor:
        return self.rest(self.act(pre))

    def forward(self, source: SparseRows | torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(source, rows))


@register_model("nrp-direct")
class NRPDirect(RatingModel):
    config_cls = NRPDirectConfig
    name = "nrp-direct"

    def __init__(self, cfg: NRPDirectConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = "models.nrp-direct"
        if cfg.side not in ("bow", "svd", "none"):
            raise ConfigError(f"{p}.side", "'bow', 'svd' or 'none'", cfg.side)
        if not cfg.encoder or not cfg.predictor:
            raise ConfigError(f"{p}.encoder", "non-empty encoder and predictor sizes", [cfg.encoder, cfg.predictor])
        if cfg.input_norm not in ("none", "sqrt"):
            raise ConfigError(f"{p}.input_norm", "'none' or 'sqrt'", cfg.input_norm)
        dev = ctx.device
        u_scale = _row_scale(ctx.user_counts, cfg.input_norm)
        i_scale = _row_scale(ctx.item_counts, cfg.input_norm)
        self.user_rows = SparseRows(sp.diags(u_scale) @ ctx.user_matrix, dev)
        self.item_rows = SparseRows(sp.diags(i_scale) @ ctx.item_matrix, dev)
        self.register_buffer("u_scale", torch.as_tensor(u_scale, dtype=torch.float32, device=dev))
        self.register_buffer("i_scale", torch.as_tensor(i_scale, dtype=torch.float32, device=dev))
        self.user_enc = Encoder(ctx.n_items, cfg.encoder, cfg.activation, f"{p}.activation", sparse=True)
        self.item_enc = Encoder(ctx.n_users, cfg.encoder, cfg.activation, f"{p}.activation", sparse=True)
        self.user_sources: list[SparseRows | torch.Tensor] = []
        self.item_sources: list[SparseRows | torch.Tensor] = []
        self.user_side_enc = nn.ModuleList()
        self.item_side_enc = nn.ModuleList()
        if cfg.side != "none":
            for side, sources, encs, n in (
                (ctx.user_side, self.user_sources, self.user_side_enc, ctx.n_users),
                (ctx.item_side, self.item_sources, self.item_side_enc, ctx.n_items),
            ):
                if cfg.side in side and side[cfg.side].shape[1] > 0:
                    mat = side[cfg.side]
                    if mat.shape[0] != n:
                        raise ConfigError(f"{p}.side", f"{n} rows of side information", mat.shape[0])
                    src = dense_or_sparse_rows(mat, dev)
                    sources.append(src)
                    encs.append(Encoder(mat.shape[1], cfg.encoder, cfg.activation, f"{p}.activation",
                                        sparse=isinstance(src, SparseRows)))
        n_repr = cfg.encoder[-1] * (2 + len(self.user_side_enc) + len(self.item_side_enc))
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.predictor = mlp([n_repr, *cfg.predictor], cfg.activation, f"{p}.activation")
        self.out = nn.Linear(cfg.predictor[-1], 1)
        nn.init.normal_(self.out.weight, 0.0, 1.0 / cfg.predictor[-1] ** 0.5)
        nn.init.constant_(self.out.bias, float(ctx.global_mean))

    def _side(self, encs: nn.ModuleList, sources: list, ids: torch.Tensor) -> list[torch.Tensor]:
        if not len(encs):
            return []
        uniq, inv = torch.unique(ids, return_inverse=True)
        return [enc(src, uniq)[inv] for enc, src in zip(encs, sources, strict=True)]

    def forward(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor | None = None) -> torch.Tensor:
        """Predict; with ``ratings`` given (training) and masking on, R_jk is removed from both inputs."""
        u_pre = self.user_enc.pre(self.user_rows, users)
        i_pre = self.item_enc.pre(self.item_rows, items)
        if ratings is not None and self.cfg.mask_target:
            u_pre = u_pre - (ratings * self.u_scale[users])[:, None] * self.user_enc.first.weight[items]
            i_pre = i_pre - (ratings * self.i_scale[items])[:, None] * self.item_enc.first.weight[users]
        parts = [self.user_enc.post(u_pre), *self._side(self.user_side_enc, self.user_sources, users),
                 self.item_enc.post(i_pre), *self._side(self.item_side_enc, self.item_sources, items)]
        z = self.dropout(torch.cat(parts, dim=-1))
        return self.out(self.predictor(z)).squeeze(-1)

    def batch_loss(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, int]:
        pred = self(batch.users, batch.items, batch.ratings)
        err = (pred - batch.ratings).pow(2)
        loss = err.mean()
        if self.cfg.l2 > 0:
            loss = loss + self.cfg.l2 * sum(p.pow(2).sum() for n, p in self.named_parameters() if "bias" not in n)
        return loss, err.sum().detach(), len(err)

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)


def _row_scale(counts: np.ndarray, norm: str) -> np.ndarray:
    if norm == "sqrt":
        return (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    return np.ones(len(counts), dtype=np.float32)
