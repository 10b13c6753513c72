"""Grid search on the VALIDATION split only: prints the best value of the model's validation monitor
(valid_rmse for rating models, valid_ndcg@10 for ranking models) per configuration.

    python -m bench.tune --root /tmp/hr --model autorec-i --split random-80-10-10-s0 --grid l2=1,10,100

The test split is never read. Needs a root where ingest/features/split have run (e.g. after `dvc repro`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import time
from pathlib import Path

import yaml

from models.common.registry import resolve_model
from tasks.common.config import load_params
from tasks.common.device import resolve_device, seed_everything, set_threads
from tasks.common.paths import Layout
from tasks.training import RunId, build_from_spec, build_run_data, fit


def parse_value(v: str):  # type: ignore[no-untyped-def]
    return yaml.safe_load(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--model", required=True)
    ap.add_argument("--split", default="random-80-10-10-s0")
    ap.add_argument("--grid", nargs="*", default=[], help="key=v1,v2 ... (model config keys)")
    ap.add_argument("--max-epochs", type=int, default=None)
    ap.add_argument("--patience", type=int, default=None)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    params = load_params(args.params)
    dataset = args.dataset or params.dataset
    layout = Layout(Path(args.root))
    set_threads(params.train.threads)
    dev = resolve_device(params.train.device)
    run = RunId(dataset, args.model, args.split)
    spec = resolve_model(args.model, params.models)
    data = build_run_data(layout, dataset, args.split, dev, spec.task, params.train.positive_threshold,
                          params.split.loo_negatives)  # fmt: skip
    keys = [g.split("=", 1)[0] for g in args.grid]
    values = [[parse_value(x) for x in g.split("=", 1)[1].split(",")] for g in args.grid]
    for combo in itertools.product(*values) if values else [()]:
        cfg = {**spec.raw, **dict(zip(keys, combo))}
        seed_everything(run.seed)
        model = build_from_spec(spec, cfg, data.ctx)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            res = fit(
                model,
                data,
                seed=run.seed,
                max_epochs=args.max_epochs or params.train.max_epochs,
                patience=args.patience or params.train.patience,
                best_path=Path(tmp) / "m.pt",
                resume_path=None,
                fp="",
                progress=(lambda s: None) if args.quiet else print,
            )
        print(
            json.dumps(
                {
                    "model": args.model,
                    "split": args.split,
                    **dict(zip(keys, combo)),
                    res.monitor.name: round(res.best_value, 4),
                    "best_epoch": res.best_epoch,
                    "epochs": res.epochs,
                    "s_per_epoch": round(res.train_seconds / max(res.epochs, 1), 3),
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
