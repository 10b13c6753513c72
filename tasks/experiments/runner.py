"""Run an experiment's grid through the pipeline's own stage functions (acquire → ingest → features → split →
train → evaluate), in the experiments workspace (``artifacts/experiments/`` under the project root, apart from the
DVC-tracked default pipeline so that neither replaces the other's splits or runs).

Nothing is redone that is current: a dataset already acquired and ingested is reused, split instances are added
to the ones already there (regenerated together; deterministic, so the existing ones keep their bytes), a run whose
fingerprint (config, model and training code, split and feature files) matches the finished run on disk is not
retrained (``train_run(skip_current=True)``), and its metrics are not recomputed unless their inputs changed (the
run's checkpoint, the split, the ``evaluate`` params or the evaluation code: ``current_evaluation``). A second run
of the same experiment trains nothing; a changed hyperparameter retrains only the runs it belongs to.
"""

from __future__ import annotations

import copy
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.common.config import EvaluateParams, Params, params_from_dict
from tasks.common.paths import Layout
from tasks.common.safe_yaml import load_user_yaml
from tasks.experiments.spec import Experiment

log = logging.getLogger(__name__)

# dataset → (folder holding its raw files under a source directory, what to download)
SOURCES: dict[str, tuple[str, str]] = {
    "ml-100k": ("ml-100k", "https://files.grouplens.org/datasets/movielens/ml-100k.zip"),
    "ml-1m": ("ml-1m", "https://files.grouplens.org/datasets/movielens/ml-1m.zip"),
    "ml-10m": ("ml-10m", "https://files.grouplens.org/datasets/movielens/ml-10m.zip"),
    "ml-20m": ("ml-20m", "https://files.grouplens.org/datasets/movielens/ml-20m.zip"),
    "lastfm": ("hetrec2011-lastfm-2k", "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-lastfm-2k.zip"),
    "delicious": ("hetrec2011-delicious-2k",
                  "https://files.grouplens.org/datasets/hetrec2011/hetrec2011-delicious-2k.zip"),
    "douban-gcmc": ("douban-gcmc",
                    "https://github.com/riannevdberg/gc-mc/raw/master/gcmc/data/douban/training_test_dataset.mat"),
    "deepcf-lastfm": ("deepcf", "https://github.com/familyld/DeepCF/tree/master/Data (lastfm.*)"),
    "deepcf-amusic": ("deepcf", "https://github.com/familyld/DeepCF/tree/master/Data (AMusic.*)"),
    "deepcf-atoy": ("deepcf", "https://github.com/familyld/DeepCF/tree/master/Data (AToy.*)"),
    "deepcf-ml-1m": ("deepcf", "https://github.com/familyld/DeepCF/tree/master/Data (ml-1m.*)"),
}  # fmt: skip


GENERATED = "generated (synthetic: nothing to download)"


def workspace(root: Path) -> Layout:
    return Layout(root / "artifacts" / "experiments")


def source_roots(root: Path, params: Params) -> list[Path]:
    """Where raw files are looked for: acquire.source_dir / HYBRIDREC_SOURCE_DIR, then ``../shared/datasets``."""
    out = []
    if params.acquire.source_dir is not None:
        out.append(Path(params.acquire.source_dir))
    out.append(root.resolve().parent / "shared" / "datasets")
    return out


@dataclass(frozen=True)
class Availability:
    dataset: str
    available: bool
    where: str  # the folder it is read from, or what to download and where to put it


def availability(dataset: str, root: Path, params: Params) -> Availability:
    """Is ``dataset`` present locally (already acquired here or in the default pipeline, or in a source folder)?"""
    if dataset.startswith("synthetic"):
        return Availability(dataset, True, GENERATED)
    folder, url = SOURCES.get(dataset, (dataset, "see the dataset's module in tasks/datasets/"))
    for raw in (workspace(root).raw(dataset), Layout(root).raw(dataset)):
        if raw.is_dir() and any(raw.iterdir()):
            return Availability(dataset, True, str(raw))
    roots = source_roots(root, params)
    for base in roots:
        if (base / folder).is_dir() and any((base / folder).iterdir()):
            return Availability(dataset, True, str(base / folder))
    where = f"download {url} and put its files in {roots[0] / folder} (or set HYBRIDREC_SOURCE_DIR)"
    return Availability(dataset, False, where)


FULL_K = re.compile(r"^(?:hr|ndcg|recall|precision|mrr)@(\d+)_full")


