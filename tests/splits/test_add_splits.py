"""``add_splits`` (the experiments' shared workspace): only the missing instances are written, each into its own
folder; the existing ones are not touched (another process may be training on them), and an added instance holds
the same bytes as the split stage would write for it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tasks.common.config import load_params
from tasks.common.paths import Layout
from tasks.splits.stage import add_splits, make_splits


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_only_missing_instances_are_written_and_the_others_left_alone(prepared_root: Path, tmp_path: Path) -> None:
    layout, params = Layout(prepared_root), load_params(prepared_root / "params.yaml")
    existing = layout.split("ml-100k", "random-80-10-10-s0")
    before = _files(existing)
    reports = add_splits(layout, params, "ml-100k", ["random-80-10-10-s0", "random-80-10-10-s1",
                                                     "random-80-10-10-d50-s1"])  # fmt: skip
    assert [r["split_id"] for r in reports] == ["random-80-10-10-s1", "random-80-10-10-d50-s1"]
    assert _files(existing) == before  # same bytes, same mtimes: never rewritten
    assert add_splits(layout, params, "ml-100k", ["random-80-10-10-s1"]) == []  # now present: nothing to do

    # the same bytes as the split stage writes for that instance
    other = Layout(tmp_path / "other")
    other.ingested("ml-100k").parent.mkdir(parents=True)
    other.ingested("ml-100k").symlink_to(layout.ingested("ml-100k"))
    only = dataclasses.replace(params, split=dataclasses.replace(params.split, instances=("random-80-10-10-s1",)))
    make_splits(other, only, "ml-100k")
    ours, stage = layout.split("ml-100k", "random-80-10-10-s1"), other.split("ml-100k", "random-80-10-10-s1")
    assert {k: v[0] for k, v in _files(ours).items()} == {k: v[0] for k, v in _files(stage).items()}
