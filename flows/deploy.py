"""Serve the pipeline as a scheduled Prefect deployment (cron from params.yaml's ``deploy`` section).

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deploy      # after `make ui` in another shell

The process stays up, creates runs on schedule and executes them; stop it with Ctrl-C. Trigger a run now
with ``prefect deployment run 'pipeline/hybridrec-weekly'``. (A work-pool alternative is in prefect.yaml.)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import flows  # noqa: F401
from flows.pipeline import pipeline_flow
from tasks.common.safe_yaml import load_user_yaml


def deploy_settings(root: Path) -> dict[str, str]:
    raw = load_user_yaml(root / "params.yaml") or {}
    section = raw.get("deploy") or {}
    return {"name": str(section.get("name", "hybridrec-pipeline")), "cron": str(section.get("cron", "0 3 * * 1"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--cron", default=None)
    a = ap.parse_args()
    settings = deploy_settings(Path(a.root))
    cron = a.cron or settings["cron"]
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "note: PREFECT_API_URL is not set; schedules need a running server (make ui), "
            "otherwise runs live only as long as this process.",
            file=sys.stderr,
        )
    pipeline_flow.serve(name=settings["name"], cron=cron, parameters={"root": str(Path(a.root).resolve())})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
