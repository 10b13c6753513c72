"""Model registry and named variants.

``@register_model("name")`` on a class in its own file under ``models/`` registers it and sets its ``name``.
Any key under ``models:`` in ``params.yaml`` that is not a registered name is a *variant*: it says
``base: <registered model>`` (and optionally ``preset: <one of the class's presets>``) plus overrides, e.g.::

    ncae-nopretrain: {base: ncae, pretrain: none}

A variant's config is the class defaults, then the preset's values, then its own keys — never another entry
of params.yaml, so its own entry is its whole definition (DVC reruns exactly the runs whose entry changed).
It runs and is reported under its own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tasks.common.errors import ConfigError
from tasks.common.registry import Registry

if TYPE_CHECKING:
    from models.common.base import Recommender

MODELS: Registry[type[Recommender]] = Registry("model", "models", skip={"common"})


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

    @property
    def task(self) -> str:
        """rating | ranking: the class's, or its config's for a model whose task is a field (``gf``)."""
        return self.cls.task_of(self.raw)


def resolve_model(name: str, entries: dict[str, dict[str, Any]], param: str = "train.models") -> ModelSpec:
    """The class and raw config of ``name``: a registered model (its params entry) or a variant declared in
    ``entries`` (``base:`` a registered model, optional ``preset:``, then its own overrides)."""
    value = entries.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"models.{name}", "a mapping of that model's options", value)
    raw = dict(value)
    base = raw.pop("base", None)
    preset = raw.pop("preset", None)
    if name in MODELS:
        if base is not None and base != name:
            raise ConfigError(f"models.{name}.base", f"no base: {name!r} is a registered model", base)
        cls = MODELS.get(name)
    elif base is None:
        if name not in entries:
            MODELS.get(name, param=param)  # unknown name: lists the registered ones
        raise ConfigError(f"models.{name}.base", f"a registered model this variant derives from ({MODELS.names()})",
                          None)  # fmt: skip
    else:
        if not isinstance(base, str) or base not in MODELS:
            raise ConfigError(f"models.{name}.base", f"one of the registered models {MODELS.names()}", base)
        cls = MODELS.get(base)
    if preset is not None:
        presets = getattr(cls, "presets", {})
        if preset not in presets:
            raise ConfigError(f"models.{name}.preset", f"one of {sorted(presets)} (presets of {cls.name})", preset)
        raw = {**presets[preset], **raw}
    return ModelSpec(name=name, cls=cls, raw=raw, base=cls.name if name != cls.name else None,
                     preset=str(preset) if preset is not None else None)  # fmt: skip
