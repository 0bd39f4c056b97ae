"""An executor that reference counting frees as soon as its operation ends.

graphql-core's executor keeps bound methods of itself in ``async_helpers`` (what resolvers and
abstract-type checks gather and track their awaitables with): a reference cycle. Everything the
operation reached — the request, the context, its loaders, the result — then waits for the
garbage collector. With the young-generation threshold ``deskfleet serve`` sets (deskfleet/cli.py's
``tune_garbage_collector``) a collection found some 40,000 such objects at a time and took
~70 ms: under load, ~20% of a small query's time (~80 us of ~350 us). Held weakly, the helpers
break the cycle. An executor is alive while its helpers are called: they are called from its
own resolvers and completions, which it awaits.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any, Self

from graphql import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


class AcyclicExecution(StrawberryGraphQLCoreExecutionContext):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = _weak_helpers(self)

    def __copy__(self) -> Self:
        # Per-event and deferred work run on shallow copies: each gets helpers of its own.
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.async_helpers = _weak_helpers(clone)
        return clone


def _weak_helpers(executor: AcyclicExecution) -> GraphQLResolveInfoHelpers:
    ref = weakref.ref(executor)

    def gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
        return _alive(ref).gather_async_work(values)

    def track(values: Sequence[Any]) -> None:
        _alive(ref).track_async_work(values)

    return GraphQLResolveInfoHelpers(gather=gather, track=track)


def _alive(ref: weakref.ReferenceType[AcyclicExecution]) -> AcyclicExecution:
    executor = ref()
    if executor is None:
        raise RuntimeError("a GraphQL operation's async helpers were used after it ended")
    return executor
