"""The contract every model implements, and the typed configs every ``models.<name>`` params entry is parsed into.

A model (one file, ``@register_model("name")``) declares:

* ``task``: ``"rating"`` (predicts a rating: RMSE/MAE/precision@top-p%, monitored by ``valid_rmse``) or
  ``"ranking"`` (scores for ranking: HR/NDCG/recall/precision/MRR, monitored by ``valid_ndcg@10``);
* ``config_cls``: a frozen dataclass, ``GradientConfig`` (optimizer, lr, ...) for models trained by gradient
  steps, ``ModelConfig`` for models that fit an epoch themselves (counting, closed forms, ALS sweeps);
* training: ``train_batches(rng)`` (default: shuffled observed pairs, from ``models.common.samplers``) and
  ``batch_loss(batch) -> StepLoss`` (the objective plus named scalars to log), or ``fits_itself = True`` and
  ``fit_epoch(rng) -> dict`` of logged scalars;
* scoring: ``predict_pairs(users, items)`` and, for full ranking, ``score_users(users)`` (len(users) × n_items
  on the model's device). A model whose score is a dot product of user and item representations returns them
  from ``representations()``: full ranking is then one matmul per chunk of users, item side computed once per
  ``scoring()`` block.

A model may also compute its gradients itself (``analytic_gradients = True``): ``batch_loss`` then runs without
autograd and adds every parameter's gradient into ``.grad`` (tests compare them with autograd's).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from models.common.context import TrainContext
from models.common.layers import ACTIVATIONS, activation, lecun_normal_, mlp
from models.common.samplers import pair_batches
from tasks.common.errors import ConfigError

__all__ = [
    "ACTIVATIONS",
    "FULL_BATCH_OPTIMIZERS",
    "OPTIMIZERS",
    "TASKS",
    "GradientConfig",
    "ModelConfig",
    "Recommender",
    "StepLoss",
    "activation",
    "add_row_grads",
    "lecun_normal_",
    "mlp",
]

TASKS = ("rating", "ranking")
MONITOR_METRICS = ("rmse", "mae", "ndcg", "hr", "recall", "precision", "mrr")


def parse_monitor(monitor: str, param: str) -> tuple[str, int | None, str]:
    """``valid_ndcg@10`` → (``ndcg``, 10, ``max``); ``valid_rmse`` → (``rmse``, None, ``min``)."""
    name = monitor.removeprefix("valid_")
    metric, _, k = name.partition("@")
    ok = monitor.startswith("valid_") and metric in MONITOR_METRICS
    if ok and metric in ("rmse", "mae", "mrr"):
        ok = not k
    elif ok:
        ok = k.isdigit() and int(k) >= 1
    if not ok:
        raise ConfigError(param, "valid_rmse | valid_mae | valid_mrr | valid_{ndcg,hr,recall,precision}@K", monitor)
    return metric, (int(k) if k else None), ("min" if metric in ("rmse", "mae") else "max")


def _check_value(param: str, default: Any, value: Any) -> Any:
    if isinstance(default, tuple):
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise ConfigError(param, "a list", value)
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(param, "true or false", value)
    elif isinstance(default, int):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(param, "an integer", value)
    elif isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ConfigError(param, "a number", value)
        return float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(param, "a string", value)
    return value


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model shares; subclasses add their own (each with a one-line docstring)."""

    patience: int = 0
    """Early-stopping patience in epochs without a better monitor value (0: ``train.patience``)."""
    max_epochs: int = 0
    """Epoch cap for this model (0: ``train.max_epochs``)."""
    monitor: str = ""
    """Validation metric for early stopping and the best checkpoint ("" = the task's default:
    ``valid_rmse`` for rating models on explicit data, ``valid_ndcg@10`` otherwise)."""

    @classmethod
    def from_dict(cls, raw: dict[str, Any], model: str) -> ModelConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"models.{model}.{unknown[0]}", f"one of {sorted(fields)}", unknown[0])
        kwargs = {k: _check_value(f"models.{model}.{k}", fields[k].default, v) for k, v in raw.items()}
        cfg = cls(**kwargs)
        cfg.check(model)
        return cfg

    def check(self, model: str) -> None:
        """Range checks; raise ``ConfigError`` naming ``models.<model>.<field>``."""
        if self.patience < 0:
            raise ConfigError(f"models.{model}.patience", "an integer >= 0", self.patience)
        if self.max_epochs < 0:
            raise ConfigError(f"models.{model}.max_epochs", "an integer >= 0", self.max_epochs)
        if self.monitor:
            parse_monitor(self.monitor, f"models.{model}.monitor")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


