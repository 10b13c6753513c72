"""Where the grid's train and evaluate runs execute: the task runner, its cluster, and run placement.

``params.yaml``'s ``fanout`` section (or the command line, ``--runner`` ...) picks one of:

* ``inline`` (default): one run at a time in the flow's process (a one-thread pool: the serial order);
* ``threads``: ``workers`` runs at a time in threads of the flow's process, each with ``threads_per_worker``
  torch threads (torch's thread count is process-wide, so every run gets that count);
* ``dask``: prefect-dask's ``DaskTaskRunner``. Without ``address`` a ``LocalCluster`` is started for the flow
  and closed after it: ``workers`` processes × ``threads_per_worker`` threads, scheduler, workers and nannies
  on 127.0.0.1 only, no dashboard. Each worker declares the resource ``run=1`` (one run at a time; the run
  sets torch, OpenMP and MKL to the worker's threads) and, on a CUDA machine, the first ``min(workers,
  GPUs)`` workers declare ``GPU=1`` and see only their own GPU (``CUDA_VISIBLE_DEVICES``). With ``address``
  (``tcp://host:8786``) the flow uses that scheduler's workers: it must answer within ``timeout_s`` and
  have a worker within ``timeout_s`` (else a ``FanoutError``, no hang); start workers with
  ``dask worker tcp://host:8786 --nthreads T --resources "run=1"`` (``"run=1,GPU=1"`` on a GPU each).

Placement: a CUDA run asks the Dask scheduler for ``GPU=1``, so one GPU never trains two runs at once (more
CUDA runs than GPUs queue; no worker declaring ``GPU`` is a ``FanoutError`` before anything is submitted).
``device: auto`` is resolved once, in the flow, so every run of a grid uses the same kind of device (a
worker never falls back to the CPU on its own). In-process runners chain CUDA runs one after another.
CUDA runs also carry the Prefect tag ``hybridrec-gpu``: on a shared server,
``prefect concurrency-limit create hybridrec-gpu <number of GPUs>`` bounds them across flows and machines.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from tasks.common.errors import ConfigError, HybridrecError
from tasks.common.safe_yaml import load_user_yaml

RUNNERS = ("inline", "threads", "dask")
GPU_TAG = "hybridrec-gpu"
RUN_RESOURCE = "run"
GPU_RESOURCE = "GPU"
ADDRESS = re.compile(r"^(tcp|tls)://[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")
THREAD_ENV = ("HYBRIDREC_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class FanoutError(HybridrecError):
    """The task runner cannot be set up: scheduler unreachable, no worker, no worker with a GPU ..."""


@dataclass(frozen=True)
class FanoutSettings:
    """``params.yaml``'s ``fanout`` section."""

    runner: str = "inline"
    """inline | threads | dask."""
    workers: int = 2
    """runs at a time: threads (``threads``) or LocalCluster worker processes (``dask`` without address)."""
    threads_per_worker: int = 1
    """torch / OpenMP threads of each run (and Dask threads of each LocalCluster worker)."""
    address: str | None = None
    """an existing Dask scheduler (``tcp://host:8786``) instead of a LocalCluster (``dask`` only)."""
    timeout_s: float = 30.0
    """seconds to reach the scheduler, and to see a worker, before a ``FanoutError``."""


FIELDS = tuple(FanoutSettings.__dataclass_fields__)


def check_settings(s: FanoutSettings) -> FanoutSettings:
    """Every field checked; errors name ``fanout.<field>``, the valid choices and the value found."""
    if s.runner not in RUNNERS:
        raise ConfigError("fanout.runner", f"one of {list(RUNNERS)}", s.runner)
    for name in ("workers", "threads_per_worker"):
        value = getattr(s, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"fanout.{name}", "an integer >= 1", value)
    if isinstance(s.timeout_s, bool) or not isinstance(s.timeout_s, (int, float)) or not s.timeout_s > 0:
        raise ConfigError("fanout.timeout_s", "a number of seconds > 0", s.timeout_s)
    if s.address is not None:
        if not isinstance(s.address, str) or not ADDRESS.match(s.address):
            raise ConfigError("fanout.address", "a Dask scheduler address such as 'tcp://10.0.0.5:8786', or null",
                              s.address)  # fmt: skip
        if s.runner != "dask":
            raise ConfigError("fanout.runner", "'dask' when fanout.address is set", s.runner)
    return s


