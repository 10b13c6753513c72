"""The generalized framework of AutoRec and NCF (Raziperchikolaei et al., "A Recommendation System Framework to
Generalize AutoRec and Neural Collaborative Filtering"): one model assembled from five modules, each chosen in
params (GF §III, Fig. 1):

* **input** (per side): ``id`` (one-hot of the user / item) or ``vector`` (the user's training row over items /
  the item's column over users, sparse: the first layer costs O(observed entries));
* **representation** (per side): ``embedding`` (ID input), ``linear`` (one linear map of a vector) or ``mlp``
  (layers ``*_layers`` then ``*_factors``, activation ``repr_activation`` after every layer);
* **fusion**: ``concat`` | ``product`` (element-wise) | ``cosine`` (element-wise product of the L2-normalised
  representations, DMF) | ``outer`` (outer product, ONCF);
* **prediction**: ``linear`` | ``nonlinear`` (one layer followed by ``output_activation``) | ``mlp``
  (``predictor`` sizes, then a linear output) | ``cnn`` (ONCF: 2×2 stride-2 convolutions with ``cnn_channels``
  maps until 1×1, then a linear output);
* **loss**: ``mse`` | ``bce`` | ``nbce`` (DMF's normalised BCE: the prediction clipped to [μ, 1 − μ] is the
  probability; explicit ratings become r / max rating) | ``bpr`` (Rendle et al., one sampled negative per
  positive).

``task`` says what the model is for: ``rating`` (explicit data; MSE or nBCE on the observed ratings, evaluated by
RMSE) or ``ranking`` (implicit data, or positives ≥ ``train.positive_threshold`` of explicit data; every positive
gets ``negatives`` sampled unobserved items with label 0 — GF §III-E — or, for BPR, one negative in a triple).

Presets (GF Table I) are named variants in params.yaml (``gf-mf``, ``gf-gmf``, ``gf-mlp``, ``gf-cfnet-rl``,
``gf-cfnet-ml``, ``gf-dmf``, ``gf-oncf``, ``gf-autorec-u``, ``gf-autorec-i``). Table I lists U-AutoRec as
"user ID / item interaction vector"; the text (Eq. 5) derives the reverse — U-AutoRec's user representation is
the encoder of the user's interaction vector, the item's is a column of the last decoder matrix — and that is
AutoRec's definition, so the presets follow Eq. 5 (and I-AutoRec is user ID embedding × item vector MLP). The
"non-lin" prediction of the AutoRec rows is AutoRec's f after the dot product, and f is the identity in
AutoRec's best setting: the presets use the linear prediction, whose weights start at 1 (the plain dot product).

**Target masking.** Training on an observed pair (j, k), R_jk sits in both interaction vectors while a test
rating never does; with ``mask_target`` its contribution is subtracted from the first layer's pre-activation
(exactly the encoding of the vector without it, O(batch · width)). AutoRec reconstructs its input, so the
AutoRec presets turn it off.

**Regularisation.** ``l2`` is λ of (λ/2)·Σ‖W‖² over every weight matrix (not biases), spread over the epoch's
minibatches in proportion to their size: summed over an epoch it equals AutoRec's (λ/2)(‖W‖² + ‖V‖²) once next
to the summed loss.

**Scores.** For ranking, ``predict`` returns the pre-activation score s (the logit for BCE; the output function
is monotone, so the ranking is the same and saturation cannot create ties). For ratings it returns the rating.
With a ``product`` / ``cosine`` fusion and a ``linear`` / ``nonlinear`` prediction the score is a dot product
of (w ⊙ p_j) and q_k plus biases: full ranking is one matmul per chunk of users; other fusions score the
cached representations pair by pair in blocks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from models.common import losses
from models.common.base import GradientConfig, Recommender, StepLoss
from models.common.context import TrainContext
from models.common.layers import activation, mlp
from models.common.registry import register_model
from models.common.samplers import (
    PairBatch,
    TripleBatch,
    entity_batches,
    negative_batches,
    pair_batches,
    triple_batches,
)
from models.common.sparse import SparseLinear, SparseRows
from tasks.common.errors import ConfigError

INPUTS = ("id", "vector")
REPRESENTATIONS = ("embedding", "linear", "mlp")
FUSIONS = ("concat", "product", "cosine", "outer")
PREDICTIONS = ("linear", "nonlinear", "mlp", "cnn")
LOSSES = ("mse", "bce", "nbce", "bpr")
BATCHING = ("pairs", "users", "items")
OUTPUTS = ("auto", "identity", "sigmoid")
NBCE_MU = 1e-6  # DMF's lower clip of the predicted probability


@dataclass(frozen=True)
class GFConfig(GradientConfig):
    task: str = "ranking"
    """rating (explicit ratings, MSE / nBCE on observed pairs) | ranking (positives plus sampled negatives)."""
    user_input: str = "id"
    """id | vector (the user's training row over items)."""
    item_input: str = "id"
    """id | vector (the item's training column over users)."""
    user_repr: str = "embedding"
    """embedding (id input) | linear | mlp."""
    item_repr: str = "embedding"
    """embedding (id input) | linear | mlp."""
    factors: int = 64
    """Size of both representations unless ``user_factors`` / ``item_factors`` say otherwise."""
    user_factors: int = 0
    """Size of the user representation (0: ``factors``)."""
    item_factors: int = 0
    """Size of the item representation (0: ``factors``)."""
    user_layers: tuple[int, ...] = ()
    """Hidden layers of an mlp user representation before its last layer (of size user_factors)."""
    item_layers: tuple[int, ...] = ()
    """Hidden layers of an mlp item representation before its last layer (of size item_factors)."""
    repr_activation: str = "relu"
    """Activation after every layer of an mlp representation."""
    fusion: str = "product"
    """concat | product | cosine | outer."""
    prediction: str = "linear"
    """linear | nonlinear | mlp | cnn."""
    fixed_h: bool = False
    """Linear prediction over a product / cosine fusion only: keep h = 1 and the output bias at its initial value
    instead of learning them, i.e. the plain inner product (NCF's MF: "h a uniform vector of 1")."""
    predictor: tuple[int, ...] = (64, 32, 16)
    """Hidden sizes of an mlp prediction (a linear output follows)."""
    predictor_activation: str = "relu"
    """Activation of the mlp prediction's hidden layers and of the cnn's convolutions."""
    cnn_channels: int = 32
    """Feature maps of every convolution of a cnn prediction (ONCF: 32)."""
    output_activation: str = "auto"
    """auto (sigmoid after a nonlinear prediction, identity otherwise) | identity | sigmoid. For ratings the
    sigmoid spans the dataset's rating scale."""
    user_bias: bool = False
    """Add a learned per-user bias to the score (AutoRec's decoder bias for I-AutoRec)."""
    item_bias: bool = False
    """Add a learned per-item bias to the score."""
    loss: str = "mse"
    """mse | bce | nbce | bpr."""
    negatives: int = 4
    """Sampled unobserved items (label 0) per positive for mse / bce / nbce ranking."""
    mask_target: bool = True
    """Remove R_jk from both interaction vectors when training on (j, k)."""
    batching: str = "pairs"
    """pairs (shuffled pairs) | users | items (batch_size whole rating vectors, AutoRec's minibatches; rating)."""
    init_std: float = 0.01
    """Standard deviation of the normal initialisation of ID embeddings."""
    optimizer: str = "adam"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 256

    def check(self, model: str) -> None:
        super().check(model)
        p = f"models.{model}"
        for key, allowed in (
            ("task", ("rating", "ranking")),
            ("user_input", INPUTS),
            ("item_input", INPUTS),
            ("user_repr", REPRESENTATIONS),
            ("item_repr", REPRESENTATIONS),
            ("fusion", FUSIONS),
            ("prediction", PREDICTIONS),
            ("loss", LOSSES),
            ("batching", BATCHING),
            ("output_activation", OUTPUTS),
        ):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{p}.{key}", " | ".join(allowed), getattr(self, key))
        for side in ("user", "item"):
            if getattr(self, f"{side}_input") == "vector" and getattr(self, f"{side}_repr") == "embedding":
                raise ConfigError(f"{p}.{side}_repr", "linear | mlp for a vector input (embedding needs an id input)",
                                  "embedding")  # fmt: skip
        for key in ("factors", "cnn_channels"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{p}.{key}", "an integer >= 1", getattr(self, key))
        for key in ("user_factors", "item_factors"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{p}.{key}", "an integer >= 0 (0: factors)", getattr(self, key))
        for key in ("user_layers", "item_layers", "predictor"):
            sizes = getattr(self, key)
            if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
                raise ConfigError(f"{p}.{key}", "positive integer layer sizes", list(sizes))
        if self.prediction == "mlp" and not self.predictor:
            raise ConfigError(f"{p}.predictor", "at least one hidden size for an mlp prediction", [])
        du = self.user_factors or self.factors
        di = self.item_factors or self.factors
        if self.fusion in ("product", "cosine", "outer") and du != di:
            raise ConfigError(f"{p}.fusion", f"user and item representations of one size for {self.fusion}",
                              f"user {du}, item {di}")  # fmt: skip
        if (self.prediction == "cnn") != (self.fusion == "outer"):
            raise ConfigError(f"{p}.prediction", "cnn exactly with the outer-product fusion (ONCF)",
                              f"prediction {self.prediction}, fusion {self.fusion}")  # fmt: skip
        if self.prediction == "cnn" and (du < 2 or du & (du - 1)):
            raise ConfigError(f"{p}.factors", "a power of two >= 2 for the cnn prediction (2×2 stride-2 maps)", du)
        if self.loss == "nbce" and (self.fusion != "cosine" or self.prediction != "linear"):
            raise ConfigError(f"{p}.loss", "nbce with the cosine fusion and a linear prediction (DMF)",
                              f"fusion {self.fusion}, prediction {self.prediction}")  # fmt: skip
        if self.loss == "bce" and self.output_activation == "identity":
            raise ConfigError(f"{p}.output_activation", "auto or sigmoid with bce (its probability is σ(score))",
                              "identity")  # fmt: skip
        if self.task == "rating" and self.loss in ("bce", "bpr"):
            raise ConfigError(f"{p}.loss", "mse | nbce for the rating task (bce / bpr need task: ranking)", self.loss)
        if self.task == "ranking" and self.batching != "pairs":
            raise ConfigError(f"{p}.batching", "pairs for the ranking task (negatives are drawn per positive)",
                              self.batching)  # fmt: skip
        if self.negatives < 1:
            raise ConfigError(f"{p}.negatives", "an integer >= 1", self.negatives)
        if self.fixed_h and (self.prediction != "linear" or self.fusion not in ("product", "cosine")):
            raise ConfigError(f"{p}.fixed_h", "true only with a linear prediction over a product or cosine fusion",
                              f"prediction {self.prediction}, fusion {self.fusion}")  # fmt: skip
        if self.init_std <= 0:
            raise ConfigError(f"{p}.init_std", "a number > 0", self.init_std)


class Representation(nn.Module):
    """One side's input and representation modules: ids (or rows of a sparse matrix) → (len, size)."""

    def __init__(self, kind: str, repr_kind: str, n: int, rows: sp.csr_matrix | None, layers: tuple[int, ...],
                 size: int, act: str, init_std: float, param: str, device: torch.device) -> None:  # fmt: skip
        super().__init__()
        self.kind, self.repr_kind = kind, repr_kind
        sizes = [*layers, size] if repr_kind == "mlp" else [size]
        self.rows = SparseRows(rows, device) if kind == "vector" and rows is not None else None
        if kind == "id":
            self.first: nn.Module = nn.Embedding(n, sizes[0])
            nn.init.normal_(self.first.weight, 0.0, init_std)
        else:
            assert rows is not None
            self.first = SparseLinear(rows.shape[1], sizes[0])
        self.act = activation(act, param) if repr_kind == "mlp" else nn.Identity()
        self.rest = mlp(sizes, act, param) if len(sizes) > 1 else nn.Identity()
        self.size = size

    @property
    def first_weight(self) -> torch.Tensor:
        return self.first.weight

    def pre(self, ids: torch.Tensor) -> torch.Tensor:
        if self.rows is None:
            return self.first(ids)
        return self.first(*self.rows.gather(ids))

    def post(self, pre: torch.Tensor) -> torch.Tensor:
        return self.rest(self.act(pre))

    def forward(self, ids: torch.Tensor, other: torch.Tensor | None = None, value: torch.Tensor | None = None
                ) -> torch.Tensor:  # fmt: skip
        """Representations of ``ids`` (one per pair); with ``other``/``value`` (a vector input while training),
        entry ``other`` of each vector (worth ``value``) is removed first."""
        uniq, inv = torch.unique(ids, return_inverse=True)
        pre = self.pre(uniq)
        if self.rows is None or other is None or value is None:
            return self.post(pre).index_select(0, inv)
        return self.post(pre.index_select(0, inv) - value[:, None] * self.first_weight[other])

    def all(self, n: int, chunk: int = 4096) -> torch.Tensor:
        dev = self.first_weight.device
        return torch.cat([self.post(self.pre(torch.arange(s, min(s + chunk, n), device=dev)))
                          for s in range(0, n, chunk)])  # fmt: skip


def representations(cfg: GFConfig, ctx: TrainContext, param: str) -> tuple[Representation, Representation]:
    """The user and the item side (input + representation modules) of a GF config."""
    sides = []
    for side, n, matrix in (("user", ctx.n_users, ctx.user_matrix), ("item", ctx.n_items, ctx.item_matrix)):
        kind = getattr(cfg, f"{side}_input")
        size = getattr(cfg, f"{side}_factors") or cfg.factors
        rows = matrix if kind == "vector" else None
        rep = Representation(kind, getattr(cfg, f"{side}_repr"), n, rows, getattr(cfg, f"{side}_layers"), size,
                             cfg.repr_activation, cfg.init_std, f"{param}.repr_activation", ctx.device)  # fmt: skip
        sides.append(rep)
    return sides[0], sides[1]


class Head(nn.Module):
    """Fusion and prediction: (p, q) → score s (before the output function)."""

    def __init__(self, cfg: GFConfig, du: int, di: int, param: str) -> None:
        super().__init__()
        self.fusion, self.prediction = cfg.fusion, cfg.prediction
        self.body: nn.Module = nn.Identity()
        if cfg.prediction == "cnn":
            convs: list[nn.Module] = []
            c_in, side = 1, du
            while side > 1:
                convs += [nn.Conv2d(c_in, cfg.cnn_channels, 2, stride=2), activation(cfg.predictor_activation, param)]
                c_in, side = cfg.cnn_channels, side // 2
            self.body = nn.Sequential(*convs, nn.Flatten())
            width = cfg.cnn_channels
        else:
            width = du + di if cfg.fusion == "concat" else du
            if cfg.prediction == "mlp":
                self.body = mlp([width, *cfg.predictor], cfg.predictor_activation, param)
                width = cfg.predictor[-1]
        self.out = nn.Linear(width, 1)
        if cfg.fusion in ("product", "cosine") and cfg.prediction == "linear":
            nn.init.ones_(self.out.weight)  # starts as the plain dot product (MF, DMF's cosine)
        nn.init.zeros_(self.out.bias)

    @property
    def is_dot(self) -> bool:
        return self.fusion in ("product", "cosine") and self.prediction in ("linear", "nonlinear")

    def normalise(self, p: torch.Tensor) -> torch.Tensor:
        return F.normalize(p, dim=-1) if self.fusion == "cosine" else p

    @property
    def width(self) -> int:
        """Size of ``features`` (the input of the output layer)."""
        return self.out.in_features

    def features(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Fusion then the prediction's hidden part: the vector the output layer reads (NeuMF fuses these)."""
        if self.fusion == "concat":
            z = torch.cat([p, q], -1)
        elif self.fusion == "outer":
            z = (p[:, :, None] * q[:, None, :])[:, None]
        else:
            z = self.normalise(p) * self.normalise(q)
        return self.body(z)

    def forward(self, p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(p, q)).squeeze(-1)


@register_model("gf")
class GF(Recommender):
    config_cls = GFConfig
    task = "ranking"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "mf": {"fusion": "product", "prediction": "linear", "loss": "mse"},
        "gmf": {"fusion": "product", "prediction": "nonlinear", "loss": "mse"},
        "mlp": {"fusion": "concat", "prediction": "mlp", "loss": "mse"},
        "cfnet-rl": {"user_input": "vector", "item_input": "vector", "user_repr": "mlp", "item_repr": "mlp",
                     "fusion": "product", "prediction": "nonlinear", "loss": "bce"},
        "cfnet-ml": {"user_input": "vector", "item_input": "vector", "user_repr": "linear", "item_repr": "linear",
                     "fusion": "concat", "prediction": "mlp", "loss": "bce"},
        "dmf": {"user_input": "vector", "item_input": "vector", "user_repr": "mlp", "item_repr": "mlp",
                "fusion": "cosine", "prediction": "linear", "loss": "nbce"},
        "oncf": {"fusion": "outer", "prediction": "cnn", "loss": "bpr"},
        "autorec-u": {"task": "rating", "user_input": "vector", "user_repr": "mlp", "fusion": "product",
                      "prediction": "linear", "loss": "mse", "init_std": 0.03,
                      "repr_activation": "sigmoid", "mask_target": False, "item_bias": True, "batching": "users"},
        "autorec-i": {"task": "rating", "item_input": "vector", "item_repr": "mlp", "fusion": "product",
                      "prediction": "linear", "loss": "mse", "init_std": 0.03,
                      "repr_activation": "sigmoid", "mask_target": False, "user_bias": True, "batching": "items"},
    }  # fmt: skip

    @classmethod
    def task_of(cls, raw: dict[str, Any]) -> str:
        task = raw.get("task", GFConfig.task)
        return task if task in ("rating", "ranking") else GFConfig.task  # an invalid value fails in check()

    def __init__(self, cfg: GFConfig, ctx: TrainContext) -> None:
        super().__init__(cfg, ctx)
        name = getattr(self, "run_name", None) or self.name
        p = f"models.{name}"
        self.task = cfg.task
        if cfg.task == "rating" and ctx.implicit:
            raise ConfigError(f"{p}.task", "ranking on implicit feedback (there are no ratings to predict)", "rating")
        if "vector" in (cfg.user_input, cfg.item_input) and len(ctx.users) == 0:
            raise ConfigError(f"{p}.user_input", "training interactions to build interaction vectors from", "none")
        self.user_rep, self.item_rep = representations(cfg, ctx, p)
        self.head = Head(cfg, self.user_rep.size, self.item_rep.size, f"{p}.predictor_activation")
        self.b_user = nn.Parameter(torch.zeros(ctx.n_users)) if cfg.user_bias else None
        self.b_item = nn.Parameter(torch.zeros(ctx.n_items)) if cfg.item_bias else None
        out = cfg.output_activation
        self.output = ("sigmoid" if cfg.prediction == "nonlinear" else "identity") if out == "auto" else out
        lo, hi = ctx.rating_scale
        self.lo, self.hi = float(lo), float(hi)
        if cfg.task == "rating" and cfg.loss == "mse":  # start at the training mean
            mean = float(ctx.global_mean)
            if self.output == "sigmoid":
                frac = min(max((mean - lo) / max(hi - lo, 1e-9), 1e-3), 1 - 1e-3)
                nn.init.constant_(self.head.out.bias, math.log(frac / (1 - frac)))
            else:
                nn.init.constant_(self.head.out.bias, mean)
        if cfg.fixed_h:  # h = 1 (Head's init for a linear prediction over a product), bias as initialised
            self.head.out.requires_grad_(False)
        n_pairs = len(ctx.users) * (1 + cfg.negatives if cfg.task == "ranking" and cfg.loss != "bpr" else 1)
        self._pairs_per_epoch = max(n_pairs, 1)

    def check_eval_users(self, users: np.ndarray) -> None:
        """A user-vector input needs a training row for every validation and test user: a user without one has
        an empty vector, and a score that says nothing about them."""
        if self.cfg.user_input != "vector":
            return
        cold = np.asarray(users)[self.ctx.user_counts[np.asarray(users)] == 0]
        if len(cold):
            name = getattr(self, "run_name", None) or self.name
            found = f"vector with {len(cold)} evaluated users without any (user {int(cold[0])} ...)"
            expected = "id, or a split where every validation / test user has training interactions"
            raise ConfigError(f"models.{name}.user_input", expected, found)

    # --- scoring ----------------------------------------------------------------------------------------
    def _score(self, p: torch.Tensor, q: torch.Tensor, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        s = self.head(p, q)
        if self.b_user is not None:
            s = s + self.b_user[users]
        if self.b_item is not None:
            s = s + self.b_item[items]
        return s

    def _reps(self, users: torch.Tensor, items: torch.Tensor, value: torch.Tensor | None
              ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        mask = value is not None and self.cfg.mask_target
        p = self.user_rep(users, items if mask else None, value if mask else None)
        q = self.item_rep(items, users if mask else None, value if mask else None)
        return p, q

    def _rating(self, s: torch.Tensor) -> torch.Tensor:
        """The predicted rating of a rating model from its score."""
        if self.cfg.loss == "nbce":
            return s.clamp(NBCE_MU, 1 - NBCE_MU) * self.hi
        if self.output == "sigmoid":
            return self.lo + (self.hi - self.lo) * torch.sigmoid(s)
        return s

    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        s = self._score(*self._reps(users, items, None), users, items)
        return self._rating(s) if self.task == "rating" else s

    def _all_reps(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.user_rep.all(self.n_users), self.item_rep.all(self.n_items)

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, pair_chunk: int = 1 << 17) -> torch.Tensor:
        self.eval()
        users = users.to(self.device)
        p_all, q_all = self.cached("reps", self._all_reps)
        if self.head.is_dot:
            q = self.cached("q_dot", lambda: self.head.normalise(q_all))
            p = self.head.normalise(p_all[users]) * self.head.out.weight[0]
            s = p @ q.T + self.head.out.bias
        else:
            s = torch.empty(len(users), self.n_items, device=self.device)
            rows = max(1, pair_chunk // max(self.n_items, 1))
            for a in range(0, len(users), rows):
                block = users[a : a + rows]
                pu = p_all[block].repeat_interleave(self.n_items, 0)
                qi = q_all.repeat(len(block), 1)
                s[a : a + rows] = self.head(pu, qi).reshape(len(block), self.n_items)
        if self.b_user is not None:
            s = s + self.b_user[users][:, None]
        if self.b_item is not None:
            s = s + self.b_item[None, :]
        return (self._rating(s) if self.task == "rating" else s).float()

    # --- training ---------------------------------------------------------------------------------------
    def train_batches(self, rng: np.random.Generator) -> Iterator[PairBatch | TripleBatch]:
        cfg, data, dev = self.cfg, self.ctx.interactions, self.device
        param = f"models.{getattr(self, 'run_name', None) or self.name}.negatives"
        if cfg.task == "rating":
            if cfg.batching == "pairs":
                return pair_batches(data, cfg.batch_size, rng, dev)
            return entity_batches(data, cfg.batching, cfg.batch_size, rng, dev)
        if cfg.loss == "bpr":
            return triple_batches(data, cfg.batch_size, rng, dev, param=param)
        return negative_batches(data, cfg.negatives, cfg.batch_size, rng, dev, param=param)

    def _reg(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(λ/2)·Σ‖W‖² / pairs per epoch (added to a batch's MEAN loss), and Σ‖W‖²."""
        if self.cfg.l2 == 0:
            zero = torch.zeros((), device=self.device)
            return zero, zero
        norm = sum((w.pow(2).sum() for w in self.parameters() if w.dim() >= 2), torch.zeros((), device=self.device))
        return 0.5 * self.cfg.l2 * norm / self._pairs_per_epoch, norm

    def batch_loss(self, batch: PairBatch | TripleBatch) -> StepLoss:
        cfg = self.cfg
        if isinstance(batch, TripleBatch):
            ones = torch.ones(len(batch.users), device=self.device)
            pos = self._score(*self._reps(batch.users, batch.pos_items, ones), batch.users, batch.pos_items)
            neg = self._score(*self._reps(batch.users, batch.neg_items, None), batch.users, batch.neg_items)
            data = losses.bpr(pos, neg)
            n = len(pos)
            logs: dict[str, torch.Tensor | float] = {"bpr": data.detach()}
        else:
            y = batch.ratings
            s = self._score(*self._reps(batch.users, batch.items, y), batch.users, batch.items)
            n = len(s)
            if cfg.loss == "bce":
                data = losses.bce_with_logits(s, y)
            elif cfg.loss == "nbce":
                target = y / self.hi if self.task == "rating" else y
                data = F.binary_cross_entropy(s.clamp(NBCE_MU, 1 - NBCE_MU), target)
            elif self.task == "rating":
                data = losses.mse(self._rating(s), y)
            else:
                data = losses.mse(torch.sigmoid(s) if self.output == "sigmoid" else s, y)
            logs = {cfg.loss: data.detach()}
        reg, norm = self._reg()
        if cfg.l2 > 0:
            logs["reg"] = 0.5 * cfg.l2 * norm.detach()
        return StepLoss(data + reg, logs, weight=n)
