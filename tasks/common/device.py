"""Device choice, thread count and seeding."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from tasks.common.config import env_threads
from tasks.common.errors import ConfigError

# cuBLAS reads this when it creates its first handle (the first CUDA matmul); deterministic cuBLAS needs it.
# Set at import so it is in place before any CUDA work of a process that trains or evaluates.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("train.device", "'auto' or 'cpu' (no CUDA device is available here)", name)
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError("train.device", "auto | cpu | cuda | cuda:N", name) from exc


def set_threads(threads: int) -> int:
    """``threads`` > 0 fixes torch's intra-op threads (use 1 when processes run side by side); the environment
    variable ``HYBRIDREC_THREADS`` (an integer >= 1) wins over ``train.threads``."""
    if threads < 0:
        raise ConfigError("train.threads", "an integer >= 0 (0 = all cores)", threads)
    env = env_threads()
    if env is not None:
        threads = env
    if threads > 0:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def seed_everything(seed: int) -> None:
    """Seed every generator and ask torch for deterministic kernels: without them, multi-threaded CPU
    scatter/index-add kernels (embedding_bag backward) sum in a thread-dependent order and two runs with
    the same seed diverge within one epoch.

    On CUDA an op with no deterministic kernel only warns (``warn_only``), so a new model never fails on a
    GPU for that reason; ``bench/gpu_run.py`` counts such warnings. Measured (H100, torch 2.11): none of
    biased-mf, autorec-i, nrp-direct hits one, and two CUDA runs with the same seed give bit-identical
    weights (``tests/test_train.py`` checks it where a GPU is present). CUDA and CPU runs are not identical
    to each other: reduction order differs, input-dropout masks come from the device's generator, and the
    rounding differences grow over training (biased-mf, autorec-i: test RMSE equal to 1e-8; nrp-direct:
    within the ~0.008 that its training noise spans anyway). Determinism costs 10-30% per epoch on CUDA.
    """
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
