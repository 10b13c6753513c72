"""eALS (He et al. 2016, "Fast Matrix Factorization for Online Recommendation with Implicit Feedback"): matrix
factorization on implicit data where every unobserved entry is a negative weighted by its item's popularity,

    J = Σ_{(u,i) ∈ R} w_ui (1 − p_u·q_i)² + Σ_u Σ_{i ∉ R_u} c_i (p_u·q_i)² + λ (Σ_u ‖p_u‖² + Σ_i ‖q_i‖²),
    c_i = c0 · f_i^ω / Σ_k f_k^ω      (f_i: the item's training frequency),

with w_ui = 1 (``weighted``: the dataset's interaction weight), fitted by the paper's element-wise ALS: each latent
dimension f in turn, every p_uf is set to its exact minimiser given everything else (Eq. 12),

    p_uf = [Σ_{i ∈ R_u} (w_ui − (w_ui − c_i) r̂^f_ui) q_if − Σ_{k ≠ f} p_uk s^q_kf]
           / [Σ_{i ∈ R_u} (w_ui − c_i) q_if² + s^q_ff + λ],        r̂^f_ui = r̂_ui − p_uf q_if,

with the cache S^q = Σ_i c_i q_i q_iᵀ (computed once per half-sweep), then the same for items (Eq. 13):

    q_if = [Σ_{u ∈ R_i} (w_ui − (w_ui − c_i) r̂^f_ui) p_uf − c_i Σ_{k ≠ f} q_ik s^p_kf]
           / [Σ_{u ∈ R_i} (w_ui − c_i) p_uf² + c_i s^p_ff + λ],     S^p = Σ_u p_u p_uᵀ.

Users are independent given Q (items given P), so each coordinate step is done for ALL users at once: the sums over
R_u are ``index_add_`` over the observed entries, the Σ_{k≠f} term one matrix-vector product, and the prediction
cache r̂_ui of the observed entries is updated in place. A sweep costs O(|R| K + (M + N) K²); users × items is never
formed. One epoch (``fit_epoch``) is one sweep: all users, then all items; it logs the objective J.

Defaults (the paper's): K = 64, c0 = 512, ω = 0.5, λ = 0.05, N(0, 0.01²) initialisation. Full ranking is one matmul
of P and Q.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.common.base import ModelConfig, Recommender
from models.common.context import TrainContext
from models.common.registry import register_model
from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class EALSConfig(ModelConfig):
    factors: int = 64
    """Latent dimension K."""
    c0: float = 512.0
    """Total weight of the missing data: c_i sums to c0 over the items."""
    omega: float = 0.5
    """Popularity exponent ω of c_i ∝ f_i^ω (0: uniform weights c0 / N)."""
    l2: float = 0.05
    """λ on Σ‖p_u‖² + Σ‖q_i‖²."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation."""
    weighted: bool = False
    """Observed entries weigh the dataset's interaction weight (play counts ...) instead of 1."""

    def check(self, model: str) -> None:
        super().check(model)
        for key, ok, what in (
            ("factors", self.factors >= 1, "an integer >= 1"),
            ("c0", self.c0 >= 0, "a number >= 0"),
            ("omega", self.omega >= 0, "a number >= 0"),
            ("l2", self.l2 > 0, "a number > 0"),
            ("init_std", self.init_std > 0, "a number > 0"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))


def popularity_weights(item_counts: np.ndarray, c0: float, omega: float) -> np.ndarray:
    """c_i = c0 · f_i^ω / Σ_k f_k^ω (float64); all zero when no item has a training interaction."""
    f = np.asarray(item_counts, dtype=np.float64)
    powered = np.power(f, omega)
    total = powered.sum()
    return c0 * powered / total if total > 0 else np.zeros_like(f)


@dataclass
class Entries:
    """The observed entries of one orientation (row = user for the user step, item for the item step)."""

    rows: torch.Tensor  # int64 row of each entry
    cols: torch.Tensor  # int64 column of each entry
    w: torch.Tensor  # float32 weight w_ui
    c: torch.Tensor  # float32 missing-data weight c_i of the entry's item


def predictions(x: torch.Tensor, y: torch.Tensor, e: Entries, chunk: int = 1 << 16) -> torch.Tensor:
    """r̂ of every observed entry, computed in chunks (memory chunk · K)."""
    out = torch.empty(len(e.rows), device=x.device)
    for s in range(0, len(e.rows), chunk):
        out[s : s + chunk] = (x[e.rows[s : s + chunk]] * y[e.cols[s : s + chunk]]).sum(-1)
    return out


