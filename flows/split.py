"""Stage 4: every split instance in params (``<protocol>-s<seed>``), written as Parquet and checked.

python -m flows.split [--dataset ml-100k]
"""

from __future__ import annotations

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, require_validated, run_cli
from tasks.splits.stage import make_splits


@task(name="make-splits")
def split_task(root: str, dataset: str | None) -> list[dict]:
    layout, params, name = layout_and_params(root, dataset)
    require_validated(layout, name)
    return [{"dataset": name, **r} for r in make_splits(layout, params, name)]


@flow(name="split", log_prints=True)
def split_flow(root: str = ".", dataset: str | None = None) -> list[dict]:
    reports = split_task(root, dataset)
    name = reports[0]["dataset"] if reports else dataset or ""
    rows = [
        {
            "split": r["split_id"],
            **r["counts"],
            "test_users": r["users"]["test"],
            "cold_item_test_rows": r["test_rows_with_cold_item"],
        }
        for r in reports
    ]
    for row in rows:
        logger().info("%s", row)
    publish(
        f"{name}-split",
        f"Splits of {name}",
        [f"- `{r['split']}`: train {r['train']:,}, valid {r['valid']:,}, test {r['test']:,}" for r in rows]
        + ["", "All splits checked: disjoint, covering, proportions, non-empty test."],
        rows,
    )
    return reports


def main() -> int:
    a = base_parser(__doc__.splitlines()[0]).parse_args()
    return run_cli(split_flow, root=a.root, dataset=a.dataset)


if __name__ == "__main__":
    raise SystemExit(main())
