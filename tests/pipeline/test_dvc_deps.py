"""Every DVC stage lists, as ``deps``, every project module its command imports (transitively), plus the
packages whose modules are discovered at run time (the model and dataset registries): a change to any code a
stage runs makes ``dvc repro`` rerun that stage."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("flows", "tasks", "models")
# registries import every module of these packages when first used
DISCOVERED = {"models/common/registry.py": "models", "tasks/datasets/__init__.py": "tasks/datasets"}


def _module_file(module: str) -> Path | None:
    base = REPO / Path(*module.split("."))
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else None


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.split(".")[0] in PACKAGES}


def import_closure(module: str) -> set[str]:
    """Repository-relative paths of every project module ``module`` imports, directly or not."""
    seen: set[Path] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run their __init__
        path = _module_file(mod)
        if path is None or path in seen:
            continue
        seen.add(path)
        todo += sorted(_imports(path))
    files = {p.relative_to(REPO).as_posix() for p in seen}
    return files | {pkg for f, pkg in DISCOVERED.items() if f in files}


def _stages() -> dict[str, dict]:
    """Each stage's definition (a per-dataset stage's ``do:`` body)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: spec.get("do", spec) for name, spec in stages.items()}


@pytest.mark.parametrize("stage", sorted(_stages()))
def test_stage_deps_cover_every_imported_module(stage: str) -> None:
    spec = _stages()[stage]
    cmd = spec["cmd"].split()
    module = cmd[cmd.index("-m") + 1]
    deps = [str(d).rstrip("/") for d in spec.get("deps", [])]

    def covered(path: str) -> bool:
        return any(path == d or path.startswith(d + "/") for d in deps)

    missing = sorted(p for p in import_closure(module) if not covered(p))
    assert not missing, f"dvc.yaml stage {stage!r} (python -m {module}) does not list {missing}"


def test_report_depends_on_what_it_reads() -> None:
    deps = _stages()["report"]["deps"]
    for needed in ("artifacts/splits/${key}", "artifacts/runs/${key}", "artifacts/metrics/${key}",
                   "artifacts/evaluations/${key}", "artifacts/breakdowns/${key}"):
        assert needed in deps
    assert {"artifacts/metrics", "artifacts/evaluations"} <= set(_stages()["summary"]["deps"])
