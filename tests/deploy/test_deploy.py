"""Deployments as in production: prefect.yaml, a process work pool and a worker, the server's database
(SQLite or a real PostgreSQL), retries on the acquisition, and a clear error for each bad input."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from flows.deploy import ENTRYPOINT, DeployError, deploy_settings, ensure_pool
from flows.server import DatabaseError, check_database_url
from tests.conftest import REPO, small_params, write_params


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------------------------- prefect.yaml
def test_prefect_yaml_deploys_the_pipeline_on_the_params_cron() -> None:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    (deployment,) = spec["deployments"]
    assert deployment["entrypoint"] == ENTRYPOINT
    assert (REPO / ENTRYPOINT.split(":")[0]).is_file()
    settings = deploy_settings(REPO)
    assert deployment["name"] == settings["name"]
    assert [s["cron"] for s in deployment["schedules"]] == [settings["cron"]]
    assert deployment["work_pool"]["name"] == "hybridrec"


# ---------------------------------------------------------------------------------------------- database URL
def test_sqlite_is_the_default() -> None:
    assert check_database_url("") == "sqlite"
    assert check_database_url("sqlite+aiosqlite:////tmp/prefect.db") == "sqlite"


def test_a_database_url_that_refuses_the_connection_is_one_clear_error() -> None:
    port = _free_port()
    url = f"postgresql+asyncpg://prefect:hunter2@127.0.0.1:{port}/prefect"
    t0 = time.monotonic()
    with pytest.raises(DatabaseError) as exc:
        check_database_url(url, timeout_s=3)
    text = str(exc.value)
    assert f"127.0.0.1:{port} refused the connection" in text and "PREFECT_API_DATABASE_CONNECTION_URL" in text
    assert "hunter2" not in text and "***" in text
    assert time.monotonic() - t0 < 10


def test_a_database_url_prefect_cannot_use_is_refused() -> None:
    with pytest.raises(DatabaseError, match="postgresql\\+asyncpg://"):
        check_database_url("mysql://u:p@127.0.0.1/prefect")


def test_the_server_command_refuses_a_dead_database(monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # type: ignore[no-untyped-def]
    from flows import server

    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", f"postgresql+asyncpg://p@127.0.0.1:{_free_port()}/p")
    assert server.main(["--port", "1"]) == 1
    assert "refused the connection" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- work pools
def test_a_work_pool_that_does_not_exist_is_refused(prefect_harness) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DeployError, match=r"work pool 'no-such-pool' does not exist on .*pools there"):
        ensure_pool("no-such-pool", create=False)
    from flows import worker

    assert worker.main(["--pool", "no-such-pool"]) == 1
    ensure_pool("made-here", create=True)
    ensure_pool("made-here", create=False)


# ---------------------------------------------------------------------------------------------- retries
def test_acquisition_retries_network_failures_only(prefect_harness, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   ml100k_small: Path) -> None:  # type: ignore[no-untyped-def]  # fmt: skip
    import flows.acquire as acq
    from tasks.common.errors import AcquisitionError

    root = write_params(tmp_path / "proj", small_params(ml100k_small))
    calls: list[int] = []
    real = acq.acquire_dataset

    def flaky(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise AcquisitionError("could not download https://example.org/x.zip: <urlopen error timed out>")
        return real(*args, **kwargs)

    monkeypatch.setattr(acq, "acquire_dataset", flaky)
    fast = acq.acquire_task.with_options(retry_delay_seconds=0)
    monkeypatch.setattr(acq, "acquire_task", fast)
    assert acq.acquire_flow(root=str(root))["source"] != "already present"
    assert len(calls) == 2
    assert acq.acquire_task.retries == acq.RETRIES >= 2  # the default: backoff with jitter between tries

    def corrupt(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        raise AcquisitionError("data/x.zip: sha256 mismatch: expected 0, found 1")

    monkeypatch.setattr(acq, "acquire_dataset", corrupt)
    calls.clear()
    with pytest.raises(AcquisitionError, match="mismatch"):
        acq.acquire_flow(root=str(root), force=True)
    assert len(calls) == 1  # a bad file is not fetched again and again


# ---------------------------------------------------------------------------------------------- end to end
def _stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    """A Prefect worker needs SIGTERM, then SIGINT (../shared/STACK.md)."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGINT, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait)


