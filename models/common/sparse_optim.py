"""``sparse_updates``: row-sparse gradients and lazy optimizer steps for the autoencoders' wide layers.

An autoencoder over n-long rating vectors has two (n × k) matrices: the first layer (``SparseLinear``, an
``embedding_bag`` over the observed entries) and the decoder rows of the observed outputs. Their forward passes
already cost O(observed · k), but by default (``sparse_updates: false``) each step still builds DENSE (n × k)
gradients, adds the regulariser's gradient of the whole matrix and lets the optimizer (Adam moments, Torch7 weight
decay) touch all n·k entries: at ML-20M size (138,493 users) that is ~70M floats per matrix per step, the whole
cost of an epoch. With ``sparse_updates: true`` the two matrices get sparse (touched rows) gradients and only those
rows are stepped, so a step costs O(touched rows · k):

* the optimizer is lazy on them: Adam (``LazyAdam``) updates the moments of the touched rows only (as
  ``torch.optim.SparseAdam``; the bias correction counts the parameter's steps); plain SGD and Adagrad are exact
  (a row without gradient would not move anyway); Torch7 SGD decays a touched row once for the steps since it
  was last touched, see below; RMSprop and the full-batch optimizers are refused;
* the L2 regulariser / weight decay of such a matrix is applied to the touched rows only, each weighted by
  ``steps_per_touch`` (m_r = steps per epoch / expected number of minibatches that touch row r), so its expected
  total over an epoch equals the dense one: objective terms get m_r × the dense per-step weight, Torch7's
  multiplicative decay is raised to the power m_r (stable where a linear m_r-fold decay would overshoot).

Both change the optimisation (lazy moments, row-wise decay in expectation), so the default stays dense and
bit-identical; ``auto`` turns it on when the first layer has at least ``AUTO_ROWS`` rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import gammaln

from models.common.base import FULL_BATCH_OPTIMIZERS, GradientConfig, ModelConfig
from tasks.common.errors import ConfigError

SPARSE_UPDATES = ("false", "true", "auto")
SPARSE_OPTIMIZERS = ("adam", "sgd", "adagrad", "sgd-torch7")
ROW_CHUNK_ELEMS = 1 << 20
AUTO_ROWS = 50_000
"""``auto``: sparse updates when the first layer has at least this many rows (the vector length)."""


def parse_sparse_updates(value: Any, param: str) -> str:
    """YAML true / false / "auto" (or the strings "true" / "false") → "true" | "false" | "auto"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.lower() in SPARSE_UPDATES:
        return value.lower()
    raise ConfigError(param, "false | true | auto", value)


