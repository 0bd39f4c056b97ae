"""Fresh, migrated databases for each test, on SQLite or on a real PostgreSQL.

Set ``DESKFLEET_TEST_DATABASE_URL=postgresql://user@127.0.0.1:5432/postgres`` to run the suite on
PostgreSQL: each test then gets its own database cloned from a migrated template.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from domain.store import schema_version

POSTGRES_URL = os.environ.get("DESKFLEET_TEST_DATABASE_URL")
TEMPLATE = "deskfleet_test_template"


def backend_name() -> str:
    return "postgresql" if POSTGRES_URL else "sqlite"


def _dsn(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql", database=database)
        .render_as_string(hide_password=False)
    )


class TestDatabases:
    """Makes one migrated template per session, then a cheap copy per test."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._template_ready = False

    async def _prepare_template(self) -> None:
        if self._template_ready:
            return
        if POSTGRES_URL:
            admin = await asyncpg.connect(_dsn(POSTGRES_URL, "postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
                await admin.execute(f'CREATE DATABASE "{TEMPLATE}"')
            finally:
                await admin.close()
            await schema_version.upgrade(_dsn(POSTGRES_URL, TEMPLATE))
        else:
            await schema_version.upgrade(f"sqlite:///{self.workdir / 'template.db'}")
        self._template_ready = True

    async def fresh(self) -> str:
        await self._prepare_template()
        name = f"t_{uuid.uuid4().hex[:12]}"
        if POSTGRES_URL:
            admin = await asyncpg.connect(_dsn(POSTGRES_URL, "postgres"))
            try:
                await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
            finally:
                await admin.close()
            return _dsn(POSTGRES_URL, name)
        target = self.workdir / f"{name}.db"
        shutil.copyfile(self.workdir / "template.db", target)
        return f"sqlite:///{target}"

    async def empty(self) -> str:
        """A PostgreSQL database with no schema at all."""
        assert POSTGRES_URL, "empty() is for PostgreSQL"
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(_dsn(POSTGRES_URL, "postgres"))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        return _dsn(POSTGRES_URL, name)

    async def drop(self, url: str) -> None:
        if POSTGRES_URL:
            name = make_url(url).database
            admin = await asyncpg.connect(_dsn(POSTGRES_URL, "postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
