"""The glibc malloc settings training processes get (tasks/common/malloc.py): added unless the user set their own
or opted out, and passed to the Dask workers we start."""

from __future__ import annotations

from flows.fanout import worker_env
from tasks.common.malloc import MALLOC_ENV, malloc_env


def test_added_unless_set_or_opted_out() -> None:
    assert malloc_env({}) == MALLOC_ENV
    assert set(malloc_env({"MALLOC_TRIM_THRESHOLD_": "1"})) == {"MALLOC_MMAP_THRESHOLD_"}  # the user's value wins
    assert malloc_env({"HYBRIDREC_MALLOC": "default"}) == {}
    assert int(MALLOC_ENV["MALLOC_MMAP_THRESHOLD_"]) >= 2**30 and int(MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]) >= 2**30


def test_local_cluster_workers_get_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for name in (*MALLOC_ENV, "HYBRIDREC_MALLOC"):
        monkeypatch.delenv(name, raising=False)
    env = worker_env(1, None)
    assert {k: env[k] for k in MALLOC_ENV} == MALLOC_ENV and env["OMP_NUM_THREADS"] == "1"
    monkeypatch.setenv("HYBRIDREC_MALLOC", "default")
    assert not set(MALLOC_ENV) & set(worker_env(1, None))
