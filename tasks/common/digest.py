"""Content digests of code and data, the parts of a run's fingerprint that say "nothing it was made from changed".

A run (``tasks/training/run.py``) and its evaluation (``tasks/evaluation/evaluate.py``) record a fingerprint; a
grid or an experiment that finds a finished run with the same fingerprint reuses it instead of training again
(``skip_current``). The fingerprint therefore covers what DVC's dependencies cover for that run: its config, the
code it runs (``code_digest``) and its data (``folder_digest`` of its split and feature folders).
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# the code a training run executes (its model file is also hashed on its own, by name)
TRAINING_CODE = ("models", "tasks/training", "tasks/common", "tasks/features.py")
# the code an evaluation executes on top of it
EVALUATION_CODE = (*TRAINING_CODE, "tasks/evaluation")


@cache
def code_digest(parts: tuple[str, ...] = TRAINING_CODE, root: Path = REPO) -> str:
    """sha256 over the path and bytes of every ``*.py`` file of ``parts`` (folders or files under ``root``).
    Cached per process: the code does not change under a running interpreter."""
    h = hashlib.sha256()
    for part in parts:
        base = root / part
        files = [base] if base.is_file() else sorted(base.rglob("*.py"))
        for f in files:
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


_FILE_CACHE: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _FILE_CACHE:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _FILE_CACHE[key] = h.hexdigest()
    return _FILE_CACHE[key]


def folder_digest(path: Path) -> str:
    """sha256 over the relative names and contents of every file under ``path`` ("absent" when it does not exist).
    A file's digest is reused while its size and mtime are unchanged (one process hashes a split once)."""
    if not path.exists():
        return "absent"
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256()
    for f in files:
        h.update(os.fspath(f.relative_to(path) if f != path else f.name).encode() + b"\0" + _file_digest(f).encode())
    return h.hexdigest()[:16]
