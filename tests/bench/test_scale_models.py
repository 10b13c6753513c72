"""bench.scale_models' params: overrides reach the model's entry, a later call without them starts afresh (no
earlier run's override lingers), and a bad override names itself."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench.scale_models import SPLIT, write_params


def test_overrides_apply_and_do_not_linger(tmp_path: Path) -> None:
    write_params(tmp_path, ["ncae.sparse_updates=true", "cfn-i.hidden=[300]"])
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert p["dataset"] == "synthetic" and p["split"]["instances"] == [SPLIT]
    assert p["models"]["ncae"]["sparse_updates"] is True and p["models"]["cfn-i"]["hidden"] == [300]
    write_params(tmp_path, [])
    p = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert "sparse_updates" not in p["models"]["ncae"] and p["models"]["cfn-i"].get("hidden") != [300]


@pytest.mark.parametrize(("item", "says"), [("ncae", "model.key=value"), ("nosuch.lr=1", "no models.nosuch")])
def test_bad_override_is_refused(tmp_path: Path, item: str, says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        write_params(tmp_path, [item])
