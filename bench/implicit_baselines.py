"""POP and BPR (or any models) on the DeepCF leave-one-out files and on HetRec Last.fm, through the pipeline's own
functions (acquire → ingest → split → train with early stopping on the validation monitor → evaluate), seeds
0-2; prints mean ± std of HR/NDCG@10 over the published (or sampled) negatives and of full-ranking
HR/NDCG@{10,50,100}, and BPR's training seconds per epoch.

    python -m bench.implicit_baselines [--datasets deepcf-lastfm deepcf-amusic deepcf-atoy lastfm]
                                       [--models pop bpr] [--seeds 0 1 2] [--set bpr.lr=0.005 ...] [--verbose]

Reads the raw files from ../shared/datasets (never the network); works in a temporary project root (``--root``
to keep it). The test split of each run is read once, by the evaluation.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from tasks.acquire import acquire_dataset
from tasks.common.config import params_from_dict
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import evaluate_run
from tasks.features import build_dataset_features
from tasks.ingest import ingest_dataset
from tasks.splits.stage import make_splits
from tasks.training import RunId, TrainRecord, train_run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
SOURCES = {
    "deepcf-lastfm": ("deepcf", "predefined"),
    "deepcf-amusic": ("deepcf", "predefined"),
    "deepcf-atoy": ("deepcf", "predefined"),
    "deepcf-ml-1m": ("deepcf", "predefined"),
    "lastfm": ("hetrec2011-lastfm-2k", "leave-one-out"),
    "ml-100k": ("ml-100k", "random-80-10-10"),
    "douban-gcmc": ("douban-gcmc", "predefined"),
}
SHOW = ("rmse", "hr@10_sampled", "ndcg@10_sampled", "hr@10_full", "ndcg@10_full", "hr@50_full", "hr@100_full",
        "hr@250_full")


def _params(dataset: str, protocol: str, seeds: list[int], models: list[str], overrides: list[str]) -> dict:
    raw = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    raw["dataset"] = dataset
    raw["acquire"]["source_dir"] = str(SHARED / SOURCES[dataset][0])
    raw["split"]["instances"] = [f"{protocol}-s{s}" for s in seeds]
    raw["train"]["models"] = models
    raw["evaluate"]["full_k"] = [10, 50, 100, 250]
    for item in overrides:
        key, value = item.split("=", 1)
        model, field = key.split(".", 1)
        raw["models"].setdefault(model, {})[field] = yaml.safe_load(value)
    return raw


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=["deepcf-lastfm", "deepcf-amusic", "deepcf-atoy", "lastfm"])
    ap.add_argument("--models", nargs="*", default=["pop", "bpr"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0, 1, 2])
    ap.add_argument("--set", nargs="*", default=[], dest="overrides", help="model.key=value (e.g. bpr.lr=0.005)")
    ap.add_argument("--root", default=None, help="project root to work in (default: a temporary directory)")
    ap.add_argument("--json", default=None, help="also write every run's metrics here")
    ap.add_argument("--verbose", action="store_true", help="print the per-epoch progress lines")
    ap.add_argument("--protocol", default=None,
                    help="split protocol instead of each dataset's own (e.g. predefined-corrected for the DeepCF "
                         "files: published negatives the user rated replaced by seeded unrated items)")  # fmt: skip
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root or tmp)
        for dataset in args.datasets:
            protocol = args.protocol or SOURCES[dataset][1]
            raw = _params(dataset, protocol, args.seeds, args.models, args.overrides)
            params = params_from_dict(raw)
            layout = Layout(root)
            t0 = time.perf_counter()
            acquire_dataset(layout, dataset, params.acquire.source_dir, 30)
            ingest_dataset(layout, dataset)
            make_splits(layout, params, dataset)
            build_dataset_features(layout, dataset, params.features)  # side information, as the stage builds it
            print(f"{dataset}: ingest + split {time.perf_counter() - t0:.1f}s", flush=True)
            for model in args.models:
                for seed in args.seeds:
                    run = RunId(dataset, model, f"{protocol}-s{seed}")
                    say = print if args.verbose else lambda s: None
                    rec: TrainRecord = train_run(layout, params, run, progress=say)
                    result = evaluate_run(layout, params, run)
                    history = (layout.run(dataset, model, run.split_id) / "history.csv").read_text().splitlines()
                    header = history[0].split(",")
                    fit_s = [float(line.split(",")[header.index("fit_seconds")]) for line in history[1:]]
                    rows.append({"dataset": dataset, "model": model, "seed": seed, "epochs": rec.epochs,
                                 "best_epoch": rec.best_epoch, "fit_s_per_epoch": float(np.mean(fit_s)),
                                 "valid": rec.best_valid, **result.metrics})  # fmt: skip
                    print(f"  {model} s{seed}: best epoch {rec.best_epoch}/{rec.epochs}, "
                          + ", ".join(f"{k} {result.metrics[k]:.4f}" for k in SHOW if k in result.metrics),
                          flush=True)  # fmt: skip
    print(f"\n{'dataset':<14} {'model':<6} " + " ".join(f"{k:>18}" for k in SHOW) + f" {'s/epoch':>8}")
    for dataset in args.datasets:
        for model in args.models:
            mine = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            cells = []
            for k in SHOW:
                v = np.array([r[k] for r in mine if k in r])
                cells.append(f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}" if len(v) else "—")
            s_epoch = np.mean([r["fit_s_per_epoch"] for r in mine])
            print(f"{dataset:<14} {model:<6} " + " ".join(f"{c:>18}" for c in cells) + f" {s_epoch:>8.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
