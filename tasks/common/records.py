"""Typed JSON records of runs (``train.json``, the metrics files): dataclasses that write themselves as JSON and
read back only the fields they know (a newer file's extra keys do not break an older reader)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

from tasks.common.errors import DataError
from tasks.common.io import read_json, write_json


class JsonRecord:
    """Mixin for ``@dataclass`` records."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Self:
        names = set(cls.__dataclass_fields__)  # type: ignore[attr-defined]
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def read(cls, path: Path) -> Self:
        try:
            return cls.from_json(read_json(path))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(path, f"unreadable {cls.__name__}", expected="the file of a finished run",
                            found=str(exc)[:200]) from exc  # fmt: skip

    def write(self, path: Path) -> Path:
        return write_json(path, self.to_json())
