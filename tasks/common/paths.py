"""Where every artifact lives (layered as raw → intermediate → features → model input → models → reporting).

All paths are relative to a project root (the repository root by default) so that tests can run the
real pipeline inside a temporary copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path = Path(".")

    # raw inputs, versioned by data.dvc
    def raw(self, dataset: str) -> Path:
        return self.root / "data" / dataset

    # canonical Parquet tables + stats
    def ingested(self, dataset: str) -> Path:
        return self.root / "artifacts" / "ingested" / dataset

    def validation(self, dataset: str) -> Path:
        return self.root / "artifacts" / "validation" / dataset

    def data_docs(self, dataset: str) -> Path:
        return self.root / "reports" / dataset / "data_docs"

    def features(self, dataset: str) -> Path:
        return self.root / "artifacts" / "features" / dataset

    def splits(self, dataset: str) -> Path:
        return self.root / "artifacts" / "splits" / dataset

    def split(self, dataset: str, split_id: str) -> Path:
        return self.splits(dataset) / split_id

    def run(self, dataset: str, model: str, split_id: str) -> Path:
        return self.root / "artifacts" / "runs" / dataset / model / split_id

    def curve(self, dataset: str, model: str, split_id: str) -> Path:
        """A copy of the run's history.csv beside the other runs' (what ``dvc plots show`` draws per dataset)."""
        return self.root / "artifacts" / "curves" / dataset / model / f"{split_id}.csv"

    def metrics(self, dataset: str, model: str, split_id: str) -> Path:
        return self.root / "artifacts" / "metrics" / dataset / model / f"{split_id}.json"

    def evaluation(self, dataset: str, model: str, split_id: str) -> Path:
        """The evaluation record of a run (how its metrics were made: task, protocol, negatives, tie rule, ...);
        ``metrics()`` holds the numbers only, so ``dvc metrics show/diff`` list metrics and nothing else."""
        return self.root / "artifacts" / "evaluations" / dataset / model / f"{split_id}.json"

    def per_user(self, dataset: str, model: str, split_id: str) -> Path:
        """Each metric's per-user values on the test part (metric, user_idx, value): what significance tests pair."""
        return self.root / "artifacts" / "evaluations" / dataset / model / f"{split_id}.per_user.parquet"

    def breakdowns(self, dataset: str, model: str, split_id: str) -> Path:
        """Per-quintile / per-activity-bucket metrics and cold-row counts of a run's test part."""
        return self.root / "artifacts" / "breakdowns" / dataset / model / f"{split_id}.json"

    def reports(self) -> Path:
        return self.root / "reports"

    def report_dir(self, dataset: str) -> Path:
        return self.root / "reports" / dataset


LAYOUT = Layout()
