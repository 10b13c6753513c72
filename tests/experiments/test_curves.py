"""A paper's figure as an experiment's ``curves``: every point is one of the table's cells (checked against the
experiment's models, protocols and metrics, errors naming the key), drawn with mean ± std over seeds and written
to ``curves.csv`` beside the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tasks.common.errors import ConfigError
from tasks.experiments.runner import experiments_full_k
from tasks.experiments.table import Cell, write_table
from tests.experiments.test_experiments import REPO, parse, spec

SWEEP = {"title": "RMSE vs factors", "over": "model", "metric": "rmse", "x_label": "factors",
         "lines": {"BiasedMF": {2: "bmf-small", 32: "biased-mf"}}}  # fmt: skip
FRACTIONS = {"title": "RMSE vs training ratio", "over": "protocol", "x_label": "%",
             "lines": {"biased-mf": {40: "random-80-10-10-d50", 80: "random-80-10-10"}}}  # fmt: skip
TOP_M = {"title": "HR@M", "over": "metric", "lines": {"biased-mf": {5: "hr@5_full", 10: "hr@10_full"}}}


def test_curves_are_drawn_from_the_tables_cells(tmp_path: Path) -> None:
    datasets = {"synthetic": ["random-80-10-10", "random-80-10-10-d50"]}
    exp = parse(spec(datasets=datasets, metrics=["rmse", "hr@5_full", "hr@10_full"], published=[],
                     curves=[SWEEP, FRACTIONS, TOP_M]))  # fmt: skip
    assert [c.over for c in exp.curves] == ["model", "protocol", "metric"]
    assert exp.curves[0].protocol == "random-80-10-10" and exp.curves[1].metric == "rmse"

    def cell(model: str, protocol: str, metric: str, values: list[float]) -> Cell:
        return Cell(model, "synthetic", protocol, metric, "ok" if values else "not run", values)

    measured = {
        ("biased-mf", "random-80-10-10", "rmse"): [0.90, 0.92],
        ("bmf-small", "random-80-10-10", "rmse"): [0.95, 0.97],
        ("biased-mf", "random-80-10-10", "hr@5_full"): [0.1, 0.2],
        ("biased-mf", "random-80-10-10", "hr@10_full"): [0.2, 0.3],
    }  # biased-mf on random-80-10-10-d50 is not run yet: a gap in its line
    cells = [cell(m, p, x, measured.get((m, p, x), [])) for m in exp.rows for _, p in exp.columns for x in exp.metrics]
    paths = write_table(exp, cells, tmp_path / "tiny", [])
    points = pl.read_csv(tmp_path / "tiny" / "curves.csv")
    sweep = points.filter(pl.col("curve") == "RMSE vs factors").sort("x")
    assert sweep["model"].to_list() == ["bmf-small", "biased-mf"] and sweep["x"].to_list() == [2.0, 32.0]
    assert sweep["mean"].to_list() == pytest.approx([0.96, 0.91])
    assert sweep["std"].to_list() == pytest.approx([0.0141421, 0.0141421], rel=1e-4)
    frac = points.filter(pl.col("curve") == "RMSE vs training ratio").sort("x")
    assert frac["protocol"].to_list() == ["random-80-10-10-d50", "random-80-10-10"]
    assert frac["mean"].is_null().to_list() == [True, False]
    top = points.filter(pl.col("curve") == "HR@M").sort("x")
    assert top["metric"].to_list() == ["hr@5_full", "hr@10_full"]
    assert top["mean"].to_list() == pytest.approx([0.15, 0.25])
    html = paths["index.html"].read_text()
    assert html.count("data:image/png;base64,") == 4  # the table's plot and one per curve
    assert "1 of 2 points not run yet" in paths["table.md"].read_text()


BAD: list[tuple[dict[str, Any], str]] = [
    ({**SWEEP, "over": "seed"}, "curves[0].over"),
    ({**SWEEP, "metric": "ndcg@10_full"}, "curves[0].metric"),
    ({**SWEEP, "lines": {"BiasedMF": {2: "no-such-model"}}}, "curves[0].lines.BiasedMF.2"),
    ({**SWEEP, "lines": {"BiasedMF": {"two": "bmf-small"}}}, "curves[0].lines.BiasedMF"),
    ({**SWEEP, "lines": {}}, "curves[0].lines"),
    ({**SWEEP, "dataset": "ml-100k"}, "curves[0].dataset"),
    ({**SWEEP, "colour": "red"}, "curves[0].colour"),
    ({k: v for k, v in SWEEP.items() if k != "title"}, "curves[0].title"),
    ({**FRACTIONS, "lines": {"biased-mf": {40: "random-70-10-20"}}}, "curves[0].lines.biased-mf.40"),
    ({**TOP_M, "lines": {"nobody": {5: "hr@5_full"}}}, "curves[0].lines.nobody"),
    ({**TOP_M, "metric": "hr@5_full"}, "curves[0].metric"),
]


@pytest.mark.parametrize(("curve", "key"), BAD, ids=[k for _, k in BAD])
def test_a_bad_curve_is_refused_naming_its_key(curve: dict[str, Any], key: str) -> None:
    datasets = {"synthetic": ["random-80-10-10", "random-80-10-10-d50"]}
    with pytest.raises(ConfigError) as err:
        parse(spec(datasets=datasets, metrics=["rmse", "hr@5_full", "hr@10_full"], published=[], curves=[curve]))
    assert err.value.param == f"tiny.yaml: {key}", str(err.value)


def test_the_experiments_share_one_set_of_full_ranking_cut_offs() -> None:
    """NCAE Fig. 10 asks for HR@250: every experiment's runs are evaluated with it, so none makes another stale."""
    assert {50, 100, 150, 200, 250} <= experiments_full_k(REPO / "experiments")
