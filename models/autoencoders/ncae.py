"""NCAE, the Neural Collaborative Autoencoder (Li et al.): one sparse autoencoder for explicit and implicit feedback.

Network (Eq. 1): û = nn(ũ) = φ_L(W_L(… φ_1(W_1 ũ + b_1) …) + b_L), tanh in every layer, Xavier (Glorot uniform)
weights. The first layer is sparse (Eq. 4, ``SparseLinear`` = ``embedding_bag`` over the observed entries), so
one vector costs O(K_1 |R_i|) there.

Input dropout (Eq. 3): every epoch each OBSERVED entry is dropped with probability q and the kept ones are scaled
by δ = 1/(1 − q); prediction uses the uncorrupted training vector.

Two settings, picked by the dataset's feedback type (``setting: auto``) or forced (``explicit`` | ``implicit``):

* explicit (§5.1): item-based (an item's ratings over users), two tanh hidden layers K = 500, λ = 2e-4. Output
  nn(ũ) = c + h·tanh(z_L) with c the centre of ``ctx.rating_scale`` and h its half-range plus ``output_margin``
  (the paper's 2.75 + 2.25·tanh for 0.5–5 is c, h exactly: no overshoot, margin 0). Sparse backward: only the
  observed outputs are computed while training. Loss (Eq. 5), per vector:
  (α/|K(u)|) Σ_{j∈C∩K} (nn_j − u_j)² + (β/|K(u)|) Σ_{j∈K\\C} (nn_j − u_j)², C = the dropped entries;
  Eq. 6 averages it over the batch's vectors and adds (λ/2)‖W⁺‖² (W⁺: the weights and biases being trained).
* implicit (§5.1): user-based, one hidden layer K = 128, λ = 0.01, output tanh (the paper's φ_L for every layer;
  ``implicit_output`` changes it). Loss (Eq. 11): Σ_{j∈K} (nn_j − 1)² + Σ_{j∉K} c_j nn_j² with
  c_j = c0 f_j^ω / Σ_k f_k^ω (Eq. 10; f_j the training frequency of output item j), computed exactly as
  Σ_{all j} c_j nn_j² − Σ_{j∈K} c_j nn_j² + Σ_{j∈K} (nn_j − 1)² on the batch's dense (batch × n_items) output;
  not divided by |K| (whole-based, §4.1). ``augment`` (NCAE+, §4.2): a user with |R_i|/N < ε gets an extra
  training vector without its ⌊p|R_i|⌋ most popular items (ties: lower item index first); the copy is a training
  row only, prediction uses the user's own vector.

Greedy layer-wise pre-training (§4.3), ``pretrain_epochs`` epochs per stage, then fine-tuning of everything. The
string names one stage per hidden layer, S (supervised) or U (unsupervised), and optionally one more S for the
output layer (V):

* S at hidden layer l: layer l plus a decoder to the output space trained with the supervised loss (Eq. 12, the
  SR stage for l = 1); lower layers frozen. At the last hidden layer the decoder is the output layer itself
  (greedy layer-wise supervised training ends in the real output layer).
* U at hidden layer l > 1: layer l plus a tanh decoder reconstructing z_{l−1} (Eq. 13, the DR stage: MSE averaged
  over elements), lower layers frozen. U at layer 1 (the conventional unsupervised stage of Fig. 5 c, d): layer 1
  plus a linear decoder reconstructing the dense input vector (MSE averaged over all its elements).
* the trailing S (V stage, Eq. 14–15): the output layer alone, every hidden layer frozen.

So with two hidden layers: S+U+S = SR, DR, V (the paper's method); S+U = SR, DR; S+S = SR, then layer 2 with the
output layer; U+U and U+S the conventional variants of Fig. 5 (c, d); none = plain back-propagation. ``auto`` is
S+U+S in the explicit setting and none in the implicit one (the paper pre-trains only the explicit model).
Frozen parameters get no gradient (``.grad`` stays None, so Adam neither steps them nor counts steps for them);
the decoders of the pre-training stages are created after the network's own layers (the same initial network
for every ``pretrain``) and take no part in prediction. Pre-training epochs report ``warming_up()``: their
validation is logged but they never give the best checkpoint. The epoch count lives in a buffer (a resumed run
continues the same stage).

Prediction (explicit): a user or item without a training rating gets the training mean.

``sparse_updates`` (``models/common/sparse_optim.py``; default false = all of the above, bit for bit): the first
layer's weight and, in the explicit setting, the output layers' weights (only observed outputs are computed) get
row-sparse gradients over the minibatch's observed entries; the optimizer steps those rows only (Adam lazily), and
their share of (λ/2)‖W⁺‖² is Σ_{touched r} m_r ‖W_r‖² (m_r = steps per epoch / expected minibatches touching r,
an unbiased per-step estimate). The implicit setting's dense output layer stays dense.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import activation
from models.common.registry import register_model
from models.common.sparse import RowBlock, SparseLinear, SparseRows, weighted_sq_norm
from models.common.sparse_optim import SparseGradientConfig, row_steps_of, sparse_optimizer
from tasks.common.errors import ConfigError

SETTINGS = ("auto", "explicit", "implicit")
VECTORS = ("auto", "item", "user")
PRETRAIN = ("S+U+S", "S+U", "S+S", "U+U", "U+S", "none", "auto")
IMPLICIT_OUTPUTS = ("tanh", "sigmoid", "identity")
LOSS_NORMS = ("vector", "rating")
DEFAULT_HIDDEN = {"explicit": (500, 500), "implicit": (128,)}
DEFAULT_L2 = {"explicit": 2e-4, "implicit": 0.01}
AUTO = -1.0


@dataclass(frozen=True)
class NCAEConfig(SparseGradientConfig):
    setting: str = "auto"
    """auto (explicit on rated data, implicit on implicit feedback) | explicit | implicit."""
    vectors: str = "auto"
    """item | user autoencoder (auto: item-based in the explicit setting, user-based in the implicit one)."""
    hidden: tuple[int, ...] = ()
    """Hidden layer sizes ([]: the setting's default, explicit [500, 500], implicit [128])."""
    input_dropout: float = 0.5
    """q: probability of dropping each observed input entry while training (kept ones scaled 1/(1 − q))."""
    alpha: float = 1.0
    """α of Eq. 5: weight of the dropped observed entries (prediction criterion), explicit setting."""
    beta: float = 1.0
    """β of Eq. 5: weight of the kept observed entries (reconstruction criterion), explicit setting."""
    loss_norm: str = "vector"
    """Explicit setting: how Eq. 5 weights the ratings. vector (the paper's): each vector's squared errors divided
    by its number of observed entries |K(u)|, so every vector counts alike; rating: every observed rating counts
    alike (the batch's errors divided by its mean |K(u)|, the same scale on average), as RMSE weighs them."""
    output_margin: float = 0.0
    """Explicit output c + (h + margin)·tanh(z): rating units added to the half-range h (the paper: 0)."""
    implicit_output: str = "tanh"
    """φ_L in the implicit setting: tanh (the paper's) | sigmoid | identity."""
    c0: float = 512.0
    """c0 of Eq. 10: total confidence of the unobserved entries (implicit setting)."""
    omega: float = 0.5
    """ω of Eq. 10: popularity exponent of the unobserved entries' confidence (implicit setting)."""
    pretrain: str = "auto"
    """S+U+S | S+U | S+S | U+U | U+S | none (Fig. 5) | auto (S+U+S explicit, none implicit)."""
    pretrain_epochs: int = 10
    """Epochs of each pre-training stage."""
    augment: bool = False
    """Sparsity-aware data augmentation (NCAE+, implicit setting only)."""
    aug_eps: float = 0.001
    """ε: a user with |R_i| / n_items < ε is augmented."""
    aug_p: float = 0.8
    """p: the augmented copy drops the user's ⌊p |R_i|⌋ most popular items."""
    optimizer: str = "adam"
    lr: float = 1e-3
    l2: float = AUTO
    """λ of (λ/2)‖W⁺‖² (-1: the setting's default, explicit 2e-4, implicit 0.01)."""
    batch_size: int = 128

    def check(self, model: str) -> None:
        p = f"models.{model}"
        if self.l2 != AUTO and self.l2 < 0:
            raise ConfigError(f"{p}.l2", "a number >= 0 (or -1: the setting's default)", self.l2)
        GradientConfig.check(dataclasses.replace(self, l2=0.0), model)
        self.check_sparse_updates(model)
        if getattr(self, "full_batch", False):  # rprop / lbfgs re-evaluate the objective: dropout would change it
            raise ConfigError(f"{p}.optimizer", "a minibatch optimizer (adam | rmsprop | sgd | adagrad): input "
                              "dropout redraws its masks at every evaluation", self.optimizer)  # fmt: skip
        for key, allowed in (
            ("setting", SETTINGS),
            ("vectors", VECTORS),
            ("pretrain", PRETRAIN),
            ("implicit_output", IMPLICIT_OUTPUTS),
            ("loss_norm", LOSS_NORMS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{p}.{key}", " | ".join(allowed), getattr(self, key))
        if any(not isinstance(h, int) or isinstance(h, bool) or h < 1 for h in self.hidden):
            raise ConfigError(f"{p}.hidden", "positive integer layer sizes ([]: the setting's default)",
                              list(self.hidden))  # fmt: skip
        checks = (
            ("input_dropout", 0.0 <= self.input_dropout < 1.0, "a probability in [0, 1)"),
            ("alpha", self.alpha >= 0, "a number >= 0"),
            ("beta", self.beta >= 0 and self.alpha + self.beta > 0, "a number >= 0 (alpha + beta > 0)"),
            ("output_margin", self.output_margin >= 0, "a number >= 0"),
            ("c0", self.c0 >= 0, "a number >= 0"),
            ("omega", self.omega >= 0, "a number >= 0"),
            ("pretrain_epochs", self.pretrain_epochs >= 1, "an integer >= 1"),
            ("aug_eps", 0.0 < self.aug_eps <= 1.0, "a sparsity threshold in (0, 1]"),
            ("aug_p", 0.0 < self.aug_p < 1.0, "a drop ratio in (0, 1) (1 would drop every item)"),
        )
        for key, ok, what in checks:
            if not ok:
                raise ConfigError(f"{p}.{key}", what, getattr(self, key))


class OutputLayer(nn.Module):
    """A decoder to ``n`` outputs, weight (n, k): only some outputs (sparse) or all of them (dense)."""

    def __init__(self, n: int, k: int, bias: float = 0.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, k))
        nn.init.xavier_uniform_(self.weight)
        self.bias = nn.Parameter(torch.full((n,), bias))

    def pairs(self, h: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """Pre-activation of output ``cols[e]`` for code ``h[e]`` (one row of h per entry)."""
        return (self.weight[cols] * h).sum(-1) + self.bias[cols]

    def pairs_block(self, h: torch.Tensor, block: RowBlock, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """``pairs(h, cols)`` through ``rows = block.take(self.weight)`` (row-sparse gradient)."""
        return (rows[block.local] * h).sum(-1) + self.bias[cols]

    def dense(self, h: torch.Tensor) -> torch.Tensor:
        return h @ self.weight.T + self.bias


def augmented_rows(matrix: sp.csr_matrix, popularity: np.ndarray, eps: float, p: float) -> sp.csr_matrix:
    """NCAE+ (§4.2): for every row with 0 < nnz / n_cols < eps, a copy without its ⌊p·nnz⌋ most popular columns
    (by ``popularity``, ties broken by the lower column index); rows in the order of the rows they copy."""
    m = sp.csr_matrix(matrix)
    m.sort_indices()
    counts = np.diff(m.indptr)
    chosen = np.flatnonzero((counts > 0) & (counts / max(m.shape[1], 1) < eps))
    sub = m[chosen]
    sub.sort_indices()
    sub_counts = np.diff(sub.indptr)
    row_of = np.repeat(np.arange(len(chosen)), sub_counts)
    cols, vals = sub.indices, sub.data
    order = np.lexsort((cols, -popularity[cols], row_of))  # by row, most popular first, then column
    rank = np.arange(len(order)) - sub.indptr[row_of[order]]
    keep = order[rank >= np.floor(p * sub_counts[row_of[order]]).astype(np.int64)]
    keep.sort()  # back to row-major, sorted columns
    out = sp.csr_matrix((vals[keep], (row_of[keep], cols[keep])), shape=(len(chosen), m.shape[1]), dtype=np.float32)
    out.sort_indices()
    return out


def parse_pretrain(pretrain: str, explicit: bool, n_hidden: int, param: str) -> list[tuple[str, int]]:
    """The stages of ``pretrain``: ("S" | "U", hidden layer index) per hidden-layer letter, ("V", n_hidden) for a
    trailing output-layer S."""
    if pretrain == "auto":
        pretrain = "S+U+S" if explicit else "none"
    if pretrain == "none":
        return []
    letters = pretrain.split("+")
    if len(letters) > n_hidden + 1 or (len(letters) == n_hidden + 1 and letters[-1] != "S"):
        raise ConfigError(param, f"at most one stage per hidden layer ({n_hidden}) plus a final S for the output "
                          "layer (or none)", pretrain)  # fmt: skip
    return [("V", n_hidden) if k == n_hidden else (letter, k) for k, letter in enumerate(letters)]


@register_model("ncae")
class NCAE(Recommender):
    config_cls = NCAEConfig
    task = "rating"

    @classmethod
    def task_of(cls, raw: dict[str, Any]) -> str:
        return "ranking" if raw.get("setting") == "implicit" else cls.task

    def __init__(self, cfg: NCAEConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        name = getattr(self, "run_name", None) or self.name
        p = f"models.{name}"
        self.task = self.task_of({"setting": cfg.setting})
        if cfg.setting == "explicit" and ctx.implicit:
            raise ConfigError(f"{p}.setting", "implicit or auto on implicit feedback (there are no ratings for the "
                              "explicit output c + h·tanh(z) to predict)", cfg.setting)  # fmt: skip
        self.explicit = cfg.setting == "explicit" or (cfg.setting == "auto" and not ctx.implicit)
        setting = "explicit" if self.explicit else "implicit"
        if cfg.augment and self.explicit:
            raise ConfigError(f"{p}.augment", "false in the explicit setting (NCAE+ augments implicit feedback)", True)
        self.item_based = cfg.vectors == "item" or (cfg.vectors == "auto" and self.explicit)
        self.hidden = tuple(cfg.hidden) or DEFAULT_HIDDEN[setting]
        self.l2 = DEFAULT_L2[setting] if cfg.l2 == AUTO else cfg.l2
        self.stages = parse_pretrain(cfg.pretrain, self.explicit, len(self.hidden), f"{p}.pretrain")
        self.n_warm = len(self.stages) * cfg.pretrain_epochs
        if 0 < cfg.max_epochs <= self.n_warm:
            raise ConfigError(f"{p}.max_epochs", f"more epochs than the {self.n_warm} of pre-training", cfg.max_epochs)
        dev = ctx.device

        # training vectors: one per item (over users) or per user (over items); binary in the implicit setting
        base = ctx.item_matrix if self.item_based else ctx.user_matrix
        base = sp.csr_matrix(base, dtype=np.float32, copy=True)
        if not self.explicit:
            base.data[:] = 1.0
        n_vec, dim = base.shape
        self.n_vectors, self.dim = n_vec, dim
        out_counts = ctx.user_counts if self.item_based else ctx.item_counts  # training frequency of each output
        train = base
        if cfg.augment:
            extra = augmented_rows(base, out_counts, cfg.aug_eps, cfg.aug_p)
            train = sp.vstack([base, extra], format="csr")
        self.n_augmented = train.shape[0] - n_vec
        self.rows = SparseRows(train, dev)
        lengths = np.diff(sp.csr_matrix(train).indptr)
        self._active = np.flatnonzero(lengths > 0)
        self.sparse = cfg.use_sparse(dim)
        self.row_steps: torch.Tensor | None = None  # m_r of the lazy L2 (not a buffer: data, not state)
        if self.sparse:
            self.row_steps = row_steps_of(train, self._active, dim, cfg.batch_size, dev)

        lo, hi = (float(v) for v in ctx.rating_scale)
        self.centre, self.half = (lo + hi) / 2, (hi - lo) / 2 + cfg.output_margin
        bias0 = 0.0
        if self.explicit and self.half > 0:  # start every output at the training mean
            bias0 = math.atanh(min(max((ctx.global_mean - self.centre) / self.half, -0.99), 0.99))
        self.out_act = None if self.explicit else activation(cfg.implicit_output, f"{p}.implicit_output")

        # the network (Eq. 1): created first, so every pretrain setting starts from the same weights
        self.first = SparseLinear(dim, self.hidden[0])
        nn.init.xavier_uniform_(self.first.weight)
        self.layers = nn.ModuleList()
        for a, b in zip(self.hidden[:-1], self.hidden[1:], strict=True):
            lin = nn.Linear(a, b)
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
            self.layers.append(lin)
        self.out = OutputLayer(dim, self.hidden[-1], bias0)
        # the pre-training decoders (never used for prediction)
        self.decoders = nn.ModuleDict()
        for kind, k in self.stages:
            if kind == "S" and k < len(self.hidden) - 1:
                self.decoders[f"S{k}"] = OutputLayer(dim, self.hidden[k], bias0)
            elif kind == "U":
                lin = nn.Linear(self.hidden[k], dim if k == 0 else self.hidden[k - 1])
                nn.init.xavier_uniform_(lin.weight)
                nn.init.zeros_(lin.bias)
                self.decoders[f"U{k}"] = lin

        freq = out_counts.astype(np.float64) / max(out_counts.sum(), 1)
        powered = np.where(freq > 0, freq, 0.0) ** cfg.omega if cfg.omega > 0 else (freq > 0).astype(np.float64)
        conf = cfg.c0 * powered / max(powered.sum(), 1e-300)  # Eq. 10
        self.register_buffer("confidence", torch.as_tensor(conf, dtype=torch.float32, device=dev))
        self.register_buffer("epochs_done", torch.zeros((), dtype=torch.int64, device=dev))
        self.register_buffer("vec_known", torch.as_tensor(np.diff(base.indptr) > 0, device=dev))
        self.register_buffer("dim_known", torch.as_tensor(out_counts > 0, device=dev))
        self.register_buffer("mean", torch.tensor(float(ctx.global_mean), device=dev))
        self._stage: tuple[str, int] | None = None

    # --- the network ----------------------------------------------------------------------------------
    def _grad(self, on: bool) -> AbstractContextManager[Any]:
        return nullcontext() if on else torch.no_grad()

    def _encode(
        self, cols: torch.Tensor, offsets: torch.Tensor, x: torch.Tensor, n_layers: int, frozen: int,
        block: RowBlock | None = None,
    ) -> list[torch.Tensor]:
        """Activations z_1 … z_{n_layers} (Eq. 4, then dense tanh layers); the first ``frozen`` without gradient.
        With ``block`` (sparse updates) the first layer goes through its touched rows."""
        with self._grad(frozen < 1):
            if block is None:
                zs = [torch.tanh(self.first(cols, offsets, x))]
            else:
                zs = [torch.tanh(self.first.forward_block(block, block.take(self.first.weight), offsets, x))]
        for k in range(1, n_layers):
            with self._grad(frozen <= k):
                zs.append(torch.tanh(self.layers[k - 1](zs[-1])))
        return zs

    def _output(self, pre: torch.Tensor) -> torch.Tensor:
        if self.explicit:
            return self.centre + self.half * torch.tanh(pre)
        assert self.out_act is not None
        return self.out_act(pre)

    def codes(self, vec_ids: torch.Tensor) -> torch.Tensor:
        """z_{L−1} of the uncorrupted training vectors ``vec_ids``."""
        cols, offsets, vals = self.rows.gather(vec_ids)
        return self._encode(cols, offsets, vals, len(self.hidden), 0)[-1]

    # --- training -------------------------------------------------------------------------------------
    def _stage_of(self, epoch: int) -> tuple[str, int] | None:
        """The pre-training stage of (0-based) ``epoch``; None when fine-tuning."""
        k = epoch // self.cfg.pretrain_epochs
        return self.stages[k] if k < len(self.stages) else None

    def warming_up(self) -> bool:
        return 0 < int(self.epochs_done) <= self.n_warm

    def train_batches(self, rng: np.random.Generator) -> Iterator[torch.Tensor]:
        self._stage = self._stage_of(int(self.epochs_done))
        self.epochs_done += 1
        order = rng.permutation(self._active)
        bs = self.cfg.batch_size
        dev = self.out.weight.device
        for s in range(0, len(order), bs):
            yield torch.as_tensor(order[s : s + bs], dtype=torch.long, device=dev)

    def _trained(self) -> list[nn.Module]:
        """The modules the current stage trains."""
        stage = self._stage
        everything: list[nn.Module] = [self.first, *self.layers]
        if stage is None:
            return [*everything, self.out]
        kind, k = stage
        if kind == "V":
            return [self.out]
        dec = self.out if kind == "S" and k == len(self.hidden) - 1 else self.decoders[f"{kind}{k}"]
        return [everything[k], dec]

    def batch_loss(self, vec_ids: torch.Tensor) -> StepLoss:
        cols, offsets, vals, row_of = self.rows.gather_with_rows(vec_ids)
        q = self.cfg.input_dropout
        kept = torch.rand(len(vals), device=vals.device) >= q if q > 0 else torch.ones_like(vals, dtype=torch.bool)
        x = vals * kept / (1.0 - q)  # Eq. 3: dropped entries weigh 0 in the embedding_bag
        n_hidden = len(self.hidden)
        kind, k = self._stage if self._stage is not None else ("F", n_hidden)
        block = RowBlock(cols) if self.sparse else None
        if kind == "U":
            zs = self._encode(cols, offsets, x, k + 1, frozen=k, block=block)
            dec = self.decoders[f"U{k}"]
            if k == 0:  # the dense input vector, unobserved entries 0
                target = torch.zeros(len(vec_ids), self.dim, device=vals.device)
                target[row_of, cols] = vals
                recon = dec(zs[0])
            else:  # Eq. 13
                target, recon = zs[k - 1], torch.tanh(dec(zs[k]))
            err = (recon - target).pow(2).mean(-1).mean()
        else:
            depth, frozen = {"S": (k + 1, k), "V": (n_hidden, n_hidden), "F": (n_hidden, 0)}[kind]
            zs = self._encode(cols, offsets, x, depth, frozen, block=block)
            dec = self.decoders[f"S{k}"] if kind == "S" and k < n_hidden - 1 else self.out
            err = self._supervised(zs[-1], dec, cols, vals, row_of, kept, len(vec_ids), block)
        if block is None:
            reg = sum((q_.pow(2).sum() for m in self._trained() for q_ in m.parameters()),
                      torch.zeros((), device=x.device))  # fmt: skip
        else:
            reg = self._lazy_reg(block)
        objective = err + 0.5 * self.l2 * reg
        stage_no = float(len(self.stages) if self._stage is None else self.stages.index(self._stage))
        logs = {"err": err.detach(), "reg": 0.5 * self.l2 * reg.detach(), "stage": stage_no}
        return StepLoss(objective, logs, weight=len(vec_ids))

    def _supervised(
        self,
        h: torch.Tensor,
        dec: OutputLayer,
        cols: torch.Tensor,
        vals: torch.Tensor,
        row_of: torch.Tensor,
        kept: torch.Tensor,
        n_rows: int,
        block: RowBlock | None = None,
    ) -> torch.Tensor:
        """Batch mean of Eq. 5 (explicit: observed outputs only) or Eq. 11 (implicit: every output)."""
        if self.explicit:
            if block is None:
                pre = dec.pairs(h[row_of], cols)
            else:
                pre = dec.pairs_block(h[row_of], block, block.take(dec.weight), cols)
            pred = self._output(pre)
            w = torch.where(kept, self.cfg.beta, self.cfg.alpha)
            if self.cfg.loss_norm == "vector":
                w = w / torch.bincount(row_of, minlength=n_rows).clamp(min=1).to(pred.dtype)[row_of]
            else:  # every rating alike, at the scale of the per-vector mean
                w = w * (n_rows / max(len(row_of), 1))
            return (w * (pred - vals).pow(2)).sum() / n_rows
        out = self._output(dec.dense(h))  # (rows, n_outputs)
        known = out[row_of, cols]
        c = self.confidence
        total = (out.pow(2) * c).sum() - (known.pow(2) * c[cols]).sum() + (known - 1.0).pow(2).sum()
        return total / n_rows

    def _lazy_reg(self, block: RowBlock) -> torch.Tensor:
        """‖W⁺‖² of the stage's trained modules with the row-sparse weights (the first layer's; the explicit
        output layers') replaced by their lazy estimate Σ_{touched r} m_r ‖W_r‖²."""
        assert self.row_steps is not None
        m = self.row_steps[block.rows]
        total = torch.zeros((), device=m.device)
        for mod in self._trained():
            for name, q in mod.named_parameters():
                wide = name == "weight" and (mod is self.first or (self.explicit and isinstance(mod, OutputLayer)))
                total = total + (weighted_sq_norm(block.take(q), m) if wide else q.pow(2).sum())
        return total

    def make_optimizer(self) -> torch.optim.Optimizer | None:
        if not self.sparse:
            return super().make_optimizer()
        params = [p for p in self.parameters() if p.requires_grad]
        return sparse_optimizer(params, self.cfg.optimizer, self.cfg.lr, f"models.{self.name}.optimizer")

    # --- inference ------------------------------------------------------------------------------------
    def _fallback(self, out: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
        if not self.explicit:
            return out
        return torch.where(known, out, self.mean.to(out.dtype).expand_as(out))

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        vec, pos = (items, users) if self.item_based else (users, items)
        uniq, inv = torch.unique(vec, return_inverse=True)
        h = self.codes(uniq)[inv]
        out = self._output(self.out.pairs(h, pos))
        return self._fallback(out, self.vec_known[vec] & self.dim_known[pos])

    @torch.no_grad()
    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        """Item-based: every item's code once per ``scoring()`` block, then one matmul per chunk of users;
        user-based: the users' codes times the output layer."""
        self.eval()
        u = users.to(self.out.weight.device)
        if self.item_based:
            codes = self.cached("item_codes", self._all_codes)
            out = self._output(self.out.weight[u] @ codes.T + self.out.bias[u][:, None])
            known = self.dim_known[u][:, None] & self.vec_known[None, :]
        else:
            out = self._output(self.out.dense(self.codes(u)))
            known = self.vec_known[u][:, None] & self.dim_known[None, :]
        return self._fallback(out, known)

    def _all_codes(self, chunk: int = 4096) -> torch.Tensor:
        dev = self.out.weight.device
        return torch.cat([self.codes(torch.arange(s, min(s + chunk, self.n_vectors), device=dev))
                          for s in range(0, self.n_vectors, chunk)])  # fmt: skip
