"""``flows.with_server`` never leaves its Prefect server behind, whatever ends the wrapper (kill -9 included)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and process groups"),
]
GONE_WITHIN_S = 20.0
BANNER = re.compile(r"prefect server for this run: http://127\.0\.0\.1:(\d+)/api \(pid (\d+)")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def start_wrapper(tmp_path: Path, command: list[str]) -> tuple[subprocess.Popen[str], int, int]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "PYTHONUNBUFFERED": "1"}
    wrapper = subprocess.Popen(
        [sys.executable, "-m", "flows.with_server", "--", *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: the test can clean up the command afterwards
    )
    assert wrapper.stdout is not None
    deadline = time.monotonic() + 120
    for line in wrapper.stdout:
        if m := BANNER.search(line):
            return wrapper, int(m[1]), int(m[2])
        assert time.monotonic() < deadline, "no server banner"
    raise AssertionError(f"wrapper ended without starting the server (rc {wrapper.wait()})")


def wait_gone(pid: int, port: int) -> float:
    t0 = time.monotonic()
    while (alive(pid) or port_open(port)) and time.monotonic() - t0 < GONE_WITHIN_S:
        time.sleep(0.2)
    return time.monotonic() - t0


def cleanup(wrapper: subprocess.Popen[str], server: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(wrapper.pid, signal.SIGKILL)  # the command left in the wrapper's group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        wrapper.wait(5)


def test_server_goes_down_after_kill_9_of_the_wrapper(tmp_path: Path) -> None:
    wrapper, port, server = start_wrapper(tmp_path, [sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert alive(server) and port_open(port)
        os.kill(wrapper.pid, signal.SIGKILL)
        wrapper.wait(10)
        took = wait_gone(server, port)
        assert not alive(server), f"server pid {server} still running {took:.1f} s after kill -9 of the wrapper"
        assert not port_open(port), f"port {port} still open {took:.1f} s after kill -9 of the wrapper"
    finally:
        cleanup(wrapper, server)


def test_sigterm_of_the_wrapper_stops_the_command_and_the_server(tmp_path: Path) -> None:
    marker, ready = tmp_path / "command-got-sigterm", tmp_path / "command-ready"
    command = (
        "import signal, sys, time, pathlib\n"
        f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).touch(), sys.exit(0)))\n"
        f"pathlib.Path({str(ready)!r}).touch()\n"
        "time.sleep(600)\n"
    )
    wrapper, port, server = start_wrapper(tmp_path, [sys.executable, "-c", command])
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(wrapper.pid, signal.SIGTERM)
        assert wrapper.wait(GONE_WITHIN_S) == 0  # the command's own exit status
        assert marker.exists()  # the command was told, not left running
        wait_gone(server, port)
        assert not alive(server) and not port_open(port)
    finally:
        cleanup(wrapper, server)
