"""Named variants in params.yaml (``base:`` / ``preset:`` plus overrides) and config validation."""

from __future__ import annotations

import pytest

from models.common.registry import resolve_model
from tasks.common.errors import ConfigError, UnknownNameError
from tasks.training import build_from_spec
from tests.models.test_contract import tiny_run_data


def test_variant_builds_its_base_class_with_its_overrides() -> None:
    entries = {"bpr": {"factors": 64}, "bpr-small": {"base": "bpr", "factors": 4, "lr": 0.01}}
    spec = resolve_model("bpr-small", entries)
    assert spec.cls.name == "bpr" and spec.base == "bpr" and spec.raw == {"factors": 4, "lr": 0.01}
    model = build_from_spec(spec, spec.raw, tiny_run_data("ranking").ctx)
    assert model.cfg.factors == 4 and model.run_name == "bpr-small"  # type: ignore[attr-defined]
    assert resolve_model("bpr", entries).raw == {"factors": 64}  # the registered entry is unchanged


def test_variant_naming_an_unknown_base_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"models.x.base.*registered models.*'bprr'"):
        resolve_model("x", {"x": {"base": "bprr"}})


def test_variant_without_base_and_unknown_name() -> None:
    with pytest.raises(ConfigError, match=r"models.x.base"):
        resolve_model("x", {"x": {"factors": 3}})
    with pytest.raises(UnknownNameError, match=r"train.models.*nothing-here"):
        resolve_model("nothing-here", {})


def test_variant_overriding_a_key_its_base_lacks_is_refused() -> None:
    spec = resolve_model("pop-x", {"pop-x": {"base": "pop", "lr": 0.1}})
    valid = r"one of \['max_epochs', 'monitor', 'patience', 'weighted'\]"
    with pytest.raises(ConfigError, match=r"models.pop-x.lr.*" + valid):
        build_from_spec(spec, spec.raw, tiny_run_data("ranking").ctx)


def test_unknown_preset_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"models.v.preset"):
        resolve_model("v", {"v": {"base": "bpr", "preset": "huge"}})


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        ({"factors": "8"}, "models.bpr.factors"),
        ({"lr": -1.0}, "models.bpr.lr"),
        ({"batch_size": 0}, "models.bpr.batch_size"),
        ({"monitor": "valid_auc"}, "models.bpr.monitor"),
        ({"monitor": "valid_ndcg@0"}, "models.bpr.monitor"),
        ({"patience": -1}, "models.bpr.patience"),
    ],
)
def test_bad_values_name_the_parameter(raw: dict, param: str) -> None:
    spec = resolve_model("bpr", {"bpr": raw})
    with pytest.raises(ConfigError, match=param.replace(".", r"\.")):
        build_from_spec(spec, spec.raw, tiny_run_data("ranking").ctx)


def test_rating_monitor_for_a_ranking_model_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tasks.training import fit

    data = tiny_run_data("ranking")
    spec = resolve_model("bpr", {"bpr": {"monitor": "valid_rmse"}})
    model = build_from_spec(spec, spec.raw, data.ctx)
    with pytest.raises(ConfigError, match=r"models\.bpr\.monitor.*ranking monitor"):
        fit(model, data, seed=0, max_epochs=1, patience=1, best_path=tmp_path / "b.pt", resume_path=None, fp="x",
            progress=lambda s: None)  # fmt: skip


def test_ease_refuses_an_item_count_whose_gram_matrix_would_not_fit() -> None:
    spec = resolve_model("ease", {"ease": {"max_memory_gib": 0.000001}})
    with pytest.raises(ConfigError, match=r"models\.ease\.max_memory_gib.*GiB for 48 items"):
        build_from_spec(spec, spec.raw, tiny_run_data("ranking").ctx)
