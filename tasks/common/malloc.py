"""glibc malloc settings for training processes on CPU (read by glibc at process start, so they go into the
environment of the processes we start: `make run` / `make worker`, the Dask workers, the benchmarks' subprocesses).

By default glibc serves every allocation above a sliding threshold (at most 32 MiB) with a fresh ``mmap`` and gives
it back on ``free``: a model whose step allocates tensors of 100-300 MB (the first and last layers of an
autoencoder at ML-20M size) page-faults all of that memory in again at every step. Serving them from the heap and
never trimming it keeps those pages: measured 2026-12-02 on 2 cores, 1 thread, autorec-i at ML-20M size
(``bench/scale_models.py`` data), 4.64 → 1.99 s per step dense (peak RSS 4.3 → 6.6 GiB) and 1.79 → 0.92 s per step
with ``sparse_updates`` (3.8 → 4.5 GiB). Results do not change (allocation only). Data sets of ml-100k's size never
allocate that much at once and see no difference. Set ``HYBRIDREC_MALLOC=default`` to keep glibc's behaviour."""

from __future__ import annotations

import os

MALLOC_ENV: dict[str, str] = {
    "MALLOC_MMAP_THRESHOLD_": str(4 * 2**30),  # allocations below 4 GiB come from the heap, not a fresh mmap
    "MALLOC_TRIM_THRESHOLD_": str(8 * 2**30),  # and freed heap memory is kept for the next step
}


def malloc_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The variables to add to a training process's environment (none when the user set their own or opted out)."""
    env = os.environ if environ is None else environ
    if env.get("HYBRIDREC_MALLOC", "").lower() == "default":
        return {}
    return {k: v for k, v in MALLOC_ENV.items() if k not in env}
