"""The grid fanned out: runner settings, placement (Dask resources), bad scheduler addresses, and a real
2-worker LocalCluster on 127.0.0.1 whose artifacts are compared file by file with the serial run's."""

from __future__ import annotations

import csv
import itertools
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from flows.fanout import (
    GPU_RESOURCE,
    GPU_TAG,
    RUN_RESOURCE,
    FanoutError,
    FanoutSettings,
    Placement,
    dask_placement,
    load_settings,
    local_cluster,
    open_fanout,
    scheduler_resources,
    settings_from_dict,
    worker_specs,
)
from flows.grid import grid_runs
from tasks.common.config import params_from_dict
from tasks.common.errors import ConfigError
from tests.conftest import REPO, small_params, write_params

TIMINGS = {"train_seconds", "seconds_per_epoch", "eval_seconds", "threads"}
TIMING_COLUMNS = {"fit_seconds", "seconds"}


# ---------------------------------------------------------------------------------------------- settings
def test_defaults_and_overrides() -> None:
    assert settings_from_dict(None) == FanoutSettings()
    s = settings_from_dict({"runner": "threads", "workers": 3}, workers=4, threads_per_worker=None)
    assert (s.runner, s.workers, s.threads_per_worker) == ("threads", 4, 1)
    assert settings_from_dict({"runner": "dask", "address": "tcp://10.0.0.5:8786", "timeout_s": 5}).timeout_s == 5.0


@pytest.mark.parametrize(
    ("section", "param", "expected"),
    [
        ({"runner": "ray"}, "fanout.runner", "['inline', 'threads', 'dask']"),
        ({"workers": 0}, "fanout.workers", ">= 1"),
        ({"threads_per_worker": 1.5}, "fanout.threads_per_worker", "integer"),
        ({"timeout_s": 0}, "fanout.timeout_s", "> 0"),
        ({"runner": "dask", "address": "http://x:8786"}, "fanout.address", "tcp://"),
        ({"runner": "threads", "address": "tcp://127.0.0.1:8786"}, "fanout.runner", "'dask'"),
        ({"n_workers": 2}, "fanout.n_workers", "threads_per_worker"),
    ],
)
def test_bad_settings_name_the_parameter(section: dict, param: str, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        settings_from_dict(section)
    assert exc.value.param == param and expected in exc.value.expected


def test_settings_come_from_params_then_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"dataset": "ml-100k", "fanout": {"runner": "threads"}}))
    assert load_settings(tmp_path).runner == "threads"
    assert load_settings(tmp_path, runner="inline").runner == "inline"
    (tmp_path / "params.yaml").write_text("dataset: ml-100k\nfanout: dask\n")
    with pytest.raises(ConfigError, match="fanout"):
        load_settings(tmp_path)


# ---------------------------------------------------------------------------------------------- placement
def test_cpu_runs_take_a_run_slot_and_cuda_runs_a_gpu() -> None:
    workers = {"w0": {RUN_RESOURCE: 1, GPU_RESOURCE: 1}, "w1": {RUN_RESOURCE: 1}}
    assert dask_placement("cpu", workers).resources == {RUN_RESOURCE: 1}
    gpu = dask_placement("cuda:1", workers)
    assert gpu.resources == {RUN_RESOURCE: 1, GPU_RESOURCE: 1} and gpu.device == "cuda"
    assert gpu.tags == [GPU_TAG] and Placement("cpu").tags == []
    assert dask_placement("cpu", {"w": {}}).resources == {}  # a plain external cluster: no resources asked


def test_cuda_runs_without_a_gpu_worker_are_refused_before_any_work() -> None:
    with pytest.raises(FanoutError, match=r"none of the 2 Dask workers declares the resource GPU=1"):
        dask_placement("cuda", {"w0": {RUN_RESOURCE: 1}, "w1": {}})


def test_local_workers_own_one_gpu_each_and_the_rest_hide_them() -> None:
    specs = worker_specs(3, 2, gpus=1, api_url="http://127.0.0.1:1/api")
    assert [r for r, _ in specs] == [{RUN_RESOURCE: 1, GPU_RESOURCE: 1}, {RUN_RESOURCE: 1}, {RUN_RESOURCE: 1}]
    assert [e["CUDA_VISIBLE_DEVICES"] for _, e in specs] == ["0", "", ""]
    assert all(e["HYBRIDREC_THREADS"] == "2" and e["OMP_NUM_THREADS"] == "2" for _, e in specs)
    assert all(e["PREFECT_API_URL"] == "http://127.0.0.1:1/api" for _, e in specs)
    assert all("CUDA_VISIBLE_DEVICES" not in e for _, e in worker_specs(2, 1, gpus=0))