def _env(api_url: str, home: Path) -> dict[str, str]:
    return {**os.environ, "PREFECT_API_URL": api_url, "PREFECT_HOME": str(home), "HYBRIDREC_THREADS": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip


def _wait_for_run(flow_run_id: object, timeout_s: float) -> str:
    from prefect.client.orchestration import get_client

    async def state() -> str:
        async with get_client() as client:
            run = await client.read_flow_run(flow_run_id)  # type: ignore[arg-type]
            return run.state.type.value if run.state else "NONE"

    deadline = time.monotonic() + timeout_s
    current = "NONE"
    while time.monotonic() < deadline:
        current = asyncio.run(state())
        if current in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return current
        time.sleep(2)
    return current


@pytest.mark.slow
def test_deploy_on_a_work_pool_and_a_worker_runs_it(prefect_harness, tmp_path: Path, ml100k_small: Path) -> None:  # type: ignore[no-untyped-def]
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL

    from flows.deploy import deploy_to_pool

    params = small_params(ml100k_small, max_epochs=2, instances=["random-80-10-10-s0"], models=["biased-mf"])
    root = write_params(tmp_path / "proj", params)
    deploy_to_pool(root, "hybridrec-test", "0 3 * * 1", "e2e", create=True)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([sys.executable, "-m", "flows.worker", "--pool", "hybridrec-test"], cwd=REPO,
                              env=_env(str(PREFECT_API_URL.value()), tmp_path / "home"), stdout=log,
                              stderr=subprocess.STDOUT, process_group=0)  # fmt: skip
    try:
        run = run_deployment(name="pipeline/e2e", timeout=0)
        state = _wait_for_run(run.id, timeout_s=600)
        assert state == "COMPLETED", (tmp_path / "worker.log").read_text()[-4000:]
    finally:
        _stop(worker)
        log.close()
    assert (root / "reports" / "ml-100k" / "report.html").is_file()
    assert (root / "artifacts" / "metrics" / "ml-100k" / "biased-mf" / "random-80-10-10-s0.json").is_file()


# ---------------------------------------------------------------------------------------------- PostgreSQL
def _pg_bin() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(candidates[-1]).parent if candidates else None


@contextlib.contextmanager
def _postgres() -> Iterator[str]:
    """A throw-away PostgreSQL on 127.0.0.1 (trust auth, its own data directory), as the ``postgres`` user
    when run as root (the server refuses root); yields its asyncpg URL."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (.ci/run installs Debian's postgresql package)")
    prefix: list[str] = []
    data = Path(tempfile.mkdtemp(prefix="hybridrec-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(data, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(str(bindir / "initdb"), "-D", str(data / "db"), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {data} -c fsync=off"
        run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-o", opts, "-l", str(data / "log"), "-w", "-t", "60",
            "start")  # fmt: skip
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_a_flow_runs_against_a_server_on_postgresql(tmp_path: Path, ml100k_small: Path) -> None:
    from flows.with_server import stop, wait_healthy

    with _postgres() as db:
        assert check_database_url(db) == "postgresql"
        port = _free_port()
        env = {**_env(f"http://127.0.0.1:{port}/api", tmp_path / "home"), "PREFECT_API_DATABASE_CONNECTION_URL": db}
        log = (tmp_path / "server.log").open("wb")
        server = subprocess.Popen([sys.executable, "-m", "flows.server", "--port", str(port)], cwd=REPO, env=env,
                                  stdout=log, stderr=subprocess.STDOUT, process_group=0)  # fmt: skip
        try:
            wait_healthy(f"http://127.0.0.1:{port}/api", server, 120)
            root = write_params(tmp_path / "proj", small_params(ml100k_small))
            proc = subprocess.run([sys.executable, "-m", "flows.acquire", "--root", str(root)], cwd=REPO, env=env,
                                  capture_output=True, text=True, check=False)  # fmt: skip
            assert proc.returncode == 0, proc.stderr[-3000:]

            async def runs() -> list[str]:
                import asyncpg

                conn = await asyncpg.connect(db.replace("postgresql+asyncpg", "postgresql"))
                try:
                    query = "select f.name, r.state_type from flow_run r join flow f on f.id = r.flow_id"
                    rows = await conn.fetch(query)
                finally:
                    await conn.close()
                return [f"{r['name']}:{r['state_type']}" for r in rows]

            assert "acquire:COMPLETED" in asyncio.run(runs())  # the run is recorded in PostgreSQL
        finally:
            stop(server)
            log.close()