def settings_from_dict(section: Mapping[str, Any] | None, **overrides: Any) -> FanoutSettings:
    """``section`` (the raw ``fanout`` mapping, or None) with the non-None ``overrides`` (command line) on top."""
    section = dict(section or {})
    if not isinstance(section, dict):
        raise ConfigError("fanout", "a mapping", section)
    unknown = sorted(set(section) - set(FIELDS))
    if unknown:
        raise ConfigError(f"fanout.{unknown[0]}", f"one of {sorted(FIELDS)}", unknown[0])
    values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    if "timeout_s" in values and isinstance(values["timeout_s"], int) and not isinstance(values["timeout_s"], bool):
        values["timeout_s"] = float(values["timeout_s"])
    return check_settings(FanoutSettings(**values))


def load_settings(root: str | Path, **overrides: Any) -> FanoutSettings:
    """The ``fanout`` section of ``<root>/params.yaml`` with the command-line ``overrides`` on top."""
    raw = load_user_yaml(Path(root) / "params.yaml") or {}
    section = raw.get("fanout") if isinstance(raw, dict) else None
    if section is not None and not isinstance(section, dict):
        raise ConfigError("fanout", "a mapping", section)
    return settings_from_dict(section, **overrides)


# ---------------------------------------------------------------------------------------------- placement
@dataclass(frozen=True)
class Placement:
    """How the grid's runs are placed: what each asks of the Dask scheduler, and what the flow chains."""

    device: str
    """the concrete device every run uses (``auto`` resolved once, in the flow)."""
    threads: int | None = None
    """torch threads of a run in the flow's own process (None: the params' ``train.threads``)."""
    resources: dict[str, float] = field(default_factory=dict)
    """Dask worker resources each run asks for."""
    chain_gpu: bool = False
    """in-process runners: a CUDA run waits for the previous CUDA run."""

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def tags(self) -> list[str]:
        return [GPU_TAG] if self.on_gpu else []


def concrete_device(device: str, cuda_available: bool) -> str:
    """``auto`` → ``cuda`` / ``cpu`` as seen from the flow; anything else unchanged."""
    if device == "auto":
        return "cuda" if cuda_available else "cpu"
    return device


def dask_placement(device: str, worker_resources: Mapping[str, Mapping[str, float]]) -> Placement:
    """Resources of one run on a Dask cluster whose workers declare ``worker_resources`` (address → resources)."""
    declared = [dict(r) for r in worker_resources.values()]
    wants: dict[str, float] = {}
    if any(RUN_RESOURCE in r for r in declared):
        wants[RUN_RESOURCE] = 1
    if device.startswith("cuda"):
        if not any(r.get(GPU_RESOURCE, 0) >= 1 for r in declared):
            raise FanoutError(
                f"the grid's runs are CUDA runs (device {device!r}) but none of the {len(declared)} Dask workers "
                f"declares the resource {GPU_RESOURCE}=1 (found {declared}); start GPU workers with "
                f'`dask worker <scheduler> --resources "{RUN_RESOURCE}=1,{GPU_RESOURCE}=1"`, or run with --device cpu'
            )
        wants[GPU_RESOURCE] = 1
        device = "cuda"  # each GPU worker sees its own GPU as cuda:0
    return Placement(device=device, resources=wants)


