"""What the report reads: every run's metrics record joined with its training record (``artifacts/runs``), limited
to the runs params.yaml configures; unreadable files become problems listed in the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.common.config import PARAMS_FILE, load_params, parse_split_id
from tasks.common.errors import ConfigError
from tasks.common.io import read_json
from tasks.common.paths import Layout


def collect_runs(root: Path, dataset: str) -> list[dict]:
    """Every evaluation record of ``dataset`` (sorted by model, then split id); unreadable files are skipped."""
    runs, _ = _collect(Path(root), dataset)
    return runs


def _metrics_dir(layout: Layout, dataset: str) -> Path:
    """The runs' evaluation records (metrics plus how they were made; ``artifacts/metrics`` has the numbers only)."""
    return layout.evaluation(dataset, "_", "_").parent.parent


def _collect(root: Path, dataset: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(runs, problems): problems name the metrics files that could not be read."""
    runs: list[dict[str, Any]] = []
    problems: list[str] = []
    configured = _configured_runs(root, dataset)
    for path in sorted(_metrics_dir(Layout(root), dataset).glob("*/*.json")):
        if configured is not None and (path.parent.name, path.stem) not in configured:
            continue  # left over from a model or split no longer in params.yaml
        try:
            raw = read_json(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{_rel(path, root)}: {exc}")
            continue
        if not isinstance(raw, dict):
            problems.append(f"{_rel(path, root)}: expected a JSON object, found {type(raw).__name__}")
            continue
        run = _normalise_run(raw, dataset, path)
        train_json = Layout(root).run(dataset, run["model"], run["split_id"]) / "train.json"
        if train_json.exists():  # the run's training facts live with the run, not in the metrics file
            try:
                record = read_json(train_json)
            except (OSError, ValueError) as exc:
                problems.append(f"{_rel(train_json, root)}: {exc}")
            else:
                if isinstance(record, dict):
                    run = {**{k: v for k, v in record.items() if k not in ("metrics",)}, **run}
        runs.append(run)
    return runs, problems


def _configured_runs(root: Path, dataset: str) -> set[tuple[str, str]] | None:
    """(model, split_id) pairs of the dataset's models and pre-trained runs × its split instances (params.yaml's
    ``pipeline.<dataset>`` entry, else train.models / split.instances); None without params."""
    if not (root / PARAMS_FILE).exists():
        return None
    params = load_params(root / PARAMS_FILE).for_dataset(dataset)
    return {(m, s) for m in params.train.all_models for s in params.split.instances}


def _normalise_run(raw: dict[str, Any], dataset: str, path: Path) -> dict[str, Any]:
    """Fill the identifying fields a metrics file may lack from its location."""
    run = dict(raw)
    run["dataset"] = str(run.get("dataset") or dataset)
    run["model"] = str(run.get("model") or path.parent.name)
    run["split_id"] = str(run.get("split_id") or path.stem)
    if not run.get("protocol") or run.get("seed") is None:
        try:
            protocol, seed = parse_split_id(run["split_id"])
        except ConfigError:
            protocol, seed = run["split_id"], None
        run.setdefault("seed", seed)
        run["protocol"] = str(run.get("protocol") or protocol)
    if not isinstance(run.get("metrics"), dict):
        run["metrics"] = {}
    return run


def _load_json(path: Path, root: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(data, None) or (None, a sentence saying why there is no data)."""
    if not path.exists():
        return None, f"`{_rel(path, root)}` not found"
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:
        return None, f"`{_rel(path, root)}` could not be read ({exc})"
    if not isinstance(data, dict):
        return None, f"`{_rel(path, root)}` is not a JSON object"
    return data, None


def _rel(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return Path(path).as_posix()
