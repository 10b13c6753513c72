"""The dataset manifest: what later stages need to know about a dataset, written by ingest next to the
canonical tables (``artifacts/ingested/<dataset>/manifest.json``). Split, train, evaluate and report read it
instead of the raw data folder: nothing after ingest opens ``data/``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tasks.common.errors import DataError
from tasks.common.io import read_json, write_json

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DatasetManifest:
    dataset: str
    rating_scale: tuple[float, float]
    """(lowest, highest) rating; (1, 1) for implicit data."""
    implicit: bool
    """Every interaction is a positive (rating 1); ranking metrics only."""
    has_timestamps: bool
    """False: every timestamp is missing (−1)."""
    has_weight: bool
    """The ratings table has a ``weight`` column (play counts, tag counts ...)."""
    predefined_split: str | None
    """The dataset's own published split (``predefined`` protocols), if it ships one."""
    user_side: tuple[str, ...]
    """Side fields of users, as ``column:kind``."""
    item_side: tuple[str, ...]
    n_users: int
    n_items: int
    n_ratings: int
    expected: tuple[tuple[int, int], tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0), (0, 0))
    """The dataset's expected (users, items, ratings) bounds, as the validation suite checks them."""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["rating_scale"] = list(self.rating_scale)
        d["user_side"], d["item_side"] = list(self.user_side), list(self.item_side)
        d["expected"] = [list(b) for b in self.expected]
        return d

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> DatasetManifest:
        return cls(
            dataset=str(raw["dataset"]),
            rating_scale=(float(raw["rating_scale"][0]), float(raw["rating_scale"][1])),
            implicit=bool(raw["implicit"]),
            has_timestamps=bool(raw["has_timestamps"]),
            has_weight=bool(raw["has_weight"]),
            predefined_split=raw.get("predefined_split"),
            user_side=tuple(raw.get("user_side", ())),
            item_side=tuple(raw.get("item_side", ())),
            n_users=int(raw["n_users"]),
            n_items=int(raw["n_items"]),
            n_ratings=int(raw["n_ratings"]),
            expected=tuple((int(b[0]), int(b[1])) for b in raw["expected"]),  # type: ignore[arg-type]
        )


def write_manifest(directory: Path, manifest: DatasetManifest) -> Path:
    return write_json(Path(directory) / MANIFEST, manifest.to_json())


def read_manifest(directory: Path) -> DatasetManifest:
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise DataError(path, "dataset manifest missing", expected="the ingest stage's manifest.json",
                        found="no file (run the ingest stage again: python -m flows.ingest)")  # fmt: skip
    try:
        return DatasetManifest.from_json(read_json(path))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(path, "unreadable dataset manifest", expected="the ingest stage's fields",
                        found=str(exc)) from exc  # fmt: skip
