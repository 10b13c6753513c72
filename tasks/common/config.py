"""Typed access to ``params.yaml``: one dataclass per concern, each checked on load.

Every error names the parameter, what was expected and what was found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common import safe_yaml
from tasks.common.errors import ConfigError, DataError
from tasks.common.safe_yaml import load_user_yaml

PARAMS_FILE = "params.yaml"
SPLIT_ID = re.compile(r"^(?P<protocol>[a-z0-9-]+?)-s(?P<seed>\d+)$")


@dataclass(frozen=True)
class AcquireParams:
    source_dir: Path | None = None
    timeout_s: float = 30.0


@dataclass(frozen=True)
class ValidateParams:
    expected_counts: bool = True  # check the dataset's published user/item/rating counts


@dataclass(frozen=True)
class FeatureParams:
    age_encoding: str = "raw"
    min_df: int = 1
    svd_k: int = 50
    seed: int = 0


@dataclass(frozen=True)
class SplitParams:
    instances: tuple[str, ...] = ("random-80-10-10-s0",)
    loo_negatives: int = 99


@dataclass(frozen=True)
class TrainParams:
    device: str = "auto"
    threads: int = 0
    max_epochs: int = 200
    patience: int = 10
    models: tuple[str, ...] = ()
    # a ranking model (bpr, pop ...) on explicit ratings: ratings >= this are positives, the rest are dropped
    positive_threshold: float = 4.0


@dataclass(frozen=True)
class EvaluateParams:
    precision_p: tuple[float, ...] = (0.1, 0.25)
    sampled_k: int = 10
    full_k: tuple[int, ...] = (10, 50, 100)
    # rank every item for every test user (O(users × items) model evaluations: minutes for an MLP scorer
    # such as nrp-direct on 10^4+ items on a CPU); false keeps only the sampled ranking
    full_ranking: bool = True


@dataclass(frozen=True)
class Params:
    dataset: str
    acquire: AcquireParams
    validate: ValidateParams
    features: FeatureParams
    split: SplitParams
    train: TrainParams
    models: dict[str, dict[str, Any]]
    evaluate: EvaluateParams
    report_datasets: tuple[str, ...] = field(default_factory=tuple)
    # per-dataset options (``datasets.<name>`` in params.yaml): amazon category/release, custom mapping, ...
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def dataset_options(self, name: str) -> dict[str, Any]:
        return dict(self.datasets.get(name, {}))


def parse_split_id(split_id: str) -> tuple[str, int]:
    """``random-80-10-10-s0`` → (``random-80-10-10``, 0)."""
    m = SPLIT_ID.match(split_id)
    if not m:
        raise ConfigError("split.instances", "'<protocol>-s<seed>', e.g. 'random-80-10-10-s0'", split_id)
    return m["protocol"], int(m["seed"])


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(name, "a mapping", value)
    return value


def _typed(cls: type, raw: dict[str, Any], section: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{section}.{sorted(unknown)[0]}", f"one of {sorted(known)}", sorted(unknown)[0])
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        default = cls.__dataclass_fields__[key].default
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{section}.{key}", "true or false", value)
        elif isinstance(default, int) and not isinstance(default, bool):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{section}.{key}", "an integer", value)
        elif isinstance(default, float) and not isinstance(value, (int, float)):
            raise ConfigError(f"{section}.{key}", "a number", value)
        kwargs[key] = value
    return cls(**kwargs)


def params_from_dict(raw: dict[str, Any]) -> Params:
    if not isinstance(raw, dict):
        raise ConfigError("params", "a mapping at the top of params.yaml", raw)
    dataset = raw.get("dataset")
    if not isinstance(dataset, str):
        raise ConfigError("dataset", "a dataset name", dataset)
    acq = dict(_section(raw, "acquire"))
    env_dir = os.environ.get("HYBRIDREC_SOURCE_DIR")
    if env_dir:
        acq["source_dir"] = env_dir
    src = acq.get("source_dir")
    acquire = AcquireParams(
        source_dir=Path(src).expanduser() if src else None, timeout_s=float(acq.get("timeout_s", 30.0))
    )
    validate = _typed(ValidateParams, _section(raw, "validate"), "validate")
    features = _typed(FeatureParams, _section(raw, "features"), "features")
    if features.age_encoding not in ("raw", "bucket"):
        raise ConfigError("features.age_encoding", "'raw' or 'bucket'", features.age_encoding)
    if features.svd_k < 1:
        raise ConfigError("features.svd_k", "an integer >= 1", features.svd_k)
    split = _typed(SplitParams, _section(raw, "split"), "split")
    for sid in split.instances:
        parse_split_id(sid)
    train = _typed(TrainParams, _section(raw, "train"), "train")
    models = _section(raw, "models")
    evaluate = _typed(EvaluateParams, _section(raw, "evaluate"), "evaluate")
    report = _section(raw, "report")
    datasets = _section(raw, "datasets")
    for name, opts in datasets.items():
        if opts is not None and not isinstance(opts, dict):
            raise ConfigError(f"datasets.{name}", "a mapping of that dataset's options", opts)
    return Params(
        dataset=dataset,
        acquire=acquire,
        validate=validate,
        features=features,
        split=split,
        train=train,
        models={k: dict(v or {}) for k, v in models.items()},
        evaluate=evaluate,
        report_datasets=tuple(report.get("datasets", [dataset])),
        datasets={str(k): dict(v or {}) for k, v in datasets.items()},
    )


def load_params(path: str | Path = PARAMS_FILE, overrides: dict[str, Any] | None = None) -> Params:
    """Read params.yaml (relative to the working directory, i.e. the repo root) and check it."""
    path = Path(path)
    if not path.exists():
        raise ConfigError("params file", f"{path} to exist (run from the repository root)", "no such file")
    try:
        raw = load_user_yaml(path) or {}
    except DataError as exc:
        raise ConfigError(str(path), safe_yaml.EXPECTED, str(exc)) from exc
    if overrides:
        raw = {**raw, **overrides}
    return params_from_dict(raw)
