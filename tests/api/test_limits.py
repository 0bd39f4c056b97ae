"""Query limits: the boundary is accepted, one past it refused with a clear error."""

import pytest

from domain.settings import Settings
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio


def nested(depth: int) -> str:
    """A query of depth `depth` as graphql-depth-limit counts it (the root field is depth 0):
    machines > nodes > group > machines > group > ... > name."""
    fields = ["machines(first: 1)", "nodes"]
    while len(fields) < depth:
        fields.append("group" if fields[-1] != "group" else "machines")
    body = "name"
    for field in reversed(fields):
        body = f"{field} {{ {body} }}"
    return "{ " + body + " }"


async def test_query_depth_limit_boundary(
    fleet: Fleet, api: GraphQLClient, settings: Settings
) -> None:
    limit = settings.max_query_depth

    accepted = await api.execute(nested(limit), token=fleet.admin_token)
    refused = await api.execute(nested(limit + 1), token=fleet.admin_token)
    refused_again = await api.execute(nested(limit + 1), token=fleet.admin_token)  # cached path

    assert "errors" not in accepted, accepted
    for result in (refused, refused_again):
        assert "exceeds maximum operation depth" in result["errors"][0]["message"]
        assert result.get("data") is None
