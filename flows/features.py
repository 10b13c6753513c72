"""Stage 3: bag-of-words side information (sparse) and its SVD reduction (dense).

python -m flows.features [--dataset ml-100k]
"""

from __future__ import annotations

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, require_validated, run_cli
from tasks.features import build_dataset_features


@task(name="build-side-features")
def features_task(root: str, dataset: str | None) -> dict:
    layout, params, name = layout_and_params(root, dataset)
    require_validated(layout, name)
    dims = build_dataset_features(layout, name, params.features)
    return {"dataset": name, **dims}


@flow(name="features", log_prints=True)
def features_flow(root: str = ".", dataset: str | None = None) -> dict:
    dims = features_task(root, dataset)
    name = dims["dataset"]
    logger().info("%s side information: %s", name, {k: v for k, v in dims.items() if k.endswith(("_bow", "_svd"))})
    paper = dims.get("paper", {})
    rows = [{"source": k, "dims": v, "paper": paper.get(k)} for k, v in dims.items() if k.endswith(("_bow", "_svd"))]
    publish(
        f"{name}-features",
        f"Side information of {name}",
        [f"- {r['source']}: **{r['dims']}** dims (paper: {r['paper']})" for r in rows],
        rows,
    )
    return dims


def main() -> int:
    a = base_parser(__doc__.splitlines()[0]).parse_args()
    return run_cli(features_flow, root=a.root, dataset=a.dataset)


if __name__ == "__main__":
    raise SystemExit(main())
