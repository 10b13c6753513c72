"""Run a command against a Prefect server started for the duration of that command.

    python -m flows.with_server -- dvc repro

Every ``dvc repro`` stage is its own process; in ephemeral mode each would start (and stop) a temporary
Prefect server, ~6 s apiece. Sharing one server for the whole ``dvc repro`` cuts that to one start, and
the runs land in the project's Prefect database (PREFECT_HOME), where ``make ui`` shows them afterwards.
If PREFECT_API_URL is already set (a server you started), the command simply runs against it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import flows  # noqa: F401  (sets the quiet, offline Prefect defaults)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, proc: subprocess.Popen, timeout_s: float) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"prefect server at {url} not healthy after {timeout_s:.0f}s")


def stop(proc: subprocess.Popen) -> None:  # type: ignore[type-arg]
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGINT, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m flows.with_server -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(argv)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log_path = os.path.join(os.environ["PREFECT_HOME"], "server.log")
    os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
    with open(log_path, "ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_healthy(api, server, float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 90)))
        print(f"prefect server for this run: {api} (log: {log_path})", flush=True)
        return subprocess.call(argv, env={**os.environ, "PREFECT_API_URL": api})
    finally:
        stop(server)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
