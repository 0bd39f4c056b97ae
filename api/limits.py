"""What one operation may cost: depth, aliases, tokens, document and body size, time; and what
production mode hides (introspection, GraphiQL, field suggestions)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cross_web import HTTPException
from graphql import DocumentNode, GraphQLError
from graphql.validation import ASTValidationRule, NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    MaskErrors,
    MaxAliasesLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension

from api.errors import should_mask
from domain.settings import Settings


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


class OperationPolicy(MaskErrors):
    """Strawberry's MaxTokensLimiter, AddValidationRules, ParserCache, ValidationCache and
    MaskErrors in one extension.

    Every extension costs every operation a context manager per phase (a good part of a small
    query): one extension with the four hooks costs a quarter of what five did.
    """

    def __init__(self, policy: Policy) -> None:
        super().__init__(should_mask_error=should_mask)
        self.policy = policy

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.parse_options["max_tokens"] = self.policy.max_tokens
        context.validation_rules = context.validation_rules + self.policy.rules
        yield from super().on_operation()

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        context.graphql_document = self.policy.parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        context.pre_execution_errors = self.policy.validate(
            context.schema._schema, context.graphql_document, context.validation_rules
        )
        yield

    def _process_result(self, result: object) -> None:
        # MaskErrors checks a runtime Protocol here, which costs more than the rest of the hook.
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = self._process_errors(errors)  # type: ignore[attr-defined]


def check_request_size(body: bytes, query: str | None, settings: Settings) -> None:
    """Refuse oversized bodies and documents before anything parses them (HTTP 413)."""
    if len(body) > settings.max_request_bytes:
        raise HTTPException(
            413,
            f"the request body is {len(body)} bytes; at most {settings.max_request_bytes} "
            "are accepted",
        )
    if query is not None and len(query.encode()) > settings.max_document_bytes:
        raise HTTPException(
            413,
            f"the GraphQL document is {len(query.encode())} bytes; at most "
            f"{settings.max_document_bytes} are accepted",
        )
