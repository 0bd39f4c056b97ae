"""The operations in examples/operations/*.graphql, for the `gql` clients here.

    from documents import operation
    request = operation("machines.graphql", "Machines", first=50, filter={"text": "finance"})
    data = await session.execute(request)

A file holds several named operations; ``operation`` picks one by name (``operation_name``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gql import GraphQLRequest

OPERATIONS = Path(__file__).resolve().parent / "operations"


def operation(file: str, name: str, **variables: Any) -> GraphQLRequest:
    return GraphQLRequest(
        (OPERATIONS / file).read_text(), variable_values=variables, operation_name=name
    )
