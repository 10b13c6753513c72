"""Dataset options in params.yaml (``datasets.<name>``): checked, applied at acquisition, kept with the raw copy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tasks.acquire import acquire_dataset
from tasks.common.config import params_from_dict
from tasks.common.errors import ConfigError, DataError
from tasks.common.paths import Layout
from tasks.datasets import get_dataset
from tasks.datasets.amazon import CONFIG_FILE, AmazonConfig
from tests.datasets.test_datasets_amazon import write_2014, write_2018
from tests.datasets.test_datasets_custom import write_custom


def test_params_carry_per_dataset_options() -> None:
    p = params_from_dict({"dataset": "amazon", "datasets": {"amazon": {"version": 2018}, "custom": None}})
    assert p.dataset_options("amazon") == {"version": 2018} and p.dataset_options("custom") == {}
    assert p.dataset_options("ml-100k") == {}
    with pytest.raises(ConfigError, match=r"datasets\.amazon"):
        params_from_dict({"dataset": "amazon", "datasets": {"amazon": "Grocery"}})


def test_a_dataset_without_options_rejects_them(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'datasets\.ml-100k': expected no options"):
        acquire_dataset(Layout(tmp_path), "ml-100k", None, 1, options={"category": "x"})


def test_amazon_options_win_over_a_local_choice_and_force_a_refetch(tmp_path: Path) -> None:
    src = write_2018(tmp_path / "src")  # holds the 2018 files and an amazon.json choosing 2018
    write_2014(tmp_path / "src")
    (src / CONFIG_FILE).write_text(json.dumps({"version": 2018}))
    layout = Layout(tmp_path / "proj")
    res = acquire_dataset(layout, "amazon", src, 1, options={"version": 2014})
    assert res is not None and res.layout == "amazon-2014-csv" and "params.yaml" in res.detail
    raw = layout.raw("amazon")
    assert json.loads((raw / CONFIG_FILE).read_text()) == AmazonConfig(version=2014).to_dict()
    assert acquire_dataset(layout, "amazon", src, 1, options={"version": 2014}) is None  # same choice: kept
    res = acquire_dataset(layout, "amazon", src, 1, options={"version": 2018})  # another choice: fetched again
    assert res is not None and res.layout == "amazon-2018-csv"
    assert get_dataset("amazon", raw_dir=raw).config.version == 2018  # later stages see the raw copy's choice
    with pytest.raises(DataError, match="unknown amazon config keys"):
        acquire_dataset(layout, "amazon", src, 1, options={"categroy": "Books"})


def test_custom_mapping_named_in_params(tmp_path: Path) -> None:
    data = write_custom(tmp_path / "mine")
    layout = Layout(tmp_path / "proj")
    res = acquire_dataset(layout, "custom", None, 1, options={"mapping": str(data / "hybridrec.yaml")})
    assert res is not None and (layout.raw("custom") / "hybridrec.yaml").is_file()
    assert acquire_dataset(layout, "custom", None, 1, options={"mapping": str(data / "hybridrec.yaml")}) is None
    with pytest.raises(ConfigError, match=r"'datasets\.custom\.mapping': expected an existing mapping file"):
        acquire_dataset(layout, "custom", None, 1, options={"mapping": str(tmp_path / "nope.yaml")})
    with pytest.raises(ConfigError, match=r"datasets\.custom\.file"):
        acquire_dataset(layout, "custom", None, 1, options={"file": "x"})
