"""The train stage: what a run reads (``data``), the validation monitor (``monitor``), the generic loop
(``loop``), the run's record (``records``) and one run end to end (``run``)."""

from tasks.training.data import (
    RunData,
    RunId,
    build_from_spec,
    build_model,
    build_run_data,
    check_threshold,
)
from tasks.training.loop import CHECKPOINT, FitResult, fit, history_frame, load_torch, save_torch
from tasks.training.monitor import Monitor, choose_monitor, validation_metrics
from tasks.training.records import TrainRecord
from tasks.training.run import fingerprint, load_trained, train_run

__all__ = [
    "CHECKPOINT",
    "FitResult",
    "Monitor",
    "RunData",
    "RunId",
    "TrainRecord",
    "build_from_spec",
    "build_model",
    "build_run_data",
    "check_threshold",
    "choose_monitor",
    "fingerprint",
    "fit",
    "history_frame",
    "load_torch",
    "load_trained",
    "save_torch",
    "train_run",
    "validation_metrics",
]
