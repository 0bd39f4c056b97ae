"""What one operation may cost: depth, aliases, tokens, document and body size, time; and what
production mode hides (introspection, GraphiQL, field suggestions)."""

from __future__ import annotations

from collections.abc import Callable

from cross_web import HTTPException
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension

from api.errors import should_mask
from domain.settings import Settings


def extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories, not instances: each operation gets fresh extension state.

    Validation rules are built once and reused: ValidationCache keys its entries by the rule
    classes, and the depth and alias limiters make a new class per instance, which would miss
    the cache on every request.
    """
    rules = [
        *QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.max_aliases).validation_rules,
    ]
    if settings.production:
        rules.append(NoSchemaIntrospectionCustomRule)
    return [
        lambda: MaskErrors(should_mask_error=should_mask),
        lambda: MaxTokensLimiter(max_token_count=settings.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ParserCache(maxsize=settings.parser_cache_size),
        lambda: ValidationCache(maxsize=settings.validation_cache_size),
    ]


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
