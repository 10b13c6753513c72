"""The papers' published figures, as data the report compares our runs against — read from the experiment files
(``experiments/*.yaml``, each figure with its provenance: paper, table, row, column), never kept in code.

Every figure is keyed by (dataset, protocol, model, metric) in the pipeline's own names: the model a run of that
experiment trains (a row mapped per dataset resolves to its run model), dataset names as ingested, protocols as in
split ids (``random-80-10-10``), metric keys as the evaluate stage writes them (``rmse``, ``precision@10%``,
``hr@10_sampled``). Values are fractions (0.702, not 70.2%).

Where two experiment files publish the same key, both are listed and ``lookup`` returns the one of the file that
sorts first (the model's own paper comes first for every key today: autorec < cfn < ncae); ``published_for``
lists them all. Figures of models not implemented here are left out (no run can match them).

Figures whose exact metric the paper leaves open are recorded under a metric name no run produces, so they are
never silently compared with a different quantity: NRP's Table 2 "precision" is top-p% precision with p not
stated, so it is stored as metric ``precision`` rather than ``precision@25%``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tasks.experiments.spec import EXPERIMENTS_DIR, experiment_names, load_experiment


@dataclass(frozen=True)
class Published:
    dataset: str
    protocol: str
    model: str
    metric: str
    value: float
    source: str  # "<paper>, <table>, row <row>, column <column>" (+ the substitution, if any)
    experiment: str = ""


@cache
def published_figures(directory: Path = EXPERIMENTS_DIR) -> tuple[Published, ...]:
    """Every implemented model's published figure of every experiment file in ``directory``, files in name order."""
    from tasks.common.config import load_params

    models = load_params(directory.parent / "params.yaml").models  # the params the experiment files are read with
    out: list[Published] = []
    for name in experiment_names(directory):
        exp = load_experiment(name, models, directory)
        for p in exp.published:
            run = exp.model_for(p.model, p.dataset) if p.implemented else None
            if run is None:
                continue
            protocol = p.protocol or exp.datasets[p.dataset][0]
            out.append(Published(p.dataset, protocol, run, p.metric, p.value, p.provenance, name))
    return tuple(out)


def lookup(dataset: str, protocol: str, model: str, metric: str) -> Published | None:
    """The primary published figure for exactly this key, or None."""
    for row in published_figures():
        if (row.dataset, row.protocol, row.model, row.metric) == (dataset, protocol, model, metric):
            return row
    return None


def published_for(dataset: str, protocol: str | None = None) -> list[Published]:
    """Every published figure of a dataset (optionally one protocol), in file order."""
    return [r for r in published_figures() if r.dataset == dataset and (protocol is None or r.protocol == protocol)]
