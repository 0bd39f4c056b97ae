"""Cursor pagination over a stable order (name, id): pages never skip or repeat rows."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, overload

from domain.kernel.errors import ErrorCode, ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: Sequence[str]
    has_next_page: bool
    total_count: int

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None

    @classmethod
    def of(cls, rows: list[T], first: int, total: int, cursor: Callable[[T], str]) -> Page[T]:
        """A page from ``first + 1`` rows read: the extra one only says there is a next page."""
        items = rows[:first]
        return cls(
            items=items,
            cursors=LazyCursors(items, cursor),
            has_next_page=len(rows) > first,
            total_count=total,
        )


class LazyCursors(Sequence[str]):
    """A page's cursors, each encoded when asked for: a list that shows only its nodes (the
    machine list does) asks for the last one at most, and encoding all took ~2% of a page."""

    def __init__(self, items: list[Any], cursor: Callable[[Any], str]) -> None:
        self._items = items
        self._cursor = cursor

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._cursor(item) for item in self._items[index]]
        return self._cursor(self._items[index])


def encode_cursor(*key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str, parts: int) -> tuple[str, ...]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != parts or not all(isinstance(k, str) for k in key):
        raise ValidationFailed(
            ErrorCode.INVALID_CURSOR, "the cursor 'after' is not one this API issued", field="after"
        )
    return tuple(key)


def cursor_instant(value: str) -> datetime:
    """The instant part of a cursor this API issued, in UTC. Anything else (not an instant, no
    offset, or out of range once in UTC, like year 9999 at -14:00) is INVALID_CURSOR."""
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            ErrorCode.INVALID_CURSOR, "the cursor 'after' is not one this API issued", field="after"
        ) from None


def page_size(first: int, maximum: int) -> int:
    if first < 0 or first > maximum:
        raise ValidationFailed(
            ErrorCode.PAGE_TOO_LARGE,
            f"first must be between 0 and {maximum}, got {first}",
            field="first",
        )
    return first
