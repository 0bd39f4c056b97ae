"""Dotted version numbers (R2, R7), compared as numbers, never as strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import total_ordering

from domain.kernel.errors import ErrorCode, ValidationFailed

# ASCII digits only: \d would take other scripts' digits ("٢.٨"), and $ a trailing newline.
_DOTTED = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9}){0,3}")

MIN_FLOW_EXTENSIONS = "1.2.4.1"
MIN_MACHINE_RUNTIME = "2.8.73.21119"


@total_ordering
@dataclass(frozen=True)
class Version:
    parts: tuple[int, int, int, int]

    @classmethod
    def parse(cls, text: str, *, field: str = "version") -> Version:
        """Parse 1 to 4 dotted non-negative integers; missing parts count as zero."""
        cleaned = text.strip() if isinstance(text, str) else ""
        if not _DOTTED.fullmatch(cleaned):
            raise ValidationFailed(
                ErrorCode.INVALID_VERSION,
                f"{field} {text!r} is not a dotted version of 1 to 4 numbers, like 2.8.73.21119",
                field=field,
            )
        numbers = [int(p) for p in cleaned.split(".")]
        numbers += [0] * (4 - len(numbers))
        return cls((numbers[0], numbers[1], numbers[2], numbers[3]))

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts < other.parts

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


def below(version: str, minimum: str | None) -> bool:
    """R41: ``version`` is older than ``minimum`` (never, without a minimum)."""
    return minimum is not None and Version.parse(version) < Version.parse(minimum)


def normalise(text: str, *, field: str = "version") -> str:
    return str(Version.parse(text, field=field))
