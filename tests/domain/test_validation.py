"""Ids at the domain boundary (domain/kernel/validation.py): every spelling of a UUID names the same row,
anything else is refused with the field's name."""

from __future__ import annotations

import uuid

import pytest

from domain.kernel.errors import ErrorCode, ValidationFailed
from domain.kernel.validation import ident

_ID = uuid.UUID("0b5e6f7a-1c2d-4e3f-8a9b-0c1d2e3f4a5b")
_WRITTEN = str(_ID)


@pytest.mark.parametrize(
    "given",
    [
        _WRITTEN,
        _WRITTEN.upper(),
        _ID.hex,
        "{" + _WRITTEN + "}",
        f"urn:uuid:{_WRITTEN}",
    ],
)
def test_every_spelling_of_a_uuid_comes_back_as_ids_are_written(given: str) -> None:
    assert ident(given) == _WRITTEN


@pytest.mark.parametrize(
    "given",
    ["", "1", "not-an-id", _WRITTEN + "0", _WRITTEN[:-1] + "g", f" {_WRITTEN}", f"{_WRITTEN}\n"],
)
def test_anything_else_is_refused_naming_the_field(given: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        ident(given, field="machineId")
    assert refused.value.code is ErrorCode.INVALID_ID
    assert "machineId" in str(refused.value)


def test_a_value_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ValidationFailed):
        ident(12345, field="runId")  # type: ignore[arg-type]
