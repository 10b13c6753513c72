"""hybridrec and its peers trained on the same training file, one after the other, at the same thread count:
seconds per training epoch of each and the ratio (ours / peer). Not a test; run it alone on a quiet machine.

    make peers                                   # once: .venv-peers with RecBole 1.2.1 and Surprise 1.1.5
    .venv/bin/python -m bench.peers.side_by_side [--pairs neumf bpr gf-dmf biased-mf mf] [--threads 1 2]
                                                 [--epochs 3] [--json out.json]

Pairs (same batch size, negatives per positive, embedding sizes and threads on both sides):

* ``neumf`` ↔ RecBole NeuMF, ``bpr`` ↔ RecBole BPR, ``gf-dmf`` ↔ RecBole DMF: DeepCF last.fm, ``predefined-s0``
  training part (the published training file less one validation item per user), written as RecBole atomic
  files; RecBole's epoch is ``trainer._train_epoch`` (negative sampling + steps), ours the loop's fit time of
  an epoch (batches + steps; validation excluded on both sides).
* ``biased-mf`` / ``mf`` ↔ Surprise SVD (biased / unbiased) on ml-100k ``random-80-10-10-s0``: Surprise's
  ``fit`` over ``n_epochs`` divided by them; ours as above. Test RMSE of both is printed too.

Each peer runs in .venv-peers (its own interpreter, RecBole's pinned stack) as a child process; ours runs in a
child process of this venv, so neither inherits the other's threads or caches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
PEERS_PY = REPO / ".venv-peers" / "bin" / "python"
SHARED = REPO.parent / "shared" / "datasets"
DEEPCF = ("deepcf-lastfm", "predefined-s0", SHARED / "deepcf")
ML100K = ("ml-100k", "random-80-10-10-s0", SHARED / "ml-100k")

# ours: (model name, overrides); peer: (kind, model, batch, negatives, settings)
PAIRS: dict[str, tuple[tuple[str, dict], tuple[str, str, int, int, list[str]]]] = {
    "neumf": (
        ("neumf", {"gmf_factors": 64, "mlp_factors": 64, "predictor": [128, 64], "batch_size": 256, "negatives": 4}),
        ("recbole", "NeuMF", 256, 4, ["mf_embedding_size=64", "mlp_embedding_size=64", "mlp_hidden_size=[128,64]",
                                      "dropout_prob=0.0"]),
    ),
    "bpr": (
        ("bpr", {"factors": 64, "batch_size": 2048}),
        ("recbole", "BPR", 2048, 1, ["embedding_size=64"]),
    ),
    "gf-dmf": (
        ("gf-dmf", {"user_layers": [64, 64], "item_layers": [64, 64], "factors": 64, "batch_size": 256,
                    "negatives": 4}),
        ("recbole", "DMF", 256, 4, ["user_embedding_size=64", "item_embedding_size=64",
                                    "user_hidden_size_list=[64,64]", "item_hidden_size_list=[64,64]"]),
    ),
    "biased-mf": (("biased-mf", {}), ("surprise", "SVD", 0, 0, ["n_factors=200", "lr_all=0.01", "reg_all=0.1"])),
    "mf": (("mf", {}), ("surprise", "SVD", 0, 0, ["n_factors=200", "lr_all=0.01", "reg_all=0.1", "biased=False"])),
}  # fmt: skip


def prepare(root: Path, dataset: str, split: str, source: Path) -> None:
    """acquire → ingest → split with the pipeline's own functions (no network)."""
    from bench.implicit_baselines import _params
    from tasks.acquire import acquire_dataset
    from tasks.common.config import params_from_dict
    from tasks.common.paths import Layout
    from tasks.ingest import ingest_dataset
    from tasks.splits.stage import make_splits

    protocol, seed = split.rsplit("-s", 1)
    raw = _params(dataset, protocol, [int(seed)], ["pop"], [])
    raw["acquire"]["source_dir"] = str(source)
    layout = Layout(root)
    acquire_dataset(layout, dataset, str(source), 30)
    ingest_dataset(layout, dataset)
    make_splits(layout, params_from_dict(raw), dataset)


def write_atomic(root: Path, dataset: str, split: str, out: Path) -> Path:
    """RecBole atomic files out/NAME.{train,valid,test}.inter (NAME = out's name; tokens = our indices); returns
    the ``--inter`` argument of recbole_epochs.py, out's parent / NAME."""
    import polars as pl

    d = root / "artifacts" / "splits" / dataset / split
    out.mkdir(parents=True, exist_ok=True)
    for part in ("train", "valid", "test"):
        frame = pl.read_parquet(d / f"{part}.parquet").select(
            pl.col("user_idx").cast(pl.Utf8).alias("user_id:token"),
            pl.col("item_idx").cast(pl.Utf8).alias("item_id:token"),
        )
        frame.write_csv(out / f"{out.name}.{part}.inter", separator="\t")
    return out.parent / out.name


