"""NRP-direct (Raziperchikolaei et al. 2020, Eq. 6): no decoders, representations learned for prediction.

User j: rating row R_j → MLP, and each user side source → its own MLP; z_j = concat. Item k likewise over
the column R_:k and the item side sources. h([z_j, z_k]) → rating through the prediction MLP. Loss: MSE on
observed ratings + λ‖θ‖².

``mask_target``: when training on (j, k), R_jk sits in both input vectors while a test rating never does.
With masking on, its contribution v_jk·W[k] (resp. v_jk·W'[j]) is subtracted from the first-layer
pre-activation, which is exactly the encoding of the vector with R_jk removed, at O(batch · width) cost.

Config (``params.yaml`` ``models.nrp-direct``), beyond the shared optimizer / lr / l2 / batch_size /
lr_decay / lr_patience:

- ``encoder`` [500, 200, 100], ``predictor`` [500, 200, 100, 50] (then a linear output), ``activation`` selu.
- ``side``: bow | svd | none — which side information gets its own encoder.
- ``mask_target`` (true): see above.
- ``center`` (none): entries of the rating vectors are r − c: none (c = 0) or global (c = the training mean);
  unobserved entries stay 0. (A per-user/per-item mean is deliberately not offered: with masking, the masked
  vector's entries would sum to c_j − r_jk and leak the target.)
- ``input_dropout`` (0.0): during training each observed entry of a rating vector is dropped with this
  probability and the kept ones are scaled by 1/(1 − q) (NCAE-style denoising); one draw per distinct
  user / item per batch, and masking removes R_jk only where it was kept.
- ``input_norm`` (none): sqrt scales each rating vector by 1/sqrt(#ratings in it).
- ``dropout`` (0.0) on the concatenated representation [z_j, z_k]; ``dropout_kind`` standard | alpha
  (AlphaDropout keeps SELU's self-normalisation).
- ``rating_input`` (sparse): the first layer over rating vectors as ``embedding_bag`` over observed entries
  (sparse) or as a matmul over dense rows (dense; faster with bf16 on CPUs with AMX, memory n_users·n_items).
- ``precision`` (fp32): bf16 runs the matmuls under autocast (weights, optimizer and loss stay fp32).
- ``id_embedding`` (0): when d > 0, each side gets one more source, a learned ID embedding g_ID(j) = E_u[j] of
  size d (Keras' default init U[−0.05, 0.05]) concatenated to its z (NRP §3, "ID of the users and items as
  another source of information"; the paper found no gain). ``nrp-direct-id`` is that variant
  (``{base: nrp-direct, id_embedding: 100}``); ``nrp-direct-noside`` (``side: none``) is Table 5's "no side info".

Each batch encodes every distinct user / item once (first layers and side encoders); only the masked
correction and the layers after it are per pair.

``Encoder``, ``side_encoder`` and ``split_scores`` are shared with the other NRP-paper models (``dssm``,
``accm``, ``nrp-neumf``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import ACTIVATIONS, activation, lecun_normal_, mlp
from models.common.registry import register_model
from models.common.samplers import PairBatch
from models.common.sparse import SparseLinear, SparseRows, dense_or_sparse_rows
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class NRPDirectConfig(GradientConfig):
    encoder: tuple[int, ...] = (500, 200, 100)
    """Layer sizes of every encoder (rating vector and side sources); the last is a source's width in z."""
    predictor: tuple[int, ...] = (500, 200, 100, 50)
    """Hidden sizes of the prediction MLP over [z_j, z_k] (a linear output follows)."""
    activation: str = "selu"
    """Activation of every layer (selu layers get LeCun-normal init)."""
    side: str = "bow"
    """bow | svd | none: which side information gets its own encoder."""
    mask_target: bool = True
    """Remove R_jk from both rating vectors when training on (j, k)."""
    center: str = "none"
    """none | global: observed rating-vector entries are r − c with c = 0 or the training mean."""
    input_dropout: float = 0.0
    """Probability of dropping each observed rating-vector entry while training (kept ones scaled 1/(1 − q))."""
    input_norm: str = "none"
    """none | sqrt: rating vectors scaled by 1/sqrt(#ratings in the vector)."""
    dropout: float = 0.0
    """Dropout on the concatenated representation [z_j, z_k]."""
    dropout_kind: str = "standard"
    """standard | alpha (AlphaDropout keeps SELU's self-normalisation)."""
    rating_input: str = "sparse"
    """sparse (embedding_bag over observed entries) | dense (matmul over dense rows)."""
    precision: str = "fp32"
    """fp32 | bf16 (matmuls under autocast; weights, optimizer and loss stay fp32)."""
    id_embedding: int = 0
    """Size of an extra learned ID embedding per side concatenated to z (0: none)."""
    optimizer: str = "rmsprop"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 512

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        check_choices(p, self, (
            ("side", ("bow", "svd", "none")),
            ("input_norm", ("none", "sqrt")),
            ("center", ("none", "global")),
            ("dropout_kind", ("standard", "alpha")),
            ("rating_input", ("sparse", "dense")),
            ("precision", ("fp32", "bf16")),
            ("activation", tuple(ACTIVATIONS)),
        ))
        if not self.encoder or not self.predictor:
            raise ConfigError(f"{p}.encoder", "non-empty encoder and predictor sizes", [self.encoder, self.predictor])
        check_sizes(p, self, "encoder", "predictor")
        for key in ("dropout", "input_dropout"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"{p}.{key}", "a probability in [0, 1)", getattr(self, key))
        if self.id_embedding < 0:
            raise ConfigError(f"{p}.id_embedding", "an integer >= 0 (0: no ID embedding)", self.id_embedding)


