"""The fixed cost each DVC stage pays before doing any work: a new Python process, the stage module's imports,
and a Prefect flow run (with one task) against a server — printed per stage module, best of ``--repeat``.

    python -m bench.stage_cost [--repeat 3]        # not a test; run it on a quiet machine

The flow-run overhead is measured against a temporary local server started once (as ``make run`` does with
``flows.with_server``), so it excludes the ~6 s an ephemeral server would add per stage.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

# the module each DVC stage runs (runs@<dataset> is flows.grid: the dataset's whole train + evaluate grid)
STAGES = ("flows.ingest", "flows.validate", "flows.features", "flows.split", "flows.grid", "flows.report")

FLOW_PROBE = """
import time
t0 = time.perf_counter()
from prefect import flow, task
@task
def t(): return 1
@flow
def f(): return t()
t1 = time.perf_counter()
f()
t2 = time.perf_counter()
f()
t3 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {t3 - t2:.3f}")
"""


def _seconds(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    env = {**os.environ, "HYBRIDREC_THREADS": "1"}
    bare = min(_seconds([sys.executable, "-c", "pass"], env) for _ in range(a.repeat))
    print(f"python startup: {bare:.2f} s (best of {a.repeat}; {time.strftime('%Y-%m-%d')})")
    print(f"{'stage module':<16} {'start + imports':>16}")
    for module in STAGES:
        s = min(_seconds([sys.executable, "-c", f"import {module}"], env) for _ in range(a.repeat))
        print(f"{module:<16} {s:>14.2f} s")
    import tempfile

    from flows.with_server import free_port, start_server, stop, wait_healthy

    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(port, os.path.join(tmp, "server.log"))
        try:
            wait_healthy(url, server, 90)
            out = subprocess.run([sys.executable, "-c", FLOW_PROBE], check=True, capture_output=True, text=True,
                                 env={**env, "PREFECT_API_URL": url}).stdout.split()  # fmt: skip
        finally:
            stop(server)
    imp, first, second = (float(x) for x in out[-3:])
    print(f"prefect import {imp:.2f} s; first flow run (+ task) {first:.2f} s; a second one {second:.2f} s")
    from tasks.common.config import load_params

    params = load_params("params.yaml")
    n_runs = sum(len(params.for_dataset(d).train.all_models) * len(params.for_dataset(d).split.instances)
                 for d in params.pipeline)  # fmt: skip
    n_stages = 6 * len(params.pipeline) + 1
    print(f"params.yaml's pipeline: {len(params.pipeline)} dataset(s), {n_runs} runs -> {n_stages} DVC stages "
          f"(one per dataset and step, and the summary); one stage per train and per evaluate run would be "
          f"{5 * len(params.pipeline) + 2 * n_runs + 1}")


if __name__ == "__main__":
    main()
