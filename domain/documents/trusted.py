"""Registering trusted documents and reading them back.

A document is known by the SHA-256 of its exact text, as a client names it in a persisted query
(docs/api.md, "Trusted documents"). Registering is idempotent: a document already registered keeps
its first source and time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from domain.store.db import Database
from domain.store.models import TrustedDocument


def sha256_of(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


@dataclass(frozen=True)
class Registered:
    added: list[str]  # the sources of the documents new to the installation
    known: list[str]  # the sources of the ones it had already


async def register(db: Database, documents: Sequence[tuple[str, str]], now: datetime) -> Registered:
    """``documents``: (source, text) pairs, all registered in one transaction or none."""
    by_hash = {sha256_of(text): (source, text) for source, text in documents}
    async with db.write() as session:
        present = set(
            (
                await session.exec(
                    select(TrustedDocument.sha256).where(col(TrustedDocument.sha256).in_(by_hash))
                )
            ).all()
        )
        for sha256, (source, text) in by_hash.items():
            if sha256 not in present:
                session.add(
                    TrustedDocument(sha256=sha256, document=text, source=source, registered_at=now)
                )
    return Registered(
        added=[source for h, (source, _) in by_hash.items() if h not in present],
        known=[source for h, (source, _) in by_hash.items() if h in present],
    )


async def registered(db: Database) -> dict[str, str]:
    """Every trusted document, by its SHA-256."""
    async with db.read() as session:
        rows = await session.exec(select(TrustedDocument.sha256, TrustedDocument.document))
        return dict(rows.all())
