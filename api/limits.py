"""The schema extensions that bound what one operation may cost."""

from __future__ import annotations

from collections.abc import Callable

from strawberry.extensions import (
    AddValidationRules,
    MaskErrors,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.extensions.base_extension import SchemaExtension

from api.errors import should_mask
from domain.settings import Settings


def extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories, not instances: each operation gets fresh extension state.

    The depth rule is built once and reused: ValidationCache keys its entries by the rule classes,
    and QueryDepthLimiter makes a new class per instance, which would miss the cache every time.
    """
    depth_rules = list(QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules)
    return [
        lambda: MaskErrors(should_mask_error=should_mask),
        lambda: AddValidationRules(depth_rules),
        lambda: ParserCache(maxsize=settings.parser_cache_size),
        lambda: ValidationCache(maxsize=settings.validation_cache_size),
    ]
