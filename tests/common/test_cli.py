"""The ``hybridrec`` console script: every subcommand answers ``--help`` (its own or the wrapped flow's)."""

from __future__ import annotations

import pytest

from flows.cli import main, parser


def test_top_level_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in ("run", "experiment", "tune", "report", "ui", "deploy"):
        assert name in out


@pytest.mark.parametrize("name", ["run", "ui"])
def test_own_subcommands_have_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main([name, "--help"])
    assert info.value.code == 0 and "usage: hybridrec" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["experiment", "tune", "report", "deploy"])
def test_wrapped_subcommands_pass_help_to_their_flow(name: str, capfd: pytest.CaptureFixture[str]) -> None:
    assert main([name, "--help"]) == 0
    assert "usage:" in capfd.readouterr().out


def test_unknown_subcommand_is_refused() -> None:
    with pytest.raises(SystemExit) as info:
        parser().parse_args(["train-everything"])
    assert info.value.code == 2
