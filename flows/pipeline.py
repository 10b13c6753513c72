"""The whole DAG as one Prefect flow: acquire → ingest → validate → features → split → train → evaluate → report.

    python -m flows.pipeline [--dataset ml-100k]

Every stage runs as a subflow, in order, and writes exactly the artifacts ``dvc repro`` writes. This flow
always runs every stage (it is what a scheduled deployment runs); ``dvc repro`` is the tool that decides
what is up to date and skips the rest.
"""

from __future__ import annotations

import time

from prefect import flow

from flows.acquire import acquire_flow
from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from flows.evaluate import evaluate_flow
from flows.features import features_flow
from flows.ingest import ingest_flow
from flows.report import report_flow
from flows.split import split_flow
from flows.train import train_flow
from flows.validate import validate_flow


@flow(name="pipeline", log_prints=True)
def pipeline_flow(root: str = ".", dataset: str | None = None, device: str | None = None) -> dict:
    _, _, name = layout_and_params(root, dataset)
    timings: dict[str, float] = {}

    def stage(label: str, fn, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        result = fn(root=root, dataset=name, **kw)
        timings[label] = round(time.perf_counter() - t0, 2)
        logger().info("stage %s done in %.1fs", label, timings[label])
        return result

    stage("acquire", acquire_flow)
    stage("ingest", ingest_flow)
    stage("validate", validate_flow)
    stage("features", features_flow)
    stage("split", split_flow)
    stage("train", train_flow, device=device)
    stage("evaluate", evaluate_flow, device=device)
    out = stage("report", report_flow)
    publish(
        f"{name}-pipeline",
        f"Pipeline on {name}",
        [f"- {k}: {v:.1f} s" for k, v in timings.items()] + [f"- total: {sum(timings.values()):.1f} s"],
        [{"stage": k, "seconds": v} for k, v in timings.items()],
    )
    return {"timings": timings, **out}


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--device", default=None)
    a = ap.parse_args()
    return run_cli(pipeline_flow, root=a.root, dataset=a.dataset, device=a.device)


if __name__ == "__main__":
    raise SystemExit(main())