# ---------------------------------------------------------------------------------------------- runners
def prefect_api_url() -> str:
    """The API the flow reports to; in ephemeral mode (no PREFECT_API_URL) the flow process's own temporary
    server, started now, so that the workers report to it instead of each starting one of their own."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if url:
        return str(url)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start(timeout=int(get_current_settings().server.ephemeral.startup_timeout_seconds))
    return str(server.api_url)


def worker_env(threads: int, gpu: int | None, api_url: str | None = None) -> dict[str, str]:
    from tasks.common.malloc import malloc_env

    env = {**malloc_env(), **{name: str(threads) for name in THREAD_ENV}}  # malloc: see tasks/common/malloc.py
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def worker_specs(
    workers: int, threads: int, gpus: int, api_url: str | None = None
) -> list[tuple[dict[str, float], dict[str, str]]]:
    """(resources, environment) of each LocalCluster worker: one run slot each; the first ``gpus`` own a GPU."""
    specs = []
    for i in range(workers):
        gpu = i if i < gpus else None
        resources: dict[str, float] = {RUN_RESOURCE: 1}
        if gpu is not None:
            resources[GPU_RESOURCE] = 1
        specs.append((resources, worker_env(threads, gpu if gpus else None, api_url)))
    if gpus:  # the CPU-only workers of a GPU machine hide every GPU
        specs = [(r, e if GPU_RESOURCE in r else {**e, "CUDA_VISIBLE_DEVICES": ""}) for r, e in specs]
    return specs


@contextlib.contextmanager
def local_cluster(settings: FanoutSettings, gpus: int, api_url: str | None = None) -> Iterator[Any]:
    """A LocalCluster on 127.0.0.1 (worker processes under nannies, no dashboard), closed on exit; its workers
    report task runs to the Prefect API ``api_url``."""
    import dask

    with dask.config.set(NANNY_CONFIG):
        yield from _local_cluster(settings, gpus, api_url)


NANNY_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}
"""Dask's nannies set ``MALLOC_TRIM_THRESHOLD_=65536`` in every worker by default: glibc then hands freed
memory back to the OS past 64 KiB, and the next tensor of that size page-faults again. Training allocates such
tensors every step; on this 2-core machine it made every run 2.5-3x slower in a worker than in the flow's
process (bench/fanout.py, 2026-12-02). Workers keep glibc's default."""


def _local_cluster(settings: FanoutSettings, gpus: int, api_url: str | None) -> Iterator[Any]:
    from distributed import LocalCluster, Nanny

    cluster = LocalCluster(
        n_workers=0,
        threads_per_worker=settings.threads_per_worker,
        processes=True,
        host="127.0.0.1",
        scheduler_port=0,
        dashboard_address=None,
        memory_limit=0,  # no nanny restarts on a memory threshold: a big run is not killed mid-epoch
        silence_logs=True,
    )
    try:
        base = dict(cluster.new_spec["options"])
        specs = worker_specs(settings.workers, settings.threads_per_worker, gpus, api_url)
        for i, (resources, env) in enumerate(specs):
            cluster.worker_spec[f"hybridrec-{i}"] = {"cls": Nanny, "options": {**base, "resources": resources,
                                                                                "env": env}}  # fmt: skip
        cluster.scale(settings.workers)
        yield cluster
    finally:
        cluster.close(timeout=settings.timeout_s)


async def _identity(address: str, timeout_s: float) -> dict[str, Any]:
    from distributed.core import rpc

    async with rpc(address, timeout=timeout_s) as scheduler:
        return dict(await scheduler.identity())


def scheduler_identity(address: str, timeout_s: float) -> dict[str, Any]:
    """The scheduler's ``identity`` (its workers and their resources), under a hard deadline of ``timeout_s``:
    a closed port, a host that drops packets or a port that accepts and then stays silent (where a plain
    ``distributed.Client`` waits for ever) all end in a ``FanoutError``."""

    def probe() -> dict[str, Any]:
        return asyncio.run(asyncio.wait_for(_identity(address, timeout_s), timeout_s))

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # own event loop, even inside a flow
        try:
            return pool.submit(probe).result()
        except (OSError, TimeoutError, EOFError) as exc:
            raise FanoutError(
                f"fanout.address {address!r}: no Dask scheduler answered within {timeout_s:g} s "
                f"({type(exc).__name__}: {exc or 'no answer'}); start one (`dask scheduler --host <host>`) or set "
                "fanout.address: null for a LocalCluster"
            ) from exc


