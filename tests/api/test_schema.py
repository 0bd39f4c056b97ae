"""schema.graphql at the root is the exported schema and never drifts (docs/api.md)."""

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
    """The dict-based enum output (api/schema.py) gives what Strawberry's scan gives, through
    the method graphql-core's executor calls and through serialize()."""
    enums = [t for t in schema._schema.type_map.values() if isinstance(t, CustomGraphQLEnumType)]
    assert len(enums) > 5
    for graphql_type in enums:
        for member in graphql_type.wrapped_cls:
            expected = CustomGraphQLEnumType.coerce_output_value(graphql_type, member)
            assert graphql_type.coerce_output_value(member) == expected == member.name
            assert graphql_type.serialize(member) == member.name
            assert graphql_type.coerce_output_value(member.value) == member.name  # a raw value
        assert graphql_type.coerce_output_value.__module__ == "api.schema"  # the dict's, in use
        with pytest.raises(GraphQLError):
            graphql_type.coerce_output_value(object())
        with pytest.raises(GraphQLError):
            graphql_type.coerce_output_value(["unhashable"])