def eals_side(x: torch.Tensor, y: torch.Tensor, e: Entries, s: torch.Tensor, row_scale: torch.Tensor, l2: float
              ) -> None:  # fmt: skip
    """One element-wise ALS pass over the K dimensions of every row of ``x`` (in place), given ``y``.

    ``s`` is the K × K cache (S^q for the user step, S^p for the item step) and ``row_scale`` the factor on it per
    row (1 for users, c_i for items)."""
    n = x.shape[0]
    pred = predictions(x, y, e)
    a = e.w - e.c  # w_ui − c_i
    for f in range(x.shape[1]):
        yf = y[e.cols, f]
        pred -= x[e.rows, f] * yf  # r̂^f
        num = torch.zeros(n, device=x.device).index_add_(0, e.rows, (e.w - a * pred) * yf)
        num -= row_scale * (x @ s[:, f] - x[:, f] * s[f, f])
        den = torch.zeros(n, device=x.device).index_add_(0, e.rows, a * yf * yf)
        den += row_scale * s[f, f] + l2
        x[:, f] = num / den
        pred += x[e.rows, f] * yf


@register_model("eals")
class EALS(Recommender):
    config_cls = EALSConfig
    task = "ranking"
    fits_itself = True

    def __init__(self, cfg: EALSConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        dev = ctx.device
        # unique observed pairs (a repeated pair adds its weights), weight 1 or the interaction weight
        keys = np.asarray(ctx.users, np.int64) * ctx.n_items + np.asarray(ctx.items, np.int64)
        uniq, inv = np.unique(keys, return_inverse=True)
        w_raw = ctx.weights if (cfg.weighted and ctx.weights is not None) else np.ones(len(keys), np.float32)
        w = np.bincount(inv, weights=w_raw, minlength=len(uniq)) if cfg.weighted else np.ones(len(uniq))
        users, items = uniq // ctx.n_items, uniq % ctx.n_items
        c = popularity_weights(np.bincount(items, minlength=ctx.n_items), cfg.c0, cfg.omega)
        by_item = np.lexsort((users, items))

        def entries(rows: np.ndarray, cols: np.ndarray, ww: np.ndarray, cc: np.ndarray) -> Entries:
            def t(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
                return torch.as_tensor(np.ascontiguousarray(a), dtype=dtype, device=dev)

            return Entries(t(rows, torch.long), t(cols, torch.long), t(ww, torch.float32), t(cc, torch.float32))

        self._by_user = entries(users, items, w, c[items])
        self._by_item = entries(items[by_item], users[by_item], w[by_item], c[items][by_item])
        self._c = torch.as_tensor(c, dtype=torch.float32, device=dev)
        self.p = nn.Parameter(torch.randn(ctx.n_users, cfg.factors) * cfg.init_std, requires_grad=False)
        self.q = nn.Parameter(torch.randn(ctx.n_items, cfg.factors) * cfg.init_std, requires_grad=False)

    def s_q(self) -> torch.Tensor:
        """S^q = Σ_i c_i q_i q_iᵀ."""
        return self.q.T @ (self._c[:, None] * self.q)

    def objective(self) -> float:
        """J (module docstring): the observed part over R, the missing part as Σ_u p_uᵀ S^q p_u minus its
        observed entries, the regulariser."""
        e = self._by_user
        pred = predictions(self.p, self.q, e)
        observed = (e.w * (1.0 - pred) ** 2 - e.c * pred**2).sum()
        missing = ((self.p @ self.s_q()) * self.p).sum()
        reg = self.cfg.l2 * (self.p.pow(2).sum() + self.q.pow(2).sum())
        return float(observed + missing + reg)

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        cfg = self.cfg
        ones = torch.ones((), device=self.p.device)
        with torch.no_grad():
            eals_side(self.p.data, self.q.data, self._by_user, self.s_q(), ones, cfg.l2)
            eals_side(self.q.data, self.p.data, self._by_item, self.p.T @ self.p, self._c, cfg.l2)
            return {"objective": self.objective()}

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return (self.p[users] * self.q[items]).sum(-1)

    def representations(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.p, self.q

    def n_parameters(self) -> int:
        return self.p.numel() + self.q.numel()  # fitted by ALS, not by gradients