def check_choices(p: str, cfg: object, table: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Every option ``key`` of ``cfg`` is one of its ``allowed`` values (``ConfigError`` listing them)."""
    for key, allowed in table:
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"{p}.{key}", " | ".join(allowed), getattr(cfg, key))


def check_sizes(p: str, cfg: object, *keys: str) -> None:
    """Every layer-size list ``keys`` of ``cfg`` holds positive integers."""
    for key in keys:
        sizes = getattr(cfg, key)
        if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
            raise ConfigError(f"{p}.{key}", "positive integer layer sizes", list(sizes))


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
        if isinstance(source, SparseRows):
            return self.first(*source.gather(rows))
        if self.sparse:  # dense rows into a SparseLinear: same parameters, one matmul
            return source[rows] @ self.first.weight + self.first.bias
        return self.first(source[rows])

    def post(self, pre: torch.Tensor) -> torch.Tensor:
        return self.rest(self.act(pre))

    def forward(self, source: SparseRows | torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.post(self.pre(source, rows))


def side_encoder(
    side: dict[str, sp.csr_matrix | np.ndarray],
    source: str,
    n: int,
    sizes: tuple[int, ...],
    act: str,
    p: str,
    device: torch.device,
) -> tuple[SparseRows | torch.Tensor, Encoder] | None:
    """The side matrix ``source`` of one side (sparse rows, or dense on the device) and an encoder over it;
    None where that side has no such source or it has no columns. ``p`` is ``models.<name>``."""
    if source not in side or side[source].shape[1] == 0:
        return None
    mat = side[source]
    if mat.shape[0] != n:
        raise ConfigError(f"{p}.side", f"{n} rows of side information", mat.shape[0])
    src = dense_or_sparse_rows(mat, device)
    return src, Encoder(mat.shape[1], sizes, act, f"{p}.activation", sparse=isinstance(src, SparseRows))


def split_scores(
    a: torch.Tensor, b: torch.Tensor, head: Callable[[int, slice, torch.Tensor], torch.Tensor], block: int
) -> torch.Tensor:
    """Full ranking for a first layer split as W[z_u, z_i] + c = a_u + b_i: out[r, s] = head(r, s, a[r] + b[s]),
    in blocks of about ``block`` items (one user × an item range), which keep the per-pair activations in cache
    instead of streaming users × items × width floats through memory."""
    n = b.shape[0]
    out = torch.empty(a.shape[0], n, device=a.device)
    step = max(1, min(n, block))
    for r in range(a.shape[0]):
        for s in range(0, n, step):
            sl = slice(s, s + step)
            out[r, sl] = head(r, sl, a[r][None, :] + b[sl])
    return out


@register_model("nrp-direct")
class NRPDirect(Recommender):
    config_cls = NRPDirectConfig
    task = "rating"

    def __init__(self, cfg: NRPDirectConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        p = f"models.{self.name}"
        dev = ctx.device
        u_scale = _row_scale(ctx.user_counts, cfg.input_norm)
        i_scale = _row_scale(ctx.item_counts, cfg.input_norm)
        center = float(ctx.global_mean) if cfg.center == "global" else 0.0
        self.register_buffer("u_scale", torch.as_tensor(u_scale, device=dev))
        self.register_buffer("i_scale", torch.as_tensor(i_scale, device=dev))
        self.register_buffer("center", torch.tensor(center, device=dev))
        self.user_rows = _rating_input(ctx.user_matrix, center, u_scale, cfg.rating_input, dev)
        self.item_rows = _rating_input(ctx.item_matrix, center, i_scale, cfg.rating_input, dev)
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
                found = side_encoder(side, cfg.side, n, cfg.encoder, cfg.activation, p, dev)
                if found is not None:
                    sources.append(found[0])
                    encs.append(found[1])
        n_repr = cfg.encoder[-1] * (2 + len(self.user_side_enc) + len(self.item_side_enc)) + 2 * cfg.id_embedding
        self.dropout: nn.Module = nn.Identity()
        if cfg.dropout > 0:
            self.dropout = nn.AlphaDropout(cfg.dropout) if cfg.dropout_kind == "alpha" else nn.Dropout(cfg.dropout)
        self.predictor = mlp([n_repr, *cfg.predictor], cfg.activation, f"{p}.activation")
        self.out = nn.Linear(cfg.predictor[-1], 1)
        nn.init.normal_(self.out.weight, 0.0, 1.0 / cfg.predictor[-1] ** 0.5)
        nn.init.constant_(self.out.bias, float(ctx.global_mean))
        self.user_id: nn.Embedding | None = None
        self.item_id: nn.Embedding | None = None
        if cfg.id_embedding > 0:  # created last: the other parameters draw the same initial values as without
            self.user_id = nn.Embedding(ctx.n_users, cfg.id_embedding)
            self.item_id = nn.Embedding(ctx.n_items, cfg.id_embedding)
            for emb in (self.user_id, self.item_id):
                nn.init.uniform_(emb.weight, -0.05, 0.05)  # Keras' Embedding default (the paper used Keras)

    def _autocast(self) -> AbstractContextManager[object]:
        if self.cfg.precision == "bf16":
            return torch.autocast(self.u_scale.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _side(
        self, encs: nn.ModuleList, sources: list[SparseRows | torch.Tensor], uniq: torch.Tensor, inv: torch.Tensor
    ) -> list[torch.Tensor]:
        return [enc(src, uniq).index_select(0, inv) for enc, src in zip(encs, sources, strict=True)]

    @staticmethod
    def _ids(emb: nn.Embedding | None, ids: torch.Tensor) -> list[torch.Tensor]:
        return [] if emb is None else [emb(ids)]

    def _rating_pre(
        self,
        enc: Encoder,
        source: SparseRows | torch.Tensor,
        uniq: torch.Tensor,
        inv: torch.Tensor,
        other: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """First-layer pre-activations of the distinct rows ``uniq``, and per pair the factor that R_jk got
        in its row (1, or 0 / 1/(1 − q) under input dropout; ``other`` is the pair's column)."""
        q = self.cfg.input_dropout if self.training else 0.0
        if q == 0.0:
            return enc.pre(source, uniq), torch.ones_like(other, dtype=torch.float32)
        first = enc.first
        assert isinstance(first, SparseLinear)
        if isinstance(source, SparseRows):
            cols, offsets, vals = source.gather(uniq)
            keep = (torch.rand(len(vals), device=vals.device) >= q).float() / (1.0 - q)
            pre = first(cols, offsets, vals * keep)
            # entries come row by row with sorted columns, so (row position, column) keys are sorted
            row_of = torch.searchsorted(offsets, torch.arange(len(vals), device=vals.device), right=True) - 1
            keys = row_of * source.shape[1] + cols
            pos = torch.searchsorted(keys, inv * source.shape[1] + other).clamp_max(len(keys) - 1)
            return pre, keep[pos] * (keys[pos] == inv * source.shape[1] + other).float()
        dense = source[uniq]
        keep = (torch.rand(dense.shape, device=dense.device) >= q).float() / (1.0 - q)
        return (dense * keep) @ first.weight + first.bias, keep[inv, other]

    def pair_representations(
        self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[z_j, z_k] per pair (call under ``_autocast()``); with ``ratings`` given (training) and masking on,
        R_jk is removed from both rating vectors."""
        uu, u_inv = torch.unique(users, return_inverse=True)
        iu, i_inv = torch.unique(items, return_inverse=True)
        u_pre, u_keep = self._rating_pre(self.user_enc, self.user_rows, uu, u_inv, items)
        i_pre, i_keep = self._rating_pre(self.item_enc, self.item_rows, iu, i_inv, users)
        if ratings is not None and self.cfg.mask_target:
            u_val = (ratings - self.center) * self.u_scale[users] * u_keep
            i_val = (ratings - self.center) * self.i_scale[items] * i_keep
            u_z = self.user_enc.post(
                u_pre.float().index_select(0, u_inv) - u_val[:, None] * self.user_enc.first.weight[items]
            )
            i_z = self.item_enc.post(
                i_pre.float().index_select(0, i_inv) - i_val[:, None] * self.item_enc.first.weight[users]
            )
        else:
            u_z = self.user_enc.post(u_pre).index_select(0, u_inv)
            i_z = self.item_enc.post(i_pre).index_select(0, i_inv)
        parts = [
            u_z,
            *self._side(self.user_side_enc, self.user_sources, uu, u_inv),
            *self._ids(self.user_id, users),
            i_z,
            *self._side(self.item_side_enc, self.item_sources, iu, i_inv),
            *self._ids(self.item_id, items),
        ]
        return torch.cat([t.to(u_z.dtype) for t in parts], dim=-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor, ratings: torch.Tensor | None = None) -> torch.Tensor:
        """Predict; with ``ratings`` given (training) and masking on, R_jk is removed from both inputs."""
        with self._autocast():
            z = self.dropout(self.pair_representations(users, items, ratings))
            return self.out(self.predictor(z)).squeeze(-1).float()

    def batch_loss(self, batch: PairBatch) -> StepLoss:
        pred = self(batch.users, batch.items, batch.ratings)
        err = (pred - batch.ratings).pow(2)
        loss = err.mean()
        logs: dict[str, torch.Tensor | float] = {"mse": loss.detach()}
        if self.cfg.l2 > 0:
            reg = losses.weight_norm(self)
            loss = loss + self.cfg.l2 * reg
            logs["reg"] = float(reg.detach())
        return StepLoss(loss, logs, weight=len(err))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return self(users, items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, block: int = 8192) -> torch.Tensor:
        """All items for each user: representations once per user and (per ``scoring()`` block) per item, and
        the first prediction layer split as W[z_u, z_i] = W_u z_u + W_i z_i, so only the later layers run per
        pair (``split_scores``)."""
        a, b = self._first_layer_parts(users)
        rest = self.predictor[1:]
        return split_scores(a, b, lambda r, sl, h: self.out(rest(h)).squeeze(-1), block)

    def _first_layer_parts(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W_u z_u for ``users`` and W_i z_i + b for every item (cached inside ``scoring()``)."""
        self.eval()
        dev = self.u_scale.device
        u = users.to(dev)
        z_u = torch.cat(
            [
                self.user_enc(self.user_rows, u),
                *(e(s, u) for e, s in zip(self.user_side_enc, self.user_sources)),
                *self._ids(self.user_id, u),
            ],
            -1,
        )
        first = self.predictor[0]
        assert isinstance(first, nn.Linear)
        a = z_u @ first.weight[:, : z_u.shape[1]].T
        return a, self.cached("item_part", lambda: self._item_part(dev, z_u.shape[1]))

    def _item_part(self, dev: torch.device, user_width: int) -> torch.Tensor:
        it = torch.arange(self.n_items, device=dev)
        z_i = torch.cat(
            [
                self.item_enc(self.item_rows, it),
                *(e(s, it) for e, s in zip(self.item_side_enc, self.item_sources)),
                *self._ids(self.item_id, it),
            ],
            -1,
        )
        first = self.predictor[0]
        assert isinstance(first, nn.Linear)
        return z_i @ first.weight[:, user_width:].T + first.bias


def _row_scale(counts: np.ndarray, norm: str) -> np.ndarray:
    if norm == "sqrt":
        return (1.0 / np.sqrt(np.maximum(counts, 1))).astype(np.float32)
    return np.ones(len(counts), dtype=np.float32)


def _rating_input(
    matrix: sp.csr_matrix, center: float, scale: np.ndarray, kind: str, device: torch.device
) -> SparseRows | torch.Tensor:
    """Observed entries (r − center) · scale[row]; unobserved stay 0."""
    m = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    m.data = ((m.data - center) * scale[rows]).astype(np.float32)
    if kind == "dense":
        return torch.as_tensor(m.toarray(), device=device)
    return SparseRows(m, device)
