"""Hostile params: every value that would destroy work, or that a stage would misread, is refused on load with
a ConfigError naming the parameter, what was expected and what was found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tasks.common.config import params_from_dict
from tasks.common.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def raw_params() -> dict[str, Any]:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def with_value(path: str, value: Any) -> dict[str, Any]:
    raw = raw_params()
    *parents, key = path.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
    node[key] = value
    return raw


BAD: list[tuple[str, Any, str]] = [
    # (parameter, bad value, expected text in the message)
    ("split.instances", [], "non-empty list"),
    ("split.instances", ["random-80-10-10-s0", "random-80-10-10-s0"], "each entry once"),
    ("split.instances", "random-80-10-10-s0", "YAML list"),
    ("split.instances", [3], "a string"),
    ("split.loo_negatives", 0, ">= 1"),
    ("experiments", "nrp-table4", "YAML list"),
    ("experiments", ["nrp-table4", "nrp-table4"], "each entry once"),
    ("experiments", ["NRP Table 4"], "an experiment name such as 'nrp-table4'"),
    ("split.loo_negatives", -5, ">= 1"),
    ("features.min_df", -5, ">= 1"),
    ("features.min_df", 0, ">= 1"),
    ("features.svd_k", 0, ">= 1"),
    ("features.svd_k", "50", "integer"),
    ("features.seed", -1, ">= 0"),
    ("features.age_encoding", 3, "a string"),
    ("acquire.source_dir", 5, "folder path"),
    ("acquire.source_dir", ["a"], "folder path"),
    ("acquire.timeout_s", 0, "> 0"),
    ("acquire.timeout_s", -1, "> 0"),
    ("acquire.timeout_s", "fast", "> 0"),
    ("acquire.mirror", "x", "one of"),
    ("train.max_epochs", 0, ">= 1"),
    ("train.patience", -1, ">= 0"),
    ("train.threads", -2, ">= 0"),
    ("train.models", "biased-mf", "YAML list"),
    ("train.models", [], "non-empty list"),
    ("train.models", ["biased-mf", "biased-mf"], "each entry once"),
    ("train.positive_threshold", "high", "a number"),
    ("train.positive_threshold", True, "a number"),
    ("train.device", 0, "a string"),
    ("evaluate.sampled_k", 0, ">= 1"),
    ("evaluate.full_k", [], "non-empty list"),
    ("evaluate.full_k", [10, 0], ">= 1"),
    ("evaluate.full_k", [10, 2.5], "integer"),
    ("evaluate.full_k", 10, "YAML list"),
    ("evaluate.precision_p", [0.1, 1.5], "(0, 1]"),
    ("evaluate.precision_p", [0.0], "(0, 1]"),
    ("evaluate.precision_p", ["a"], "a number"),
    ("evaluate.full_ranking", "yes", "true or false"),
    ("validate.expected_counts", 1, "true or false"),
    ("report.datasets", "ml-100k", "YAML list"),
    ("report.title", "x", "one of"),
    ("deploy.cron", "every monday", "cron"),
    ("deploy.schedule", "x", "one of"),
    ("models.biased-mf", [1, 2], "mapping"),
    ("datasets.amazon", "Grocery", "mapping"),
]


@pytest.mark.parametrize(("param", "value", "expected"), BAD, ids=[f"{p}={v!r}" for p, v, _ in BAD])
def test_bad_param_is_refused_naming_it(param: str, value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        params_from_dict(with_value(param, value))
    msg = str(exc.value)
    assert exc.value.param.startswith(param), msg
    assert expected in msg, msg


def test_unknown_top_level_key_is_refused() -> None:
    raw = raw_params()
    raw["trian"] = {"max_epochs": 3}
    with pytest.raises(ConfigError, match=r"'trian'.*one of the sections"):
        params_from_dict(raw)


def test_section_that_is_not_a_mapping_is_refused() -> None:
    raw = raw_params()
    raw["train"] = ["biased-mf"]
    with pytest.raises(ConfigError, match=r"'train'.*mapping"):
        params_from_dict(raw)


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_threads_env_var_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HYBRIDREC_THREADS", value)
    with pytest.raises(ConfigError, match=r"HYBRIDREC_THREADS.*integer >= 1"):
        params_from_dict(raw_params())
    from tasks.common.device import set_threads

    with pytest.raises(ConfigError, match=r"HYBRIDREC_THREADS"):
        set_threads(0)


def test_good_values_load_and_are_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HYBRIDREC_THREADS", "1")
    raw = raw_params()
    raw["train"]["positive_threshold"] = 4  # an int is a number
    raw["evaluate"]["precision_p"] = [1, 0.5]
    raw["acquire"]["timeout_s"] = 5
    p = params_from_dict(raw)
    assert p.train.positive_threshold == 4.0 and isinstance(p.train.positive_threshold, float)
    assert p.evaluate.precision_p == (1.0, 0.5)
    assert p.acquire.timeout_s == 5.0
    assert p.split.instances == tuple(raw["split"]["instances"])


def test_split_stage_refuses_an_empty_instance_list_before_touching_the_splits(tmp_path: Path) -> None:
    """Even Params built by hand (not through params.yaml) cannot swap in an empty splits folder."""
    import dataclasses

    from tasks.common.paths import Layout
    from tasks.splits.stage import make_splits

    p = params_from_dict(raw_params())
    p = dataclasses.replace(p, split=dataclasses.replace(p.split, instances=()))
    layout = Layout(tmp_path)
    existing = layout.split("ml-100k", "random-80-10-10-s0")
    existing.mkdir(parents=True)
    (existing / "train.parquet").write_bytes(b"kept")
    with pytest.raises(ConfigError, match=r"split\.instances"):
        make_splits(layout, p, "ml-100k")
    assert (existing / "train.parquet").read_bytes() == b"kept"


PIPELINE_BAD: list[tuple[Any, str, str]] = [
    # (pipeline section, the parameter named, expected text)
    ({}, "pipeline", "non-empty mapping"),
    (["ml-100k"], "pipeline", "non-empty mapping"),
    ({"ml-100k": ["random-80-10-10-s0"]}, "pipeline.ml-100k", "a mapping with any of splits, models, pretrained"),
    ({"ml-100k": {"split": ["random-80-10-10-s0"]}}, "pipeline.ml-100k.split", "one of ['models', 'pretrained'"),
    ({"ml-100k": {"splits": []}}, "pipeline.ml-100k.splits", "non-empty list"),
    ({"ml-100k": {"splits": ["random-80-10-10"]}}, "pipeline.ml-100k.splits", "<protocol>-s<seed>"),
    ({"ml-100k": {"models": ["pop", "pop"]}}, "pipeline.ml-100k.models", "each entry once"),
    ({"ml-100k": {"models": "pop"}}, "pipeline.ml-100k.models", "YAML list"),
    ({"ml-100k": {"pretrained": [{"model": "neumf"}]}}, "pipeline.ml-100k.pretrained[0]", "{model: <name>"),
    ({"ml-100k": {"models": ["gf-gmf"], "pretrained": [{"model": "neumf-pre", "from": ["gf-gmf", "gf-mlp"]}]}},
     "pipeline.ml-100k.pretrained[0].from", "the sources in models.neumf-pre.pretrain"),
]


@pytest.mark.parametrize(("section", "param", "expected"), PIPELINE_BAD, ids=[p for _, p, _ in PIPELINE_BAD])
def test_bad_pipeline_entry_is_refused_naming_it(section: Any, param: str, expected: str) -> None:
    raw = raw_params()
    raw["pipeline"] = section
    with pytest.raises(ConfigError) as err:
        params_from_dict(raw)
    assert err.value.param == param and expected in str(err.value), str(err.value)


def test_each_pipeline_dataset_reads_its_own_grid() -> None:
    raw = raw_params()
    raw["pipeline"] = {"ml-100k": {}, "lastfm": {"splits": ["leave-one-out-s0"], "models": ["pop", "ease"]}}
    params = params_from_dict(raw)
    assert params.report_datasets == ("ml-100k", "lastfm")  # the report covers every dataset of the pipeline
    assert params.for_dataset("ml-100k") is params  # no entry of its own: the top-level grid
    own = params.for_dataset("lastfm")
    assert own.split.instances == ("leave-one-out-s0",) and own.train.models == ("pop", "ease")
    assert own.models == params.models and own.train.max_epochs == params.train.max_epochs
    assert params.for_dataset("douban-gcmc") is params  # not in the pipeline: the top-level grid too
    raw.pop("pipeline")
    assert list(params_from_dict(raw).pipeline) == [raw["dataset"]]  # no section: the default dataset alone
