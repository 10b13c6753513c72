"""Dataset registry: one file per dataset in this package, each registered by name with ``@register``."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from tasks.common.errors import UnknownNameError
from tasks.datasets.base import Dataset

_REGISTRY: dict[str, type[Dataset]] = {}
_LOADED = False


def register(cls: type[Dataset]) -> type[Dataset]:
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"dataset name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if mod.name not in ("base",) and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED = True


def dataset_names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def get_dataset(name: str, param: str = "dataset", raw_dir: Path | None = None) -> Dataset:
    """The registered dataset; with ``raw_dir`` holding an acquired copy, configured from that copy."""
    _load_all()
    if name not in _REGISTRY:
        raise UnknownNameError("dataset", name, list(_REGISTRY), param=param)
    ds = _REGISTRY[name]()
    if raw_dir is not None and ds.is_acquired(Path(raw_dir)):
        ds = ds.configure(Path(raw_dir))
    return ds
