"""R39: the documents DeskFleet's own clients send (the dashboard, the examples) cost well under
the default maximum, so the limit refuses only what no client of ours asks for."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from graphql import OperationDefinitionNode, parse

from api.schema import schema
from api.transport.cost import CostTable, operation_cost
from domain.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ROOM = 0.6  # the heaviest document may use at most this share of the default maximum


def dashboard_documents() -> dict[str, str]:
    """Each exported document of api/dashboard/operations.js, its ${...} parts filled in."""
    source = (ROOT / "api/dashboard/operations.js").read_text()
    parts = dict(re.findall(r"const (\w+) = `(.*?)`;", source, re.S))
    parts.update(re.findall(r'const (\w+) = "(.*?)";', source))

    def filled(text: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: filled(parts[m.group(1)]), text)

    exported = re.findall(r"export const (\w+) = `", source)
    return {f"dashboard {name}": filled(parts[name]) for name in exported}


def example_documents() -> dict[str, str]:
    """Each operation of examples/operations/*.graphql, and every GraphQL string literal of the
    example scripts."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "examples/operations").glob("*.graphql")):
        found[str(path.relative_to(ROOT))] = path.read_text()
    for path in sorted((ROOT / "examples").glob("*.py")):  # not the packages of node_modules
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value.strip()
                if re.match(r"(query|mutation|subscription)\b|\{", text) and "{" in text:
                    try:
                        parse(text)
                    except Exception:  # not GraphQL (an f-string part, a dict)
                        continue
                    found[f"{path.relative_to(ROOT)}:{node.lineno}"] = text
    return found


def costs() -> list[tuple[str, int]]:
    table = CostTable.from_settings(Settings())
    answers = []
    for where, text in {**dashboard_documents(), **example_documents()}.items():
        document = parse(text)
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            name = operation.name.value if operation.name else None
            # No variables: every page is as large as allowed (the worst case).
            cost, _ = operation_cost(schema._schema, table, document, name)
            answers.append((f"{where} {name or ''}".strip(), cost.cost))
    return answers


def test_there_are_documents_to_cost() -> None:
    names = [name for name, _ in costs()]
    assert len([n for n in names if n.startswith("dashboard")]) >= 15
    assert any("examples/operations/machines.graphql" in n for n in names)


@pytest.mark.parametrize(("where", "cost"), costs())
def test_each_of_our_documents_passes_the_default_maximum_with_room(where: str, cost: int) -> None:
    assert cost <= ROOM * Settings().max_query_cost, f"{where} costs {cost}"
