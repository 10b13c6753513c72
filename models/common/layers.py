"""Dense building blocks: activations by name, MLPs, LeCun-normal init (SELU nets)."""

from __future__ import annotations

import itertools
import math

from torch import nn

from tasks.common.errors import ConfigError

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


def lecun_normal_(linear: nn.Linear) -> nn.Linear:
    nn.init.normal_(linear.weight, 0.0, 1.0 / math.sqrt(linear.in_features))
    nn.init.zeros_(linear.bias)
    return linear


def mlp(sizes: list[int], act: str, param: str, final_act: bool = True) -> nn.Sequential:
    """Dense layers sizes[0] → sizes[1] → ...; SELU nets get LeCun-normal init."""
    for s in sizes:
        if not isinstance(s, int) or isinstance(s, bool) or s < 1:
            raise ConfigError(param.rsplit(".", 1)[0], "positive integer layer sizes", list(sizes))
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(itertools.pairwise(sizes)):
        lin = nn.Linear(a, b)
        if act == "selu":
            lecun_normal_(lin)
        layers.append(lin)
        if final_act or k < len(sizes) - 2:
            layers.append(activation(act, param))
    return nn.Sequential(*layers)
