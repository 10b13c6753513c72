"""One registry helper for everything looked up by name: datasets, models, split protocols.

A ``Registry`` maps names to objects (classes or factories), discovers the modules of its package on first
use (recursively, skipping the names it is told to skip and private modules), refuses a name registered
twice, and raises ``UnknownNameError`` listing the valid names.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from tasks.common.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, package: str | None = None, skip: Iterable[str] = ()) -> None:
        self.kind = kind
        self.package = package
        self.skip = set(skip)
        self._entries: dict[str, T] = {}
        self._loaded = package is None

    def add(self, name: str, obj: T) -> T:
        if name in self._entries and self._entries[name] is not obj:
            raise ValueError(f"{self.kind} name {name!r} registered twice")
        self._entries[name] = obj
        return obj

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: registers the class under ``name`` and sets its ``name`` attribute to it."""

        def deco(obj: T) -> T:
            obj.name = name  # type: ignore[attr-defined]
            return self.add(name, obj)

        return deco

    def _load_all(self) -> None:
        if self._loaded or self.package is None:
            return
        self._loaded = True
        pkg = importlib.import_module(self.package)
        for mod in pkgutil.walk_packages(pkg.__path__, prefix=f"{self.package}."):
            short = mod.name.rsplit(".", 1)[-1]
            parts = mod.name[len(self.package) + 1 :].split(".")
            if short.startswith("_") or any(p in self.skip for p in parts):
                continue
            importlib.import_module(mod.name)

    def names(self) -> list[str]:
        self._load_all()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self._load_all()
        return name in self._entries

    def get(self, name: str, param: str | None = None) -> T:
        self._load_all()
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, list(self._entries), param=param)
        return self._entries[name]
