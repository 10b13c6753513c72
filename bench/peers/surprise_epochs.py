"""Time Surprise's SVD on one of our splits (runs inside .venv-peers, scikit-surprise 1.1.5).

    .venv-peers/bin/python bench/peers/surprise_epochs.py --split artifacts/splits/ml-100k/random-80-10-10-s0 \
        --epochs 20 --set n_factors=200 lr_all=0.01 reg_all=0.1

Trains on the split's train part, prints one JSON line: seconds per epoch (fit time / n_epochs), test RMSE.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--set", nargs="*", default=[])
    a = ap.parse_args()

    import numpy as np
    import pandas as pd
    import yaml
    from surprise import SVD, Dataset, Reader, accuracy

    d = Path(a.split)
    train = pd.read_parquet(d / "train.parquet")
    test = pd.read_parquet(d / "test.parquet")
    kw = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    lo, hi = float(train["rating"].min()), float(train["rating"].max())
    data = Dataset.load_from_df(train[["user_idx", "item_idx", "rating"]], Reader(rating_scale=(lo, hi)))
    trainset = data.build_full_trainset()
    algo = SVD(n_epochs=a.epochs, random_state=0, **kw)
    t0 = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - t0
    pred = algo.test(list(zip(test["user_idx"], test["item_idx"], test["rating"].astype(float), strict=True)))
    rmse = accuracy.rmse(pred, verbose=False)
    n_params = int(np.prod(algo.pu.shape) + np.prod(algo.qi.shape) + len(algo.bu) + len(algo.bi))
    print(json.dumps({"model": "SVD", "seconds": [seconds / a.epochs] * a.epochs, "rmse": rmse, "n_params": n_params}))


if __name__ == "__main__":
    main()
