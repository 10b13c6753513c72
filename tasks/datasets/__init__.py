"""Dataset registry: one file per dataset in this package, each registered by name with ``@register``."""

from __future__ import annotations

from pathlib import Path

from tasks.common.registry import Registry
from tasks.datasets.base import Dataset

DATASETS: Registry[type[Dataset]] = Registry("dataset", __name__, skip={"base"})


def register(cls: type[Dataset]) -> type[Dataset]:
    """Class decorator: registers the dataset under its ``name`` class attribute."""
    return DATASETS.add(cls.name, cls)


def dataset_names() -> list[str]:
    return DATASETS.names()


def get_dataset(name: str, param: str = "dataset", raw_dir: Path | None = None) -> Dataset:
    """The registered dataset; with ``raw_dir`` holding an acquired copy, configured from that copy."""
    ds = DATASETS.get(name, param=param)()
    if raw_dir is not None and ds.is_acquired(Path(raw_dir)):
        ds = ds.configure(Path(raw_dir))
    return ds
