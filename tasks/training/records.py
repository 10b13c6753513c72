"""The typed record of a training run (``train.json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tasks.common.records import JsonRecord


@dataclass
class TrainRecord(JsonRecord):
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
