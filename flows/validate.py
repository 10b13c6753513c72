"""Stage 2: Great Expectations suites on the canonical tables; Data Docs under reports/<dataset>/.

    python -m flows.validate [--dataset ml-100k]

A failed expectation stops the pipeline with a message naming the table, the expectation and sample
offending rows; the outcome JSON is written either way.
"""

from __future__ import annotations

from dataclasses import replace

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.common.io import write_json
from tasks.common.manifest import read_manifest
from tasks.datasets.base import ExpectedCounts, spec_from_manifest
from tasks.ingest import load_tables


@task(name="validate-tables")
def validate_task(root: str, dataset: str | None) -> dict:
    from tasks.validate import validate_tables

    layout, params, name = layout_and_params(root, dataset)
    spec = spec_from_manifest(read_manifest(layout.ingested(name)))  # the raw folder is not read after ingest
    if not params.validate.expected_counts:  # e.g. a subsample in the dataset's format
        spec = replace(spec, expected=ExpectedCounts(users=(1, 10**12), items=(1, 10**12), ratings=(1, 10**13)))
    outcome = validate_tables(load_tables(layout, name), spec, layout.data_docs(name).resolve())
    result = outcome.to_dict()
    if outcome.data_docs_index:
        result["data_docs_index"] = str(layout.data_docs(name).relative_to(layout.root) / "index.html")
    write_json(layout.validation(name) / "outcome.json", result)
    return result


@flow(name="validate", log_prints=True)
def validate_flow(root: str = ".", dataset: str | None = None) -> dict:
    from tasks.validate import ExpectationOutcome, ValidationOutcome, raise_on_failure

    result = validate_task(root, dataset)
    outcomes = result["outcomes"]
    failed = [o for o in outcomes if not o["success"]]
    name = result["dataset"]
    logger().info("%s: %d expectations, %d failed", name, len(outcomes), len(failed))
    publish(
        f"{name}-validate",
        f"Validate {name}",
        [
            f"- outcome: **{'passed' if result['success'] else 'FAILED'}**",
            f"- expectations: {len(outcomes)}, failed: {len(failed)}",
            f"- Data Docs: `{result.get('data_docs_index')}`",
        ],
        [{k: o[k] for k in ("table", "expectation", "column", "success", "details")} for o in outcomes],
    )
    raise_on_failure(
        ValidationOutcome(
            name, result["success"], [ExpectationOutcome(**o) for o in outcomes], result.get("data_docs_index")
        )
    )
    return result


def main() -> int:
    a = base_parser(__doc__.splitlines()[0]).parse_args()
    return run_cli(validate_flow, root=a.root, dataset=a.dataset)


if __name__ == "__main__":
    raise SystemExit(main())
