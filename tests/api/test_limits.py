"""Query limits: the boundary is accepted, one past it refused with a clear error."""

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from domain.context import DomainContext
from domain.kernel.settings import Settings
from domain.store.db import SQLITE_BUSY_TIMEOUT_MS
from tests.graphql import Fleet, GraphQLClient

pytestmark = pytest.mark.asyncio


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The documents here each test one limit (depth, aliases, tokens, size); a deep one is also
    # dear, and the cost limit (R39) has its own tests in test_query_cost.py.
    return settings.model_copy(update={"max_query_cost": 10**9})


def nested(depth: int) -> str:
    """A query of depth `depth` as graphql-depth-limit counts it (the root field is depth 0):
    machines > nodes > group > machines > group > ... > name."""
    fields = ["machines(first: 1)", "nodes"]
    while len(fields) < depth:
        fields.append("group" if fields[-1] != "group" else "machines")
    body = "name"
    for field in reversed(fields):
        body = f"{field} {{ {body} }}"
    return "{ " + body + " }"


async def test_query_depth_limit_boundary(
    fleet: Fleet, api: GraphQLClient, settings: Settings
) -> None:
    limit = settings.max_query_depth

    accepted = await api.execute(nested(limit), token=fleet.admin_token)
    refused = await api.execute(nested(limit + 1), token=fleet.admin_token)
    refused_again = await api.execute(nested(limit + 1), token=fleet.admin_token)  # cached path

    assert "errors" not in accepted, accepted
    for result in (refused, refused_again):
        assert "exceeds maximum operation depth" in result["errors"][0]["message"]
        assert result.get("data") is None


def aliased(count: int) -> str:
    return "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"


async def test_alias_limit_boundary(fleet: Fleet, api: GraphQLClient, settings: Settings) -> None:
    accepted = await api.execute(aliased(settings.max_aliases), token=fleet.admin_token)
    refused = await api.execute(aliased(settings.max_aliases + 1), token=fleet.admin_token)

    assert "errors" not in accepted
    assert "aliases found" in refused["errors"][0]["message"].lower()


def tokens(count: int) -> str:
    """A valid document of exactly `count` lexical tokens: spreads of one fragment (2 tokens
    each) in braces, then the 7-token fragment itself."""
    spreads, odd = divmod(count - 2 - 7, 2)
    body = " ".join(["...F"] * spreads) + (" __typename" if odd else "")
    return "{ " + body + " } fragment F on Query { __typename }"


async def test_token_limit_boundary(fleet: Fleet, api: GraphQLClient, settings: Settings) -> None:
    accepted = await api.execute(tokens(settings.max_tokens), token=fleet.admin_token)
    refused = await api.execute(tokens(settings.max_tokens + 1), token=fleet.admin_token)

    assert "errors" not in accepted, accepted["errors"][0]["message"]
    assert (
        "more than" in refused["errors"][0]["message"]
        and "tokens" in refused["errors"][0]["message"]
    )


async def test_document_size_boundary(fleet: Fleet, api: GraphQLClient, settings: Settings) -> None:
    def padded(size: int) -> str:
        base = "{ __typename }"
        return base[:-1] + "#" + "x" * (size - len(base) - 2) + "\n}"

    headers = {"Authorization": f"Bearer {fleet.admin_token}"}
    ok = await api.http.post(
        "/graphql", json={"query": padded(settings.max_document_bytes)}, headers=headers
    )
    too_big = await api.http.post(
        "/graphql", json={"query": padded(settings.max_document_bytes + 1)}, headers=headers
    )

    assert len(padded(settings.max_document_bytes).encode()) == settings.max_document_bytes
    assert ok.status_code == 200 and ok.json()["data"] == {"__typename": "Query"}
    assert too_big.status_code == 413
    assert f"at most {settings.max_document_bytes}" in too_big.text


async def test_batches_are_refused(fleet: Fleet, api: GraphQLClient) -> None:
    response = await api.http.post(
        "/graphql",
        json=[{"query": "{ __typename }"}, {"query": "{ __typename }"}],
        headers={"Authorization": f"Bearer {fleet.admin_token}"},
    )

    assert response.status_code == 400
    assert "batching" in response.text.lower()


async def test_an_oversized_body_is_refused_before_it_is_parsed(
    fleet: Fleet, api: GraphQLClient, settings: Settings
) -> None:
    """413 naming the limit, whatever the body holds: it is not read as JSON first (a body this
    size of broken JSON used to get Strawberry's 400 "unable to parse")."""
    headers = {"Authorization": f"Bearer {fleet.admin_token}", "Content-Type": "application/json"}
    broken = b"{" * (settings.max_request_bytes + 1)
    refused = await api.http.post("/graphql", content=broken, headers=headers)
    small_broken = await api.http.post("/graphql", content=b"{" * 10, headers=headers)

    assert refused.status_code == 413
    assert f"at most {settings.max_request_bytes}" in refused.text
    assert small_broken.status_code == 400  # within the limit: Strawberry's own answer


