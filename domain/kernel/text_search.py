"""The lists' text filter: a LIKE pattern for "contains", the user's wildcards taken literally."""

from __future__ import annotations


def contains_pattern(text: str) -> str:
    """``%text%`` with ``\\``, ``%`` and ``_`` escaped (for ``ilike(..., escape="\\\\")``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
