"""Traces (OpenTelemetry): one trace from `triggerRun` to the assignment reaching its machine,
with the HTTP request, the GraphQL operation and the SQL inside it; spans read from the SDK's
in-memory exporter of a server in this process (uvicorn on 127.0.0.1). And none at all by
default."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanKind
from sqlmodel import select
from starlette.applications import Starlette

from api.app import create_app
from domain.context import DomainContext
from domain.dispatch.dispatcher import dispatch_once
from domain.kernel.clock import ManualClock
from domain.kernel.settings import Settings
from domain.store.models import FlowRun
from tests.graphql import Fleet, GraphQLClient
from tests.runs_given import Runs, Target

pytestmark = pytest.mark.asyncio

ASSIGNMENTS = "subscription { machineAssignments { assignments { runId attempt } } }"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
async def app(
    settings: Settings, clock: ManualClock, exporter: InMemorySpanExporter
) -> AsyncIterator[Starlette]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    application = create_app(settings, clock=clock, tracer_provider=provider)
    async with application.router.lifespan_context(application):
        yield application
    provider.shutdown()


@pytest.fixture
async def live(app: Starlette) -> AsyncIterator[str]:
    """The app served by uvicorn on 127.0.0.1 (its lifespan is the fixture's)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    await serving


@pytest.fixture
async def api(live: str) -> AsyncIterator[GraphQLClient]:
    async with httpx.AsyncClient(base_url=f"http://{live}") as http:
        yield GraphQLClient(http)


async def ready_target(fleet: Fleet, runs: Runs) -> Target:
    owner = await fleet.person("ENVIRONMENT_MAKER", attended_licence=True)
    await runs.capacity(2)
    machine = await runs.machine(owner, bots=1)
    return await runs.target(owner, machine=machine)


async def spans_until(
    exporter: InMemorySpanExporter, found: Callable[[list[ReadableSpan]], bool]
) -> list[ReadableSpan]:
    for _ in range(500):
        spans = list(exporter.get_finished_spans())
        if found(spans):
            return spans
        await asyncio.sleep(0.01)
    raise AssertionError([s.name for s in exporter.get_finished_spans()])


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id


async def test_one_trace_runs_from_trigger_run_to_the_assignment_reaching_its_machine(
    live: str, fleet: Fleet, runs: Runs, domain: DomainContext, exporter: InMemorySpanExporter
) -> None:
    target = await ready_target(fleet, runs)
    assert target.machine is not None
    async with websockets.connect(
        f"ws://{live}/graphql", subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
    ) as socket_:
        await socket_.send(
            json.dumps(
                {
                    "type": "connection_init",
                    "payload": {"Authorization": f"Bearer {target.machine.key}"},
                }
            )
        )
        assert json.loads(await socket_.recv())["type"] == "connection_ack"
        await socket_.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": ASSIGNMENTS}})
        )
        first = json.loads(await socket_.recv())
        exporter.clear()

        run_id = await runs.trigger(target)
        await dispatch_once(domain)
        delivered = json.loads(await asyncio.wait_for(socket_.recv(), 10))

    spans = await spans_until(exporter, lambda s: bool(named(s, "machine assignments sent")))
    (trigger,) = [s for s in spans if s.name == "mutation" and s.kind is SpanKind.INTERNAL]
    (request,) = [
        s for s in spans if s.kind is SpanKind.SERVER and trace_of(s) == trace_of(trigger)
    ]
    (dispatched,) = named(spans, "run dispatched")
    (sent,) = named(spans, "machine assignments sent")
    (dispatcher_pass,) = named(spans, "dispatcher pass")
    in_trace = [s for s in spans if trace_of(s) == trace_of(request)]

    assert first["payload"]["data"]["machineAssignments"]["assignments"] == []
    work = delivered["payload"]["data"]["machineAssignments"]
    assert [a["runId"] for a in work["assignments"]] == [run_id]
    # The request, its operation, the run's insert, its dispatch and its delivery: one trace.
    assert request.parent is None and request.name.startswith("POST")
    assert trigger.parent is not None and request.context is not None
    assert trigger.parent.span_id == request.context.span_id
    assert trigger.attributes is not None
    assert trigger.attributes["graphql.operation.type"] == "mutation"
    assert any(s.name == "write transaction" for s in in_trace)
    assert dispatched.parent is not None and trace_of(dispatched) == trace_of(request)
    assert dispatched.attributes is not None
    assert dispatched.attributes["deskfleet.run.id"] == run_id
    assert dispatched.attributes["deskfleet.machine.id"] == target.machine.id
    assert sent.parent is not None and dispatched.context is not None
    assert sent.parent.span_id == dispatched.context.span_id
    # The pass that made the dispatch is its own trace, linked; its SQL is inside it.
    assert dispatcher_pass.context is not None
    assert [link.context.span_id for link in dispatched.links] == [dispatcher_pass.context.span_id]
    assert trace_of(dispatcher_pass) != trace_of(request)
    claims = [
        s
        for s in spans
        if s.name == "UPDATE" and trace_of(s) == trace_of(dispatcher_pass) and s.attributes
    ]
    assert any("flow_runs" in str(s.attributes["db.query.text"]) for s in claims)


async def test_sql_spans_carry_the_statement_never_its_parameters(
    fleet: Fleet, runs: Runs, exporter: InMemorySpanExporter
) -> None:
    secret_name = "a-name-only-the-parameters-hold"
    owner = await fleet.person("ENVIRONMENT_MAKER")
    exporter.clear()
    await fleet.machine(owner, secret_name)

    spans = list(exporter.get_finished_spans())
    statements = [s for s in spans if s.kind is SpanKind.CLIENT and s.attributes]

    assert any(s.name == "INSERT" for s in statements)
    assert all(s.attributes and "db.system.name" in s.attributes for s in statements)
    assert not any(secret_name in json.dumps(dict(s.attributes or {})) for s in spans)


async def test_an_operation_span_names_the_operation_and_holds_no_document(
    api: GraphQLClient, admin_token: str, exporter: InMemorySpanExporter
) -> None:
    exporter.clear()
    await api.data("query Me { me { id } }", token=admin_token)

    (operation,) = [s for s in exporter.get_finished_spans() if s.name == "query Me"]
    attributes: dict[str, Any] = dict(operation.attributes or {})

    assert attributes == {"graphql.operation.type": "query", "graphql.operation.name": "Me"}


class TestOffByDefault:
    """No tracer provider and no endpoint: no-op tracer, no middleware, nothing carried."""

    @pytest.fixture
    async def app(self, settings: Settings, clock: ManualClock) -> AsyncIterator[Starlette]:
        application = create_app(settings, clock=clock)
        async with application.router.lifespan_context(application):
            yield application

    async def test_nothing_is_traced_or_carried(
        self, app: Starlette, fleet: Fleet, runs: Runs, domain: DomainContext
    ) -> None:
        target = await ready_target(fleet, runs)
        run_id = await runs.trigger(target)
        async with domain.db.read() as session:
            run = (await session.exec(select(FlowRun).where(FlowRun.id == run_id))).one()

        assert isinstance(domain.tracer, NoOpTracer)
        assert domain.db.tracer is None
        assert not any("OpenTelemetry" in m.cls.__name__ for m in app.user_middleware)
        assert run.traceparent is None
