"""The one place DeskFleet uses Strawberry's private names (tested by
tests/adapters/test_strawberry.py).

- ``Schema._schema``: the graphql-core ``GraphQLSchema`` a Strawberry schema built, which Strawberry
  offers no public name for. DeskFleet needs it to validate a document itself (the operation
  policy's cached validation, api/transport/limits.py) and to give the schema's enum types a
  quicker output coercion (api/schema.py).

strawberry-graphql is a dependency with an upper bound (pyproject.toml); the test fails, naming the
attribute, on a version without it.
"""

from __future__ import annotations

from graphql import GraphQLSchema
from strawberry.schema.base import BaseSchema


def graphql_schema(schema: BaseSchema) -> GraphQLSchema:
    """The graphql-core schema ``schema`` executes with."""
    built: GraphQLSchema = schema._schema  # type: ignore[attr-defined]
    return built
