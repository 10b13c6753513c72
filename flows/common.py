"""What every stage flow shares: params loading, a CLI, logging, and Prefect artifacts."""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.exceptions import MissingContextError

from tasks.common.config import Params, load_params
from tasks.common.errors import HybridrecError
from tasks.common.paths import Layout


def layout_and_params(root: str | Path = ".", dataset: str | None = None) -> tuple[Layout, Params, str]:
    root = Path(root)
    params = load_params(root / "params.yaml")
    name = dataset or params.dataset
    from tasks.datasets import get_dataset

    get_dataset(name, param="dataset")  # unknown names fail here, listing the valid ones
    return Layout(root), params.for_dataset(name), name  # its own splits and models (params.yaml `pipeline`)


def require_validated(layout: Layout, dataset: str) -> None:
    """Stages after validation refuse to run on data whose validation failed or never ran."""
    from tasks.common.errors import ValidationFailed
    from tasks.common.io import read_json

    path = layout.validation(dataset) / "outcome.json"
    if not path.exists():
        raise ValidationFailed(f"{path}: missing; run the validate stage first (python -m flows.validate)")
    if not read_json(path).get("success"):
        raise ValidationFailed(f"{path}: the last validation of {dataset!r} failed; fix the data and validate again")


def logger() -> logging.Logger | logging.LoggerAdapter:  # type: ignore[type-arg]
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger("hybridrec")


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")[:100]


def publish(key: str, title: str, lines: Sequence[str], table: list[dict[str, Any]] | None = None) -> None:
    """A markdown summary and (optionally) a table artifact, visible in the Prefect UI."""
    create_markdown_artifact(
        markdown=f"# {title}\n\n" + "\n".join(lines), key=artifact_key(key, "summary"), description=title
    )
    if table:
        rows = [{k: _cell(v) for k, v in row.items()} for row in table]
        create_table_artifact(table=rows, key=artifact_key(key, "table"), description=title)


def _cell(v: Any) -> Any:
    if isinstance(v, float):
        return round(v, 6)
    if isinstance(v, (dict, list, tuple)):
        return str(v)
    return v


def base_parser(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--root", default=".", help="project root holding params.yaml (default: .)")
    ap.add_argument("--dataset", default=None, help="dataset name (default: params.yaml's dataset)")
    return ap


def run_cli(fn: Any, **kwargs: Any) -> int:
    """Run a flow from the command line; expected errors print one clear line and exit 1."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s | %(levelname)-7s | %(name)s - %(message)s")
    try:
        fn(**kwargs)
    except HybridrecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
