"""Stage 7: reports/summary.csv and reports/<dataset>/report.{md,html} (self-contained, plots embedded).

python -m flows.report
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.report import build_report, write_summary_csv
from tasks.report.index import write_index


@task(name="build-reports")
def report_task(root: str, datasets: list[str]) -> dict:
    written = {d: {k: str(v) for k, v in build_report(Path(root), d).items()} for d in datasets}
    summary = write_summary_csv(Path(root), datasets)
    index = write_index(Path(root))  # reports/index.html: every dataset page and experiment table
    return {"reports": written, "summary": str(summary), "index": str(index)}


@flow(name="report", log_prints=True)
def report_flow(root: str = ".", dataset: str | None = None) -> dict:
    _, params, name = layout_and_params(root, dataset)
    datasets = [dataset] if dataset else list(params.report_datasets)
    out = report_task(root, datasets)
    summary = pl.read_csv(out["summary"])
    headline = summary.filter(pl.col("metric").is_in(["rmse", "hr@10_sampled", "ndcg@10_sampled"]))
    for d, files in out["reports"].items():
        logger().info("report for %s: %s", d, files.get("report.html"))
    publish(
        f"{name}-report",
        "Report",
        [f"- `{files.get('report.html')}`" for files in out["reports"].values()] + [f"- `{out['summary']}`"],
        headline.to_dicts(),
    )
    return out


def main() -> int:
    a = base_parser(__doc__.splitlines()[0]).parse_args()
    return run_cli(report_flow, root=a.root, dataset=a.dataset)


if __name__ == "__main__":
    raise SystemExit(main())
