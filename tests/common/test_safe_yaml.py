"""User YAML (params.yaml, a custom dataset's mapping) goes through ``tasks.common.safe_yaml``: an alias bomb, an
oversized file, deep nesting and unreadable values are refused quickly with an error naming the file, and the
project's own params.yaml and ordinary mappings still load."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
import yaml

from tasks.common.config import load_params
from tasks.common.errors import ConfigError, DataError
from tasks.common.safe_yaml import MAX_USER_YAML_BYTES, MAX_USER_YAML_DEPTH, load_user_yaml, parse_user_yaml
from tasks.datasets import get_dataset
from tasks.datasets.custom import load_mapping
from tests.datasets.test_datasets_custom import write_custom

REPO = Path(__file__).resolve().parents[2]
FAST_S = 1.0  # "quickly": the unprotected parser ran for minutes on the bomb below


def alias_bomb(levels: int = 9, width: int = 8) -> str:
    """``a: &a [x, ...]``, ``b: &b [*a, ...]``, ...: ``width ** levels`` (134 million) leaves in 280 bytes."""
    names = "abcdefghijklmnop"[:levels]
    lines = [f"{names[0]}: &{names[0]} [{','.join('x' * width)}]"]
    lines += [f"{n}: &{n} [{','.join([f'*{p}'] * width)}]" for p, n in itertools.pairwise(names)]
    return "\n".join(lines) + "\n"


def _refused_quickly(fn, *args):  # type: ignore[no-untyped-def]
    """Run ``fn(*args)``, expecting an exception; return it and assert it came in under ``FAST_S``."""
    t0 = time.perf_counter()
    with pytest.raises((DataError, ConfigError)) as ei:
        fn(*args)
    assert time.perf_counter() - t0 < FAST_S
    return ei.value


# ---------------------------------------------------------------------------------------------- the bomb
def test_the_bomb_is_small_and_really_explosive() -> None:
    text = alias_bomb()
    assert len(text.encode()) <= 300
    assert text.count("&") == 9 and text.count("*") == 64  # 9 anchors, 8 lines of 8 aliases
    doc = yaml.safe_load(text)  # valid YAML: plain PyYAML shares the nodes, so only a walk over them explodes
    node, leaves = doc["i"], 1
    while isinstance(node, list):
        node, leaves = node[0], leaves * len(node)
    assert leaves == 8**9


def test_alias_bomb_mapping_is_refused_quickly_naming_the_file(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    path = raw / "hybridrec.yaml"
    path.write_text(alias_bomb())
    err = _refused_quickly(load_mapping, path)
    assert isinstance(err, DataError) and Path(err.file) == path and err.line == 1
    assert str(err) == (
        f"{path}, line 1: YAML anchors are not allowed: expected every value written out "
        "(no &anchor or *alias), found '&a'"
    )
    assert _refused_quickly(get_dataset("custom").parse, raw).file == str(path)  # parse reads it the same way
    assert not get_dataset("custom").is_acquired(raw)  # is_acquired too (a broken mapping: not acquired)


def test_alias_bomb_is_refused_on_every_route_into_the_custom_dataset(tmp_path: Path) -> None:
    src = write_custom(tmp_path / "src")
    (src / "hybridrec.yaml").write_text(alias_bomb())
    dest = tmp_path / "data" / "custom"
    err = _refused_quickly(get_dataset("custom").acquire, dest, src, 5)  # acquire.source_dir
    assert err.file == str(src / "hybridrec.yaml") and not dest.exists()
    ds = get_dataset("custom").apply_options({"mapping": str(src / "hybridrec.yaml")})  # datasets.custom.mapping
    assert _refused_quickly(ds.acquire, dest, None, 5).file == str(src / "hybridrec.yaml")
    assert not dest.exists()


def test_alias_bomb_params_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(alias_bomb())
    err = _refused_quickly(load_params, path)
    assert isinstance(err, ConfigError) and err.param == str(path)
    assert "no &anchors or *aliases" in err.expected and f"{path}, line 1: YAML anchors are not allowed" in err.found


def test_an_alias_alone_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError) as ei:
        parse_user_yaml("ratings:\n  file: r.csv\n  user: *u\n", "m.yaml")
    assert (ei.value.file, ei.value.line, ei.value.found) == ("m.yaml", 3, "*u")
    assert "YAML aliases are not allowed" in str(ei.value)


def test_a_merge_key_needs_an_alias_and_is_refused() -> None:
    with pytest.raises(DataError, match="YAML anchors are not allowed"):
        parse_user_yaml("base: &b {x: 1}\nother:\n  <<: *b\n", "m.yaml")


# ---------------------------------------------------------------------------------------------- size and shape
@pytest.mark.parametrize("name", ["hybridrec.yaml", "hybridrec.json"])
def test_mapping_over_the_size_limit_is_refused_before_parsing(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    body = "# padding\n" if name.endswith(".yaml") else " "
    path.write_text(body * (MAX_USER_YAML_BYTES // len(body) + 1))
    err = _refused_quickly(load_mapping, path)
    assert Path(err.file) == path and "file too large" in str(err)
    assert (err.expected, err.found) == (f"at most {MAX_USER_YAML_BYTES} bytes", f"{path.stat().st_size} bytes")


def test_params_over_the_size_limit_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_bytes(b"dataset: ml-100k\n" + b"#" * MAX_USER_YAML_BYTES)
    err = _refused_quickly(load_params, path)
    assert err.param == str(path) and "file too large" in err.found


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_file_is_refused_after_the_limit() -> None:
    err = _refused_quickly(load_user_yaml, Path("/dev/zero"))
    assert (err.file, err.found) == ("/dev/zero", f"more than {MAX_USER_YAML_BYTES} bytes")


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    head = b"a: 1\n"
    path.write_bytes(head + b"#" * (MAX_USER_YAML_BYTES - len(head)))
    assert path.stat().st_size == MAX_USER_YAML_BYTES and load_user_yaml(path) == {"a": 1}


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    deep = MAX_USER_YAML_DEPTH + 1
    with pytest.raises(DataError, match=f"YAML nested too deeply: expected at most {MAX_USER_YAML_DEPTH} levels"):
        parse_user_yaml("[" * deep + "]" * deep, "x.yaml")
    ok = MAX_USER_YAML_DEPTH - 1
    assert parse_user_yaml("a: " + "[" * ok + "]" * ok, "x.yaml")[0] is not None
    path = tmp_path / "hybridrec.json"
    path.write_text("[" * 100_000 + "]" * 100_000)  # 200 KB: json.loads itself would overflow the stack
    err = _refused_quickly(load_mapping, path)
    assert Path(err.file) == path and "nested too deeply" in str(err)


@pytest.mark.parametrize(
    ("text", "snippet"),
    [
        ("a: " + "9" * 5000, "a value cannot be read"),  # int() refuses over 4300 digits: ValueError, not YAML
        ("a: 2024-13-45", "a value cannot be read"),  # an impossible date: ValueError from datetime
        ("? [a]\n: 1\n", "found unhashable key"),
        ("a: !!python/object/apply:os.system [echo hi]", "could not determine a constructor"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_unreadable_values_are_data_errors(text: str, snippet: str) -> None:
    with pytest.raises(DataError, match=re.escape(snippet)) as ei:
        parse_user_yaml(text, "x.yaml")
    assert ei.value.file == "x.yaml"


def test_not_utf8_and_unreadable_files_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: \xff\n")
    with pytest.raises(DataError, match="not valid utf-8") as ei:
        load_user_yaml(bad)
    assert ei.value.file == str(bad)
    with pytest.raises(DataError, match="file unreadable") as ei:
        load_user_yaml(tmp_path)  # a directory
    assert ei.value.file == str(tmp_path)


# ---------------------------------------------------------------------------------------------- still working
def test_the_repository_params_yaml_still_loads() -> None:
    path = REPO / "params.yaml"
    assert load_user_yaml(path) == yaml.safe_load(path.read_text(encoding="utf-8"))
    assert load_params(path).dataset == load_user_yaml(path)["dataset"]


@pytest.mark.parametrize("name", ["hybridrec.yaml", "hybridrec.json"])
def test_a_normal_mapping_still_works_with_line_numbers(tmp_path: Path, name: str) -> None:
    raw = write_custom(tmp_path / "raw", name=name)
    m = load_mapping(raw / name)
    assert (m.user, m.item) == ("userId", "movieId")
    assert get_dataset("custom").parse(raw).ratings.height == 5
    text = (raw / name).read_text()
    (raw / name).write_text(text.replace("stars", "score"))  # a column the data lacks: the error names the line
    with pytest.raises(DataError) as ei:
        get_dataset("custom").parse(raw)
    assert ei.value.line == text.splitlines().index(next(s for s in text.splitlines() if "stars" in s)) + 1


def test_no_other_module_parses_yaml_itself() -> None:
    """Every YAML the project reads goes through tasks.common.safe_yaml (a new ``yaml.safe_load`` would bypass it)."""
    direct = re.compile(r"\byaml\.(safe_load|load|full_load|unsafe_load|compose|parse|load_all|safe_load_all)\b")
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for folder in ("tasks", "flows", "models")
        for p in sorted((REPO / folder).rglob("*.py"))
        if p.name != "safe_yaml.py"
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert offenders == []
