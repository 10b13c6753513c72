"""Stage 5: train one (model, split) run, or every configured run when none is named.

python -m flows.train --model autorec-i --split random-80-10-10-s0 [--device cpu]
"""

from __future__ import annotations

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from flows.fanout import run_threads, with_threads
from models.common.registry import resolve_model
from tasks.training import RunId, TrainRecord, train_run


@task(name="train-run")
def train_task(
    root: str,
    dataset: str | None,
    model: str,
    split: str,
    device: str | None,
    threads: int | None = None,
    skip_current: bool = False,
) -> TrainRecord:
    """One run. ``threads``: torch threads of a fanned-out run (a Dask worker's own threads win; None: params).
    ``skip_current``: a finished run made from the same inputs is kept, not trained again (``train_run``)."""
    layout, params, name = layout_and_params(root, dataset)
    params = with_threads(params, run_threads(threads))
    log = logger()
    return train_run(layout, params, RunId(name, model, split), progress=log.info, device=device,
                     skip_current=skip_current)  # fmt: skip


@flow(name="train", log_prints=True)
def train_flow(
    root: str = ".",
    dataset: str | None = None,
    model: str | None = None,
    split: str | None = None,
    device: str | None = None,
) -> list[TrainRecord]:
    _, params, name = layout_and_params(root, dataset)
    models = [model] if model else list(params.train.all_models)  # pre-training sources first
    splits = [split] if split else list(params.split.instances)
    for m in models:
        resolve_model(m, params.models)  # unknown model or variant names fail before any work, listing the valid ones
    results = [train_task(root, name, m, s, device) for m in models for s in splits]
    key = f"{name}-train" + (f"-{model}-{split}" if model and split else "")
    publish_training(name, key, results)
    return results


def publish_training(name: str, key: str, results: list[TrainRecord]) -> None:
    """The training summary (markdown + table artifact) of ``results``."""
    rows = [
        {
            "model": r.model,
            "split_id": r.split_id,
            "task": r.task,
            "epochs": r.epochs,
            "best_epoch": r.best_epoch,
            "monitor": r.monitor,
            "best_monitor": r.best_monitor,
            "seconds_per_epoch": r.seconds_per_epoch,
            "train_seconds": r.train_seconds,
            "n_params": r.n_params,
            "device": r.device,
        }
        for r in results
    ]
    publish(
        key,
        f"Training on {name}",
        [
            f"- `{r.model}` on `{r.split_id}`: best {r.monitor} **{r.best_monitor:.4f}** at epoch "
            f"{r.best_epoch}/{r.epochs}, {r.seconds_per_epoch:.2f} s/epoch on {r.device}"
            for r in results
        ],
        rows,
    )


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", default=None)
    ap.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: params train.device)")
    a = ap.parse_args()
    return run_cli(train_flow, root=a.root, dataset=a.dataset, model=a.model, split=a.split, device=a.device)


if __name__ == "__main__":
    raise SystemExit(main())
