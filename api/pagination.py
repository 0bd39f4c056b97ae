"""What every paginated list shares (cursor connections; docs/api.md#pagination)."""

from __future__ import annotations

import strawberry


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None
