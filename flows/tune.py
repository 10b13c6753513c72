"""Validation-only hyperparameter search for one model on one split (Optuna TPE, seeded).

python -m flows.tune --model autorec-i --split random-80-10-10-s0 [--trials 20] [--workers 2] [--write-params]

The search space is ``tune.spaces.<model>`` in params.yaml; the split must exist (run the pipeline first). Writes
artifacts/tuning/<dataset>/<model>/<split>/{trials.csv,best.json} and a Prefect table artifact; ``--write-params``
adds the best configuration to params.yaml as the variant ``<model>-tuned``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.tuning.search import tune, write_variant


@task(name="tuning-study")
def study_task(root: str, dataset: str, model: str, split: str, trials: int | None, workers: int | None) -> dict:
    _, params, name = layout_and_params(root, dataset)
    return tune(Path(root), params, name, model, split, trials=trials, workers=workers, progress=logger().info)


@flow(name="tune", log_prints=True)
def tune_flow(root: str = ".", dataset: str | None = None, model: str = "autorec-i",
              split: str = "random-80-10-10-s0", trials: int | None = None, workers: int | None = None,
              write_params: bool = False) -> dict:  # fmt: skip
    name = layout_and_params(root, dataset)[2]
    best = study_task(root, name, model, split, trials, workers)
    lines = [f"- tuned {', '.join(best['tuned'])} of `{model}` on {best['scored_on']}",
             f"- best {best['monitor']} **{best['best_value']:.4f}** (trial {best['best_trial']}): "
             f"{best['best_params']}"]
    if write_params:
        variant = write_variant(Path(root) / "params.yaml", model, best["best_params"])
        lines.append(f"- written to params.yaml as `{variant}`")
    publish(f"{name}-tune-{model}-{split}", f"Tuning {model} on {name}", lines,
            [{"parameter": k, "value": v} for k, v in best["best_params"].items()])  # fmt: skip
    return best


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", required=True, help="split id, e.g. random-80-10-10-s0 (its validation part is used)")
    ap.add_argument("--trials", type=int, default=None, help="default: tune.trials")
    ap.add_argument("--workers", type=int, default=None, help="trials side by side (default: tune.workers)")
    ap.add_argument("--write-params", action="store_true", help="add the best as <model>-tuned to params.yaml")
    a = ap.parse_args()
    return run_cli(tune_flow, root=a.root, dataset=a.dataset, model=a.model, split=a.split, trials=a.trials,
                   workers=a.workers, write_params=a.write_params)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
