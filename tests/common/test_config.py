from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.common.registry import resolve_model
from tasks.common.config import load_params, params_from_dict, parse_split_id
from tasks.common.errors import ConfigError, UnknownNameError

REPO = Path(__file__).resolve().parents[2]


def raw_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repo_params_load() -> None:
    p = load_params(REPO / "params.yaml")
    assert p.dataset == "ml-100k"
    for m in p.train.models:
        resolve_model(m, p.models)


def test_unknown_dataset_lists_valid_names() -> None:
    from flows.common import layout_and_params

    with pytest.raises(UnknownNameError) as exc:
        layout_and_params(REPO, "movielens-7")
    assert "ml-100k" in str(exc.value) and "movielens-7" in str(exc.value) and "dataset" in str(exc.value)


def test_unknown_model_lists_valid_names() -> None:
    p = params_from_dict(raw_params())
    with pytest.raises(UnknownNameError) as exc:
        resolve_model("deep-magic", p.models)
    msg = str(exc.value)
    assert "train.models" in msg and "deep-magic" in msg and "autorec-i" in msg and "nrp-direct" in msg


def test_unknown_model_key_names_the_parameter() -> None:
    from models.common.registry import get_model_class

    cls = get_model_class("biased-mf")
    with pytest.raises(ConfigError, match=r"models\.biased-mf\.factorz"):
        cls.config_cls.from_dict({"factorz": 3}, "biased-mf")
    with pytest.raises(ConfigError, match=r"models\.biased-mf\.lr"):
        cls.config_cls.from_dict({"lr": "fast"}, "biased-mf")


@pytest.mark.parametrize("bad", ["random-80-10-10", "loo-sX", ""])
def test_bad_split_instance(bad: str) -> None:
    with pytest.raises(ConfigError, match=r"split\.instances"):
        parse_split_id(bad)


def test_wrong_types_are_named() -> None:
    raw = raw_params()
    raw["train"]["max_epochs"] = "many"
    with pytest.raises(ConfigError, match=r"train\.max_epochs.*integer"):
        params_from_dict(raw)
    raw = raw_params()
    raw["features"]["unknown_knob"] = 1
    with pytest.raises(ConfigError, match=r"features\.unknown_knob"):
        params_from_dict(raw)