def scheduler_resources(address: str, timeout_s: float, n_workers: int = 1) -> dict[str, dict[str, float]]:
    """Each worker's declared resources, once ``n_workers`` are up; a ``FanoutError`` within about
    ``timeout_s`` when the scheduler does not answer, or about ``2 × timeout_s`` when no worker joins."""
    deadline = time.monotonic() + timeout_s
    while True:
        info = scheduler_identity(address, timeout_s)
        workers = info.get("workers") or {}
        if len(workers) >= n_workers:
            return {w: dict(v.get("resources") or {}) for w, v in workers.items()}
        if time.monotonic() > deadline:
            raise FanoutError(
                f"the Dask scheduler at {address} has {len(workers)} worker(s) after {timeout_s:g} s, "
                f"{n_workers} needed; start workers with "
                f'`dask worker {address} --nthreads 1 --resources "{RUN_RESOURCE}=1"`'
            )
        time.sleep(0.25)


@dataclass
class Fanout:
    """An opened task runner and the placement of the grid's runs on it."""

    settings: FanoutSettings
    runner: TaskRunner  # type: ignore[type-arg]
    placement: Placement
    address: str | None = None


@contextlib.contextmanager
def open_fanout(settings: FanoutSettings, device: str) -> Iterator[Fanout]:
    """The task runner ``settings`` asks for (a LocalCluster lives as long as the ``with``)."""
    import torch

    check_settings(settings)
    cuda = torch.cuda.is_available()
    if settings.runner != "dask":
        dev = concrete_device(device, cuda)
        workers = 1 if settings.runner == "inline" else settings.workers
        threads = None if settings.runner == "inline" else settings.threads_per_worker
        placement = Placement(device=dev, threads=threads, chain_gpu=dev.startswith("cuda") and workers > 1)
        yield Fanout(settings, ThreadPoolTaskRunner(max_workers=workers), placement)
        return
    from prefect_dask import DaskTaskRunner

    client_kwargs = {"timeout": settings.timeout_s}
    if settings.address:
        resources = scheduler_resources(settings.address, settings.timeout_s)
        any_gpu = any(r.get(GPU_RESOURCE, 0) >= 1 for r in resources.values())
        placement = dask_placement(concrete_device(device, any_gpu), resources)
        yield Fanout(settings, DaskTaskRunner(address=settings.address, client_kwargs=client_kwargs), placement,
                     settings.address)  # fmt: skip
        return
    dev = concrete_device(device, cuda)
    gpus = torch.cuda.device_count() if dev.startswith("cuda") else 0
    with local_cluster(settings, gpus, prefect_api_url()) as cluster:
        address = cluster.scheduler_address
        resources = scheduler_resources(address, max(settings.timeout_s, 60.0), settings.workers)
        placement = dask_placement(dev, resources)
        yield Fanout(settings, DaskTaskRunner(address=address, client_kwargs=client_kwargs), placement, address)


def run_threads(placement_threads: int | None) -> int | None:
    """Torch threads for a run: on a Dask worker, the worker's own threads; else the placement's (None: params)."""
    if "distributed" not in sys.modules:  # not on a Dask worker (and no import of distributed for a DVC stage)
        return placement_threads
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return placement_threads
    env = os.environ.get("HYBRIDREC_THREADS")
    return int(env) if env and env.isdigit() and int(env) > 0 else int(worker.state.nthreads)


def with_threads(params: Any, threads: int | None) -> Any:
    """``params`` whose ``train.threads`` is ``threads`` (unchanged when None)."""
    if threads is None:
        return params
    return replace(params, train=replace(params.train, threads=threads))
