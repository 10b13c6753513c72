"""Start a Prefect worker on a process work pool (what ``make worker`` runs).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.worker [--pool hybridrec] [--limit N]

The pool must exist on the server (``python -m flows.deploy --pool hybridrec --create-pool`` creates it and
deploys the pipeline there): a name that does not exist is refused with the list of the server's pools,
instead of Prefect's silent creation of an empty pool nobody deploys to. The worker runs each flow run as
a subprocess of itself; stop it with Ctrl-C (or SIGTERM, then SIGINT).
"""

from __future__ import annotations

import argparse
import os
import sys

import flows  # noqa: F401
from flows.deploy import ensure_pool
from tasks.common.errors import HybridrecError


def worker_command(pool: str, limit: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process"]
    if limit:
        cmd += ["--limit", str(limit)]
    return cmd


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pool", default="hybridrec")
    ap.add_argument("--limit", type=int, default=None, help="at most this many flow runs at once")
    a = ap.parse_args(argv)
    try:
        ensure_pool(a.pool, create=False)
    except HybridrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    cmd = worker_command(a.pool, a.limit)
    os.execv(cmd[0], cmd)  # the worker replaces this process: signals reach it directly


if __name__ == "__main__":
    raise SystemExit(main())
