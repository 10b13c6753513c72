"""Typed access to ``params.yaml``: one dataclass per concern, each checked on load.

Every error names the parameter, what was expected and what was found.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common import safe_yaml
from tasks.common.errors import ConfigError, DataError
from tasks.common.safe_yaml import load_user_yaml

PARAMS_FILE = "params.yaml"
SECTIONS = ("acquire", "datasets", "pipeline", "validate", "features", "split", "train", "models", "evaluate",
            "report", "deploy", "tune", "fanout")  # fanout: checked by flows/fanout.py (where the grid's runs execute)
TOP_LEVEL = frozenset({"dataset", "experiments", *SECTIONS})
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
    # runs that start from other runs (NeuMF / CFNet pre-training): (model, (source A, source B)) — the sources
    # are models of ``models`` (trained first), and equal the model's own ``pretrain:`` entry
    pretrained: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def all_models(self) -> tuple[str, ...]:
        """Every model a run grid trains: ``models``, then the pre-trained ones."""
        return self.models + tuple(m for m, _ in self.pretrained)


@dataclass(frozen=True)
class PipelineEntry:
    """``pipeline.<dataset>``: what ``dvc repro`` runs on that dataset. Each field left out (None) takes the
    top-level value (``split.instances``, ``train.models``, ``train.pretrained``)."""

    splits: tuple[str, ...] | None = None  # its split instances (Douban, DeepCF: predefined-s0 ...)
    models: tuple[str, ...] | None = None  # its models and variants
    pretrained: tuple[tuple[str, tuple[str, ...]], ...] | None = None  # its pre-trained runs (as train.pretrained)


@dataclass(frozen=True)
class EvaluateParams:
    precision_p: tuple[float, ...] = (0.1, 0.25)
    sampled_k: int = 10
    full_k: tuple[int, ...] = (10, 50, 100)
    # rank every item for every test user (O(users × items) model evaluations: minutes for an MLP scorer
    # such as nrp-direct on 10^4+ items on a CPU); false keeps only the sampled ranking
    full_ranking: bool = True


@dataclass(frozen=True)
class TuneParams:
    """``tune:``: the validation-only hyperparameter search (``python -m flows.tune``)."""

    trials: int = 20
    seed: int = 0
    workers: int = 1  # trials run side by side, one torch thread each
    max_epochs: int = 0  # epoch cap per trial (0: train.max_epochs)
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)  # model → parameter → range spec


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
    tune: TuneParams = field(default_factory=TuneParams)
    # the datasets ``dvc repro`` runs side by side, each with its own artifacts in one dvc.lock (default: ``dataset``)
    pipeline: dict[str, PipelineEntry] = field(default_factory=dict)
    # the experiment files (experiments/<name>.yaml) ``dvc repro`` runs as stages experiment@<name>
    experiments: tuple[str, ...] = ()

    def dataset_options(self, name: str) -> dict[str, Any]:
        return dict(self.datasets.get(name, {}))

    def for_dataset(self, name: str) -> Params:
        """These params as the stages of ``name`` read them: its ``pipeline`` entry's splits, models and pre-trained
        runs in place of the top-level ones (unchanged for a dataset outside the pipeline)."""
        entry = self.pipeline.get(name)
        if entry is None or entry == PipelineEntry():
            return self
        split = self.split if entry.splits is None else dataclasses.replace(self.split, instances=entry.splits)
        train = self.train
        if entry.models is not None:
            train = dataclasses.replace(train, models=entry.models)
        if entry.pretrained is not None:
            train = dataclasses.replace(train, pretrained=entry.pretrained)
        return dataclasses.replace(self, split=split, train=train)


def parse_split_id(split_id: str, param: str = "split.instances") -> tuple[str, int]:
    """``random-80-10-10-s0`` → (``random-80-10-10``, 0); a malformed id is a ConfigError naming ``param``."""
    m = SPLIT_ID.match(split_id)
    if not m:
        raise ConfigError(param, "'<protocol>-s<seed>', e.g. 'random-80-10-10-s0'", split_id)
    return m["protocol"], int(m["seed"])


def _section(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise ConfigError(name, "a mapping", value)
    return value


def _typed(cls: type, raw: dict[str, Any], section: str) -> Any:
    """Build ``cls`` from a params section: unknown keys and wrong types are ConfigErrors naming the key."""
    known = set(cls.__dataclass_fields__)
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"{section}.{sorted(unknown)[0]}", f"one of {sorted(known)}", sorted(unknown)[0])
    fields = cls.__dataclass_fields__
    return cls(**{key: _typed_value(f"{section}.{key}", fields[key].default, v) for key, v in raw.items()})


def _typed_value(param: str, default: Any, value: Any) -> Any:
    """``value`` checked against the type of the field's ``default`` (a tuple default asks for a YAML list)."""
    if isinstance(default, tuple):
        return _typed_list(param, default, value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(param, "true or false", value)
    elif isinstance(default, int):
        if not _is_int(value):
            raise ConfigError(param, "an integer", value)
    elif isinstance(default, float):
        if not _is_number(value):
            raise ConfigError(param, "a number", value)
        return float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(param, "a string", value)
    return value


def _typed_list(param: str, default: tuple[Any, ...], value: Any) -> tuple[Any, ...]:
    if not isinstance(value, list):
        hint = f" (write [{value}])" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else ""
        raise ConfigError(param, f"a YAML list{hint}", value)
    sample = default[0] if default else ""
    for i, item in enumerate(value):
        if isinstance(sample, str) and not isinstance(item, str):
            raise ConfigError(f"{param}[{i}]", "a string", item)
        if isinstance(sample, int) and not _is_int(item):
            raise ConfigError(f"{param}[{i}]", "an integer", item)
        if isinstance(sample, float) and not _is_number(item):
            raise ConfigError(f"{param}[{i}]", "a number", item)
    return tuple(float(v) if isinstance(sample, float) else v for v in value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _at_least(param: str, value: int | float, low: int | float) -> None:
    if value < low:
        raise ConfigError(param, f"a value >= {low}", value)


def _distinct_nonempty(param: str, values: tuple[Any, ...]) -> None:
    if not values:
        raise ConfigError(param, "a non-empty list", list(values))
    dup = sorted({v for v in values if values.count(v) > 1}, key=str)
    if dup:
        raise ConfigError(param, "each entry once", f"{dup[0]!r} listed {values.count(dup[0])} times")


def env_threads() -> int | None:
    """``HYBRIDREC_THREADS`` (torch intra-op threads for every stage): None when unset, else an integer >= 1."""
    env = os.environ.get("HYBRIDREC_THREADS")
    if env is None or env.strip() == "":
        return None
    try:
        threads = int(env)
    except ValueError:
        threads = 0
    if threads < 1:
        raise ConfigError("HYBRIDREC_THREADS (environment variable)", "an integer >= 1, or unset", env)
    return threads


def _acquire(raw: dict[str, Any]) -> AcquireParams:
    acq = dict(_section(raw, "acquire"))
    unknown = sorted(set(acq) - set(AcquireParams.__dataclass_fields__))
    if unknown:
        raise ConfigError(f"acquire.{unknown[0]}", f"one of {sorted(AcquireParams.__dataclass_fields__)}", unknown[0])
    env_dir = os.environ.get("HYBRIDREC_SOURCE_DIR")
    if env_dir:
        acq["source_dir"] = env_dir
    src = acq.get("source_dir")
    if src is not None and (not isinstance(src, str) or not src.strip()):
        raise ConfigError("acquire.source_dir", "a folder path (string) or null", src)
    timeout = acq.get("timeout_s", 30.0)
    if not _is_number(timeout) or timeout <= 0:
        raise ConfigError("acquire.timeout_s", "a number of seconds > 0", timeout)
    return AcquireParams(source_dir=Path(src).expanduser() if src else None, timeout_s=float(timeout))


def _features(raw: dict[str, Any]) -> FeatureParams:
    features = _typed(FeatureParams, _section(raw, "features"), "features")
    if features.age_encoding not in ("raw", "bucket"):
        raise ConfigError("features.age_encoding", "'raw' or 'bucket'", features.age_encoding)
    _at_least("features.min_df", features.min_df, 1)  # min_df < 1 would prune every token: empty matrices
    _at_least("features.svd_k", features.svd_k, 1)
    _at_least("features.seed", features.seed, 0)
    return features


def _split(raw: dict[str, Any]) -> SplitParams:
    section = _section(raw, "split")
    split = _typed(SplitParams, section, "split")
    # an empty list would replace every existing split by nothing
    _distinct_nonempty("split.instances", split.instances)
    for sid in split.instances:
        parse_split_id(sid)
    _at_least("split.loo_negatives", split.loo_negatives, 1)
    return split


def _pretrained(value: Any, param: str = "train.pretrained") -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, list):
        raise ConfigError(param, "a YAML list of {model: <name>, from: [<run A>, <run B>]}", value)
    out = []
    for i, item in enumerate(value):
        ok = isinstance(item, dict) and set(item) == {"model", "from"} and isinstance(item["model"], str)
        ok = ok and isinstance(item["from"], list) and len(item["from"]) == 2
        if not ok or not all(isinstance(s, str) and s for s in item["from"]):
            raise ConfigError(f"{param}[{i}]", "{model: <name>, from: [<run A>, <run B>]}", item)
        out.append((item["model"], tuple(item["from"])))
    return tuple(out)


def _train(raw: dict[str, Any]) -> TrainParams:
    section = dict(_section(raw, "train"))
    pretrained = _pretrained(section.pop("pretrained", []))
    train = dataclasses.replace(_typed(TrainParams, section, "train"), pretrained=pretrained)
    _at_least("train.threads", train.threads, 0)
    _at_least("train.max_epochs", train.max_epochs, 1)
    _at_least("train.patience", train.patience, 0)
    if "models" in section:
        _distinct_nonempty("train.models", train.models)
    return train


def _evaluate(raw: dict[str, Any]) -> EvaluateParams:
    ev = _typed(EvaluateParams, _section(raw, "evaluate"), "evaluate")
    _at_least("evaluate.sampled_k", ev.sampled_k, 1)
    _distinct_nonempty("evaluate.full_k", ev.full_k)
    for i, k in enumerate(ev.full_k):
        _at_least(f"evaluate.full_k[{i}]", k, 1)
    _distinct_nonempty("evaluate.precision_p", ev.precision_p)
    for i, p in enumerate(ev.precision_p):
        if not 0 < p <= 1:
            raise ConfigError(f"evaluate.precision_p[{i}]", "a fraction in (0, 1]", p)
    return ev


def _models(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    models = _section(raw, "models")
    for name, cfg in models.items():
        if cfg is not None and not isinstance(cfg, dict):
            raise ConfigError(f"models.{name}", "a mapping of that model's settings (or {})", cfg)
    return {str(k): dict(v or {}) for k, v in models.items()}


def _report(raw: dict[str, Any], default: list[str]) -> tuple[str, ...]:
    report = _section(raw, "report")
    if set(report) - {"datasets"}:
        raise ConfigError(f"report.{sorted(set(report) - {'datasets'})[0]}", "one of ['datasets']", sorted(report))
    datasets = _typed_list("report.datasets", ("",), report.get("datasets", default))
    _distinct_nonempty("report.datasets", datasets)
    return datasets


def _deploy(raw: dict[str, Any]) -> None:
    deploy = _section(raw, "deploy")
    for key, value in deploy.items():
        if key not in ("name", "cron"):
            raise ConfigError(f"deploy.{key}", "one of ['cron', 'name']", key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"deploy.{key}", "a non-empty string", value)
    cron = deploy.get("cron")
    if cron is not None and len(cron.split()) != 5:
        raise ConfigError("deploy.cron", "a five-field cron expression such as '0 3 * * 1'", cron)


def _datasets(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    datasets = _section(raw, "datasets")
    for name, opts in datasets.items():
        if opts is not None and not isinstance(opts, dict):
            raise ConfigError(f"datasets.{name}", "a mapping of that dataset's options", opts)
    return {str(k): dict(v or {}) for k, v in datasets.items()}


def _check_pretrained(train: TrainParams, models: dict[str, dict[str, Any]], where: str = "train") -> None:
    """Each pre-trained run names its sources twice (the model's ``pretrain:`` and the DVC-visible ``from:``): they
    must agree, the sources must be trained by the plain grid, and no model may be in both lists. ``where``: the
    params section holding the grid (``train`` or ``pipeline.<dataset>``)."""
    for i, (model, sources) in enumerate(train.pretrained):
        param = f"{where}.pretrained[{i}]"
        if model in train.models:
            raise ConfigError(f"{param}.model", f"a model that is not also in {where}.models (it is trained after it)",
                              model)  # fmt: skip
        own = tuple((models.get(model) or {}).get("pretrain") or ())
        if own != sources:
            raise ConfigError(f"{param}.from", f"the sources in models.{model}.pretrain ({list(own)})", list(sources))
        missing = [s for s in sources if s not in train.models]
        if missing:
            raise ConfigError(f"{param}.from", f"models trained by {where}.models ({list(train.models)})", missing)


def _pipeline(raw: dict[str, Any], dataset: str) -> dict[str, PipelineEntry]:
    section = raw.get("pipeline")
    if section is None:
        return {dataset: PipelineEntry()}
    if not isinstance(section, dict) or not section:
        raise ConfigError("pipeline", "a non-empty mapping dataset → {splits, models, pretrained} (each optional)",
                          section)  # fmt: skip
    out = {}
    for name, entry in section.items():
        key = f"pipeline.{name}"
        entry = {} if entry is None else entry
        if not isinstance(name, str) or not isinstance(entry, dict):
            raise ConfigError(key, "a mapping with any of splits, models, pretrained", entry)
        unknown = sorted(set(entry) - {"splits", "models", "pretrained"})
        if unknown:
            raise ConfigError(f"{key}.{unknown[0]}", "one of ['models', 'pretrained', 'splits']", unknown[0])
        splits = models = pretrained = None
        if "splits" in entry:
            splits = _typed_list(f"{key}.splits", ("",), entry["splits"])
            _distinct_nonempty(f"{key}.splits", splits)
            for sid in splits:
                parse_split_id(sid, f"{key}.splits")
        if "models" in entry:
            models = _typed_list(f"{key}.models", ("",), entry["models"])
            _distinct_nonempty(f"{key}.models", models)
        if "pretrained" in entry:
            pretrained = _pretrained(entry["pretrained"], f"{key}.pretrained")
        out[name] = PipelineEntry(splits, models, pretrained)
    return out


def _experiments(raw: dict[str, Any]) -> tuple[str, ...]:
    names = _typed_list("experiments", ("",), raw.get("experiments") or [])
    if names:
        _distinct_nonempty("experiments", names)
    for i, name in enumerate(names):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise ConfigError(f"experiments[{i}]", "an experiment name such as 'nrp-table4' (experiments/<name>.yaml)",
                              name)  # fmt: skip
    return names


def params_from_dict(raw: dict[str, Any]) -> Params:
    """Check every section of params.yaml: a value that would destroy work (an empty split list, a ``min_df``
    that prunes every token) or that a stage would misread is refused here, before anything runs."""
    if not isinstance(raw, dict):
        raise ConfigError("params", "a mapping at the top of params.yaml", raw)
    unknown = sorted(str(k) for k in set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(unknown[0], f"one of the sections {sorted(TOP_LEVEL)}", unknown[0])
    dataset = raw.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        raise ConfigError("dataset", "a dataset name", dataset)
    env_threads()
    _deploy(raw)
    train, models = _train(raw), _models(raw)
    _check_pretrained(train, models)
    pipeline = _pipeline(raw, dataset)
    params = Params(
        dataset=dataset,
        acquire=_acquire(raw),
        validate=_typed(ValidateParams, _section(raw, "validate"), "validate"),
        features=_features(raw),
        split=_split(raw),
        train=train,
        models=models,
        evaluate=_evaluate(raw),
        report_datasets=_report(raw, list(pipeline)),
        datasets=_datasets(raw),
        tune=_tune(raw),
        pipeline=pipeline,
        experiments=_experiments(raw),
    )
    for name in pipeline:  # each dataset's own grid is checked like the top-level one
        own = params.for_dataset(name)
        if own is not params:
            _check_pretrained(own.train, models, f"pipeline.{name}")
    return params


def _tune(raw: dict[str, Any]) -> TuneParams:
    t = _typed(TuneParams, _section(raw, "tune"), "tune")
    _at_least("tune.trials", t.trials, 1)
    _at_least("tune.workers", t.workers, 1)
    _at_least("tune.max_epochs", t.max_epochs, 0)
    if not isinstance(t.spaces, dict) or any(not isinstance(v, dict) for v in t.spaces.values()):
        raise ConfigError("tune.spaces", "a mapping model → {parameter: range}", t.spaces)
    return t  # each range is checked by tasks.tuning.space when a study starts, before any trial runs


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
