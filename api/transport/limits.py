"""What one operation may cost: depth, aliases, tokens, document size, its computed cost and the
caller's bucket (R39, api/transport/cost.py and throttle.py); and what production mode
hides (introspection, GraphiQL, field suggestions). The body's size is api/transport/body_limit.py's, the
request's time api/transport/deadlines.py's."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cross_web import HTTPException
from graphql import DocumentNode, GraphQLError, OperationType
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import (
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension

from api.transport import throttle
from api.transport.cost import CostAnalysis, CostTable, OperationCost
from api.transport.early_refusal import OPERATION_COST
from api.transport.guards import principal_key
from api.transport.strawberry_adapter import graphql_schema
from api.transport.throttle import Buckets, MemoryBuckets, Spent
from domain.kernel.settings import Settings


def extensions(
    settings: Settings, buckets: Buckets | None = None
) -> list[Callable[[], SchemaExtension]]:
    """A factory, not an instance: each operation gets fresh extension state.

    Validation rules are built once and reused: the validation cache keys its entries by the rule
    classes, and the depth and alias limiters make a new class per instance, which would miss
    the cache on every request.
    """
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if settings.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    policy = Policy(
        max_tokens=settings.max_tokens,
        rules=tuple(rules),
        # Strawberry's caches live at module level, shared by every instance of the same size.
        parse=ParserCache(maxsize=settings.parser_cache_size).cached_parse_document,
        validate=ValidationCache(maxsize=settings.validation_cache_size).cached_validate_document,
        costs=CostAnalysis(CostTable.from_settings(settings), settings.validation_cache_size),
        max_cost=settings.max_query_cost,
        buckets=buckets
        or MemoryBuckets(settings.cost_bucket_size, settings.cost_restore_rate, time.monotonic),
    )
    return [lambda: OperationPolicy(policy)]


@dataclass(frozen=True)
class Policy:
    max_tokens: int
    rules: tuple[type[ASTValidationRule], ...]
    parse: Callable[..., DocumentNode]
    validate: Callable[..., list[GraphQLError]]
    costs: CostAnalysis
    max_cost: int
    buckets: Buckets


class OperationPolicy(SchemaExtension):
    """Strawberry's MaxTokensLimiter, AddValidationRules, ParserCache and ValidationCache in one
    extension, on the parse and validate hooks only.

    Every extension costs every operation a context manager per hook (a good part of a small
    query); these need no operation hook (errors are masked in ``DeskFleetSchema.process_errors``).
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.cost: OperationCost | None = None
        self.spent: Spent | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.policy.max_tokens
        context.graphql_document = self.policy.parse(context.query, **context.parse_options)
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.policy.rules
        context.pre_execution_errors = self.policy.validate(
            graphql_schema(context.schema), context.graphql_document, context.validation_rules
        )
        if not context.pre_execution_errors:
            refusal = await self.admit()
            if refusal is not None:
                context.pre_execution_errors = [refusal]
        yield

    async def admit(self) -> GraphQLError | None:
        """R39: refuse an operation dearer than the maximum, then spend its cost from the
        caller's bucket (an unauthenticated caller spends nothing: auth refuses it)."""
        context = self.execution_context
        policy = self.policy
        assert context.graphql_document is not None
        cost = self.cost = policy.costs.cost(
            graphql_schema(context.schema),
            context.query,
            context.graphql_document,
            context.operation_name,
            context.variables,
        )
        if cost.cost > policy.max_cost:
            return GraphQLError(
                f"the operation costs {cost.cost}, more than the maximum of {policy.max_cost}: "
                "ask for smaller pages or fewer nested lists",
                extensions={
                    "code": "QUERY_TOO_COSTLY",
                    "cost": cost.cost,
                    "maximumCost": policy.max_cost,
                },
            )
        caller = getattr(context.context, "credential", None)
        if caller is None:
            return None
        request = getattr(context.context, "request", None)
        if isinstance(request, Request):  # what the door remembers of this request's body
            request.scope[OPERATION_COST] = cost.cost
        spent = self.spent = await policy.buckets.spend(principal_key(caller), cost.cost)
        if spent.allowed:
            return None
        message, extensions, retry = throttle.refusal(cost.cost, spent)
        response = getattr(context.context, "response", None)
        if isinstance(response, Response) and retry is not None:
            response.status_code = 429  # HTTP only; a websocket's subscribe gets the error
            response.raw_headers.append((b"retry-after", str(retry).encode()))
        return GraphQLError(message, extensions=extensions)

    def get_results(self) -> dict[str, Any]:
        """``extensions.cost`` of each answer (not of each event of a subscription)."""
        cost = self.cost
        if cost is None or cost.operation is OperationType.SUBSCRIPTION:
            return {}
        return {"cost": throttle.cost_report(cost.cost, self.spent)}


def check_document_size(query: str | None, settings: Settings) -> None:
    """Refuse an oversized GraphQL document before it is parsed (HTTP 413)."""
    if query is not None and len(query.encode()) > settings.max_document_bytes:
        raise HTTPException(
            413,
            f"the GraphQL document is {len(query.encode())} bytes; at most "
            f"{settings.max_document_bytes} are accepted",
        )
