"""Stage 6: evaluate one trained run on its test part (or every configured run when none is named).

python -m flows.evaluate --model autorec-i --split random-80-10-10-s0
"""

from __future__ import annotations

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from flows.fanout import run_threads, with_threads
from tasks.evaluation.evaluate import MetricsRecord, current_evaluation, evaluate_run
from tasks.training import RunId


@task(name="evaluate-run")
def evaluate_task(
    root: str,
    dataset: str | None,
    model: str,
    split: str,
    device: str | None,
    threads: int | None = None,
    skip_current: bool = False,
) -> MetricsRecord:
    """One run's test metrics. ``threads``, ``skip_current``: as for ``train_task`` (an evaluation made from the same
    run, split, params and code is kept)."""
    layout, params, name = layout_and_params(root, dataset)
    params = with_threads(params, run_threads(threads))
    run = RunId(name, model, split)
    if skip_current and (record := current_evaluation(layout, params, run)) is not None:
        logger().info("%s: evaluation up to date (fingerprint %s), not recomputed", run, record.fingerprint[:12])
        return record
    return evaluate_run(layout, params, run, device=device)


@flow(name="evaluate", log_prints=True)
def evaluate_flow(
    root: str = ".",
    dataset: str | None = None,
    model: str | None = None,
    split: str | None = None,
    device: str | None = None,
) -> list[MetricsRecord]:
    _, params, name = layout_and_params(root, dataset)
    models = [model] if model else list(params.train.all_models)  # pre-training sources first
    splits = [split] if split else list(params.split.instances)
    results = [evaluate_task(root, name, m, s, device) for m in models for s in splits]
    key = f"{name}-evaluate" + (f"-{model}-{split}" if model and split else "")
    publish_metrics(name, key, results)
    return results


def publish_metrics(name: str, key: str, results: list[MetricsRecord]) -> None:
    """The test-metrics summary (markdown + table artifact) of ``results``; each row logged."""
    rows = [{"model": r.model, "split": r.split_id, **r.metrics} for r in results]
    for row in rows:
        logger().info("%s", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
    publish(
        key,
        f"Test metrics on {name}",
        [
            f"- `{r['model']}` on `{r['split']}`: "
            + ", ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, float))
            for r in rows
        ],
        rows,
    )


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--split", default=None)
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    return run_cli(evaluate_flow, root=a.root, dataset=a.dataset, model=a.model, split=a.split, device=a.device)


if __name__ == "__main__":
    raise SystemExit(main())
