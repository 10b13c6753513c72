"""Stages 5 + 6 fanned out: every (model, split) train run and its evaluate run, as tasks on a task runner.

    python -m flows.grid [--dataset ml-100k] [--runner inline|threads|dask] [--workers 2] [--threads-per-worker 1]
                         [--address tcp://host:8786] [--device cpu] [--skip-current] [--prune]

This is the ``runs@<dataset>`` stage of ``dvc.yaml`` (``--skip-current --prune``): one process per dataset runs its
whole grid, so the ~5 s a stage process pays for its imports and its Prefect flow run is paid once, not twice per
run. DVC reruns the stage when any of its dependencies changed; ``--skip-current`` then keeps every run (and every
evaluation) whose fingerprint says it was made from the same config, code and data, so a changed hyperparameter
retrains only the runs of its model; ``--prune`` removes the runs of models and splits no longer in the grid.

The runner comes from ``params.yaml``'s ``fanout`` section, the command line winning (``flows/fanout.py``).
Every run is submitted at once (``.submit``); the dependencies hold through ``wait_for``: a run's evaluate
waits for its train, a pre-trained run (``train.pretrained``) for the train runs of its two sources on the
same split; independent runs overlap. The flow returns once every run has ended (the report comes after it,
in ``flows.pipeline``). The files written are those of ``python -m flows.train`` / ``flows.evaluate`` for the
same runs; on CPU the metrics JSON is byte-identical to the serial run's (tests/fanout).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture, wait
from prefect.states import State

from flows.common import base_parser, layout_and_params, logger, run_cli
from flows.evaluate import evaluate_task, publish_metrics
from flows.fanout import Placement, load_settings, open_fanout
from flows.train import publish_training, train_task
from models.common.registry import resolve_model
from tasks.common.config import Params
from tasks.evaluation.evaluate import MetricsRecord
from tasks.training import TrainRecord
from tasks.training.stale import remove_stale_runs

Run = tuple[str, str]  # (model, split)


def grid_runs(params: Params) -> tuple[list[Run], dict[Run, list[Run]]]:
    """Every (model, split) of the grid in submission order (pre-training sources first) and, for each
    pre-trained run, the runs it starts from."""
    splits = list(params.split.instances)
    runs = [(m, s) for m in params.train.all_models for s in splits]
    sources = {(m, s): [(src, s) for src in srcs] for m, srcs in params.train.pretrained for s in splits}
    return runs, sources


@contextlib.contextmanager
def _annotated(resources: dict[str, float]) -> Iterator[None]:
    """Dask worker resources for the tasks submitted inside (nothing for in-process runners)."""
    if not resources:
        yield
        return
    import dask

    with dask.annotate(resources=dict(resources)):
        yield


def _raise_first_failure(states: list[State]) -> None:  # type: ignore[type-arg]
    for state in states:
        if not state.is_completed():
            state.result(raise_on_failure=True)  # the run's own exception (or Prefect's for an upstream failure)


@flow(name="grid", log_prints=True)
def grid_flow(
    root: str = ".",
    dataset: str | None = None,
    placement: dict[str, Any] | None = None,
    train: bool = True,
    evaluate: bool = True,
    skip_current: bool = False,
    prune: bool = False,
) -> dict[str, Any]:
    """Submit the grid to this flow's task runner (``grid_flow.with_options(task_runner=...)``)."""
    layout, params, name = layout_and_params(root, dataset)
    place = Placement(**(placement or {"device": params.train.device}))
    runs, sources = grid_runs(params)
    for m in params.train.all_models:
        resolve_model(m, params.models)  # unknown names fail before any work, listing the valid ones
    if prune:
        for model, split in remove_stale_runs(layout, name, runs):
            logger().info("removed %s/%s/%s: no longer in the grid (params.yaml)", name, model, split)
    trainer = train_task.with_options(tags=set(place.tags)) if place.tags else train_task
    evaluator = evaluate_task.with_options(tags=set(place.tags)) if place.tags else evaluate_task
    trained: dict[Run, PrefectFuture[TrainRecord]] = {}
    evaluated: dict[Run, PrefectFuture[MetricsRecord]] = {}
    last_gpu: list[PrefectFuture[Any]] = []  # in-process runners: one CUDA run at a time
    args = {"root": root, "dataset": name, "device": place.device, "threads": place.threads,
            "skip_current": skip_current}  # fmt: skip
    with _annotated(place.resources):
        for run in runs:
            model, split = run
            if train:
                upstream = [trained[s] for s in sources.get(run, []) if s in trained] + last_gpu
                trained[run] = trainer.submit(model=model, split=split, wait_for=upstream, **args)
                last_gpu = [trained[run]] if place.chain_gpu else []
            if evaluate:
                upstream = [trained[run]] if run in trained else []
                evaluated[run] = evaluator.submit(model=model, split=split, wait_for=upstream + last_gpu, **args)
                last_gpu = [evaluated[run]] if place.chain_gpu else []
    futures: list[PrefectFuture[Any]] = [*trained.values(), *evaluated.values()]
    wait(futures)
    _raise_first_failure([f.state for f in futures])
    train_records = [trained[r].result() for r in runs if r in trained]
    metric_records = [evaluated[r].result() for r in runs if r in evaluated]
    if train_records:
        publish_training(name, f"{name}-train", train_records)
    if metric_records:
        publish_metrics(name, f"{name}-evaluate", metric_records)
    logger().info("grid on %s: %d runs on %s (%s)", name, len(runs), place.device, place.resources or "in process")
    return {"train": train_records, "evaluate": metric_records}