def experiments_full_k(directory: Path) -> set[int]:
    """Every cut-off M of a full-ranking metric any experiment file asks for (HR@250 for NCAE Fig. 10 ...).

    The workspace's runs are shared by the experiments, so all of them are evaluated with one set of cut-offs
    (params.yaml's ``evaluate.full_k`` plus these): one experiment's needs never make another's evaluations stale."""
    out: set[int] = set()
    for path in sorted(directory.glob("*.yaml")):
        try:
            metrics = (load_user_yaml(path) or {}).get("metrics") or []
        except (OSError, ValueError):
            continue  # a broken file is reported by load_experiment when it is run, not here
        out |= {int(m[1]) for m in (FULL_K.match(str(x)) for x in metrics) if m}
    return out


def experiment_params(exp: Experiment, base: dict[str, Any], dataset: str, instances: list[str]) -> Params:
    """params.yaml with the experiment's dataset, split instances, variants and epoch cap, and the full-ranking
    cut-offs every experiment needs (``experiments_full_k``)."""
    raw = copy.deepcopy(base)
    evaluate = raw.setdefault("evaluate", {})
    full_k = set(evaluate.get("full_k") or EvaluateParams().full_k) | experiments_full_k(exp.path.parent)
    evaluate["full_k"] = sorted(full_k)
    raw["dataset"] = dataset
    raw["split"]["instances"] = instances
    raw["train"]["models"] = exp.runs(dataset)
    raw["train"]["pretrained"] = []
    raw.setdefault("models", {}).update(copy.deepcopy(exp.variants))
    if exp.max_epochs is not None:
        raw["train"]["max_epochs"] = exp.max_epochs
    return params_from_dict(raw)


def prepare_dataset(exp: Experiment, dataset: str, root: Path, base: dict[str, Any], where: str) -> Params:
    """Acquire, ingest, build features and write the experiment's split instances (each only when missing)."""
    from tasks.acquire import acquire_dataset
    from tasks.features import build_dataset_features
    from tasks.ingest import ingest_dataset
    from tasks.splits.stage import add_splits

    layout = workspace(root)
    wanted = exp.split_ids(dataset)
    params = experiment_params(exp, base, dataset, wanted)
    source = None if where == GENERATED else Path(where)
    if acquire_dataset(layout, dataset, source, params.acquire.timeout_s,
                       options=params.datasets.get(dataset)) is not None or not (
        layout.ingested(dataset) / "ratings.parquet"
    ).exists():
        ingest_dataset(layout, dataset)
    if not (layout.features(dataset) / "dims.json").exists():
        build_dataset_features(layout, dataset, params.features)
    add_splits(layout, params, dataset, wanted)  # the missing instances only; the others stay as they are
    return params


@dataclass(frozen=True)
class RunOutcome:
    dataset: str
    model: str
    split_id: str
    trained: bool
    evaluated: bool


def run_experiment(exp: Experiment, root: Path, progress: Callable[[str], None] = print,
                   only_available: bool = True) -> list[RunOutcome]:  # fmt: skip
    """Every (dataset, model, seed) run of ``exp`` whose dataset is present; returns what was done."""
    from tasks.evaluation.evaluate import current_evaluation, evaluate_run
    from tasks.training import RunId, train_run

    base = load_user_yaml(root / "params.yaml")
    probe = params_from_dict(copy.deepcopy(base))
    layout = workspace(root)
    outcomes: list[RunOutcome] = []
    for dataset in exp.datasets:
        avail = availability(dataset, root, probe)
        if not avail.available:
            progress(f"{exp.name}: {dataset} is not present locally: {avail.where}; its cells read "
                     "'data not available'")  # fmt: skip
            continue
        params = prepare_dataset(exp, dataset, root, base, avail.where)
        for model in exp.runs(dataset):
            for split_id in exp.split_ids(dataset):
                run = RunId(dataset, model, split_id)
                folder = layout.run(dataset, model, split_id)
                before = _mtime(folder / "model.pt")
                train_run(layout, params, run, progress=progress, skip_current=True)
                trained = _mtime(folder / "model.pt") != before
                evaluate = trained or current_evaluation(layout, params, run) is None
                if evaluate:
                    evaluate_run(layout, params, run)
                outcomes.append(RunOutcome(dataset, model, split_id, trained, evaluate))
                progress(f"{exp.name}: {run} " + ("trained" if trained else "up to date")
                         + (", evaluated" if evaluate else ""))  # fmt: skip
    return outcomes


def _mtime(path: Path) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return -1
