"""Model registry and named variants.

``@register_model("name")`` on a class in its own file under ``models/`` registers it and sets its ``name``.
Any key under ``models:`` in ``params.yaml`` that is not a registered name is a *variant*: it says
``base: <registered model or another variant>`` (and optionally ``preset: <one of the class's presets>``)
plus overrides, e.g.::

    ncae-nopretrain: {base: ncae, pretrain: none}

A variant inherits its base's params entry, then the preset's values, then its own overrides; it runs
and is reported under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.errors import ConfigError
from tasks.registry import Registry

if TYPE_CHECKING:
    from models.common.base import Recommender

MODELS: Registry[type[Recommender]] = Registry("model", "models", skip={"common"})
VARIANT_KEYS = ("base", "preset")


def register_model(name: str):  # type: ignore[no-untyped-def]
    return MODELS.register(name)


def model_names() -> list[str]:
    return MODELS.names()


def get_model_class(name: str, param: str = "train.models") -> type[Recommender]:
    return MODELS.get(name, param=param)


@dataclass(frozen=True)
class ModelSpec:
    """A run's model: the name it runs under, its registered class, and its raw config (variant resolved)."""

    name: str
    cls: type[Recommender]
    raw: dict[str, Any]
    base: str | None = None  # the registered model a variant derives from
    preset: str | None = None


def resolve_model(name: str, entries: dict[str, dict[str, Any]], param: str = "train.models") -> ModelSpec:
    """The class and merged config of ``name`` (a registered model or a variant declared in ``entries``)."""
    chain: list[str] = []
    raw: dict[str, Any] = {}
    preset: str | None = None
    current = name
    while True:
        if current in chain:
            raise ConfigError(f"models.{name}.base", "a chain of variants that ends at a registered model",
                              " → ".join([*chain, current]))  # fmt: skip
        chain.append(current)
        value = entries.get(current) or {}
        if not isinstance(value, dict):
            raise ConfigError(f"models.{current}", "a mapping of that model's options", value)
        entry = dict(value)
        base = entry.pop("base", None)
        p = entry.pop("preset", None)
        if p is not None and preset is None:
            preset = str(p)
        raw = {**entry, **raw}  # the variant's own keys win over its base's
        if base is None:
            if current not in MODELS:
                where = param if current == name else f"models.{chain[-2]}.base"
                if current == name and current not in entries:
                    MODELS.get(current, param=param)  # unknown name: lists the registered ones
                raise ConfigError(where, f"a registered model or a variant with 'base:' ({MODELS.names()})", current)
            cls = MODELS.get(current)
            break
        if not isinstance(base, str):
            raise ConfigError(f"models.{current}.base", "the name of a registered model", base)
        current = base
    if preset is not None:
        presets = getattr(cls, "presets", {})
        if preset not in presets:
            raise ConfigError(f"models.{name}.preset", f"one of {sorted(presets)} (presets of {cls.name})", preset)
        raw = {**presets[preset], **raw}
    return ModelSpec(name=name, cls=cls, raw=raw, base=cls.name if name != cls.name else None, preset=preset)
