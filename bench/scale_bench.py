"""Acquire-free ingest → validate → features → split on `synthetic` data, wall time and peak RSS per stage.

    python -m bench.scale_bench                       # ML-20M size: 138,493 users, 26,744 items, 20,000,263 ratings
    python -m bench.scale_bench --users 6040 --items 3706 --ratings 1000209

Each stage runs in its own process (so its peak RSS is its own), on the real stage functions, in a
temporary project root. Prints one line per stage and the total.
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

REPO = Path(__file__).resolve().parent.parent

STAGES = {
    "acquire": "from tasks.acquire import acquire_dataset; "
    "acquire_dataset(L, 'synthetic', P.acquire.source_dir, 30)",
    "ingest": "from tasks.ingest import ingest_dataset; ingest_dataset(L, 'synthetic')",
    "validate": "from tasks.validate import validate_tables, raise_on_failure; from tasks.ingest import load_tables; "
    "from tasks.datasets import get_dataset; "
    "raise_on_failure(validate_tables(load_tables(L, 'synthetic'), "
    "get_dataset('synthetic', raw_dir=L.raw('synthetic')), None))",
    "features": "from tasks.features import build_features; from tasks.ingest import load_tables; "
    "from tasks.datasets import get_dataset; t = load_tables(L, 'synthetic'); "
    "build_features(get_dataset('synthetic', raw_dir=L.raw('synthetic')), t['users'], t['items'], "
    "t['user_ids'].height, t['item_ids'].height, L.features('synthetic'), age_encoding='bucket', min_df=1, "
    "svd_k=P.features.svd_k, seed=0)",
    "split": "from tasks.splits.stage import make_splits; make_splits(L, P, 'synthetic')",
}


def run_stage(name: str, code: str, root: Path) -> tuple[float, float]:
    prelude = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); from pathlib import Path; "
        "from tasks.common.paths import Layout; "
        f"from tasks.common.config import load_params; L = Layout(Path({str(root)!r})); "
        f"P = load_params(Path({str(root)!r}) / 'params.yaml'); "
    )
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", prelude + code], cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {name} failed (exit {os.waitstatus_to_exitcode(status)})")
    return wall, usage.ru_maxrss / 1024 / 1024  # GiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=138_493)
    ap.add_argument("--items", type=int, default=26_744)
    ap.add_argument("--ratings", type=int, default=20_000_263)
    ap.add_argument("--keep", action="store_true", help="keep the temporary root and print it")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="hybridrec-scale-"))
    src = tmp / "spec"
    src.mkdir()
    spec = {"n_users": args.users, "n_items": args.items, "n_ratings": args.ratings}
    (src / "SPEC.json").write_text(json.dumps(spec))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params.update({"dataset": "synthetic"})
    params["acquire"]["source_dir"] = str(src)
    params["split"]["instances"] = ["random-80-10-10-s0", "leave-one-out-s0"]
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    print(f"synthetic: {args.users:,} users, {args.items:,} items, {args.ratings:,} ratings; root {tmp}", flush=True)
    total = 0.0
    peak = 0.0
    for name, code in STAGES.items():
        wall, rss = run_stage(name, code, tmp)
        print(f"{name:<9} {wall:7.1f} s   peak RSS {rss:5.2f} GiB", flush=True)
        if name != "acquire":
            total += wall
            peak = max(peak, rss)
    print(f"ingest+validate+features+split: {total:.1f} s, peak RSS {peak:.2f} GiB (ingest generates the data)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
