"""One training epoch of the autoencoders on synthetic data of ML-20M size, without densifying: seconds per epoch
and peak RSS (and peak GPU memory on CUDA) per model, each model in its own process.

    python -m bench.scale_models                                  # 138,493 users, 26,744 items, 20,000,263 ratings
    python -m bench.scale_models --models autorec-i cfn-i ncae --users 6040 --items 3706 --ratings 1000209
    python -m bench.scale_models --root /tmp/hr-20m               # reuse (or keep) the generated data
    python -m bench.scale_models --models cfn-i ncae --set cfn-i.sparse_updates=true ncae.sparse_updates=true

Runs ingest, a random-80-10-10-s0 split and the side features once (on the real stage functions), then, per model,
builds it from params.yaml and trains exactly one epoch through the shared loop's epoch function (no validation
pass). Not a test; run it on a quiet machine (other processes on the cores make it many times slower).
``prepare_synthetic`` and ``SIZES`` are also what ``bench.gpu_run --synthetic`` uses.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tasks.common.malloc import malloc_env

REPO = Path(__file__).resolve().parent.parent
SPLIT = "random-80-10-10-s0"
# (users, items, ratings) of the MovieLens releases the synthetic data can imitate
SIZES: dict[str, tuple[int, int, int]] = {
    "ml-100k": (943, 1_682, 100_000),
    "ml-1m": (6_040, 3_706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "ml-20m": (138_493, 26_744, 20_000_263),
}

EPOCH = """
import json, resource, time, numpy as np, torch
from pathlib import Path
from models.common.registry import resolve_model
from tasks.common.config import load_params
from tasks.common.device import resolve_device, seed_everything, set_threads
from tasks.common.paths import Layout
from tasks.training import build_from_spec, build_run_data
from tasks.training.loop import _epoch
root = Path({root!r}); P = load_params(root / "params.yaml"); threads = set_threads(P.train.threads)
dev = resolve_device({device!r}); spec = resolve_model({model!r}, P.models)
t0 = time.perf_counter()
data = build_run_data(Layout(root), "synthetic", {split!r}, dev, spec.task)
seed_everything(0); model = build_from_spec(spec, spec.raw, data.ctx)
opt = model.make_optimizer(); load = time.perf_counter() - t0
if dev.type == "cuda": torch.cuda.reset_peak_memory_stats(dev)
t1 = time.perf_counter(); logs = _epoch(model, opt, np.random.default_rng(0))
if dev.type == "cuda": torch.cuda.synchronize(dev)
sec = time.perf_counter() - t1
gpu = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB → GiB: the whole process's peak
print(json.dumps({{"load_s": load, "epoch_s": sec, "params": model.n_parameters(), "threads": threads, "rss": rss,
                   "device": str(dev), "gpu_peak_gib": gpu, "loss": logs.get("loss")}}))
"""


def write_params(root: Path, overrides: list[str]) -> None:
    """``root/params.yaml``: the repository's params with dataset ``synthetic`` and one split, plus ``overrides``
    (``model.key=value``), written afresh on every call so that no earlier run's overrides linger."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["dataset"] = "synthetic"
    params["acquire"]["source_dir"] = str(root / "spec")
    params["split"]["instances"] = [SPLIT]
    for item in overrides:
        key, sep, value = item.partition("=")
        model, _, field = key.partition(".")
        if not sep or not field:
            raise SystemExit(f"--set {item!r}: expected model.key=value")
        entry = params["models"].get(model)
        if not isinstance(entry, dict):
            raise SystemExit(f"--set {item!r}: params.yaml has no models.{model} mapping")
        entry[field] = yaml.safe_load(value)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def prepare_synthetic(root: Path, users: int, items: int, ratings: int) -> None:
    """Generate, ingest and split (random-80-10-10-s0) synthetic data of the given size under ``root``, and build its
    side features; writes ``root/params.yaml`` (dataset ``synthetic``). In a child process, so that the
    generator's memory does not count towards the caller's peak RSS. Nothing is done when the split exists."""
    if (root / "artifacts" / "splits" / "synthetic" / SPLIT).exists():
        return
    (root / "spec").mkdir(parents=True, exist_ok=True)
    (root / "spec" / "SPEC.json").write_text(json.dumps({"n_users": users, "n_items": items, "n_ratings": ratings}))
    write_params(root, [])
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from pathlib import Path; "
            "from tasks.common.paths import Layout; from tasks.common.config import load_params; "
            "from tasks.acquire import acquire_dataset; from tasks.ingest import ingest_dataset; "
            "from tasks.splits.stage import make_splits; from tasks.features import build_dataset_features; "
            f"L = Layout(Path({str(root)!r})); P = load_params(Path({str(root)!r}) / 'params.yaml'); "
            "acquire_dataset(L, 'synthetic', P.acquire.source_dir, 30); ingest_dataset(L, 'synthetic'); "
            "make_splits(L, P, 'synthetic'); build_dataset_features(L, 'synthetic', P.features)")  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, env={**os.environ, **malloc_env()})
    print(f"data: generated, ingested, split and featurised in {time.perf_counter() - t0:.0f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="*", default=["autorec-i", "cfn-i", "ncae"])
    ap.add_argument("--users", type=int, default=SIZES["ml-20m"][0])
    ap.add_argument("--items", type=int, default=SIZES["ml-20m"][1])
    ap.add_argument("--ratings", type=int, default=SIZES["ml-20m"][2])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--root", default=None, help="project root for the data (default: a temporary one)")
    ap.add_argument("--set", nargs="*", default=[], dest="overrides",
                    help="model.key=value overrides of params.yaml (e.g. ncae.sparse_updates=true)")
    a = ap.parse_args()
    root = Path(a.root or tempfile.mkdtemp(prefix="hybridrec-scale-models-"))
    prepare_synthetic(root, a.users, a.items, a.ratings)
    write_params(root, a.overrides)
    if a.overrides:
        print("overrides: " + " ".join(a.overrides))
    print(f"synthetic {a.users:,} users × {a.items:,} items, {a.ratings:,} ratings ({time.strftime('%Y-%m-%d')})")
    print(f"{'model':<12} {'params':>12} {'s/epoch':>9} {'load s':>7} {'peak RSS':>9} {'GPU peak':>9}  device")
    for model in a.models:
        code = EPOCH.format(root=str(root), device=a.device, model=model, split=SPLIT)
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True, check=False,
                              env={**os.environ, **malloc_env()})
        out = proc.stdout
        if proc.returncode:
            print(f"{model:<12} failed (exit {proc.returncode})")
            continue
        r = json.loads(out.strip().splitlines()[-1])
        gpu = f"{r['gpu_peak_gib']:.2f} GiB" if r["gpu_peak_gib"] is not None else "—"
        print(
            f"{model:<12} {r['params']:>12,} {r['epoch_s']:>9.1f} {r['load_s']:>7.1f} {r['rss']:>6.2f} GiB {gpu:>9}  "
            f"{r['device']} ({r['threads']} threads)",
            flush=True,
        )


if __name__ == "__main__":
    main()