def test_in_process_runners() -> None:
    with open_fanout(FanoutSettings(), "cpu") as fan:
        assert fan.runner._max_workers == 1 and fan.placement == Placement("cpu")
    with open_fanout(FanoutSettings(runner="threads", workers=3, threads_per_worker=2), "cpu") as fan:
        assert fan.runner._max_workers == 3 and fan.placement.threads == 2 and not fan.placement.chain_gpu


def test_pretrained_runs_follow_their_sources() -> None:
    raw = small_params(Path("/nonexistent"), instances=["random-80-10-10-s0", "random-80-10-10-s1"])
    raw["train"]["models"] = ["gf-gmf", "gf-mlp"]
    raw["train"]["pretrained"] = [{"model": "neumf-pre", "from": ["gf-gmf", "gf-mlp"]}]
    raw["models"]["neumf-pre"] = {"base": "neumf", "pretrain": ["gf-gmf", "gf-mlp"]}
    runs, sources = grid_runs(params_from_dict(raw))
    assert runs[-2:] == [("neumf-pre", "random-80-10-10-s0"), ("neumf-pre", "random-80-10-10-s1")]
    assert sources[("neumf-pre", "random-80-10-10-s1")] == [("gf-gmf", "random-80-10-10-s1"),
                                                          ("gf-mlp", "random-80-10-10-s1")]  # fmt: skip


# ---------------------------------------------------------------------------------------------- bad addresses
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_scheduler_address_nobody_listens_on_fails_within_the_timeout() -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(FanoutError, match=r"no Dask scheduler answered within 2 s") as exc:
        scheduler_resources(address, timeout_s=2)
    assert address in str(exc.value) and time.monotonic() - t0 < 15


