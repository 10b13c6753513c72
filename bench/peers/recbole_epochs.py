"""Time RecBole's own training epochs on one training file (runs inside .venv-peers, RecBole 1.2.1).

    .venv-peers/bin/python bench/peers/recbole_epochs.py --model NeuMF --inter DIR/NAME --threads 1 --epochs 3 \
        --batch 256 --neg 4 --set mf_embedding_size=64 ...

DIR/NAME/NAME.train.inter / .valid.inter / .test.inter are RecBole atomic files (user_id:token, item_id:token) that
``side_by_side.py`` writes from hybridrec's split. Prints one JSON line: seconds of every training epoch (only
``trainer._train_epoch``: sampling, forward, backward, optimizer; no evaluation) and the loss.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--inter", required=True, help="DIR/NAME: the files DIR/NAME/NAME.{train,valid,test}.inter")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--neg", type=int, default=4, help="negatives per positive (0: none, e.g. Mult-VAE)")
    ap.add_argument("--set", nargs="*", default=[], help="key=value model settings (YAML values)")
    a = ap.parse_args()

    import torch
    import yaml
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(a.threads)
    path = Path(a.inter)
    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in a.set)}
    cfg = {
        "data_path": str(path.parent),  # RecBole reads data_path/NAME/NAME.*.inter
        "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id"]},
        "train_batch_size": a.batch,
        "eval_batch_size": 4096,
        "epochs": a.epochs,
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "seed": 0,
        "reproducibility": True,
        "state": "ERROR",
        "train_neg_sample_args": (
            {"distribution": "uniform", "sample_num": a.neg, "alpha": 1.0, "dynamic": False, "candidate_num": 0}
            if a.neg
            else None
        ),
        **extra,
    }
    config = Config(model=a.model, dataset=path.name, config_dict=cfg)
    logging.getLogger().setLevel(logging.ERROR)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    seconds, losses = [], []
    for epoch in range(a.epochs):
        t0 = time.perf_counter()
        loss = trainer._train_epoch(train, epoch, show_progress=False)
        seconds.append(time.perf_counter() - t0)
        losses.append(float(sum(loss) if isinstance(loss, tuple) else loss))
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"model": a.model, "threads": a.threads, "seconds": seconds, "loss": losses,
                      "n_params": n_params, "n_train": len(train.dataset)}))  # fmt: skip


if __name__ == "__main__":
    main()
