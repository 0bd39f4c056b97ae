"""schema.graphql at the root is the exported schema and never drifts (SPEC section 9)."""

from pathlib import Path

import pytest
from graphql import GraphQLError
from strawberry.schema.schema_converter import CustomGraphQLEnumType

from api.schema import schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_file_matches_exported_schema() -> None:
    exported = schema.as_str().strip()
    on_disk = (ROOT / "schema.graphql").read_text().strip()
    assert on_disk == exported, (
        "schema.graphql is out of date: run "
        "`python -c 'from api.schema import schema; print(schema.as_str())' > schema.graphql`"
    )


def test_every_enum_answers_each_member_by_name_and_refuses_a_stranger() -> None:
    """The dict-based enum output (api/schema.py) gives what Strawberry's scan gives."""
    enums = [t for t in schema._schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]
    assert len(enums) > 5
    for graphql_type in enums:
        for member in graphql_type.wrapped_cls:
            expected = CustomGraphQLEnumType.serialize(graphql_type, member)  # Strawberry's
            assert graphql_type.serialize(member) == expected == member.name
            assert graphql_type.serialize(member.value) == member.name  # a raw value: the same
        with pytest.raises(GraphQLError):
            graphql_type.serialize(object())
        with pytest.raises(GraphQLError):
            graphql_type.serialize(["unhashable"])
