"""An operation's executor is freed by reference counting when the operation ends.

graphql-core's executor keeps bound methods of itself (its ``async_helpers``), a cycle that only
the garbage collector frees, and with it everything the operation touched: the request, the
context, the loaders and the result. With DeskFleet's young-generation threshold (deskfleet/cli.py)
each collection then found some 40,000 dead objects and took ~70 ms; under load that was ~20% of
a small query's time. api/transport/acyclic_execution.py holds the executor's helpers weakly.
"""

from __future__ import annotations

import copy
import gc
from collections.abc import Awaitable, Callable, Iterator

import pytest
from graphql import parse
from graphql.execution import Executor

from api.schema import build_schema
from api.transport.shared_execution import SharedEventExecution
from domain.kernel.settings import Settings
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio

BAD_MACHINE = """mutation { setMachineMaintenance(id: "nope", enabled: true) {
  __typename ... on UserError { code message } } }"""


@pytest.fixture
def saved_garbage() -> Iterator[Callable[[], list[object]]]:
    """What the collector would free, kept for inspection instead (gc.DEBUG_SAVEALL)."""
    gc.collect()
    gc.garbage.clear()
    gc.set_debug(gc.DEBUG_SAVEALL)

    def collected() -> list[object]:
        gc.collect()
        return list(gc.garbage)

    try:
        yield collected
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def executors_left(
    collected: Callable[[], list[object]], operation: Callable[[], Awaitable[object]]
) -> list[object]:
    await operation()
    return [o for o in collected() if isinstance(o, Executor)]


async def test_a_query_leaves_no_executor_to_the_garbage_collector(
    fleet: Fleet, api: GraphQLClient, saved_garbage: Callable[[], list[object]]
) -> None:
    person = await fleet.person("MACHINE_OWNER", name="dana")
    await fleet.machine(person, name="m1")
    queries = ["{ me { id } }", "{ machines(first: 10) { nodes { name group { name } } } }"]
    for query in queries:
        left = await executors_left(saved_garbage, lambda q=query: api.data(q, token=person.token))
        assert left == [], query


async def test_a_mutation_with_a_typed_error_leaves_no_executor(
    fleet: Fleet, api: GraphQLClient, saved_garbage: Callable[[], list[object]]
) -> None:
    person = await fleet.person("MACHINE_OWNER", name="dana")

    async def refused() -> object:
        result = await api.data(BAD_MACHINE, token=person.token)
        assert result["setMachineMaintenance"]["__typename"] != "MachinePayload"
        return result

    assert await executors_left(saved_garbage, refused) == []


async def test_the_weak_helpers_work_while_the_operation_lives_and_say_when_it_has_ended() -> None:
    executor = SharedEventExecution.build(build_schema(Settings())._schema, parse("{ __typename }"))
    assert isinstance(executor, SharedEventExecution)

    async def one() -> int:
        return 1

    helpers = executor.async_helpers
    assert await helpers.gather([one()]) == [1]
    helpers.track([1, "not awaitable"])
    clone = copy.copy(executor)  # a subscription event's executor
    assert clone.async_helpers is not helpers
    assert await clone.async_helpers.gather([one(), one()]) == [1, 1]

    del executor, clone  # no cycle: reference counting frees them here
    with pytest.raises(RuntimeError, match="after it ended"):
        helpers.track([])