OPTIMIZERS = {
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    # Keras defaults (the NRP paper used Keras): rho 0.9, epsilon 1e-7
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.9, eps=1e-7),
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "adagrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr),
    # full-batch optimizers (AutoRec's): one step sees the gradient of the whole training objective, accumulated
    # over the model's minibatches; ``full_batch_steps`` steps per epoch. Rprop: lr is the initial step size.
    "rprop": lambda p, lr: torch.optim.Rprop(p, lr=lr),
    # L-BFGS with a strong-Wolfe line search (lr 1 is the usual choice); one ``step`` runs up to
    # ``full_batch_steps`` iterations (set by ``make_optimizer``)
    "lbfgs": lambda p, lr: torch.optim.LBFGS(p, lr=lr, history_size=10, line_search_fn="strong_wolfe"),
}
FULL_BATCH_OPTIMIZERS = ("rprop", "lbfgs")


@dataclass(frozen=True)
class GradientConfig(ModelConfig):
    """Models trained by gradient steps on minibatches."""

    optimizer: str = "adam"
    """One of adam | rmsprop (Keras defaults) | sgd | adagrad."""
    lr: float = 1e-3
    """Learning rate."""
    l2: float = 0.0
    """L2 regularisation weight λ (each model says how it applies it)."""
    batch_size: int = 256
    """Minibatch size (pairs, triples or vectors, as the model trains)."""
    lr_decay: float = 1.0
    """Multiply the lr by this after ``lr_patience`` epochs without monitor improvement (1.0 = off)."""
    lr_patience: int = 1
    """Epochs without improvement before the lr decays."""
    full_batch_steps: int = 10
    """Full-batch optimizers (rprop, lbfgs) only: Rprop steps per epoch / L-BFGS iterations per epoch."""

    @property
    def full_batch(self) -> bool:
        """True for optimizers that step on the gradient of the whole training objective (rprop, lbfgs)."""
        return self.optimizer in FULL_BATCH_OPTIMIZERS

    def check(self, model: str) -> None:
        super().check(model)
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"models.{model}.optimizer", f"one of {sorted(OPTIMIZERS)}", self.optimizer)
        if not 0 < self.lr_decay <= 1:
            raise ConfigError(f"models.{model}.lr_decay", "a factor in (0, 1]", self.lr_decay)
        for key, ok, what in (
            ("batch_size", self.batch_size >= 1, "an integer >= 1"),
            ("lr", self.lr > 0, "a number > 0"),
            ("l2", self.l2 >= 0, "a number >= 0"),
            ("lr_patience", self.lr_patience >= 0, "an integer >= 0"),
            ("full_batch_steps", self.full_batch_steps >= 1, "an integer >= 1"),
        ):
            if not ok:
                raise ConfigError(f"models.{model}.{key}", what, getattr(self, key))


@dataclass
class StepLoss:
    """One training step: the objective to minimise and named scalars to log (averaged over the epoch,
    weighted by ``weight``, e.g. the number of ratings in the batch)."""

    objective: torch.Tensor
    logs: dict[str, torch.Tensor | float]
    weight: float = 1.0