def run_grid(
    root: str = ".",
    dataset: str | None = None,
    device: str | None = None,
    train: bool = True,
    evaluate: bool = True,
    skip_current: bool = False,
    prune: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """Open the task runner the settings ask for (a LocalCluster lives as long as this call) and run the grid."""
    root = str(Path(root).resolve())  # Dask workers may run elsewhere in the file system: no relative paths
    _, params, name = layout_and_params(root, dataset)
    settings = load_settings(root, **overrides)
    with open_fanout(settings, device or params.train.device) as fan:
        logger().info("grid runner: %s%s", settings.runner, f" at {fan.address}" if fan.address else "")
        sub = grid_flow.with_options(task_runner=fan.runner)
        return sub(root=root, dataset=name, placement=asdict(fan.placement), train=train, evaluate=evaluate,
                   skip_current=skip_current, prune=prune)  # fmt: skip


def add_fanout_arguments(ap: Any) -> None:
    ap.add_argument("--runner", default=None, choices=["inline", "threads", "dask"], help="default: params fanout")
    ap.add_argument("--workers", type=int, default=None, help="runs at a time (threads / LocalCluster workers)")
    ap.add_argument("--threads-per-worker", type=int, default=None, help="torch threads of each run")
    ap.add_argument("--address", default=None, help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    ap.add_argument("--timeout", type=float, default=None, help="seconds to reach the scheduler and see a worker")


def fanout_overrides(a: Any) -> dict[str, Any]:
    return {"runner": a.runner, "workers": a.workers, "threads_per_worker": a.threads_per_worker,
            "address": a.address, "timeout_s": a.timeout}  # fmt: skip


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: params train.device)")
    ap.add_argument("--skip-current", action="store_true",
                    help="keep the runs and evaluations made from the same config, code and data (no retraining)")
    ap.add_argument("--prune", action="store_true", help="remove the runs of models and splits no longer in the grid")
    add_fanout_arguments(ap)
    a = ap.parse_args()
    return run_cli(run_grid, root=a.root, dataset=a.dataset, device=a.device, skip_current=a.skip_current,
                   prune=a.prune, **fanout_overrides(a))  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
