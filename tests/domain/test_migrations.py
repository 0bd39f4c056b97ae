"""Migrations: the schema they build is the models' schema, on the backend under test, and the
indexes the dispatcher's reads rely on are the ones SQLite's planner picks."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import domain.store.models  # noqa: F401  (every table on the metadata)
from domain.runs.queue_state import _QUEUED
from domain.store import schema_version
from domain.store.db import async_url
from tests.databases import backend_name


async def _differences(database_url: str) -> list[object]:
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), SQLModel.metadata)
            )
    finally:
        await engine.dispose()


async def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    assert await schema_version.is_current(database_url)
    assert await _differences(database_url) == []


async def test_the_last_migration_goes_down_and_up_again(database_url: str) -> None:
    config = schema_version.alembic_config(database_url)
    head = schema_version.head_revision()
    await asyncio.to_thread(command.downgrade, config, "-1")
    assert await schema_version.current_revision(database_url) != head
    await schema_version.upgrade(database_url)
    assert await schema_version.current_revision(database_url) == head
    assert await _differences(database_url) == []


@pytest.mark.rule("R25")
@pytest.mark.skipif(backend_name() != "sqlite", reason="SQLite's query plan")
async def test_an_environments_queue_is_read_without_walking_its_run_history(
    database_url: str,
) -> None:
    """Every dispatcher pass reads each environment's queued runs: through the index on
    (environment_id, status), not the environment's every run ever."""
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            compiled = _QUEUED.compile(dialect=connection.dialect)
            parameters = [
                "e1" if name == "environment_id" else compiled.params[name]
                for name in compiled.positiontup or ()
            ]
            plan = await connection.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled.string}", tuple(parameters)
            )
            details = " | ".join(str(row[3]) for row in plan.all())
    finally:
        await engine.dispose()
    assert "ix_flow_runs_environment_status (environment_id=? AND status=?)" in details, details
