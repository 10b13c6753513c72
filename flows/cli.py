"""``hybridrec``: one command for the things a user does, each a thin wrapper over a flow or a make target.

    hybridrec run [--dataset ml-100k]        # acquire, then `dvc repro` against one Prefect server (= make run)
    hybridrec experiment --list | <name>     # a paper's table (= python -m flows.experiment)
    hybridrec tune --model M --split S [--trials 20]   # validation-only Optuna search (= python -m flows.tune)
    hybridrec report                         # the report pages (= python -m flows.report)
    hybridrec ui                             # the Prefect UI on 127.0.0.1:4200 (= make ui)
    hybridrec deploy                         # serve the scheduled deployment (= python -m flows.deploy)

``python -m flows.<stage>`` keeps working; every subcommand has ``--help``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Sequence

PY = sys.executable


def _module(module: str, args: Sequence[str]) -> int:
    """Run ``python -m module args`` (its own ``--help`` and exit status)."""
    return subprocess.call([PY, "-m", module, *args])


def _run(args: argparse.Namespace, rest: list[str]) -> int:
    dataset = ["--dataset", args.dataset] if args.dataset else ["--pipeline"]
    status = _module("flows.acquire", dataset)
    if status:
        return status
    status = _module("dvc", ["add", "-q", "data"])
    if status:
        return status
    return _module("flows.with_server", ["--", PY, "-m", "dvc", "repro", *rest])


def _ui(args: argparse.Namespace, rest: list[str]) -> int:
    print(f"Prefect UI: http://{args.host}:{args.port}  (point runs at it: "
          f"export PREFECT_API_URL=http://{args.host}:{args.port}/api)")  # fmt: skip
    return _module("prefect", ["server", "start", "--host", args.host, "--port", str(args.port), *rest])


def _passthrough(module: str) -> Callable[[argparse.Namespace, list[str]], int]:
    return lambda args, rest: _module(module, rest)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="hybridrec", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True, metavar="{run,experiment,tune,report,ui,deploy}")
    p = sub.add_parser("run", help="acquire the datasets, then `dvc repro` against one Prefect server (make run)",
                       description="Acquire every dataset of params.yaml's pipeline (or --dataset), `dvc add data`, "
                       "then `dvc repro` with one Prefect server for every stage. Extra arguments go to "
                       "`dvc repro`.")  # fmt: skip
    p.add_argument("--dataset", default=None, help="only this dataset to acquire (default: the pipeline's)")
    p.set_defaults(fn=_run)
    for name, module, text in (
        ("experiment", "flows.experiment", "reproduce a paper's table: --list, or an experiment name"),
        ("tune", "flows.tune", "validation-only hyperparameter search (Optuna TPE) for one model and split"),
        ("report", "flows.report", "write the report pages (reports/)"),
        ("deploy", "flows.deploy", "serve the scheduled retraining deployment (cron from params.yaml)"),
    ):
        described = f"{text}. Arguments are those of `python -m {module}` (see its --help)."
        p = sub.add_parser(name, help=text, add_help=False, description=described)
        p.set_defaults(fn=_passthrough(module))
    p = sub.add_parser("ui", help="the Prefect UI (make ui)", description="Start a Prefect server with its UI.")
    p.add_argument("--host", default=os.environ.get("HYBRIDREC_UI_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=4200)
    p.set_defaults(fn=_ui)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = parser().parse_known_args(argv)
    return int(args.fn(args, rest))


if __name__ == "__main__":
    raise SystemExit(main())
