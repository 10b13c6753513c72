"""An experiment as a file: ``experiments/<name>.yaml`` says which datasets, protocols, models (and variants), seeds
and metrics reproduce one of the papers' tables, and carries the published figures with their provenance.

Schema (every key checked; a wrong one is a ``ConfigError`` naming ``experiments/<name>.yaml: <key>``)::

    title: "NRP Table 4: RMSE on ml-100k"        # the table's caption (say every substitution here)
    paper: "Raziperchikolaei et al. 2020 (NRP)"
    table: "Table 4"
    metrics: [rmse]                              # metric keys as the evaluate stage writes them; first = primary
    seeds: [0, 1, 2]
    proposed: nrp-direct                         # the paper's model: significance is tested against it
    datasets:                                    # dataset → its protocol, or a list of protocols (columns)
      ml-100k: random-80-10-10                   # (each dataset its own: no cartesian product)
    models: [mf, autorec-i, nrp-direct]          # registered models or variants (params.yaml or below); a row
                                                 # that runs a different model per dataset: {gf: {ds1: gf-a, ds2: gf-b}}
    variants:                                    # hyperparameters that differ from params.yaml, as named variants
      autorec-i-id-id: {base: autorec-i, activation: identity}
    curves: [...]                                # optional: the paper's figures as line plots of the table's cells
                                                 # (sweeps, training fractions, HR@M: tasks/experiments/curves.py)
    published:                                   # the paper's figures, each with its provenance
      - {model: nrp-direct, dataset: ml-100k, metric: rmse, value: 0.897, spread: 0.006,
         source: {paper: NRP, table: "Table 4", row: NRP-direct, column: ml100k}}
      - {model: hire, dataset: ml-100k, metric: rmse, value: 0.930, implemented: false, source: {...}}

A published row whose model is not run here keeps its figure and is marked by its ``note`` (default "not
implemented"); a row for a
dataset the paper used but we substitute is written under our dataset with ``source.substitute`` saying so.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.common.registry import resolve_model
from tasks.common.errors import ConfigError
from tasks.common.safe_yaml import load_user_yaml
from tasks.experiments.curves import Curve, parse_curves

EXPERIMENTS_DIR = Path(__file__).resolve().parents[2] / "experiments"
BASE_METRIC = (
    r"(rmse|mae|precision|precision@\d+(\.\d+)?%|(hr|ndcg|recall|precision|mrr)@\d+_(sampled|full)|mrr_(sampled|full))"
)
METRIC = re.compile(rf"^{BASE_METRIC}(\[(popularity|activity)=[0-9.]+(-[0-9.]+|\+)\])?$")
"""A metric key of the metrics file, or one of a breakdown group (``artifacts/breakdowns``):
``rmse[popularity=0.0-0.2]`` (CFN Table 2: the least popular fifth of the items), ``rmse[activity=1-5]``,
``hr@10_sampled[activity=0-1]`` (NCAE Table 4: users by training count)."""
LOWER_IS_BETTER = ("rmse", "mae")


def lower_is_better(metric: str) -> bool:
    return metric.split("[")[0] in LOWER_IS_BETTER
PROVENANCE = ("paper", "table", "row", "column")
TOP_KEYS = {"title", "paper", "table", "metrics", "seeds", "proposed", "datasets", "models", "variants", "published",
            "caption", "max_epochs", "curves"}  # fmt: skip


@dataclass(frozen=True)
class PublishedFigure:
    model: str
    dataset: str
    metric: str
    value: float
    source: dict[str, str]
    protocol: str = ""  # which of the dataset's protocols ("" when the dataset has one)
    spread: float | None = None
    implemented: bool = True
    note: str = "not implemented"

    @property
    def provenance(self) -> str:
        s = self.source
        out = f"{s['paper']}, {s['table']}, row {s['row']}, column {s['column']}"
        return out + (f" ({s['substitute']})" if s.get("substitute") else "")


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path
    title: str
    paper: str
    table: str
    metrics: tuple[str, ...]
    seeds: tuple[int, ...]
    proposed: str
    datasets: dict[str, tuple[str, ...]]  # dataset → its protocols (one column each)
    models: tuple[str, ...]  # row names
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_dataset: dict[str, dict[str, str]] = field(default_factory=dict)  # row → dataset → model it runs
    published: tuple[PublishedFigure, ...] = ()
    caption: str = ""
    max_epochs: int | None = None
    curves: tuple[Curve, ...] = ()  # the paper's figures drawn from the table's cells (tasks/experiments/curves.py)

    @property
    def rows(self) -> tuple[str, ...]:
        """Every row of the table: the models run here, then published-only (not implemented) ones."""
        extra = [p.model for p in self.published if not p.implemented]
        return (*self.models, *dict.fromkeys(m for m in extra if m not in self.models))

    def restricted(self, datasets: list[str] | None) -> Experiment:
        """The same experiment over ``datasets`` only (None: all); an unknown name is an error."""
        if not datasets:
            return self
        for d in datasets:
            if d not in self.datasets:
                raise ConfigError("--datasets", f"datasets of {self.name}: {sorted(self.datasets)}", d)
        keep = {d: p for d, p in self.datasets.items() if d in datasets}
        return dataclasses.replace(self, datasets=keep, published=tuple(p for p in self.published if p.dataset in keep))

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(dataset, protocol) of every column group, in file order."""
        return [(d, p) for d, protocols in self.datasets.items() for p in protocols]

    def column_label(self, dataset: str, protocol: str) -> str:
        return dataset if len(self.datasets[dataset]) == 1 else f"{dataset} [{protocol}]"

    def model_for(self, row: str, dataset: str) -> str | None:
        """The model a row runs on ``dataset`` (the row's own name unless it names one per dataset; None: the row
        does not apply to this dataset)."""
        mapping = self.per_dataset.get(row)
        if mapping is None:
            return row
        return mapping.get(dataset, row) if dataset in mapping else row

    def runs(self, dataset: str) -> list[str]:
        """The distinct models to train on ``dataset``."""
        return [m for m in dict.fromkeys(self.model_for(r, dataset) for r in self.models) if m is not None]

    def split_ids(self, dataset: str, protocol: str | None = None) -> list[str]:
        protocols = self.datasets[dataset] if protocol is None else (protocol,)
        return [f"{p}-s{s}" for p in protocols for s in self.seeds]

    def figure(self, model: str, dataset: str, protocol: str, metric: str) -> PublishedFigure | None:
        for p in self.published:
            if (p.model, p.dataset, p.metric) == (model, dataset, metric) and p.protocol in ("", protocol):
                return p
        return None