def ours(root: Path, dataset: str, split: str, model: str, overrides: dict, threads: int, epochs: int,
         patience: int = 100) -> dict:  # fmt: skip
    """Our epochs, in a child process of this venv (fresh threads and caches)."""
    code = f"""
import json, torch
from pathlib import Path
from models.common.registry import resolve_model
from tasks.common.config import load_params
from tasks.common.device import seed_everything
from tasks.common.paths import Layout
from tasks.evaluation.evaluate import rating_metrics
from tasks.training import build_model, build_run_data, fit
torch.set_num_threads({threads})
params = load_params({str(REPO / "params.yaml")!r})
spec = resolve_model({model!r}, params.models)
data = build_run_data(Layout(Path({str(root)!r})), {dataset!r}, {split!r}, torch.device("cpu"), spec.task)
seed_everything(0)
m = build_model({model!r}, {overrides!r}, data.ctx, params.models)
r = fit(m, data, seed=0, max_epochs={epochs}, patience={patience}, best_path=Path({str(root)!r}) / "ours.pt",
        resume_path=None, fp="bench", progress=lambda s: None)
out = {{"seconds": [h["fit_seconds"] for h in r.history], "n_params": m.n_parameters()}}
if spec.task == "rating":
    out["rmse"] = rating_metrics(m, data.test, data.ctx.rating_scale, (0.1,))["rmse"]
print(json.dumps(out))
"""
    env = {**os.environ, "HYBRIDREC_THREADS": str(threads), "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, check=False)
    if res.returncode:
        raise SystemExit(f"ours {model} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def peer(kind: str, model: str, batch: int, neg: int, settings: list[str], inter: Path | None, root: Path,
         threads: int, epochs: int) -> dict:  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if kind == "recbole":
        assert inter is not None
        cmd = [str(PEERS_PY), str(REPO / "bench/peers/recbole_epochs.py"), "--model", model, "--inter", str(inter),
               "--threads", str(threads), "--epochs", str(epochs), "--batch", str(batch), "--neg", str(neg),
               "--set", *settings]  # fmt: skip
    else:
        split = root / "artifacts/splits/ml-100k/random-80-10-10-s0"
        cmd = [str(PEERS_PY), str(REPO / "bench/peers/surprise_epochs.py"), "--split", str(split), "--epochs", "20",
               "--set", *settings]  # fmt: skip
    # RecBole writes log/, log_tensorboard/ and saved/ into its working directory: keep them in the temporary root
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root, check=False)
    if res.returncode:
        raise SystemExit(f"peer {model} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", nargs="*", default=list(PAIRS))
    ap.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    if not PEERS_PY.exists():
        raise SystemExit(f"{PEERS_PY} missing: run `make peers` first (RecBole 1.2.1 and Surprise in their own venv)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        need = {name: PAIRS[name] for name in a.pairs}
        inter = None
        if any(p[1][0] == "recbole" for p in need.values()):
            prepare(root, *DEEPCF)
            inter = write_atomic(root, DEEPCF[0], DEEPCF[1], root / "recbole" / "lastfm")
        if any(p[1][0] == "surprise" for p in need.values()):
            prepare(root, *ML100K)
        for name, ((model, overrides), (kind, pmodel, batch, neg, settings)) in need.items():
            dataset, split = (DEEPCF if kind == "recbole" else ML100K)[:2]
            for t in a.threads:
                p = peer(kind, pmodel, batch, neg, settings, inter, root, t, a.epochs)
                if kind == "surprise":  # rating pairs: ours trains to its early stop, so the RMSEs compare
                    o = ours(root, dataset, split, model, overrides, t, 200, patience=10)
                else:
                    o = ours(root, dataset, split, model, overrides, t, a.epochs)
                # the first epoch carries one-off set-up on both sides (RecBole: sampler; ours: tensors)
                ps = float(np.median(p["seconds"][1:] or p["seconds"]))
                os_ = float(np.median(o["seconds"][1:] or o["seconds"]))
                row = {"pair": name, "threads": t, "ours": model, "peer": f"{kind}:{pmodel}", "ours_s": os_,
                       "peer_s": ps, "ratio": os_ / ps, "ours_params": o["n_params"], "peer_params": p.get("n_params"),
                       "ours_rmse": o.get("rmse"), "peer_rmse": p.get("rmse")}  # fmt: skip
                rows.append(row)
                print(f"{name:<10} {t} thr: ours {os_:.3f} s/epoch, {kind} {pmodel} {ps:.3f} s/epoch, "
                      f"ratio {os_ / ps:.2f}" + (f"  (RMSE ours {o['rmse']:.4f}, peer {p['rmse']:.4f})"
                                                 if o.get("rmse") and p.get("rmse") else ""), flush=True)  # fmt: skip
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
