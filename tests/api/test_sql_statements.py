"""A page of 100 machines costs the same number of SQL statements as a page of 10 (loaders)."""

import pytest

from tests.conftest import StatementCounter
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

PAGE = """query($n: Int!) { machines(first: $n) { totalCount nodes {
  name description version status maintenance accessType runningCount queuedCount
  owner { displayName } group { name } environment { name } } } }"""


async def test_statements_per_page_do_not_grow_with_page_size(
    fleet: Fleet, api: GraphQLClient, sql_statements: StatementCounter
) -> None:
    owners = [await fleet.person("MACHINE_OWNER") for _ in range(3)]
    for i in range(100):
        await fleet.machine(owners[i % 3], f"bot-{i:03d}")

    counts = {}
    for size in (10, 100):
        sql_statements.count = 0
        data = await api.data(PAGE, {"n": size}, token=fleet.admin_token)
        assert len(data["machines"]["nodes"]) == size
        counts[size] = sql_statements.count

    assert counts[10] == counts[100], counts
    # Auth, visibility, count, page, then one batch per nested field (BEGINs included).
    assert counts[100] <= 15, counts
