"""Split protocols behind one interface, looked up by name (``random-80-10-10``, ``leave-one-out``, ...)."""

from __future__ import annotations

from tasks.splits.base import SplitProtocol, SplitResult, check_split, load_split, write_split
from tasks.splits.protocols import get_protocol, protocol_names

__all__ = [
    "SplitProtocol",
    "SplitResult",
    "check_split",
    "get_protocol",
    "load_split",
    "protocol_names",
    "write_split",
]