def add_row_grads(param: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> None:
    """``param.grad[rows] += values``, repeated rows summed (an embedding's backward, for analytic gradients)."""
    if param.grad is None:
        param.grad = torch.zeros_like(param)
    param.grad.index_add_(0, rows, values)


class Recommender(nn.Module):
    """Base class of every model; see the module docstring for the contract."""

    config_cls: ClassVar[type[ModelConfig]] = GradientConfig
    name: ClassVar[str] = ""
    task: str = "rating"  # a class attribute; a model whose task is a config field sets it per instance
    fits_itself: ClassVar[bool] = False
    # True: ``batch_loss`` computes its objective without autograd and adds each parameter's gradient to ``.grad``
    # itself (``add_row_grads``), so ``backward`` has nothing to do; and Adam runs as PyTorch's fused kernel (the
    # same update rule, one kernel per tensor). For models whose gradient is a few closed-form lines (BiasedMF,
    # BPR), where autograd's bookkeeping and Adam's per-tensor passes would cost more than the maths.
    analytic_gradients: ClassVar[bool] = False
    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    needs_side: ClassVar[tuple[str, ...]] = ()  # "user" / "item": side information the model cannot run without

    @classmethod
    def task_of(cls, raw: dict[str, Any]) -> str:
        """The task of this model under the raw config ``raw`` (before building it: the run data depend on it)."""
        return cls.task

    def __init__(self, cfg: ModelConfig, ctx: TrainContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_users, self.n_items = ctx.n_users, ctx.n_items
        self.rating_scale = ctx.rating_scale
        self.ctx = ctx
        self._ctx_device = ctx.device
        self._cache: dict[str, Any] | None = None

    @property
    def device(self) -> torch.device:
        return self._ctx_device

    # --- training -------------------------------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer | None:
        if self.fits_itself:
            return None
        assert isinstance(self.cfg, GradientConfig)
        params = [p for p in self.parameters() if p.requires_grad]
        if self.cfg.optimizer == "lbfgs":
            return torch.optim.LBFGS(params, lr=self.cfg.lr, max_iter=self.cfg.full_batch_steps,
                                     history_size=10, line_search_fn="strong_wolfe")  # fmt: skip
        if self.cfg.optimizer == "adam" and self.analytic_gradients:
            return torch.optim.Adam(params, lr=self.cfg.lr, fused=True)
        return OPTIMIZERS[self.cfg.optimizer](params, self.cfg.lr)

    def train_batches(self, rng: np.random.Generator) -> Iterator[Any]:
        """Default: every observed training pair once per epoch, shuffled."""
        assert isinstance(self.cfg, GradientConfig)
        return pair_batches(self.ctx.interactions, self.cfg.batch_size, rng, self.device)

    def batch_loss(self, batch: Any) -> StepLoss:
        raise NotImplementedError

    def backward(self, step: StepLoss) -> None:
        """Gradients of one ``batch_loss`` into ``.grad``: autograd's backward, or nothing for a model whose
        ``batch_loss`` already added its closed-form gradients (``analytic_gradients``). Every caller of
        ``batch_loss`` that trains goes through here."""
        if not self.analytic_gradients:
            step.objective.backward()

    def fused_epoch(self, opt: torch.optim.Optimizer, rng: np.random.Generator) -> dict[str, float] | None:
        """Optional: one whole epoch of gradient steps done by the model itself (e.g. a compiled kernel of the same
        algorithm), returning the scalars to log; None (the default) lets the loop step through ``batch_loss``."""
        return None

    def fit_epoch(self, rng: np.random.Generator) -> dict[str, float]:
        """One epoch without an optimizer (``fits_itself`` models); returns the scalars to log."""
        raise NotImplementedError

    def check_eval_users(self, users: np.ndarray) -> None:
        """Refuse (``ConfigError``) evaluation users this model cannot score by construction; default: any."""

    def pretrained_runs(self) -> tuple[str, ...]:
        """Trained runs (model names, same dataset and split) whose weights initialise this model; () for none."""
        return ()

    def load_pretrained(self, states: list[dict[str, torch.Tensor]], names: list[str]) -> None:
        """Initialise from the checkpoints of ``pretrained_runs()`` (in that order)."""
        raise NotImplementedError

    def warming_up(self) -> bool:
        """True when the epoch just trained was a pre-training (warm-up) epoch, e.g. NCAE's layer-wise stages: its
        validation metrics are logged, but it can be neither the best checkpoint nor count towards early stopping
        or lr decay. A model that uses it keeps its own epoch count in a buffer (so a resumed run agrees)."""
        return False

    def finished(self) -> bool:
        """True when further epochs cannot change the model (a closed form, counting): training stops."""
        return False

    # --- inference ------------------------------------------------------------------------------------
    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray, chunk: int = 65536) -> np.ndarray:
        self.eval()
        out = np.empty(len(users), dtype=np.float32)
        dev = self.device
        for s in range(0, len(users), chunk):
            u = torch.from_numpy(np.array(users[s : s + chunk], dtype=np.int64)).to(dev)
            i = torch.from_numpy(np.array(items[s : s + chunk], dtype=np.int64)).to(dev)
            out[s : s + chunk] = self.predict_pairs(u, i).float().cpu().numpy()
        return out

    def representations(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(all users × d, all items × d) whose dot product is the score, or None (pair-only models)."""
        return None

    @contextlib.contextmanager
    def scoring(self) -> Iterator[None]:
        """A block of ``score_users`` calls: item-side work (representations) is computed once inside it."""
        self.eval()
        self._cache = {}
        try:
            with torch.no_grad():
                yield
        finally:
            self._cache = None

    def cached(self, key: str, build: Any) -> Any:
        if self._cache is None:
            return build()
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    @torch.no_grad()
    def score_users(self, users: torch.Tensor, pair_chunk: int = 1 << 18) -> torch.Tensor:
        """Scores of every item for each user (len(users) × n_items, float32, on the model's device)."""
        users = users.to(self.device)
        reps = self.cached("representations", self.representations)
        if reps is not None:
            u_rep, i_rep = reps
            return (u_rep[users] @ i_rep.T).float()
        out = torch.empty(len(users), self.n_items, device=self.device)
        rows = max(1, pair_chunk // max(self.n_items, 1))
        items = torch.arange(self.n_items, device=self.device)
        for s in range(0, len(users), rows):
            block = users[s : s + rows]
            uu = block.repeat_interleave(self.n_items)
            ii = items.repeat(len(block))
            out[s : s + rows] = self.predict_pairs(uu, ii).float().reshape(len(block), self.n_items)
        return out

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

