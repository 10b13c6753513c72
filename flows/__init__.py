"""Prefect flows, one per pipeline stage plus ``pipeline``; thin wrappers over ``tasks``.

Importing this package sets quiet, offline defaults before Prefect is imported (telemetry off, a
project-local PREFECT_HOME, a generous ephemeral-server start-up timeout). Values already set in the
environment win.
"""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
for _key, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_HOME": str(_ROOT / ".prefect"),
    "PREFECT_LOGGING_LOG_PRINTS": "true",
    "GX_ANALYTICS_ENABLED": "False",
    "DVC_NO_ANALYTICS": "1",
}.items():
    os.environ.setdefault(_key, _value)
