"""Experiments as files: the schema's errors name the key, expected and found; a grid runs through the pipeline's
stage functions into its table; a second run trains nothing; a changed variant retrains only its runs; a dataset
that is not present is marked "data not available", never dropped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tasks.common.errors import ConfigError
from tasks.experiments.runner import availability, run_experiment, workspace
from tasks.experiments.spec import experiment_names, load_experiment, parse_experiment
from tasks.experiments.table import build_cells, write_table

REPO = Path(__file__).resolve().parents[2]
MODELS = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))["models"]
SOURCE = {"paper": "P", "table": "T1", "row": "r", "column": "c"}


def spec(**over: object) -> dict:
    raw = {
        "title": "tiny", "paper": "P", "table": "T1", "metrics": ["rmse"], "seeds": [0, 1],
        "proposed": "biased-mf", "datasets": {"synthetic": "random-80-10-10"},
        "models": ["biased-mf", "bmf-small"],
        "variants": {"bmf-small": {"base": "biased-mf", "factors": 2, "batch_size": 512}},
        "max_epochs": 2,
        "published": [
            {"model": "biased-mf", "dataset": "synthetic", "metric": "rmse", "value": 0.9, "source": SOURCE},
            {"model": "hire", "dataset": "synthetic", "metric": "rmse", "value": 0.8, "implemented": False,
             "source": SOURCE},
        ],
    }  # fmt: skip
    raw.update(over)
    return raw


def parse(raw: dict):  # type: ignore[no-untyped-def]
    return parse_experiment("tiny", raw, MODELS, Path("tiny.yaml"))


def test_every_shipped_experiment_loads() -> None:
    names = experiment_names(REPO / "experiments")
    assert {"nrp-table4", "gf-table2"} <= set(names)
    for name in names:
        exp = load_experiment(name, MODELS, REPO / "experiments")
        assert all(p.source.get("paper") for p in exp.published)
        # a figure the paper gives as a plot only has no numbers: curves, or its table of our cells alone
        assert exp.published or exp.curves or exp.table.startswith("Fig"), name


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"models": ["biased-mf", "no-such-model"]}, "models"),
        ({"datasets": {"no-such-data": "random-80-10-10"}}, "datasets"),
        ({"datasets": {"synthetic": "random-10-10"}}, "datasets.synthetic"),
        ({"metrics": ["rmse", "accuracy"]}, "metrics"),
        ({"proposed": "mf"}, "proposed"),
        ({"seeds": []}, "seeds"),
        ({"colour": "red"}, "colour"),
        ({"published": [{"model": "biased-mf", "dataset": "synthetic", "metric": "rmse", "value": 0.9}]},
         "published[0].source"),
        ({"published": [{"model": "biased-mf", "dataset": "synthetic", "metric": "rmse", "value": 0.9,
                         "source": {"paper": "P", "table": "T"}}]}, "published[0].source"),
        ({"published": [{"model": "biased-mf", "dataset": "synthetic", "metric": "hr@10_full", "value": 0.9,
                         "source": SOURCE}]}, "published[0].metric"),
        ({"variants": {"biased-mf-x": {"base": "nope"}}, "models": ["biased-mf", "biased-mf-x"]}, "models"),
        ({"variants": {"mf": {"base": "biased-mf", "factors": 3}}}, "variants.mf"),
    ],
)
def test_bad_experiment_files_are_refused_naming_the_key(over: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(spec(**over))
    assert f"tiny.yaml: {key}" in str(info.value)


def test_unknown_experiment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="nrp-table4"):
        load_experiment("no-such-table", MODELS, REPO / "experiments")


def _project(tmp: Path) -> Path:
    shutil.copy(REPO / "params.yaml", tmp / "params.yaml")
    raw = workspace(tmp).raw("synthetic")
    raw.mkdir(parents=True)
    (raw / "SPEC.json").write_text(json.dumps({"n_users": 80, "n_items": 60, "n_ratings": 2000}))
    return tmp


@pytest.mark.slow
def test_grid_runs_reruns_nothing_and_retrains_only_what_changed(tmp_path: Path) -> None:
    root = _project(tmp_path)
    exp = parse(spec())
    say = lambda s: None  # noqa: E731
    first = run_experiment(exp, root, progress=say)
    assert len(first) == 4 and all(o.trained and o.evaluated for o in first)
    again = run_experiment(exp, root, progress=say)
    assert not any(o.trained or o.evaluated for o in again)
    changed = parse(spec(variants={"bmf-small": {"base": "biased-mf", "factors": 3, "batch_size": 512}}))
    third = run_experiment(changed, root, progress=say)
    assert {o.model for o in third if o.trained} == {"bmf-small"} and sum(o.trained for o in third) == 2

    cells = build_cells(changed, workspace(root), {"synthetic": True})
    by = {c.model: c for c in cells}
    assert by["hire"].status == "not implemented" and by["hire"].published == 0.8
    assert len(by["bmf-small"].values) == 2 and by["biased-mf"].diff == pytest.approx(by["biased-mf"].mean - 0.9)
    assert by["bmf-small"].p_users_wilcoxon is not None  # per-user errors of both runs, pooled over seeds
    paths = write_table(changed, cells, root / "reports" / "experiments" / "tiny", [])
    html = paths["index.html"].read_text()
    assert "data:image/png;base64," in html and "http" not in html.replace("http-equiv", "")
    assert "hire" in paths["table.md"].read_text()


def test_a_dataset_that_is_absent_is_marked_not_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path)
    monkeypatch.delenv("HYBRIDREC_SOURCE_DIR", raising=False)
    from tasks.common.config import load_params

    params = load_params(root / "params.yaml")
    a = availability("ml-10m", root, params)
    assert not a.available and "ml-10m.zip" in a.where and "ml-10m" in a.where
    exp = parse(spec(datasets={"ml-10m": "random-80-10-10"},
                     published=[{"model": "biased-mf", "dataset": "ml-10m", "metric": "rmse", "value": 0.8,
                                 "source": SOURCE}]))  # fmt: skip
    assert run_experiment(exp, root, progress=lambda s: None) == []
    cells = build_cells(exp, workspace(root), {"ml-10m": False})
    assert [c.status for c in cells] == ["data not available", "data not available"]


def test_several_protocols_per_dataset_and_rows_that_do_not_apply() -> None:
    fig = {"model": "biased-mf", "dataset": "synthetic", "metric": "rmse", "value": 0.9, "source": SOURCE}
    two = {"synthetic": ["random-80-10-10", "random-70-10-20"]}
    with pytest.raises(ConfigError, match=r"published\[0\]\.protocol"):
        parse(spec(datasets=two, published=[fig]))
    exp = parse(spec(datasets=two, published=[{**fig, "protocol": "random-70-10-20"}],
                     models=["biased-mf", {"bmf-small": {"synthetic": None}}]))  # fmt: skip
    assert exp.columns == [("synthetic", "random-80-10-10"), ("synthetic", "random-70-10-20")]
    assert exp.split_ids("synthetic") == ["random-80-10-10-s0", "random-80-10-10-s1", "random-70-10-20-s0",
                                          "random-70-10-20-s1"]  # fmt: skip
    assert exp.runs("synthetic") == ["biased-mf"] and exp.model_for("bmf-small", "synthetic") is None
    assert exp.figure("biased-mf", "synthetic", "random-80-10-10", "rmse") is None
    assert exp.figure("biased-mf", "synthetic", "random-70-10-20", "rmse").value == 0.9
    cells = build_cells(exp, workspace(Path("/nonexistent")), {"synthetic": True})
    assert {c.status for c in cells if c.model == "bmf-small"} == {"not applicable"}
    with pytest.raises(ConfigError, match="--datasets"):
        exp.restricted(["ml-100k"])


def test_breakdown_metric_keys_read_the_runs_breakdown_groups() -> None:
    import numpy as np

    from tasks.evaluation import breakdowns as bd
    from tasks.experiments.spec import METRIC, lower_is_better
    from tasks.experiments.table import breakdown_value

    train_users, train_items = np.array([0, 1, 1, 2, 2, 2, 2, 2, 2]), np.array([0, 0, 1, 0, 1, 2, 3, 0, 1])
    test_users, test_items = np.array([0, 1, 2]), np.array([3, 2, 1])
    y, pred = np.array([4.0, 3.0, 5.0]), np.array([3.0, 3.5, 5.0])
    hits = {"hr@10": np.array([1.0, 0.0, 1.0]), "ndcg@10": np.array([0.5, 0.0, 1.0])}
    record = {
        "rating_by_item_popularity": bd.popularity_table(train_items, 4, test_items, y, pred, n_groups=2),
        "rating_by_user_activity": bd.activity_table(train_users, 3, test_users, {"rmse": (y - pred) ** 2}),
        "ranking_by_user_activity": {"sampled": bd.activity_table(train_users, 3, test_users, hits)},
    }
    # items by training count: 3 (0), 2 (1), 1 (2), 0 (4) → the least popular half holds items 2 and 3
    assert breakdown_value(record, "rmse[popularity=0.0-0.5]") == pytest.approx(np.sqrt((1.0 + 0.25) / 2))
    assert breakdown_value(record, "rmse[popularity=0.5-1.0]") == pytest.approx(0.0)
    assert breakdown_value(record, "hr@10_sampled[activity=0-1]") == 1.0  # user 0: one training row
    assert breakdown_value(record, "ndcg@10_sampled[activity=1-5]") == 0.0  # user 1: two
    assert breakdown_value(record, "hr@10_sampled[activity=5-10]") == 1.0  # user 2: six
    assert breakdown_value(record, "hr@10_sampled[activity=100+]") is None  # nobody there
    assert breakdown_value(record, "hr@10_full[activity=0-1]") is None  # no full-ranking table in this record
    assert METRIC.match("rmse[popularity=0.0-0.2]") and METRIC.match("ndcg@100_full[activity=100+]")
    assert not METRIC.match("rmse[popularity]") and not METRIC.match("rmse[colour=1-5]")
    assert lower_is_better("rmse[popularity=0.0-0.2]") and not lower_is_better("hr@10_sampled[activity=0-1]")
