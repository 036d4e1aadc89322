"""Each package imports only what its pyproject.toml declares, and segkit siblings only in DESIGN.md's direction."""

import ast
import re
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # requirements-dev.txt installs tomli there
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

#: DESIGN.md's dependency direction: the segkit siblings each package may import (never upward, never sideways)
ALLOWED_SIBLINGS = {
    "packages/io": set(),
    "packages/nets": set(),
    "packages/planning": {"io"},
    "packages/train": {"io", "planning", "nets"},
    "packages/infer": {"io", "planning", "nets"},
    "apps/segtool": {"infer", "io"},
}


def imported_modules(source: Path) -> set[str]:
    """Every absolute module name imported anywhere in the package's files, lazy imports included."""
    names = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return names


def declared(package: Path) -> tuple[set[str], set[str]]:
    """(segkit siblings, other distributions) the package's pyproject.toml requires, extras included."""
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [r for extra in project.get("optional-dependencies", {}).values()
                                              for r in extra]
    names = {re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}
    return {n.removeprefix("segkit-") for n in names if n.startswith("segkit-")}, {
        n for n in names if not n.startswith("segkit-")}


@pytest.mark.parametrize("package", sorted(ALLOWED_SIBLINGS))
def test_imports_follow_the_design_and_the_declared_requirements(package):
    modules = imported_modules(REPO / package / "src")
    own = Path(package).name
    siblings = {m.split(".")[1] for m in modules if m.startswith("segkit.")} - {own}
    others = {m.split(".")[0] for m in modules} - {"segkit", "segtool"} - set(sys.stdlib_module_names)
    declared_siblings, declared_others = declared(REPO / package)
    assert siblings <= ALLOWED_SIBLINGS[package], f"imports against DESIGN.md: {siblings - ALLOWED_SIBLINGS[package]}"
    assert siblings == declared_siblings, f"imported {sorted(siblings)}, declared {sorted(declared_siblings)}"
    undeclared = {m for m in others if m.lower().replace("_", "-") not in declared_others}
    assert not undeclared, f"{package} imports {sorted(undeclared)} without declaring them"