@dataclass(frozen=True)
class SparseGradientConfig(GradientConfig):
    """``GradientConfig`` plus the autoencoders' shared ``sparse_updates`` switch."""

    sparse_updates: str = "false"
    """false (default: dense gradients, every entry stepped) | true | auto (true when the first layer has at
    least 50,000 rows). true: the first layer and the decoder rows get row-sparse gradients; only the rows of
    the minibatch's observed entries are stepped (lazy Adam moments; Torch7 SGD / L2 applied to those rows,
    weighted so the expected per-epoch decay equals the dense one); cost per step O(touched rows · hidden)
    instead of O(vector length · hidden). Optimizers: adam | sgd | adagrad | sgd-torch7. Pays when the
    vectors are long and a minibatch touches a small share of the rows (I-AutoRec/I-CFN on ML-10M/20M:
    see models/common/sparse_optim.py)."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any], model: str) -> ModelConfig:
        if "sparse_updates" in raw:
            raw = {**raw, "sparse_updates": parse_sparse_updates(raw["sparse_updates"],
                                                                 f"models.{model}.sparse_updates")}  # fmt: skip
        return super().from_dict(raw, model)

    def check_sparse_updates(self, model: str) -> None:
        """``sparse_updates`` is one of the choices, and ``true`` only with an optimizer that has a sparse step."""
        param = f"models.{model}.sparse_updates"
        value = parse_sparse_updates(self.sparse_updates, param)
        if value == "true" and self.optimizer not in SPARSE_OPTIMIZERS:
            raise ConfigError(param, f"false or auto with optimizer {self.optimizer!r} (sparse updates need one of "
                              f"{' | '.join(SPARSE_OPTIMIZERS)})", self.sparse_updates)  # fmt: skip

    def check(self, model: str) -> None:
        super().check(model)
        self.check_sparse_updates(model)

    def use_sparse(self, n_rows: int) -> bool:
        """Whether this model, whose first layer has ``n_rows`` rows, trains with sparse updates."""
        value = parse_sparse_updates(self.sparse_updates, "sparse_updates")
        if value == "auto":
            return n_rows >= AUTO_ROWS and self.optimizer in SPARSE_OPTIMIZERS
        return value == "true"


def steps_per_touch(col_counts: np.ndarray, n_vectors: int, batch_size: int) -> np.ndarray:
    """m_r = steps per epoch / E[minibatches touching row r] for rows (columns of the training vectors) that occur
    in ``col_counts[r]`` of the ``n_vectors`` vectors, each vector once per epoch in a random order cut into
    minibatches of ``batch_size`` (the last one shorter). P(a batch of b vectors touches r) = 1 − C(N−b, c)/C(N, c).
    Rows that occur nowhere get 1 (never touched: never stepped)."""
    n, b = int(n_vectors), int(batch_size)
    c = np.asarray(col_counts, dtype=np.float64)
    if n <= 0:
        return np.ones(len(c))

    def p_touch(size: int) -> np.ndarray:
        ok = c <= n - size
        cc = np.where(ok, c, 0.0)
        log_miss = gammaln(n - size + 1) - gammaln(n - size - cc + 1) - gammaln(n + 1) + gammaln(n - cc + 1)
        return np.where(ok, 1.0 - np.exp(log_miss), 1.0)

    full, rest = divmod(n, b)
    touches = (full * p_touch(b) if full else 0.0) + (p_touch(rest) if rest else 0.0)
    steps = full + (1 if rest else 0)
    return np.where(c > 0, steps / np.maximum(touches, 1e-12), 1.0)


def column_counts(indices: np.ndarray, active_rows: np.ndarray, indptr: np.ndarray, n_cols: int) -> np.ndarray:
    """How many of the ``active_rows`` of a CSR matrix (indptr, indices) have an entry in each column."""
    lengths = np.diff(indptr)
    keep = np.zeros(len(lengths), dtype=bool)
    keep[active_rows] = True
    return np.bincount(indices[np.repeat(keep, lengths)], minlength=n_cols)


def row_steps_of(vectors: Any, active_rows: np.ndarray, n_cols: int, batch_size: int, device: torch.device
                 ) -> torch.Tensor:  # fmt: skip
    """m_r of every first-layer / decoder row r for training vectors ``vectors`` (CSR, one vector per row; only
    ``active_rows`` are trained), as the float32 tensor the models weight their lazy regulariser with."""
    counts = column_counts(vectors.indices, active_rows, vectors.indptr, n_cols)
    m = steps_per_touch(counts, len(active_rows), batch_size)
    return torch.as_tensor(m, dtype=torch.float32, device=device)


class LazyAdam(torch.optim.Optimizer):
    """Adam (torch's defaults: betas 0.9/0.999, eps 1e-8, no weight decay) that steps a parameter with a sparse
    (COO, row) gradient only at its rows: their moments are updated, the other rows' are left as they are (the
    "lazy" Adam of ``torch.optim.SparseAdam``); dense gradients get the usual Adam step. Bias correction uses the
    parameter's step count. State: ``step``, ``exp_avg``, ``exp_avg_sq`` per parameter (``state_dict`` round-trips)."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:  # fmt: skip
        if lr <= 0 or eps <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"bad LazyAdam settings: lr={lr}, betas={betas}, eps={eps}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:  # type: ignore[override]
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.zeros((), dtype=torch.float32)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] = state["step"] + 1  # a new tensor: a loaded state_dict never aliases it
                t = float(state["step"])
                bc1, bc2 = 1.0 - b1**t, 1.0 - b2**t
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if p.grad.is_sparse:
                    g = p.grad.coalesce()
                    self._rows_step(p, m, v, g.indices()[0], g.values(), lr / bc1, math.sqrt(bc2), b1, b2, eps)
                else:
                    m.lerp_(p.grad, 1 - b1)
                    v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                    denom = (v.sqrt() / math.sqrt(bc2)).add_(eps)
                    p.addcdiv_(m, denom, value=-lr / bc1)
        return loss

    @staticmethod
    def _rows_step(p: torch.Tensor, m: torch.Tensor, v: torch.Tensor, rows: torch.Tensor, vals: torch.Tensor,
                   step_size: float, bc2_sqrt: float, b1: float, b2: float, eps: float) -> None:  # fmt: skip
        """Adam on ``rows`` only, in chunks of rows: each chunk's gathered copies stay small (a 100 MB temporary per
        step is served by fresh pages from the kernel, which costs more than the arithmetic)."""
        width = max(1, int(np.prod(p.shape[1:])))
        chunk = min(len(rows), max(1, ROW_CHUNK_ELEMS // width))
        m_buf = torch.empty((chunk, *p.shape[1:]), dtype=p.dtype, device=p.device)
        v_buf = torch.empty_like(m_buf)
        for s in range(0, len(rows), chunk):
            r, gv = rows[s : s + chunk], vals[s : s + chunk]
            m_r = torch.index_select(m, 0, r, out=m_buf[: len(r)]).lerp_(gv, 1 - b1)
            v_r = torch.index_select(v, 0, r, out=v_buf[: len(r)]).mul_(b2).addcmul_(gv, gv, value=1 - b2)
            m.index_copy_(0, r, m_r)
            v.index_copy_(0, r, v_r)
            denom = v_r.sqrt_().div_(bc2_sqrt).add_(eps)
            p.index_add_(0, r, m_r.div_(denom), alpha=-step_size)


def sparse_optimizer(params: list[torch.nn.Parameter], name: str, lr: float, param: str) -> torch.optim.Optimizer:
    """The sparse-gradient optimizer for ``name`` (adam → ``LazyAdam``; sgd, adagrad: torch's, exact on sparse
    gradients); sgd-torch7 is built by the model (``Torch7SGD`` with ``row_steps``)."""
    if name == "adam":
        return LazyAdam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr)
    choices = [o for o in SPARSE_OPTIMIZERS if o not in FULL_BATCH_OPTIMIZERS]
    raise ConfigError(param, f"an optimizer with a sparse step ({' | '.join(choices)})", name)
