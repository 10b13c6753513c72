"""Search spaces as data: ``tune.spaces.<model>.<parameter>`` in params.yaml (or an experiment file) is one of

    {low: 1e-4, high: 1e-2, log: true}        # a float range (log-uniform with log: true)
    {low: 8, high: 128, step: 8, int: true}   # an integer range
    {choices: [[500], [300, 300], 0.1]}       # a categorical choice (any YAML values, lists included)

and the trial's value replaces that key of the model's params entry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tasks.common.errors import ConfigError


@dataclass(frozen=True)
class Range:
    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: Any) -> Any:
        """The Optuna trial's value for this parameter (categorical choices are suggested by index, so a list
        value such as a layer size list survives the study's storage)."""
        if self.choices:
            return self.choices[trial.suggest_categorical(self.name, list(range(len(self.choices))))]
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log, step=self.step)

    def value_of(self, raw: Any) -> Any:
        """A stored trial parameter back as the model's value (a choice index → the choice)."""
        return self.choices[int(raw)] if self.choices else raw


def parse_space(raw: Any, param: str) -> list[Range]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(param, "a mapping parameter → {low, high[, log, int, step]} or {choices: [...]}", raw)
    out = []
    for name, spec in raw.items():
        where = f"{param}.{name}"
        if not isinstance(spec, dict):
            raise ConfigError(where, "{low, high[, log, int, step]} or {choices: [...]}", spec)
        unknown = sorted(set(spec) - {"low", "high", "log", "int", "step", "choices"})
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}", "one of low, high, log, int, step, choices", unknown[0])
        if "choices" in spec:
            choices = spec["choices"]
            if not isinstance(choices, list) or not choices or len(spec) != 1:
                raise ConfigError(where, "choices: a non-empty list (and nothing else)", spec)
            out.append(Range(str(name), choices=tuple(choices)))
            continue
        low, high = spec.get("low"), spec.get("high")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)) or not low < high:
            raise ConfigError(where, "numbers low < high", [low, high])
        log = bool(spec.get("log", False))
        if log and low <= 0:
            raise ConfigError(f"{where}.low", "a number > 0 for a log range", low)
        integer = bool(spec.get("int", False))
        step = spec.get("step")
        if step is not None and (not isinstance(step, (int, float)) or step <= 0 or (log and step)):
            raise ConfigError(f"{where}.step", "a number > 0 (not with log: true)", step)
        out.append(Range(str(name), float(low), float(high), log, integer, None if step is None else float(step)))
    return out
