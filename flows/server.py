"""Start the Prefect server (what ``make ui`` runs): SQLite by default, PostgreSQL when
``PREFECT_API_DATABASE_CONNECTION_URL`` says so, bound to 127.0.0.1 unless ``--host`` says otherwise.

    python -m flows.server [--host 127.0.0.1] [--port 4200]
    export PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://prefect:secret@127.0.0.1:5432/prefect
    python -m flows.server

Before the server starts, the database URL is checked: a scheme Prefect cannot use, or a PostgreSQL that
refuses the connection (down, wrong port, wrong password, no such database), is one clear line naming the
URL (password hidden) and the reason, instead of a server that dies in its migrations with a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from sqlalchemy.engine import URL

import flows  # noqa: F401
from tasks.common.errors import HybridrecError

DB_ENV = "PREFECT_API_DATABASE_CONNECTION_URL"


class DatabaseError(HybridrecError):
    """The Prefect server's database cannot be used."""


def database_url() -> str | None:
    return os.environ.get(DB_ENV) or None


def check_database_url(url: str | None = None, timeout_s: float = 10.0) -> str:
    """``"sqlite"`` or ``"postgresql"`` once the database answers; a ``DatabaseError`` otherwise."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = url if url is not None else database_url()
    if not url:
        return "sqlite"
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"{DB_ENV}: not a database URL ({exc})") from exc
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername == "sqlite+aiosqlite":
        return "sqlite"
    if parsed.drivername != "postgresql+asyncpg":
        raise DatabaseError(f"{DB_ENV}={shown}: expected a postgresql+asyncpg:// or sqlite+aiosqlite:/// URL")
    host, port = parsed.host or "localhost", parsed.port or 5432
    try:
        asyncio.run(_connect(parsed, timeout_s))
    except (OSError, TimeoutError) as exc:
        raise DatabaseError(
            f"{DB_ENV}={shown}: PostgreSQL at {host}:{port} refused the connection or did not answer within "
            f"{timeout_s:g} s ({type(exc).__name__}: {exc or 'no answer'}); start it, or unset {DB_ENV} for SQLite"
        ) from exc
    except Exception as exc:  # asyncpg's PostgresError family: authentication, unknown database ...
        raise DatabaseError(f"{DB_ENV}={shown}: PostgreSQL at {host}:{port} refused: {type(exc).__name__}: {exc}") \
            from exc  # fmt: skip
    return "postgresql"


async def _connect(u: URL, timeout_s: float) -> None:
    import asyncpg

    connect = asyncpg.connect(host=u.host or "localhost", port=u.port or 5432, user=u.username, password=u.password,
                              database=u.database, timeout=timeout_s)  # fmt: skip
    conn = await asyncio.wait_for(connect, timeout_s)
    await conn.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=4200)
    a = ap.parse_args(argv)
    try:
        kind = check_database_url()
    except DatabaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Prefect server on {kind}: http://{a.host}:{a.port}  (runs point at it with "
          f"PREFECT_API_URL=http://{a.host}:{a.port}/api)", flush=True)  # fmt: skip
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", a.host, "--port", str(a.port)]
    os.execv(cmd[0], cmd)


if __name__ == "__main__":
    raise SystemExit(main())
