"""Every package the shipped code imports is declared in pyproject.toml's dependencies, so a
fresh install has it (a package that only arrives with another one can leave at any release)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("api", "domain", "deskfleet")


def imported_top_levels() -> set[str]:
    names: set[str] = set()
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - set(SHIPPED) - {"__future__"}


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        for requirement in project["dependencies"]
    }


def test_every_imported_package_is_declared() -> None:
    distributions = packages_distributions()
    missing = {
        name: distributions.get(name, ["?"])
        for name in imported_top_levels()
        if not {d.lower().replace("_", "-") for d in distributions.get(name, [])} & declared()
    }
    assert not missing, f"imported but not declared in [project] dependencies: {missing}"
