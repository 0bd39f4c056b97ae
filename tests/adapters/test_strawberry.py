"""api/transport/strawberry_adapter.py against the installed Strawberry: the private name it uses
is still there and is what the adapter says, and the public view settings the JSON POST path
reads (api/transport/http_transport.py) still make Strawberry's streaming transports. A failure
names the attribute: check its replacement before raising the upper bound in pyproject.toml."""

from __future__ import annotations

from importlib.metadata import version

from graphql import GraphQLSchema, parse, validate
from strawberry.asgi import GraphQL
from strawberry.http.streaming import HTTPStreamTransport
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL, MULTIPART_SUBSCRIPTION_PROTOCOL

from api.schema import build_schema
from api.transport.http_transport import JSONPostTransport
from api.transport.strawberry_adapter import graphql_schema
from domain.kernel.settings import Settings

STRAWBERRY = f"strawberry-graphql {version('strawberry-graphql')}"


def test_a_schema_has_its_graphql_core_schema_as_schema_underscore_schema() -> None:
    schema = build_schema(Settings())
    assert isinstance(getattr(schema, "_schema", None), GraphQLSchema), (
        f"{STRAWBERRY}: strawberry.Schema has no _schema (the graphql-core schema), which "
        "api/transport/strawberry_adapter.py uses"
    )
    built = graphql_schema(schema)
    assert built.query_type is not None and built.query_type.name == "Query"
    assert validate(built, parse("{ me { id } }")) == []
    assert built.get_type("MachineStatus") is not None  # the types api/schema.py adjusts


def test_the_views_public_settings_make_its_streaming_transports() -> None:
    for name in ("protocols", "stream_transport_classes_by_protocol"):
        assert hasattr(GraphQL, name), f"{STRAWBERRY}: its view has no {name}"

    class View(JSONPostTransport, GraphQL[None, None]):
        pass

    view = View(build_schema(Settings()))
    assert view._stream_transports == ()  # DeskFleet streams over websockets only (R35)
    view = View(
        build_schema(Settings()),
        subscription_protocols=(MULTIPART_SUBSCRIPTION_PROTOCOL, GRAPHQL_SSE_PROTOCOL),
    )
    streams = view._stream_transports
    assert all(isinstance(transport, HTTPStreamTransport) for transport in streams)
    assert len(streams) == 2
    assert any(t.accepts('multipart/mixed;subscriptionSpec="1.0"') for t in streams)
    assert any(t.accepts("text/event-stream") for t in streams)
