"""Input checks at the domain boundary: every refusal names the field and what is wrong."""

from __future__ import annotations

import re
import uuid

from domain.kernel.errors import ErrorCode, ValidationFailed

NAME_MAX = 100
TEXT_MAX = 1000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
# Characters that change how text is shown without being seen: a name holding them can pass for
# another name (zero-width ones) or show its parts in another order (bidirectional overrides and
# isolates, as in "Trojan Source").
_INVISIBLE = re.compile("[\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def name(value: str, *, field: str = "name", max_length: int = NAME_MAX) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise ValidationFailed(ErrorCode.INVALID_NAME, f"{field} must not be empty", field=field)
    if len(cleaned) > max_length:
        raise ValidationFailed(
            ErrorCode.INVALID_NAME,
            f"{field} is {len(cleaned)} characters long; at most {max_length} are allowed",
            field=field,
        )
    if _CONTROL.search(cleaned):
        raise ValidationFailed(
            ErrorCode.INVALID_NAME, f"{field} must not contain control characters", field=field
        )
    _refuse_invisible(cleaned, field, ErrorCode.INVALID_NAME)
    return cleaned


def _refuse_invisible(value: str, field: str, code: ErrorCode) -> None:
    found = _INVISIBLE.search(value)
    if found is not None:
        raise ValidationFailed(
            code,
            f"{field} must not contain invisible or text-direction characters "
            f"(U+{ord(found.group()):04X})",
            field=field,
        )


def text(value: str, *, field: str = "description", max_length: int = TEXT_MAX) -> str:
    cleaned = value.strip()
    if len(cleaned) > max_length:
        raise ValidationFailed(
            ErrorCode.INVALID_TEXT,
            f"{field} is {len(cleaned)} characters long; at most {max_length} are allowed",
            field=field,
        )
    if _CONTROL.search(cleaned.replace("\n", "").replace("\t", "")):
        raise ValidationFailed(
            ErrorCode.INVALID_TEXT, f"{field} must not contain control characters", field=field
        )
    _refuse_invisible(cleaned, field, ErrorCode.INVALID_TEXT)
    return cleaned


def email(value: str, *, field: str = "email") -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise ValidationFailed(
            ErrorCode.INVALID_EMAIL, f"{field} {value!r} is not an email address", field=field
        )
    return cleaned


# An id as DeskFleet writes them (str of a uuid.UUID): most ids given back are, and a match costs
# a seventh of parsing one (every trigger checks two).
_WRITTEN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def ident(value: str, *, field: str = "id") -> str:
    """Ids are UUIDs; anything else cannot name a row, so say so instead of 'not found'. Other
    spellings of a UUID (upper case, braces, no hyphens) come back as DeskFleet writes ids."""
    if type(value) is str and _WRITTEN_ID.fullmatch(value):
        return value
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise ValidationFailed(
            ErrorCode.INVALID_ID, f"{field} {value!r} is not a valid id", field=field
        ) from None


def bounded_int(value: int, *, field: str, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE,
            f"{field} must be between {minimum} and {maximum}, got {value}",
            field=field,
        )
    return value