def experiment_names(directory: Path = EXPERIMENTS_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def load_experiment(name: str, models: dict[str, dict[str, Any]], directory: Path = EXPERIMENTS_DIR) -> Experiment:
    """Read and check ``experiments/<name>.yaml`` against the registries and ``models`` (params.yaml's entries)."""
    path = directory / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError("experiment", f"one of {experiment_names(directory)}", name)
    raw = load_user_yaml(path)
    return parse_experiment(name, raw, models, path)


def parse_experiment(name: str, raw: Any, models: dict[str, dict[str, Any]], path: Path) -> Experiment:
    where = f"{path.name}"

    def err(key: str, expected: str, found: Any) -> ConfigError:
        return ConfigError(f"{where}: {key}", expected, found)

    if not isinstance(raw, dict):
        raise err("(top level)", "a mapping", type(raw).__name__)
    unknown = sorted(set(raw) - TOP_KEYS)
    if unknown:
        raise err(unknown[0], f"one of {sorted(TOP_KEYS)}", unknown[0])
    for key in ("title", "paper", "table", "metrics", "seeds", "proposed", "datasets", "models"):
        if key not in raw:
            raise err(key, "present", None)
    metrics = raw["metrics"]
    if not isinstance(metrics, list) or not metrics:
        raise err("metrics", "a non-empty list of metric keys", metrics)
    for m in metrics:
        if not isinstance(m, str) or not METRIC.match(m):
            want = ("metric keys as evaluate writes them (rmse, precision@10%, hr@10_sampled, ...), optionally of a "
                    "breakdown group (rmse[popularity=0.0-0.2], hr@10_sampled[activity=1-5])")
            raise err("metrics", want, m)
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise err("seeds", "a non-empty list of integers >= 0", seeds)
    datasets = _datasets(raw["datasets"], err)
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict):
        raise err("variants", "a mapping name → {base: <model>, overrides}", variants)
    entries = dict(models)
    for v, entry in variants.items():
        if v in models and models[v] != entry:
            raise err(f"variants.{v}", f"a new name (params.yaml already defines {v!r} differently)", entry)
        entries[v] = entry
    listed = raw["models"]
    if not isinstance(listed, list) or not listed:
        raise err("models", "a non-empty list of model names (or {row: {dataset: model}})", listed)
    run_models: list[str] = []
    per_dataset: dict[str, dict[str, str]] = {}
    for item in listed:
        if isinstance(item, dict) and len(item) == 1:
            row, mapping = next(iter(item.items()))
            if not isinstance(mapping, dict) or not set(mapping) <= set(datasets):
                raise err(f"models.{row}", f"a mapping dataset → model over {sorted(datasets)}", mapping)
            per_dataset[str(row)] = {str(k): (None if v is None else str(v)) for k, v in mapping.items()}
            item = str(row)
        if not isinstance(item, str) or item in run_models:
            raise err("models", "distinct model names", item)
        run_models.append(item)
        for m in {per_dataset[item].get(d, item) if item in per_dataset else item for d in datasets} - {None}:
            try:
                resolve_model(m, entries, param=f"{where}: models")
            except ConfigError as exc:
                raise err("models", f"registered models or variants ({exc})", m) from exc
    proposed = raw["proposed"]
    if proposed not in run_models:
        raise err("proposed", f"one of the experiment's models {run_models}", proposed)
    figures = raw.get("published") or []
    if not isinstance(figures, list):
        raise err("published", "a list of published figures", figures)
    published = tuple(_published(i, p, datasets, metrics, run_models, err) for i, p in enumerate(figures))
    max_epochs = raw.get("max_epochs")
    if max_epochs is not None and (not isinstance(max_epochs, int) or max_epochs < 1):
        raise err("max_epochs", "an integer >= 1 (cap on every run's epochs) or absent", max_epochs)
    curves = parse_curves(raw.get("curves"), datasets, metrics, run_models, err)
    return Experiment(
        name=name,
        path=path,
        title=str(raw["title"]),
        paper=str(raw["paper"]),
        table=str(raw["table"]),
        metrics=tuple(metrics),
        seeds=tuple(seeds),
        proposed=proposed,
        datasets=datasets,
        models=tuple(run_models),
        variants=variants,
        per_dataset=per_dataset,
        published=published,
        caption=str(raw.get("caption") or ""),
        max_epochs=max_epochs,
        curves=curves,
    )


