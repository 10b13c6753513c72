"""Speed of the implicit path: BPR training seconds per epoch (validation excluded) at 1 and 2 threads on
``deepcf-lastfm``, sampler throughput (training pairs with 4 sampled negatives each, per second), and full-ranking
throughput (test users per second, every item scored, known items masked) for a dot-product model (BPR) and for
NRP-direct on HetRec ``lastfm`` leave-one-out.

    python -m bench.ranking_bench [--epochs 10] [--nrp-users 0]

Reads ../shared/datasets; runs alone (times are meaningless beside another busy process). ``--nrp-users N``
ranks only the first N test users with NRP-direct and extrapolates (0: all of them).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.implicit_baselines import SHARED, SOURCES, _params
from models.common.registry import resolve_model
from models.common.samplers import negative_batches
from tasks.acquire import acquire_dataset
from tasks.common.config import params_from_dict
from tasks.common.device import seed_everything
from tasks.common.manifest import read_manifest
from tasks.common.paths import Layout
from tasks.datasets.base import spec_from_manifest
from tasks.evaluation.ranking import full_ranking
from tasks.features import build_features
from tasks.ingest import ingest_dataset, load_tables
from tasks.splits.stage import make_splits
from tasks.training import build_from_spec, build_run_data, fit


def _prepare(root: Path, dataset: str, models: list[str], features: bool = False):  # type: ignore[no-untyped-def]
    protocol = SOURCES[dataset][1]
    params = params_from_dict(_params(dataset, protocol, [0], models, []))
    layout = Layout(root)
    acquire_dataset(layout, dataset, SHARED / SOURCES[dataset][0], 30)
    ingest_dataset(layout, dataset)
    make_splits(layout, params, dataset)
    if features:
        t = load_tables(layout, dataset)
        f = params.features
        build_features(spec_from_manifest(read_manifest(layout.ingested(dataset))), t["users"], t["items"],
                       t["user_ids"].height, t["item_ids"].height, layout.features(dataset),
                       age_encoding=f.age_encoding, min_df=f.min_df, svd_k=f.svd_k, seed=f.seed)  # fmt: skip
    return layout, params, f"{protocol}-s0"


def bpr_epochs(root: Path, epochs: int) -> None:
    layout, params, split = _prepare(root, "deepcf-lastfm", ["bpr"])
    spec = resolve_model("bpr", params.models)
    data = build_run_data(layout, "deepcf-lastfm", split, torch.device("cpu"), "ranking")
    for threads in (1, 2):
        torch.set_num_threads(threads)
        seed_everything(0)
        model = build_from_spec(spec, spec.raw, data.ctx)
        res = fit(model, data, seed=0, max_epochs=epochs, patience=epochs, best_path=root / "bpr.pt",
                  resume_path=None, fp="", progress=lambda s: None)  # fmt: skip
        fit_s = [h["fit_seconds"] for h in res.history[1:]]  # the first epoch warms up
        print(f"BPR deepcf-lastfm ({len(data.ctx.users):,} pairs, batch {spec.raw.get('batch_size')}), "
              f"{threads} thread(s): {np.mean(fit_s):.3f} s/epoch (median {np.median(fit_s):.3f}, "
              f"{len(fit_s)} epochs)")  # fmt: skip
    torch.set_num_threads(1)
    inter = data.ctx.interactions
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    n = 0
    for _ in range(3):
        for batch in negative_batches(inter, 4, 2048, rng, torch.device("cpu")):
            n += len(batch.users)
    dt = time.perf_counter() - t0
    print(f"sampler, pairs + 4 negatives each (1 thread): {n / 5 / dt:,.0f} positives/s = {n / dt:,.0f} pairs/s")


def ranking_throughput(root: Path, nrp_users: int) -> None:
    layout, params, split = _prepare(root, "lastfm", ["bpr", "nrp-direct"], features=True)
    torch.set_num_threads(1)
    for name in ("bpr", "nrp-direct"):
        spec = resolve_model(name, params.models)
        data = build_run_data(layout, "lastfm", split, torch.device("cpu"), spec.task)
        seed_everything(0)
        model = build_from_spec(spec, spec.raw, data.ctx)  # untrained: throughput does not depend on the weights
        test = data.test
        if name == "nrp-direct" and nrp_users:
            test = test.sort("user_idx").head(nrp_users)
        t0 = time.perf_counter()
        full_ranking(model, test, data.known("train", "valid"), (10, 50, 100), chunk=256)
        dt = time.perf_counter() - t0
        users = test["user_idx"].n_unique()
        total = data.test["user_idx"].n_unique()
        print(f"full ranking {name} on lastfm leave-one-out (1 thread, {model.n_items:,} items): "
              f"{users / dt:,.1f} users/s; all {total:,} test users ≈ {total * dt / users:.1f} s")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--nrp-users", type=int, default=0)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, models as in params.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        bpr_epochs(Path(tmp) / "a", args.epochs)
        ranking_throughput(Path(tmp) / "b", args.nrp_users)


if __name__ == "__main__":
    main()
