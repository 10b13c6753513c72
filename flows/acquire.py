"""Stage 0: put a dataset's raw files in data/<dataset> (local dir → official URL → PyPI carrier).

    python -m flows.acquire [--dataset ml-100k | --pipeline] [--source-dir DIR] [--force]

Runs before ``dvc repro`` (``make run`` does it); the raw folder is versioned by ``data.dvc``.
"""

from __future__ import annotations

from pathlib import Path

from prefect import Task, flow, task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State
from prefect.tasks import exponential_backoff

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.acquire import acquire_dataset

# network hiccups are retried: 2 more tries after about 10 s and 20 s (±50 % jitter)
RETRIES = 2
BACKOFF_S = 10.0
TRANSIENT = ("could not download", "pip download", "timed out", "connection")
PERMANENT = ("mismatch", "refusing member", "not a readable zip", "none of the expected members", "missing")


def is_transient(exc: BaseException) -> bool:
    """A failure worth another try: a download that failed on the network, not a bad file or a bad setting."""
    text = str(exc).lower()
    return any(t in text for t in TRANSIENT) and not any(p in text for p in PERMANENT)


def retry_on_network_errors(task: Task, task_run: TaskRun, state: State) -> bool:  # type: ignore[type-arg]
    try:
        state.result()
    except Exception as exc:
        return is_transient(exc)
    return False


@task(
    name="acquire-raw-files",
    retries=RETRIES,
    retry_delay_seconds=exponential_backoff(backoff_factor=BACKOFF_S),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_on_network_errors,
)
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


def acquire_pipeline(root: str = ".", source_dir: str | None = None, force: bool = False) -> list[dict]:
    """Every dataset of params.yaml's ``pipeline`` (what ``dvc repro`` runs), one after the other."""
    _, params, _ = layout_and_params(root)
    return [acquire_flow(root=root, dataset=d, source_dir=source_dir, force=force) for d in params.pipeline]


def main() -> int:
    ap = base_parser(__doc__.splitlines()[0])
    ap.add_argument("--source-dir", default=None)
    ap.add_argument("--force", action="store_true", help="acquire again even when data/<dataset> is complete")
    ap.add_argument("--pipeline", action="store_true", help="every dataset of params.yaml's pipeline (make run)")
    a = ap.parse_args()
    if a.pipeline:
        return run_cli(acquire_pipeline, root=a.root, source_dir=a.source_dir, force=a.force)
    return run_cli(acquire_flow, root=a.root, dataset=a.dataset, source_dir=a.source_dir, force=a.force)


if __name__ == "__main__":
    raise SystemExit(main())
