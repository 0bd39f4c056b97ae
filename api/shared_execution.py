"""One execution of a subscription event for every subscriber that gets the same event.

A subscription yields a payload per subscriber, and GraphQL executes the subscription's selection
over it for each of them. When the payload is *shareable* — the same object for everyone that gets
the same change, made only of plain data (no resolver reads the context or the caller) — the
result of a given document and variables over it is the same for everyone: it is computed once
and every subscriber sends it (api/subscriptions.py marks machineStatus updates so).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

_RESULTS = "_deskfleet_shared_results"


def shareable(payload: object) -> None:
    """Mark ``payload`` (built once per distinct event, context-free) as shareable."""
    setattr(payload, _RESULTS, {})


class SharedEventExecution(StrawberryGraphQLCoreExecutionContext):
    def execute_operation(self, *args: Any, **kwargs: Any) -> Any:
        results: dict[Any, tuple[object, object, Any]] | None = getattr(
            self.root_value, _RESULTS, None
        )
        if results is None:
            return super().execute_operation(*args, **kwargs)
        loop = asyncio.get_running_loop()
        key = (
            id(self.operation),
            id(loop),
            json.dumps(self.variable_values, sort_keys=True, default=str),
        )
        entry = results.get(key)
        if entry is not None and entry[0] is self.operation and entry[1] is loop:
            return entry[2]
        result = super().execute_operation(*args, **kwargs)
        if self.is_awaitable(result):
            # Strawberry's root resolver is async: every subscriber awaits the one task.
            result = asyncio.ensure_future(result)
        # The operation and loop kept alive with it: their ids stay their own.
        results[key] = (self.operation, loop, result)
        return result
