"""Stage 1: acquire (if data/<dataset> is incomplete) and ingest raw files into canonical Parquet.

python -m flows.ingest [--dataset ml-100k]
"""

from __future__ import annotations

from prefect import flow, task

from flows.common import base_parser, layout_and_params, logger, publish, run_cli
from tasks.acquire import acquire_dataset
from tasks.ingest import ingest_dataset


@task(name="ingest-dataset")
def ingest_task(root: str, dataset: str | None) -> dict:
    layout, params, name = layout_and_params(root, dataset)
    acquire_dataset(layout, name, params.acquire.source_dir, params.acquire.timeout_s)
    return ingest_dataset(layout, name)


@flow(name="ingest", log_prints=True)
def ingest_flow(root: str = ".", dataset: str | None = None) -> dict:
    stats = ingest_task(root, dataset)
    name = stats["dataset"]
    logger().info(
        "%s: %s users, %s items, %s ratings, density %.4f",
        name,
        stats["n_users"],
        stats["n_items"],
        stats["n_ratings"],
        stats["density"],
    )
    hist = stats["rating_histogram"]
    publish(
        f"{name}-ingest",
        f"Ingest {name}",
        [
            f"- users **{stats['n_users']:,}**, items **{stats['n_items']:,}**, ratings **{stats['n_ratings']:,}**",
            f"- density {stats['density']:.4%}, mean rating {stats['rating_mean']:.3f}",
            f"- ratings per user: {stats['ratings_per_user']}",
            f"- ratings per item: {stats['ratings_per_item']}",
            f"- notes: {stats['notes']}",
        ],
        [{"rating": k, "count": v} for k, v in hist.items()],
    )
    return stats


def main() -> int:
    a = base_parser(__doc__.splitlines()[0]).parse_args()
    return run_cli(ingest_flow, root=a.root, dataset=a.dataset)


if __name__ == "__main__":
    raise SystemExit(main())
