"""Deploy the pipeline on a schedule (cron from params.yaml's ``deploy`` section), two ways.

Served (one process creates and executes the runs; stop it with Ctrl-C)::

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deploy      # after `make ui` in another shell

On a process work pool, as in production (the deployment is stored on the server; any number of workers
poll the pool and run what it schedules)::

    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.deploy --pool hybridrec --create-pool
    PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.worker --pool hybridrec      # `make worker`

``prefect.yaml`` declares the same deployment for ``prefect --no-prompt deploy --all`` (its cron must equal
params.yaml's, a test checks it). Trigger a run now with ``prefect deployment run 'pipeline/<name>'``.
A pool name that does not exist is refused (listing the server's pools) unless ``--create-pool`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import flows  # noqa: F401
from tasks.common.errors import HybridrecError
from tasks.common.safe_yaml import load_user_yaml

REPO = Path(__file__).resolve().parent.parent
ENTRYPOINT = "flows/pipeline.py:pipeline_flow"


class DeployError(HybridrecError):
    """The deployment or the worker cannot be set up: no server, no such work pool ..."""


def deploy_settings(root: Path) -> dict[str, str]:
    raw = load_user_yaml(root / "params.yaml") or {}
    section = raw.get("deploy") or {}
    return {"name": str(section.get("name", "hybridrec-pipeline")), "cron": str(section.get("cron", "0 3 * * 1"))}


def require_server() -> str:
    """The API URL of a running Prefect server (work pools and schedules live there, not in ephemeral mode)."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise DeployError(
            "PREFECT_API_URL is not set: work pools and scheduled deployments need a running Prefect server "
            "(`make ui`, then export PREFECT_API_URL=http://127.0.0.1:4200/api)"
        )
    return str(url)


async def _pools() -> list[str]:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        return sorted(p.name for p in await client.read_work_pools())


async def _create_pool(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate

    async with get_client() as client:
        await client.create_work_pool(WorkPoolCreate(name=name, type="process"))


def ensure_pool(name: str, create: bool) -> None:
    """The work pool ``name`` exists on the server (created as a process pool when ``create``); else a
    ``DeployError`` that lists the pools there are."""
    url = require_server()
    try:
        pools = asyncio.run(_pools())
    except Exception as exc:  # httpx / OS errors: the server does not answer
        raise DeployError(f"the Prefect server at {url} does not answer ({type(exc).__name__}: {exc})") from exc
    if name in pools:
        return
    if not create:
        raise DeployError(
            f"work pool {name!r} does not exist on {url} (pools there: {pools or 'none'}); create it with "
            f"`python -m flows.deploy --pool {name} --create-pool` or `prefect work-pool create {name} --type process`"
        )
    asyncio.run(_create_pool(name))


def deploy_to_pool(root: Path, pool: str, cron: str, name: str, create: bool = False, **parameters: Any) -> str:
    """Store the pipeline's deployment (code from this repository, ``root`` as its project) on the server,
    scheduled by ``cron`` on the process pool ``pool``; returns the deployment id."""
    from flows.pipeline import pipeline_flow

    ensure_pool(pool, create)
    source = pipeline_flow.from_source(source=str(REPO), entrypoint=ENTRYPOINT)
    deployment_id = source.deploy(
        name=name,
        work_pool_name=pool,
        cron=cron,
        parameters={"root": str(root.resolve()), **{k: v for k, v in parameters.items() if v is not None}},
        build=False,
        push=False,
        print_next_steps=False,
    )
    return str(deployment_id)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--cron", default=None)
    ap.add_argument("--pool", default=None, help="deploy to this process work pool instead of serving")
    ap.add_argument("--create-pool", action="store_true", help="create the pool (type process) when missing")
    ap.add_argument("--runner", default=None, choices=["inline", "threads", "dask"], help="the grid's task runner")
    a = ap.parse_args(argv)
    root = Path(a.root)
    settings = deploy_settings(root)
    cron = a.cron or settings["cron"]
    if a.pool:
        try:
            dep = deploy_to_pool(root, a.pool, cron, settings["name"], a.create_pool, runner=a.runner)
        except HybridrecError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"deployment pipeline/{settings['name']} ({dep}) on work pool {a.pool!r}, cron {cron!r}; "
              f"start a worker: python -m flows.worker --pool {a.pool}")  # fmt: skip
        return 0
    from flows.pipeline import pipeline_flow

    if not os.environ.get("PREFECT_API_URL"):
        print(
            "note: PREFECT_API_URL is not set; schedules need a running server (make ui), "
            "otherwise runs live only as long as this process.",
            file=sys.stderr,
        )
    parameters: dict[str, Any] = {"root": str(root.resolve())}
    if a.runner:
        parameters["runner"] = a.runner
    pipeline_flow.serve(name=settings["name"], cron=cron, parameters=parameters)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
