"""Run a command against a Prefect server started for the duration of that command.

    python -m flows.with_server -- dvc repro

Every ``dvc repro`` stage is its own process; in ephemeral mode each would start (and stop) a temporary
Prefect server, ~6 s apiece. Sharing one server for the whole ``dvc repro`` cuts that to one start, and
the runs land in the project's Prefect database (PREFECT_HOME), where ``make ui`` shows them afterwards.
If PREFECT_API_URL is already set (a server you started), the command simply runs against it.

The server goes down with the wrapper, however the wrapper ends:

* normal end, Ctrl-C, SIGTERM, SIGHUP (closed terminal): the wrapper passes the signal on to the command,
  waits for it, then stops the server (SIGTERM, then SIGKILL);
* ``kill -9`` of the wrapper (or of its whole process group): the server runs through this module
  (``--serve-for <wrapper pid>``), which asks the kernel for SIGTERM when its parent dies (Linux
  ``prctl(PR_SET_PDEATHSIG)``) and also polls its parent pid twice a second (every platform); once the
  wrapper is gone it shuts the server down, and exits hard if that takes more than ``SHUTDOWN_GRACE_S``.

The server sits in its own process group (so a Ctrl-C meant for the command does not stop it before the
command has reported to it), not in its own session.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import runpy
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from types import FrameType

import flows  # noqa: F401  (sets the quiet, offline Prefect defaults)

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 0.5
SHUTDOWN_GRACE_S = 15.0
COMMAND_GRACE_S = 30.0
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)


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
    """Stop the server's process group: SIGTERM, SIGINT, then SIGKILL."""
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


# ---------------------------------------------------------------------------------------------- server side
def die_with_parent(parent: int) -> None:
    """Ask the kernel to send SIGTERM when our parent dies (Linux); exit now if it is already gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def watch_parent(parent: int, interval_s: float = WATCH_INTERVAL_S, grace_s: float = SHUTDOWN_GRACE_S) -> None:
    """Poll the parent pid; when the parent is gone, SIGTERM ourselves (the server shuts down cleanly) and
    exit hard if we are still alive ``grace_s`` later."""
    while os.getppid() == parent:
        time.sleep(interval_s)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace_s)
    os._exit(1)


def serve_for(parent: int, server_args: list[str]) -> int:
    """Run ``prefect server start SERVER_ARGS`` in this process, tied to the life of ``parent``."""
    die_with_parent(parent)
    threading.Thread(target=watch_parent, args=(parent,), name="parent-watchdog", daemon=True).start()
    sys.argv = ["prefect", "server", "start", *server_args]
    try:
        runpy.run_module("prefect", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return 0


# ---------------------------------------------------------------------------------------------- wrapper side
def start_server(port: int, log_path: str) -> subprocess.Popen:  # type: ignore[type-arg]
    args = ["--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "flows.with_server", "--serve-for", str(os.getpid()), "--", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            process_group=0,
        )


@contextlib.contextmanager
def forwarding_signals(proc: subprocess.Popen) -> Iterator[None]:  # type: ignore[type-arg]
    """While the command runs, SIGTERM / SIGHUP / SIGINT sent to the wrapper go to the command instead (a
    Ctrl-C reaches both from the terminal; the command ends and the wrapper then stops the server)."""

    def forward(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            if signum != signal.SIGINT or os.getpgid(proc.pid) != os.getpgrp():
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_command(argv: list[str], env: dict[str, str], banner: str = "") -> int:
    proc = subprocess.Popen(argv, env=env)
    try:
        with forwarding_signals(proc):
            if banner:
                print(banner, flush=True)
            rc = proc.wait()
            return 128 - rc if rc < 0 else rc  # killed by signal N: 128 + N, as a shell reports it
    finally:
        if proc.poll() is None:  # the wrapper itself failed: give the command a chance, then stop it
            proc.terminate()
            try:
                proc.wait(COMMAND_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.kill()


def _exit_on_signal(signum: int, frame: FrameType | None) -> None:
    """Before the command runs, a SIGTERM / SIGHUP ends the wrapper through its ``finally`` (server stopped)."""
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--serve-for"] and len(argv) >= 2:
        rest = argv[2:]
        return serve_for(int(argv[1]), rest[1:] if rest[:1] == ["--"] else rest)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m flows.with_server -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    log_path = os.path.join(os.environ["PREFECT_HOME"], "server.log")
    os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
    server = start_server(port, log_path)
    try:
        wait_healthy(api, server, float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", 90)))
        banner = f"prefect server for this run: {api} (pid {server.pid}, log: {log_path})"
        return run_command(argv, {**os.environ, "PREFECT_API_URL": api}, banner)
    finally:
        stop(server)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