async def test_a_body_without_a_length_is_refused_once_it_passes_the_limit(
    fleet: Fleet, api: GraphQLClient, settings: Settings
) -> None:
    """Chunked, so no Content-Length to refuse it by: counted as it arrives, 413 once past."""
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(4 * settings.max_request_bytes // 1000):
            sent += 1000
            yield b" " * 1000

    headers = {"Authorization": f"Bearer {fleet.admin_token}", "Content-Type": "application/json"}
    refused = await api.http.post("/graphql", content=chunks(), headers=headers)

    assert "content-length" not in refused.request.headers
    assert refused.status_code == 413
    assert f"at most {settings.max_request_bytes}" in refused.text
    fine = await api.http.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    assert fine.status_code == 200


async def test_request_time_limit(
    fleet: Fleet,
    api: GraphQLClient,
    settings: Settings,
    domain: DomainContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    owner = await fleet.person("MACHINE_OWNER")
    caplog.set_level(logging.INFO)
    settings.request_timeout_seconds = 0.5
    # A real fault: another writer holds SQLite's (or PostgreSQL's row) lock for longer.
    async with domain.db.write() as session:
        await session.exec(text("UPDATE environments SET max_queue_seconds = max_queue_seconds"))  # type: ignore[call-overload]
        await session.exec(text("UPDATE users SET display_name = display_name"))  # type: ignore[call-overload]
        started = asyncio.get_running_loop().time()
        result = await api.execute(
            """mutation($id: ID!) { updateUser(input: {id: $id, displayName: "x"}) { __typename } }""",
            {"id": owner.id},
            token=fleet.admin_token,
        )
        elapsed = asyncio.get_running_loop().time() - started

    assert result["errors"][0]["extensions"]["code"] == "TIMEOUT"
    # One WARNING line for the timed-out request, and no error or traceback.
    logged = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.WARNING]
    assert logged == [(logging.WARNING, "request ran out of its 0.5s")], caplog.records
    assert not any(r.exc_info for r in caplog.records)
    # SQLite cannot interrupt a statement waiting on its lock: the answer comes once the busy
    # timeout lets go; PostgreSQL cancels the statement at once.
    assert elapsed < (SQLITE_BUSY_TIMEOUT_MS / 1000 + 5 if domain.db.is_sqlite else 5)
    settings.request_timeout_seconds = 30
    me = await api.data("{ me { user { displayName } } }", token=owner.token)
    assert me["me"]["user"]["displayName"] != "x"


@pytest.fixture
def production(settings: Settings) -> Settings:
    settings.production = True
    return settings


async def test_production_hides_introspection_suggestions_and_graphiql(
    production: Settings, fleet: Fleet, api: GraphQLClient
) -> None:
    introspection = await api.execute("{ __schema { types { name } } }", token=fleet.admin_token)
    typos = [
        await api.execute(document, variables, token=fleet.admin_token)
        for document, variables in TYPOS
    ]
    ide = await api.http.get("/graphql", headers={"Accept": "text/html"})

    assert "introspection" in introspection["errors"][0]["message"].lower()
    for typo in typos:
        assert typo["errors"], typo
        assert "did you mean" not in str(typo).lower(), typo
    assert "graphiql" not in ide.text.lower()


# A field, an argument, a type, an enum literal and an enum variable, each one letter off.
TYPOS: list[tuple[str, dict[str, object] | None]] = [
    ("{ machinez { totalCount } }", None),
    ("{ machines(frist: 5) { totalCount } }", None),
    ("query($f: MachineFilterInputt) { machines(filter: $f) { totalCount } }", None),
    ("{ flowRuns(filter: {statuses: [QUEUEDD]}) { totalCount } }", None),
    (
        "query($s: [RunStatus!]) { flowRuns(filter: {statuses: $s}) { totalCount } }",
        {"s": ["QUEUEDD"]},
    ),
]


async def test_development_keeps_introspection(fleet: Fleet, api: GraphQLClient) -> None:
    introspection = await api.data("{ __schema { queryType { name } } }", token=fleet.admin_token)
    typo = await api.execute("{ machinez { totalCount } }", token=fleet.admin_token)

    assert introspection["__schema"]["queryType"]["name"] == "Query"
    assert "did you mean" in typo["errors"][0]["message"].lower()
    for document, variables in TYPOS[1:]:  # arguments, types and enum values are hinted too
        hinted = await api.execute(document, variables, token=fleet.admin_token)
        assert "did you mean" in str(hinted).lower(), hinted