def _datasets(value: Any, err: Any) -> dict[str, tuple[str, ...]]:
    from tasks.datasets import dataset_names
    from tasks.splits.protocols import get_protocol

    if not isinstance(value, dict) or not value:
        raise err("datasets", "a mapping dataset → protocol (or a list of protocols)", value)
    known = dataset_names()
    out: dict[str, tuple[str, ...]] = {}
    for ds, protocols in value.items():
        if ds not in known:
            raise err("datasets", f"registered datasets {known}", ds)
        listed = [protocols] if isinstance(protocols, str) else protocols
        if not isinstance(listed, list) or not listed or len(set(listed)) != len(listed):
            raise err(f"datasets.{ds}", "a split protocol name or a list of distinct ones", protocols)
        for protocol in listed:
            if not isinstance(protocol, str):
                raise err(f"datasets.{ds}", "a split protocol name", protocol)
            try:
                get_protocol(protocol)
            except ConfigError as exc:
                raise err(f"datasets.{ds}", f"a split protocol ({exc})", protocol) from exc
        out[ds] = tuple(listed)
    return out


def _published(i: int, p: Any, datasets: dict[str, tuple[str, ...]], metrics: list[str], models: list[str], err: Any
               ) -> PublishedFigure:  # fmt: skip
    key = f"published[{i}]"
    if not isinstance(p, dict):
        raise err(key, "a mapping {model, dataset, metric, value, source}", p)
    allowed = {"model", "dataset", "protocol", "metric", "value", "source", "spread", "implemented", "note"}
    unknown = sorted(set(p) - allowed)
    if unknown:
        raise err(f"{key}.{unknown[0]}", f"one of {sorted(allowed)}", unknown[0])
    source = p.get("source")
    if not isinstance(source, dict) or any(not source.get(k) for k in PROVENANCE):
        raise err(f"{key}.source", f"the figure's provenance: {{{', '.join(PROVENANCE)}}}", source)
    for k in ("model", "dataset", "metric", "value"):
        if k not in p:
            raise err(f"{key}.{k}", "present", None)
    if p["dataset"] not in datasets:
        raise err(f"{key}.dataset", f"one of the experiment's datasets {sorted(datasets)}", p["dataset"])
    protocol = p.get("protocol", "")
    if len(datasets[p["dataset"]]) > 1 and protocol not in datasets[p["dataset"]]:
        raise err(f"{key}.protocol", f"one of {p['dataset']}'s protocols {list(datasets[p['dataset']])}", protocol)
    if p["metric"] not in metrics:
        raise err(f"{key}.metric", f"one of the experiment's metrics {metrics}", p["metric"])
    implemented = p.get("implemented", True)
    if implemented and p["model"] not in models:
        raise err(f"{key}.model", f"one of the experiment's models {models} (or implemented: false)", p["model"])
    value, spread = p["value"], p.get("spread")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise err(f"{key}.value", "a number", value)
    if spread is not None and (not isinstance(spread, (int, float)) or spread < 0):
        raise err(f"{key}.spread", "a number >= 0 (the published ± spread)", spread)
    return PublishedFigure(str(p["model"]), p["dataset"], p["metric"], float(value),
                           {k: str(v) for k, v in source.items()}, protocol=str(protocol), spread=spread,
                           implemented=bool(implemented), note=str(p.get("note") or "not implemented"))  # fmt: skip
