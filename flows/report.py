"""Stage 7: reports/<dataset>/report.{md,html} (self-contained, plots embedded), reports/summary.csv and
reports/index.html.

    python -m flows.report                          # every dataset of report.datasets, then the summary and index
    python -m flows.report --dataset ml-100k --no-summary   # that dataset's page only (dvc.yaml's report@<dataset>)
    python -m flows.report --summary-only     # summary.csv over report.datasets, the index (dvc.yaml's summary)
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.report import build_report, write_summary_csv
from tasks.report.index import write_index


@task(name="build-reports")
def report_task(root: str, pages: list[str], summary_of: list[str] | None) -> dict:
    """The pages of ``pages``; unless ``summary_of`` is None, summary.csv over those datasets; then the index (what is
    on disk now: whichever of the DVC stages that write a page or the summary ends last leaves it complete)."""
    written = {d: {k: str(v) for k, v in build_report(Path(root), d).items()} for d in pages}
    out: dict = {"reports": written}
    if summary_of is not None:
        out["summary"] = str(write_summary_csv(Path(root), summary_of))
    out["index"] = str(write_index(Path(root)))  # reports/index.html: every dataset page and experiment table
    return out


@flow(name="report", log_prints=True)
def report_flow(root: str = ".", dataset: str | None = None, summary: bool = True, pages: bool = True) -> dict:
    """``dataset``: its page (else every page of report.datasets); ``summary``: summary.csv over report.datasets
    (and the dataset when it is not one of them) and the index; ``pages``: false writes the summary only."""
    _, params, name = layout_and_params(root, dataset)
    datasets = list(params.report_datasets)
    wanted = ([dataset] if dataset else datasets) if pages else []
    out = report_task(root, wanted, list(dict.fromkeys([*datasets, *wanted])) if summary else None)
    for d, files in out["reports"].items():
        logger().info("report for %s: %s", d, files.get("report.html"))
    lines = [f"- `{files.get('report.html')}`" for files in out["reports"].values()]
    headline: list[dict] = []
    if "summary" in out:
        table = pl.read_csv(out["summary"])
        headline = table.filter(pl.col("metric").is_in(["rmse", "hr@10_sampled", "ndcg@10_sampled"])).to_dicts()
        lines.append(f"- `{out['summary']}`")
    publish(f"{name if pages else 'summary'}-report", "Report", lines, headline)
    return out


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--no-summary", action="store_true", help="the page(s) only: no summary.csv, no index")
    ap.add_argument("--summary-only", action="store_true", help="summary.csv and the index only: no dataset page")
    a = ap.parse_args()
    return run_cli(report_flow, root=a.root, dataset=a.dataset, summary=not a.no_summary, pages=not a.summary_only)


if __name__ == "__main__":
    raise SystemExit(main())