def test_a_scheduler_address_that_accepts_but_never_answers_fails_within_the_timeout() -> None:
    """A port that accepts the connection and then stays silent (a firewall, some other service)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(FanoutError, match="no Dask scheduler answered"):
            scheduler_resources(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout_s=2)
        assert time.monotonic() - t0 < 15
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


def test_a_scheduler_without_workers_fails_within_the_timeout() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, protocol="tcp://", host="127.0.0.1", scheduler_port=0,
                      dashboard_address=None) as cluster:
        t0 = time.monotonic()
        with pytest.raises(FanoutError, match=r"has 0 worker\(s\) after 1 s, 1 needed"):
            scheduler_resources(cluster.scheduler_address, timeout_s=1)
        assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------------------------------------- real cluster
def test_gpu_runs_queue_on_the_one_gpu_worker() -> None:
    """Three tasks asking for GPU=1 on a 2-worker LocalCluster with one GPU worker: one at a time, all on it.
    (No CUDA needed: the scheduler places by declared resources.)"""
    import dask
    from distributed import Client, get_worker

    def hold(i: int) -> tuple[str, float, float]:
        t0 = time.time()
        time.sleep(0.4)
        return get_worker().name, t0, time.time()

    settings = FanoutSettings(runner="dask", workers=2, timeout_s=60)
    with local_cluster(settings, gpus=1) as cluster, Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
        with dask.annotate(resources={RUN_RESOURCE: 1, GPU_RESOURCE: 1}):
            futures = [client.submit(hold, i, pure=False) for i in range(3)]
        spans = sorted(f.result() for f in futures)
    assert {name for name, _, _ in spans} == {"hybridrec-0"}
    ordered = sorted(spans, key=lambda s: s[1])
    assert all(a[2] <= b[1] for a, b in itertools.pairwise(ordered))


def _grid_params(raw_dir: Path) -> dict:
    raw = small_params(raw_dir, max_epochs=2, instances=["random-80-10-10-s0", "random-80-10-10-s1"])
    raw["train"]["models"] = ["biased-mf", "gf-gmf", "gf-mlp"]
    raw["train"]["pretrained"] = [{"model": "neumf-pre", "from": ["gf-gmf", "gf-mlp"]}]
    raw["models"]["gf-gmf"] = {**raw["models"]["gf-gmf"], "factors": 8, "batch_size": 512}
    raw["models"]["gf-mlp"] = {**raw["models"]["gf-mlp"], "factors": 8, "predictor": [16, 8], "batch_size": 512}
    raw["models"]["neumf-pre"] = {"base": "neumf", "gmf_factors": 8, "mlp_factors": 8, "predictor": [16, 8],
                                  "batch_size": 512, "pretrain": ["gf-gmf", "gf-mlp"]}  # fmt: skip
    return raw


def _files(root: Path) -> dict[str, Path]:
    outputs = ("runs", "metrics", "evaluations", "breakdowns")
    return {
        str(p.relative_to(root)): p
        for top in outputs
        for p in sorted((root / "artifacts" / top).rglob("*"))
        if p.is_file()
    }


def _same_artifact(rel: str, a: Path, b: Path) -> None:
    if rel.endswith("model.pt"):
        import torch

        sa, sb = (torch.load(p, map_location="cpu", weights_only=True) for p in (a, b))
        sa, sb = (s.get("model", s) if isinstance(s, dict) else s for s in (sa, sb))
        assert json.dumps(_shapes(sa)) == json.dumps(_shapes(sb)), rel
        assert _equal(sa, sb), f"{rel}: weights differ"
    elif rel.endswith(".parquet"):  # per-user metrics: the same table
        import polars as pl

        assert pl.read_parquet(a).equals(pl.read_parquet(b)), rel
    elif rel.endswith("train.json") or "/evaluations/" in rel:
        ja, jb = (json.loads(p.read_text()) for p in (a, b))
        assert {k: v for k, v in ja.items() if k not in TIMINGS} == {k: v for k, v in jb.items() if k not in TIMINGS}
    elif rel.endswith("history.csv"):
        ra, rb = ([{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in csv.DictReader(p.open())]
                  for p in (a, b))  # fmt: skip
        assert ra == rb, rel
    else:  # metrics, breakdowns, config.json: byte-identical
        assert a.read_bytes() == b.read_bytes(), rel


def _shapes(state: object) -> object:
    if isinstance(state, dict):
        return {str(k): _shapes(v) for k, v in state.items()}
    return list(getattr(state, "shape", [])) if hasattr(state, "shape") else repr(type(state))


def _equal(a: object, b: object) -> bool:
    import torch

    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return bool(torch.equal(a, b))
    return a == b


@pytest.mark.slow
def test_grid_on_a_two_worker_local_cluster_equals_the_serial_run(
    prefect_harness, prepared_root: Path, tmp_path: Path, ml100k_small: Path
) -> None:  # type: ignore[no-untyped-def]
    from flows.evaluate import evaluate_flow
    from flows.grid import run_grid
    from flows.train import train_flow
    from tasks.common.config import load_params
    from tasks.common.paths import Layout
    from tasks.splits.stage import make_splits

    write_params(prepared_root, _grid_params(ml100k_small))
    make_splits(Layout(prepared_root), load_params(prepared_root / "params.yaml"), "ml-100k")
    fanned = tmp_path / "fanned"
    shutil.copytree(prepared_root, fanned)

    train_flow(root=str(prepared_root))  # the serial path: what the DVC stages run, one after another
    evaluate_flow(root=str(prepared_root))
    out = run_grid(root=str(fanned), runner="dask", workers=2, threads_per_worker=1)

    assert {r.threads for r in out["train"]} == {1} and len(out["evaluate"]) == 8
    serial, parallel = _files(prepared_root), _files(fanned)
    assert sorted(serial) == sorted(parallel) and len(serial) >= 8 * 7  # model, config, history, train, metrics ...
    for rel, path in serial.items():
        _same_artifact(rel, path, parallel[rel])

    # the dependencies held: evaluate after its train, the pre-trained run after both of its sources
    def mtime(rel: str) -> int:
        return (fanned / rel).stat().st_mtime_ns

    for model in ("biased-mf", "gf-gmf", "gf-mlp", "neumf-pre"):
        for split in ("random-80-10-10-s0", "random-80-10-10-s1"):
            run = f"artifacts/runs/ml-100k/{model}/{split}"
            assert mtime(f"artifacts/metrics/ml-100k/{model}/{split}.json") > mtime(f"{run}/train.json")
    for split in ("random-80-10-10-s0", "random-80-10-10-s1"):
        started = json.loads((fanned / f"artifacts/runs/ml-100k/neumf-pre/{split}/config.json").read_text())
        assert set(started["pretrained_from"]) == {"gf-gmf", "gf-mlp"}
        for src in ("gf-gmf", "gf-mlp"):
            assert mtime(f"artifacts/runs/ml-100k/neumf-pre/{split}/model.pt") > mtime(
                f"artifacts/runs/ml-100k/{src}/{split}/train.json"
            )


def test_repo_params_parse_with_a_fanout_section() -> None:
    """params.yaml's fanout section (when the repository has one) is a valid one."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    settings_from_dict(raw.get("fanout"))
