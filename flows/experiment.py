"""Reproduce one of the papers' tables: ``experiments/<name>.yaml`` → ``reports/experiments/<name>/``.

python -m flows.experiment --list            # every experiment, and which of its datasets are present here
python -m flows.experiment nrp-table4        # run what is not current, then write the table (CSV, md, HTML)

Runs train and evaluate through the pipeline's own stage functions in ``artifacts/experiments/`` (apart from the
default pipeline's DVC-tracked artifacts); a second run trains nothing, a changed hyperparameter (a variant in the
experiment file or its params.yaml entry) retrains only its runs. The table is also a Prefect artifact.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from prefect import flow, task

from flows.common import logger, publish, run_cli
from tasks.common.config import params_from_dict
from tasks.common.safe_yaml import load_user_yaml
from tasks.experiments.runner import RunOutcome, availability, run_experiment, workspace
from tasks.experiments.spec import Experiment, experiment_names, load_experiment
from tasks.experiments.table import build_cells, cell_text, write_table
from tasks.report.index import write_index


def _load(root: Path, name: str, datasets: list[str] | None = None) -> tuple[Experiment, dict]:
    base = load_user_yaml(root / "params.yaml")
    return load_experiment(name, base.get("models") or {}, root / "experiments").restricted(datasets), base


@task(name="experiment-runs")
def runs_task(root: str, name: str, datasets: list[str] | None = None) -> list[RunOutcome]:
    exp, _ = _load(Path(root), name, datasets)
    log = logger()
    return run_experiment(exp, Path(root), progress=log.info)


@task(name="experiment-table")
def table_task(root: str, name: str, outcomes: list[RunOutcome], datasets: list[str] | None = None
               ) -> dict[str, str]:  # fmt: skip
    exp, base = _load(Path(root), name, datasets)
    params = params_from_dict(copy.deepcopy(base))
    avail = {d: availability(d, Path(root), params) for d in exp.datasets}
    cells = build_cells(exp, workspace(Path(root)), {d: a.available for d, a in avail.items()})
    trained = sum(o.trained for o in outcomes)
    notes = [f"`{d}` is not present: {a.where}" for d, a in avail.items() if not a.available]
    notes.append(f"this run trained {trained} of {len(outcomes)} runs (the others were current)")
    paths = write_table(exp, cells, Path(root) / "reports" / "experiments" / exp.name, notes)
    write_index(Path(root))  # reports/index.html links the new table
    rows = [{"model": c.model, "dataset": c.dataset, "metric": c.metric, "ours": cell_text(c),
             "published": c.published, "diff": c.diff, "p_seeds_ttest": c.p_seeds_t,
             "p_users_wilcoxon": c.p_users_wilcoxon} for c in cells]  # fmt: skip
    publish(f"experiment-{exp.name}", exp.title,
            [f"- `{r['model']}` {r['dataset']} {r['metric']}: {r['ours']} (published {r['published']})" for r in rows],
            rows)  # fmt: skip
    return {k: str(v) for k, v in paths.items()}


@flow(name="experiment", log_prints=True)
def experiment_flow(root: str = ".", name: str = "nrp-table4", datasets: list[str] | None = None) -> dict[str, str]:
    _load(Path(root), name, datasets)  # a bad experiment file fails before any work
    outcomes = runs_task(root, name, datasets)
    return table_task(root, name, outcomes, datasets)


def list_experiments(root: Path) -> list[str]:
    """One line per experiment: its title and, per dataset, present or what to download."""
    base = load_user_yaml(root / "params.yaml")
    params = params_from_dict(copy.deepcopy(base))
    lines = []
    for name in experiment_names(root / "experiments"):
        exp = load_experiment(name, base.get("models") or {}, root / "experiments")
        n_runs = sum(len(exp.runs(d)) * len(exp.split_ids(d)) for d in exp.datasets)
        lines.append(f"{name}: {exp.title} ({len(exp.models)} models × {len(exp.seeds)} seeds, {n_runs} runs)")
        for d, protocols in exp.datasets.items():
            a = availability(d, root, params)
            state = "present" if a.available else f"NOT PRESENT: {a.where}"
            lines.append(f"    {d} [{', '.join(protocols)}]: {state}")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", nargs="?", help="experiment name (experiments/<name>.yaml)")
    ap.add_argument("--list", action="store_true", help="list every experiment and its datasets' presence")
    ap.add_argument("--root", default=".", help="project root holding params.yaml and experiments/ (default: .)")
    ap.add_argument("--datasets", nargs="*", default=None, help="run and tabulate only these of its datasets")
    a = ap.parse_args()
    if a.list or not a.name:
        print("\n".join(list_experiments(Path(a.root))))
        return 0 if a.list else 2
    return run_cli(experiment_flow, root=a.root, name=a.name, datasets=a.datasets)


if __name__ == "__main__":
    sys.exit(main())
