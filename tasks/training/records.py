"""The typed record of a training run (``train.json``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tasks.common.errors import DataError
from tasks.common.io import read_json


@dataclass
class TrainRecord:
    """``train.json``: what one training run did (read back by evaluate, the report and the flows)."""

    dataset: str
    model: str
    split_id: str
    protocol: str
    seed: int
    task: str
    monitor: str
    monitor_mode: str
    epochs: int
    best_epoch: int
    best_monitor: float
    best_valid: dict[str, float]
    train_seconds: float
    seconds_per_epoch: float
    n_params: int
    device: str
    threads: int
    resumed_from_epoch: int
    n_train: int
    base_model: str | None = None
    positives: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> TrainRecord:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in names})

    @classmethod
    def read(cls, path: Path) -> TrainRecord:
        try:
            return cls.from_json(read_json(path))
        except (OSError, ValueError, TypeError) as exc:
            raise DataError(path, "unreadable training record", expected="train.json of a finished run",
                            found=str(exc)[:200]) from exc  # fmt: skip
