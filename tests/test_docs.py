"""The documentation stays true to the code: settings, rules, examples, and a clean repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from graphql import ExecutableDefinitionNode, build_schema, parse, validate

from domain.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CITED_RULE = re.compile(r"\bR(\d{1,2})\b")
RULE_HEADING = re.compile(r"^### R(\d+)$", re.MULTILINE)
FORBIDDEN = re.compile(r"\.\./shared|\bissue \d+\b|\bsession \d+\b", re.IGNORECASE)


def text_files(*folders: str) -> list[Path]:
    return [
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and not {"__pycache__", "node_modules"} & set(path.parts)
    ]


def test_every_setting_is_documented_as_its_environment_variable() -> None:
    operations = (DOCS / "operations.md").read_text()
    missing = [
        f"DESKFLEET_{name.upper()}"
        for name in Settings.model_fields
        if f"`DESKFLEET_{name.upper()}`" not in operations
    ]
    assert not missing, f"docs/operations.md does not document {missing}"


def test_every_cited_rule_has_its_heading_in_rules_md() -> None:
    written = {int(n) for n in RULE_HEADING.findall((DOCS / "rules.md").read_text())}
    assert set(range(1, 38)) <= written, "docs/rules.md must hold R1 to R37"
    cited = {
        (int(number), path.relative_to(ROOT).as_posix())
        for path in text_files("tests", "domain", "api")
        for number in CITED_RULE.findall(path.read_text(errors="ignore"))
    }
    unwritten = sorted((n, where) for n, where in cited if n not in written)
    assert not unwritten, f"rules cited but not in docs/rules.md: {unwritten}"


def test_graphql_examples_in_the_docs_match_the_schema() -> None:
    schema = build_schema((ROOT / "schema.graphql").read_text())
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"```graphql\n(.*?)```", page.read_text(), re.DOTALL):
            document = parse(block)
            if all(isinstance(d, ExecutableDefinitionNode) for d in document.definitions):
                errors = validate(schema, document)
                assert not errors, f"{page.name}: {errors[0].message}\n{block}"


def test_the_readme_is_short() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details to docs/"


def test_no_file_outside_tests_names_sessions_issues_or_outside_paths() -> None:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    found = [
        f"{name}: {match.group(0)!r}"
        for name in listed
        if not name.startswith("tests/") and (ROOT / name).is_file()
        for match in FORBIDDEN.finditer((ROOT / name).read_text(errors="ignore"))
    ]
    assert not found, "a clone has no sessions, issue numbers or ../shared:\n" + "\n".join(found)
