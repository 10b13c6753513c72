"""Stage 0: put a dataset's raw files in data/<dataset> (local dir → official URL → PyPI carrier).

    python -m flows.acquire [--dataset ml-100k] [--source-dir DIR] [--force]

Runs before ``dvc repro`` (``make run`` does it); the raw folder is versioned by ``data.dvc``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.acquire import acquire_dataset


@task(name="acquire-raw-files")
def acquire_task(root: str, dataset: str, source_dir: str | None, force: bool) -> dict:
    layout, params, name = layout_and_params(root, dataset)
    src = Path(source_dir) if source_dir else params.acquire.source_dir
    result = acquire_dataset(
        layout, name, src, params.acquire.timeout_s, force=force, options=params.dataset_options(name)
    )
    raw = layout.raw(name)
    files = sorted(p.name for p in raw.iterdir()) if raw.is_dir() else []
    return {
        "dataset": name,
        "raw_dir": str(raw),
        "source": result.source if result else "already present",
        "layout": result.layout if result else "",
        "files": files,
    }


@flow(name="acquire", log_prints=True)
def acquire_flow(
    root: str = ".", dataset: str | None = None, source_dir: str | None = None, force: bool = False
) -> dict:
    info = acquire_task(root, dataset, source_dir, force)
    logger().info("raw files of %s in %s (source: %s)", info["dataset"], info["raw_dir"], info["source"])
    publish(
        f"{info['dataset']}-acquire",
        f"Acquire {info['dataset']}",
        [
            f"- source: **{info['source']}**",
            f"- raw directory: `{info['raw_dir']}`",
            f"- files: {', '.join(info['files'])}",
        ],
    )
    return info


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--source-dir", default=None)
    ap.add_argument("--force", action="store_true", help="acquire again even when data/<dataset> is complete")
    a = ap.parse_args()
    return run_cli(acquire_flow, root=a.root, dataset=a.dataset, source_dir=a.source_dir, force=a.force)


if __name__ == "__main__":
    raise SystemExit(main())
