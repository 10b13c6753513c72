"""Model registry: ``@register_model("name")`` on a class in its own file under ``models/``."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

from tasks.errors import UnknownNameError

if TYPE_CHECKING:
    from models.base import RatingModel

_REGISTRY: dict[str, type[RatingModel]] = {}
_INFRA = {"base", "registry", "context", "sparse", "layers"}
_LOADED = False


def register_model(name: str):  # type: ignore[no-untyped-def]
    def deco(cls: type[RatingModel]) -> type[RatingModel]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    import models

    for mod in pkgutil.iter_modules(models.__path__):
        if mod.name not in _INFRA and not mod.name.startswith("_"):
            importlib.import_module(f"models.{mod.name}")
    _LOADED = True


def model_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_model_class(name: str, param: str = "train.models") -> type[RatingModel]:
    _load_all()
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, list(_REGISTRY), param=param)
    return _REGISTRY[name]
