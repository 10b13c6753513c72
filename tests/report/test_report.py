"""Report stage: summary over seeds, published figures, self-contained HTML, notes for missing inputs."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import polars as pl
import pytest

from tasks.report import (
    build_report,
    collect_runs,
    metric_sort_key,
    summarize,
    verdict,
    write_summary_csv,
)
from tasks.report.published import lookup, published_figures, published_for
from tests.conftest import REPO

DATASET = "ml-100k"
RANDOM = "random-80-10-10"
LOO = "leave-one-out"
SUMMARY_COLUMNS = [
    "dataset",
    "protocol",
    "model",
    "metric",
    "mean",
    "std",
    "n_runs",
    "published",
    "published_source",
]
# model → per-seed (rmse, mae, precision@10%, precision@25%)
RANDOM_METRICS = {
    "biased-mf": [
        (0.9412, 0.7431, 0.6712, 0.7011),
        (0.9355, 0.7390, 0.6801, 0.7054),
        (0.9478, 0.7502, 0.6650, 0.6987),
    ],
    "autorec-i": [
        (0.8921, 0.7012, 0.6903, 0.7102),
        (0.8987, 0.7066, 0.6877, 0.7120),
        (0.8899, 0.6990, 0.6954, 0.7163),
    ],
}
LOO_METRICS = {
    "rmse": 0.9123,
    "mae": 0.7211,
    "hr@10_sampled": 0.6543,
    "ndcg@10_sampled": 0.3921,
    "hr@10_full": 0.0721,
    "ndcg@10_full": 0.0344,
    "hr@50_full": 0.2311,
    "ndcg@50_full": 0.0687,
    "hr@100_full": 0.3502,
    "ndcg@100_full": 0.0852,
}
CDN_REF = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


# --- fixtures: realistic artifacts as the other stages write them


def _write_json(path: Path, obj: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2), encoding="utf-8")


def _history(root: Path, model: str, split_id: str, epochs: int, seed: int) -> str:
    rel = f"artifacts/runs/{DATASET}/{model}/{split_id}/history.csv"
    floor = 0.89 if model == "autorec-i" else 0.935
    lines = ["epoch,train_loss,valid_rmse,seconds"]
    for e in range(1, epochs + 1):
        loss, valid = 1.2 / e + 0.01 * seed, floor + 0.3 / e + 0.002 * seed
        lines.append(f"{e},{loss:.5f},{valid:.5f},{0.2 + 0.01 * e:.3f}")
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rel


def _run(root: Path, model: str, split_id: str, seed: int, metrics: dict[str, float], epochs: int) -> None:
    protocol = split_id.rsplit("-s", 1)[0]
    _write_json(
        root / "artifacts" / "evaluations" / DATASET / model / f"{split_id}.json",
        {
            "dataset": DATASET,
            "protocol": protocol,
            "split_id": split_id,
            "seed": seed,
            "model": model,
            "metrics": metrics,
            "epochs": epochs,
            "best_epoch": epochs - 10,
            "train_seconds": 0.21 * epochs,
            "seconds_per_epoch": 0.21,
            "n_params": 1_684_182 if model == "autorec-i" else 169_280,
            "device": "cpu",
            "history": _history(root, model, split_id, epochs, seed),
            "n_test": 10_000 if protocol == RANDOM else 943,
        },
    )


def _write_runs(root: Path) -> None:
    for model, per_seed in RANDOM_METRICS.items():
        for seed, (rmse, mae, p10, p25) in enumerate(per_seed):
            metrics = {"rmse": rmse, "mae": mae, "precision@10%": p10, "precision@25%": p25}
            _run(root, model, f"{RANDOM}-s{seed}", seed, metrics, epochs=40 + 5 * seed)
    _run(root, "nrp-direct", f"{LOO}-s0", 0, LOO_METRICS, epochs=25)


def _write_stats(root: Path) -> None:
    hist = {"1.0": 6110, "2.0": 11370, "3.0": 27145, "4.0": 34174, "5.0": 21201}
    _write_json(
        root / "artifacts" / "ingested" / DATASET / "stats.json",
        {
            "dataset": DATASET,
            "n_users": 943,
            "n_items": 1682,
            "n_ratings": 100_000,
            "density": 100_000 / (943 * 1682),
            "rating_histogram": hist,
            "ratings_per_user": {
                "min": 20,
                "p25": 33,
                "median": 65.0,
                "p75": 148,
                "max": 737,
                "mean": 106.04,
            },
            "ratings_per_item": {"min": 1, "p25": 6, "median": 27.0, "p75": 80, "max": 583, "mean": 59.45},
            "source": "official: https://files.grouplens.org/datasets/movielens/ml-100k.zip",
            "notes": {"duplicates_dropped": 0, "zip_codes_non_numeric": 17},
        },
    )


def _write_validation(root: Path, with_docs: bool = True) -> None:
    outcomes = [
        {"table": "ratings", "expectation": "expect_column_values_to_not_be_null", "column": "user_idx",
         "success": True, "details": {"unexpected_count": 0}},
        {"table": "ratings", "expectation": "expect_column_values_to_be_between", "column": "rating",
         "success": True, "details": {"min_value": 1, "max_value": 5}},
        {"table": "users", "expectation": "expect_table_row_count_to_be_between", "column": None,
         "success": False, "details": {"observed_value": 942, "min_value": 943, "max_value": 943}},
    ]  # fmt: skip
    docs = f"reports/{DATASET}/data_docs/index.html" if with_docs else None
    _write_json(
        root / "artifacts" / "validation" / DATASET / "outcome.json",
        {"dataset": DATASET, "success": False, "outcomes": outcomes, "data_docs_index": docs},
    )
    if with_docs:
        index = root / docs
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text("<html>data docs</html>", encoding="utf-8")


def _write_dims(root: Path) -> None:
    _write_json(
        root / "artifacts" / "features" / DATASET / "dims.json",
        {"user_bow": 879, "item_bow": 2478, "user_svd": 50, "item_svd": 50,
         "paper": {"user_bow": 879, "item_bow": 2479}},
    )  # fmt: skip


@pytest.fixture
def full_root(tmp_path: Path) -> Path:
    _write_runs(tmp_path)
    _write_stats(tmp_path)
    _write_validation(tmp_path)
    _write_dims(tmp_path)
    return tmp_path


# --- published figures


def test_published_lookup_values_and_sources() -> None:
    mf = lookup("ml-100k", RANDOM, "biased-mf", "rmse")
    assert mf is not None and mf.value == pytest.approx(0.940)
    assert mf.source.startswith("NRP, Table 2, row MF") and "ours adds biases" in mf.source
    nrp = lookup("ml-100k", RANDOM, "nrp-direct", "rmse")
    assert nrp is not None and nrp.value == pytest.approx(0.899) and nrp.experiment == "nrp-table2"
    assert [p.value for p in published_for("ml-100k", RANDOM) if (p.model, p.metric) == ("nrp-direct", "rmse")] == [
        0.899, 0.897, 0.897]  # Table 2, Table 4, Table 5: all listed, the first file's first
    assert lookup("ml-1m", RANDOM, "nrp-direct", "precision@10%").value == pytest.approx(0.581)
    assert lookup("ml-1m", RANDOM, "nrp-direct", "precision@25%").value == pytest.approx(0.699)
    # Table 2's precision has no stated p: it is kept apart from precision@10% / @25%.
    table2 = lookup("ml-100k", RANDOM, "nrp-direct", "precision")
    assert table2 is not None and table2.value == pytest.approx(0.702) and table2.source.startswith("NRP, Table 2")
    assert lookup("ml-100k", RANDOM, "nrp-direct", "precision@10%") is None
    assert lookup("ml-100k", RANDOM, "nrp-direct", "precision@25%") is None
    # the model's own paper comes first where two papers publish the same key
    assert lookup("ml-1m", "random-90-10-v10", "autorec-i", "rmse").source.startswith("AutoRec")
    assert lookup("ml-20m", "random-90-10-v10", "cfn-i", "rmse").value == pytest.approx(0.7663)
    assert lookup("ml-10m", "random-90-10-v10", "ncae", "rmse").value == pytest.approx(0.767)  # NCAE*
    assert lookup("deepcf-lastfm", "predefined", "gf-deepcf-lastfm", "hr@10_sampled").value == pytest.approx(0.889)
    assert lookup("ml-100k", RANDOM, "no-such-model", "rmse") is None
    assert lookup("ml-100k", RANDOM, "hire", "rmse") is None  # not implemented: no run can match it


def test_published_figures_come_from_the_experiment_files_only() -> None:
    figures = published_figures()
    assert {p.experiment for p in figures} >= {"nrp-table2", "nrp-table3", "nrp-table4", "autorec-table1",
                                               "cfn-table1", "cfn-table2", "ncae-table3", "gf-table2"}
    for p in figures:
        if not p.metric.startswith("rmse"):
            assert 0.0 < p.value < 1.0, p
        assert ", row " in p.source and ", column " in p.source, p
    assert {p.dataset for p in published_for("deepcf-amusic")} == {"deepcf-amusic"}
    code = (REPO / "tasks" / "report" / "published.py").read_text()
    assert "0.897" not in code and "0.940" not in code  # no figure is kept in code


# --- collection and summary


def test_collect_runs_reads_every_metrics_file(full_root: Path) -> None:
    runs = collect_runs(full_root, DATASET)
    assert len(runs) == 7
    assert {(r["model"], r["protocol"]) for r in runs} == {
        ("autorec-i", RANDOM),
        ("biased-mf", RANDOM),
        ("nrp-direct", LOO),
    }
    assert collect_runs(full_root, "ml-1m") == []


def test_collect_runs_fills_fields_from_path(tmp_path: Path) -> None:
    path = tmp_path / "artifacts/evaluations/ml-100k/biased-mf/random-80-10-10-s4.json"
    _write_json(path, {"metrics": {"rmse": 0.9}})
    (run,) = collect_runs(tmp_path, DATASET)
    assert (run["dataset"], run["model"], run["protocol"], run["seed"]) == (DATASET, "biased-mf", RANDOM, 4)


def test_summarize_means_stds_and_published(full_root: Path) -> None:
    summary = summarize(collect_runs(full_root, DATASET))
    assert summary.columns == SUMMARY_COLUMNS
    assert summary.height == 2 * 4 + len(LOO_METRICS)
    assert summary.sort(["dataset", "protocol", "model", "metric"]).equals(summary)
    for model, per_seed in RANDOM_METRICS.items():
        for i, metric in enumerate(["rmse", "mae", "precision@10%", "precision@25%"]):
            values = [s[i] for s in per_seed]
            row = summary.filter((pl.col("model") == model) & (pl.col("metric") == metric)).row(0, named=True)
            assert row["n_runs"] == 3
            assert row["mean"] == pytest.approx(statistics.mean(values))
            assert row["std"] == pytest.approx(statistics.stdev(values))  # sample std, ddof = 1
    rmse = summary.filter(pl.col("metric") == "rmse").select("model", "published", "published_source").rows()
    assert ("autorec-i", 0.921, "NRP, Table 4, row AutoRec, column ml100k") in rmse
    mf_source = "NRP, Table 2, row MF, column ml100k RMSE (the paper's MF row; ours adds biases)"
    assert ("biased-mf", 0.940, mf_source) in rmse
    precision = summary.filter(pl.col("metric").str.starts_with("precision"))
    assert precision["published"].null_count() == precision.height  # no p-matched figure for ml-100k
    loo = summary.filter(pl.col("protocol") == LOO)
    assert set(loo["metric"]) == set(LOO_METRICS)
    assert loo["n_runs"].to_list() == [1] * len(LOO_METRICS)
    assert loo["std"].to_list() == [0.0] * len(LOO_METRICS)
    assert loo["published"].null_count() == loo.height


def test_summarize_empty_and_non_numeric() -> None:
    empty = summarize([])
    assert empty.columns == SUMMARY_COLUMNS and empty.height == 0
    runs = [
        {
            "dataset": DATASET,
            "protocol": RANDOM,
            "model": "m",
            "metrics": {"rmse": None, "note": "x", "mae": 0.7},
        }
    ]
    assert summarize(runs)["metric"].to_list() == ["mae"]


def test_write_summary_csv(full_root: Path) -> None:
    path = write_summary_csv(full_root, [DATASET, "ml-1m"])
    assert path == full_root / "reports" / "summary.csv"
    table = pl.read_csv(path)
    assert table.columns == SUMMARY_COLUMNS
    assert table.height == 2 * 4 + len(LOO_METRICS)
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


# --- the report


def test_build_report_full(full_root: Path) -> None:
    paths = build_report(full_root, DATASET)
    out = full_root / "reports" / DATASET
    assert paths["report.md"] == out / "report.md" and paths["report.html"] == out / "report.html"
    assert {
        "figures/rating_histogram.png",
        f"figures/learning_curves_{RANDOM}.png",
        f"figures/learning_curves_{LOO}.png",
    } <= set(paths)
    for path in paths.values():
        assert path.exists() and path.stat().st_size > 0
    md = paths["report.md"].read_text(encoding="utf-8")
    for ref in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert ref.startswith("figures/") and (out / ref).exists()
    assert "943" in md and "1,682" in md  # dataset statistics
    assert "2 of 3 expectations passed, 1 failed" in md
    assert "expect_table_row_count_to_be_between" in md
    assert "(data_docs/index.html)" in md
    assert "| item_bow | 2,478 | 2,479 | no (-1) |" in md
    assert "NRP, Table 4, row AutoRec" in md and "0.921" in md
    assert "0.8936 ± 0.0046" in md  # autorec-i rmse
    assert "beats ✓" in md  # autorec-i 0.894 < 0.921
    assert "behind" in md  # biased-mf 0.9415 > 0.940
    assert "Protocol leave-one-out" in md and "hr@10_sampled" in md
    assert "Published figures without a matching run" in md and "nrp-dha" in md
    html = paths["report.html"].read_text(encoding="utf-8")
    assert "data:image/png;base64," in html
    assert html.count("data:image/png;base64,") == 3
    assert "<script" not in html.lower()
    assert "<link" not in html.lower()
    assert not CDN_REF.search(html)
    assert 'href="data_docs/index.html"' in html


def test_build_report_is_deterministic(full_root: Path) -> None:
    first = {k: p.read_bytes() for k, p in build_report(full_root, DATASET).items()}
    second = {k: p.read_bytes() for k, p in build_report(full_root, DATASET).items()}
    assert first == second


def test_missing_inputs_give_notes_not_crashes(tmp_path: Path) -> None:
    _write_runs(tmp_path)
    for history in (tmp_path / "artifacts" / "runs").rglob("history.csv"):
        if "biased-mf" in history.parts:
            history.unlink()
    paths = build_report(tmp_path, DATASET)
    md = paths["report.md"].read_text(encoding="utf-8")
    assert "no dataset statistics: `artifacts/ingested/ml-100k/stats.json` not found" in md
    assert "no validation outcome: `artifacts/validation/ml-100k/outcome.json` not found" in md
    assert "no side-information dimensions: `artifacts/features/ml-100k/dims.json` not found" in md
    assert "Training histories missing or unreadable" in md and "biased-mf random-80-10-10-s0" in md
    assert "figures/rating_histogram.png" not in paths
    assert f"figures/learning_curves_{RANDOM}.png" in paths  # autorec-i histories still drawn
    assert "data:image/png;base64," in paths["report.html"].read_text(encoding="utf-8")


def test_empty_project_and_corrupt_files(tmp_path: Path) -> None:
    paths = build_report(tmp_path, DATASET)
    md = paths["report.md"].read_text(encoding="utf-8")
    assert "no runs" in md and set(paths) == {"report.md", "report.html"}
    bad = tmp_path / "artifacts" / "evaluations" / DATASET / "neumf" / "random-80-10-10-s0.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("{not json", encoding="utf-8")
    (tmp_path / "artifacts" / "validation" / DATASET).mkdir(parents=True)
    (tmp_path / "artifacts" / "validation" / DATASET / "outcome.json").write_text("[]", encoding="utf-8")
    md = build_report(tmp_path, DATASET)["report.md"].read_text(encoding="utf-8")
    assert "Unreadable metrics files" in md and "neumf/random-80-10-10-s0.json" in md
    assert "outcome.json` is not a JSON object" in md


def test_validation_without_data_docs(tmp_path: Path) -> None:
    _write_validation(tmp_path, with_docs=False)
    md = build_report(tmp_path, DATASET)["report.md"].read_text(encoding="utf-8")
    assert "No Great Expectations Data Docs were built" in md


# --- helpers


def test_verdict_and_metric_order() -> None:
    assert verdict("rmse", 0.8936, 0.897) == "beats ✓"
    assert verdict("rmse", 0.8974, 0.897) == "meets ✓"
    assert verdict("rmse", 0.9415, 0.940) == "behind"
    assert verdict("hr@10_sampled", 0.90, 0.889) == "beats ✓"
    assert verdict("ndcg@10_sampled", 0.50, 0.602) == "behind"
    metrics = ["ndcg@100_full", "hr@50_full", "rmse", "hr@100_full", "precision@25%", "mae", "precision@10%"]
    assert sorted(metrics, key=metric_sort_key) == [
        "rmse",
        "mae",
        "precision@10%",
        "precision@25%",
        "hr@50_full",
        "hr@100_full",
        "ndcg@100_full",
    ]


def test_published_split_implicit_weights_and_ordering_are_reported(tmp_path: Path) -> None:
    """An implicit dataset with a published split: weights, negatives and the leave-one-out ordering are said."""
    ds = "deepcf-x"
    ingested = tmp_path / "artifacts" / "ingested" / ds
    ingested.mkdir(parents=True)
    stats = {
        "n_users": 3, "n_items": 9, "n_ratings": 12, "density": 0.44,
        "rating_histogram": {"1.0": 12},
        "weight": {"min": 1.0, "median": 4.0, "max": 90.0},
        "predefined_split": {"train": 9, "test": 3},
        "listed_negatives": {"rows": 297, "users": 3, "per_user_min": 99, "per_user_max": 99},
        "ratings_without_timestamp": 12,
    }  # fmt: skip
    (ingested / "stats.json").write_text(json.dumps(stats))
    for sid, info in {
        "predefined-s0": {
            "negatives": "as published",
            "listed_negatives_equal_to_test_positive": 1,
            "listed_negatives_rated_by_user": 2,
            "validation": "one random training interaction per user with at least two",
        },
        "leave-one-out-s0": {"ordering": "latest known timestamp per user; 3 users without any timestamp get a seeded"},
    }.items():
        d = tmp_path / "artifacts" / "splits" / ds / sid
        d.mkdir(parents=True)
        counts = {"train": 6, "valid": 3, "test": 3}
        (d / "split.json").write_text(json.dumps({"counts": counts, "test_rows_with_cold_user": 0, **info}))
    features = tmp_path / "artifacts" / "features" / ds
    features.mkdir(parents=True)
    dims = {"user_bow": 3, "user_fields": {"friends": 3}, "user_friends_svd": 2, "paper": {}}
    (features / "dims.json").write_text(json.dumps(dims))
    md = build_report(tmp_path, ds)["report.md"].read_text(encoding="utf-8")
    assert "| user_friends_svd | 2 |" in md and "- user: friends 3" in md and "user_fields" not in md
    assert "| interaction weight (e.g. play count) | min 1.0, median 4.0, max 90.0 |" in md
    assert "| published split | test 3, train 9 |" in md
    assert "297 for 3 test users (99–99 each)" in md and "| interactions without a timestamp | 12 |" in md
    assert "## Splits" in md and "| predefined-s0 | 6 | 3 | 3 | 0 |" in md
    assert "`leave-one-out-s0` leave-one-out ordering: latest known timestamp per user" in md
    assert "`predefined-s0` listed negatives equal to the test positive: 1" in md
    assert "`predefined-s0` negatives: as published" in md
