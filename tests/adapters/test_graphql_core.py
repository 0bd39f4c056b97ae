"""graphql-core: DeskFleet uses no private name of it, but its executors
(api/transport/acyclic_execution.py, api/transport/shared_execution.py) subclass graphql-core's
``Executor`` through Strawberry's and override or call these public members. A failure names the
member: check what replaced it before raising the upper bound in pyproject.toml.
tests/api/test_execution_cycles.py exercises them."""

from __future__ import annotations

import inspect

import graphql
from graphql.execution import Executor
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.transport.shared_execution import SharedEventExecution

GRAPHQL_CORE = f"graphql-core {graphql.__version__}"

METHODS = (
    "build_per_event_executor",  # shared_execution: the subscription's own executor
    "execute_operation",  # shared_execution: one execution per shareable event
    "gather_async_work",  # acyclic_execution: the helpers, held weakly
    "track_async_work",
)
ATTRIBUTES = ("async_helpers", "operation", "variable_values", "root_value", "is_awaitable")


def test_the_executor_members_deskfleet_relies_on_are_there() -> None:
    assert issubclass(StrawberryGraphQLCoreExecutionContext, Executor)
    assert issubclass(SharedEventExecution, Executor)
    for name in METHODS:
        assert callable(getattr(Executor, name, None)), f"{GRAPHQL_CORE}: no Executor.{name}"
    documented = inspect.get_annotations(Executor)
    for name in ATTRIBUTES:
        assert name in documented or hasattr(Executor, name), f"{GRAPHQL_CORE}: no Executor.{name}"
    helpers = graphql.GraphQLResolveInfoHelpers
    assert helpers._fields == ("gather", "track"), f"{GRAPHQL_CORE}: GraphQLResolveInfoHelpers"
