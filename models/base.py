"""The interface every model implements, and the typed config every model's params entry is parsed into."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from models.context import TrainContext
from tasks.errors import ConfigError

ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "identity": None,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "selu": nn.SELU,
    "elu": nn.ELU,
}


def activation(name: str, param: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ConfigError(param, f"one of {sorted(ACTIVATIONS)}", name)
    cls = ACTIVATIONS[name]
    return nn.Identity() if cls is None else cls()


@dataclass(frozen=True)
class ModelConfig:
    """Fields every model shares; subclasses add their own."""

    optimizer: str = "adam"
    lr: float = 1e-3
    l2: float = 0.0
    batch_size: int = 256
    lr_decay: float = 1.0  # multiply lr by this when validation RMSE does not improve (1.0 = off)
    lr_patience: int = 1  # ... for this many epochs
    patience: int = 0  # early-stopping patience for this model (0: train.patience)
    max_epochs: int = 0  # epoch cap for this model (0: train.max_epochs)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], model: str) -> ModelConfig:
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"models.{model}.{unknown[0]}", f"one of {sorted(fields)}", unknown[0])
        kwargs: dict[str, Any] = {}
        for key, value in raw.items():
            default = fields[key].default
            if isinstance(default, tuple) and isinstance(value, list):
                value = tuple(value)
            elif isinstance(default, bool):
                if not isinstance(value, bool):
                    raise ConfigError(f"models.{model}.{key}", "true or false", value)
            elif isinstance(default, (int, float)) and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ConfigError(f"models.{model}.{key}", "a number", value)
            kwargs[key] = value
        cfg = cls(**kwargs)
        if cfg.optimizer not in OPTIMIZERS:
            raise ConfigError(f"models.{model}.optimizer", f"one of {sorted(OPTIMIZERS)}", cfg.optimizer)
        if not 0 < cfg.lr_decay <= 1:
            raise ConfigError(f"models.{model}.lr_decay", "a factor in (0, 1]", cfg.lr_decay)
        if cfg.batch_size < 1 or cfg.lr <= 0 or cfg.l2 < 0:
            raise ConfigError(
                f"models.{model}",
                "batch_size >= 1, lr > 0, l2 >= 0",
                {"batch_size": cfg.batch_size, "lr": cfg.lr, "l2": cfg.l2},
            )
        return cfg

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


OPTIMIZERS = {
    "adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    # Keras defaults (the NRP paper used Keras): rho 0.9, epsilon 1e-7
    "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr, alpha=0.9, eps=1e-7),
    "sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
    "adagrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr),
}


@dataclass(frozen=True)
class Batch:
    """Training pairs (indices into the context's training arrays, already on the device)."""

    users: torch.Tensor
    items: torch.Tensor
    ratings: torch.Tensor


class RatingModel(nn.Module):
    """Predicts a score for (user, item) pairs; trained by the generic loop in ``tasks.train``.

    Subclasses set ``config_cls`` and implement ``batch_loss`` and ``predict_pairs``; pair-based models use
    the default ``train_batches`` (shuffled training pairs), vector-based ones (AutoRec) override it.
    """

    config_cls: ClassVar[type[ModelConfig]] = ModelConfig
    name: ClassVar[str] = ""

    def __init__(self, cfg: ModelConfig, ctx: TrainContext) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_users, self.n_items = ctx.n_users, ctx.n_items
        self.rating_scale = ctx.rating_scale
        self._pairs: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._ctx_device = ctx.device

    # --- training -------------------------------------------------------------------------------------
    def make_optimizer(self) -> torch.optim.Optimizer:
        return OPTIMIZERS[self.cfg.optimizer](self.parameters(), self.cfg.lr)

    def attach_training_pairs(self, ctx: TrainContext) -> None:
        dev = ctx.device
        self._pairs = (
            torch.as_tensor(ctx.users, dtype=torch.long, device=dev),
            torch.as_tensor(ctx.items, dtype=torch.long, device=dev),
            torch.as_tensor(ctx.ratings, dtype=torch.float32, device=dev),
        )

    def train_batches(self, rng: np.random.Generator) -> Iterator[Any]:
        assert self._pairs is not None, "attach_training_pairs() first"
        u, i, r = self._pairs
        order = torch.as_tensor(rng.permutation(len(u)), device=u.device)
        bs = self.cfg.batch_size
        for s in range(0, len(order), bs):
            sel = order[s : s + bs]
            yield Batch(u[sel], i[sel], r[sel])

    def batch_loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(objective to minimise, sum of squared errors on the batch's ratings, number of ratings)."""
        raise NotImplementedError

    # --- inference ------------------------------------------------------------------------------------
    def predict_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, users: np.ndarray, items: np.ndarray, chunk: int = 65536) -> np.ndarray:
        self.eval()
        out = np.empty(len(users), dtype=np.float32)
        dev = self._ctx_device
        for s in range(0, len(users), chunk):
            u = torch.from_numpy(np.array(users[s : s + chunk], dtype=np.int64)).to(dev)
            i = torch.from_numpy(np.array(items[s : s + chunk], dtype=np.int64)).to(dev)
            out[s : s + chunk] = self.predict_pairs(u, i).float().cpu().numpy()
        return out

    @torch.no_grad()
    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores of every item for each user in ``users`` (len(users) × n_items)."""
        uu = np.repeat(users, self.n_items)
        ii = np.tile(np.arange(self.n_items), len(users))
        return self.predict(uu, ii).reshape(len(users), self.n_items)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def lecun_normal_(linear: nn.Linear) -> nn.Linear:
    nn.init.normal_(linear.weight, 0.0, 1.0 / math.sqrt(linear.in_features))
    nn.init.zeros_(linear.bias)
    return linear


def mlp(sizes: list[int], act: str, param: str, final_act: bool = True) -> nn.Sequential:
    """Dense layers sizes[0] → sizes[1] → ...; SELU nets get LeCun-normal init."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        if act == "selu":
            lecun_normal_(lin)
        layers.append(lin)
        if final_act or k < len(sizes) - 2:
            layers.append(activation(act, param))
    return nn.Sequential(*layers)
