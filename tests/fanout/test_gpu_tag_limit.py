"""A Prefect tag concurrency limit on the GPU tag (``prefect concurrency-limit create hybridrec-gpu 1``) keeps
two CUDA runs of the grid apart on a shared server, whatever the task runner; without the limit they overlap
(the control that shows the test can fail)."""

from __future__ import annotations

import time
import uuid

import pytest
from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.task_runners import ThreadPoolTaskRunner

from flows.fanout import GPU_TAG, Placement

pytestmark = pytest.mark.slow


@task
def gpu_run(seconds: float) -> tuple[float, float]:
    start = time.monotonic()
    time.sleep(seconds)
    return start, time.monotonic()


@flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
def two_runs(tags: list[str]) -> list[tuple[float, float]]:
    runner = gpu_run.with_options(tags=set(tags))
    futures = [runner.submit(1.5) for _ in range(2)]
    return [f.result() for f in futures]


def overlap(spans: list[tuple[float, float]]) -> float:
    (_, a1), (b0, b1) = sorted(spans)
    return min(a1, b1) - b0


def test_a_tag_limit_of_one_serialises_the_cuda_runs(prefect_harness) -> None:  # type: ignore[no-untyped-def]
    tags = Placement(device="cuda").tags
    assert tags == [GPU_TAG]
    assert overlap(two_runs([f"unlimited-{uuid.uuid4().hex[:6]}"])) > 0.5  # no limit: the two runs overlap

    async def create() -> None:
        async with get_client() as client:
            await client.create_concurrency_limit(tag=GPU_TAG, concurrency_limit=1)

    async def delete() -> None:
        async with get_client() as client:
            await client.delete_concurrency_limit_by_tag(tag=GPU_TAG)

    import asyncio

    asyncio.run(create())
    try:
        spans = two_runs(tags)
    finally:
        asyncio.run(delete())
    assert overlap(spans) <= 0.0, spans  # one slot: the second run started after the first ended
