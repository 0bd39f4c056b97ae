"""The Core table behind a table model, typed."""

from __future__ import annotations

from sqlalchemy import Table
from sqlmodel import SQLModel


def table_of(model: type[SQLModel]) -> Table:
    """``model.__table__``: SQLAlchemy's declarative mapping sets it on every ``table=True``
    model, but SQLModel's class declares no such attribute for a type checker to see."""
    table: Table = model.__table__  # type: ignore[attr-defined]  # see the docstring
    return table
