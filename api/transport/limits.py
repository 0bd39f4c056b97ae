"""What one operation may cost: depth, aliases, tokens, document size; and what production mode
hides (introspection, GraphiQL, field suggestions). The body's size is api/transport/body_limit.py's, the
request's time api/transport/deadlines.py's."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cross_web import HTTPException
from graphql import DocumentNode, GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension

from api.transport.strawberry_adapter import graphql_schema
from domain.kernel.settings import Settings


def extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
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
    )
    return [lambda: OperationPolicy(policy)]


@dataclass(frozen=True)
class Policy:
    max_tokens: int
    rules: tuple[type[ASTValidationRule], ...]
    parse: Callable[..., DocumentNode]
    validate: Callable[..., list[GraphQLError]]


class OperationPolicy(SchemaExtension):
    """Strawberry's MaxTokensLimiter, AddValidationRules, ParserCache and ValidationCache in one
    extension, on the parse and validate hooks only.

    Every extension costs every operation a context manager per hook (a good part of a small
    query); these need no operation hook (errors are masked in ``DeskFleetSchema.process_errors``).
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.policy.max_tokens
        context.graphql_document = self.policy.parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = context.validation_rules + self.policy.rules
        context.pre_execution_errors = self.policy.validate(
            graphql_schema(context.schema), context.graphql_document, context.validation_rules
        )
        yield


def check_document_size(query: str | None, settings: Settings) -> None:
    """Refuse an oversized GraphQL document before it is parsed (HTTP 413)."""
    if query is not None and len(query.encode()) > settings.max_document_bytes:
        raise HTTPException(
            413,
            f"the GraphQL document is {len(query.encode())} bytes; at most "
            f"{settings.max_document_bytes} are accepted",
        )
