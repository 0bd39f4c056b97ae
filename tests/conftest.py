"""Fixtures: a migrated database per test, the real app on it, and a GraphQL client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import event
from starlette.applications import Starlette

from api.app import create_app
from domain.context import DomainContext
from domain.identity import bootstrap
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from tests.databases import TestDatabases, backend_name
from tests.graphql import Fleet, GraphQLClient
from tests.oidc.provider import OpenIDProvider
from tests.runs_given import Runs


def pytest_report_header() -> str:
    return f"deskfleet database backend: {backend_name()}"


@pytest.fixture(scope="session")
def test_databases(tmp_path_factory: pytest.TempPathFactory) -> TestDatabases:
    return TestDatabases(tmp_path_factory.mktemp("databases"))


@pytest.fixture
async def database_url(test_databases: TestDatabases) -> AsyncIterator[str]:
    url = await test_databases.fresh()
    yield url
    await test_databases.drop(url)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Tests drive the dispatcher themselves (domain.dispatch.dispatcher.dispatch_once / sweep_once) so
    # outcomes and statement counts never depend on a background pass; a test that wants the
    # lifespan's dispatcher turns it on. The test clock stands still, so the callers' cost buckets
    # (R39) never restore: they are made large enough never to throttle a test that is not about
    # them (tests/api/test_query_cost.py sets its own).
    return Settings(
        database_url=database_url,
        secret_key_file=tmp_path / "deskfleet.secret",
        dispatcher_enabled=False,
        webhooks_enabled=False,  # tests send webhooks themselves (domain/webhooks/sender.py)
        cost_bucket_size=1_000_000_000,
    )


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[Starlette]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def domain(app: Starlette) -> DomainContext:
    return app.state.domain


@pytest.fixture
async def api(app: Starlette) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://deskfleet.test") as http:
        yield GraphQLClient(http)


@pytest.fixture
async def admin_token(domain: DomainContext) -> str:
    return (await bootstrap.mint_admin_token(domain, "tests")).secret


@pytest.fixture
async def default_environment_id(api: GraphQLClient, admin_token: str) -> str:
    data = await api.data("{ environments { id name } }", token=admin_token)
    (default,) = [e for e in data["environments"] if e["name"] == bootstrap.DEFAULT_ENVIRONMENT]
    return default["id"]


@pytest.fixture
def fleet(api: GraphQLClient, admin_token: str, default_environment_id: str) -> Fleet:
    return Fleet(api, admin_token, default_environment_id)


@pytest.fixture
def runs(fleet: Fleet) -> Runs:
    """Given-steps for runs (tests/runs_given.py)."""
    return Runs(fleet)


class StatementCounter:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1


@pytest.fixture
def sql_statements(domain: DomainContext) -> Iterator[StatementCounter]:
    """Counts every SQL statement the app sends, on both of its engines."""
    counter = StatementCounter()
    engines = {domain.db.write_engine.sync_engine, domain.db.read_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", counter)
    yield counter
    for engine in engines:
        event.remove(engine, "before_cursor_execute", counter)


@pytest.fixture(scope="module")
def openid_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenIDProvider]:
    """R44: the npm oidc-provider on 127.0.0.1 (tests/oidc/provider.mjs), one per test module."""
    provider = OpenIDProvider(tmp_path_factory.mktemp("oidc"))
    provider.start()
    yield provider
    provider.stop()
