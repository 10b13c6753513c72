"""Per-model training speed and prediction throughput on the prepared data (run after `make run`).

    python -m bench.train_bench [--root .] [--split random-80-10-10-s0] [--epochs 3] [--threads 0] [--device D]

Prints one line per model: parameters, seconds per epoch (mean of epochs 2..--epochs: the first one pays
warm-up such as CUDA kernel loading and cuBLAS handles; with --epochs 1, that one), test-pair predictions
per second, seconds to score every item for every user, the process's peak RSS, and on CUDA the model's
peak allocated device memory (training, prediction and scoring). Models of NRP Table 2 get its published
parameter counts and seconds per epoch beside ours (ml100k; the paper's machine and framework: Keras, one GPU).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.common.registry import resolve_model
from tasks.common.config import load_params
from tasks.common.device import resolve_device, seed_everything, set_threads
from tasks.common.paths import Layout
from tasks.training import build_from_spec, build_run_data, fit

# NRP Table 2, ml100k: (neural-network parameters, MF parameters, seconds per epoch); "—" = not reported
NRP_TABLE2: dict[str, tuple[str, str, str]] = {
    "mf": ("0", "0.26M", "15"),
    "dha": ("8.6M", "0.26M", "85"),
    "nrp-dha": ("—", "—", "68"),
    "asdae": ("13M", "0.26M", "98"),
    "nrp-asdae": ("—", "—", "70"),
    "accm": ("3.1M", "—", "37"),
    "nrp-direct": ("4.7M", "—", "42"),
}


def published(name: str) -> str:
    row = NRP_TABLE2.get(name)
    return f"  NRP Table 2: NN {row[0]}, MF {row[1]}, {row[2]} s/epoch" if row else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--split", default="random-80-10-10-s0")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--models", nargs="*", default=None)
    ap.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default: train.device)")
    args = ap.parse_args()
    params = load_params(Path(args.root) / "params.yaml")
    threads = set_threads(args.threads)
    dev = resolve_device(args.device or params.train.device)
    cuda = dev.type == "cuda"
    layout = Layout(Path(args.root))
    datas = {
        task: build_run_data(
            layout, params.dataset, args.split, dev, task, params.train.positive_threshold, params.split.loo_negatives
        )
        for task in ("rating", "ranking")
    }
    print(
        f"dataset {params.dataset}, split {args.split}, device {dev}, {threads} threads, "
        f"{len(datas['rating'].ctx.ratings):,} training interactions"
    )
    if cuda:
        print(f"GPU {torch.cuda.get_device_name(dev)}, torch {torch.__version__}")
    print(
        f"{'model':<12} {'params':>10} {'s/epoch':>8} {'pred/s':>12} {'score-all s':>11} {'peak RSS MiB':>12}"
        + (f" {'peak GPU MiB':>12}" if cuda else "")
    )
    for name in args.models or params.train.models:
        seed_everything(0)
        if cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        spec = resolve_model(name, params.models)
        data = datas[spec.task]
        ctx = data.ctx
        model = build_from_spec(spec, spec.raw, ctx)
        with tempfile.TemporaryDirectory() as tmp:
            res = fit(
                model,
                data,
                seed=0,
                max_epochs=args.epochs,
                patience=args.epochs,
                best_path=Path(tmp) / "m.pt",
                resume_path=None,
                fp="",
                progress=lambda s: None,
            )
        s_epoch = float(np.mean([h["fit_seconds"] for h in res.history[1:] or res.history]))
        u, i = data.test["user_idx"].to_numpy(), data.test["item_idx"].to_numpy()
        t0 = time.perf_counter()
        model.predict(u, i)
        pred_s = len(u) / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        with model.scoring():
            for s in range(0, ctx.n_users, 256):
                model.score_users(torch.arange(s, min(s + 256, ctx.n_users), device=dev))
        score_all = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        gpu = f" {torch.cuda.max_memory_allocated(dev) / 2**20:>12.0f}" if cuda else ""
        print(
            f"{name:<12} {model.n_parameters():>10,} {s_epoch:>8.2f} {pred_s:>12,.0f} {score_all:>11.2f} {rss:>12.0f}"
            + gpu
            + published(name),
            flush=True,
        )


if __name__ == "__main__":
    main()
