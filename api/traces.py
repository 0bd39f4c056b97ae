"""Traces: a span for each HTTP request and websocket, each GraphQL operation, each SQL
statement (domain/store/statement_spans.py) and each dispatcher pass, and one trace from a
``triggerRun`` to the assignment reaching its machine (domain/kernel/traces.py).

Off by default. ``DESKFLEET_TRACES_OTLP_ENDPOINT`` turns them on, exported over OTLP/HTTP in
batches; the SDK and the exporter come with ``pip install 'deskfleet[traces]'``. Tests hand
``create_app`` a tracer provider of their own (the SDK's in-memory exporter).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.trace import Tracer, TracerProvider
from starlette.middleware import Middleware
from strawberry.extensions.base_extension import SchemaExtension

from domain.kernel.settings import Settings
from domain.kernel.traces import NAME


class TracesNotInstalled(RuntimeError):
    pass


def exported_provider(settings: Settings) -> Any | None:
    """The SDK's tracer provider exporting to ``traces_otlp_endpoint``; None when unset. The
    caller shuts it down (which sends what is still batched)."""
    if settings.traces_otlp_endpoint is None:
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SDKTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise TracesNotInstalled(
            "DESKFLEET_TRACES_OTLP_ENDPOINT is set, but the OpenTelemetry SDK is not installed: "
            "pip install 'deskfleet[traces]'"
        ) from exc
    provider = SDKTracerProvider(
        resource=Resource.create({"service.name": settings.traces_service_name})
    )
    exporter = OTLPSpanExporter(endpoint=settings.traces_otlp_endpoint)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def tracer_of(provider: TracerProvider) -> Tracer:
    return provider.get_tracer(NAME)


def request_spans(provider: TracerProvider) -> Middleware:
    """OpenTelemetry's ASGI middleware: a server span per HTTP request and websocket, its trace
    continued from the caller's ``traceparent`` header. Not one per ASGI message as well."""
    try:
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    except ImportError as exc:
        raise TracesNotInstalled("pip install 'deskfleet[traces]'") from exc
    return Middleware(
        OpenTelemetryMiddleware, tracer_provider=provider, exclude_spans=["receive", "send"]
    )


class OperationSpans(SchemaExtension):
    """A span for each GraphQL operation, named by its type and name (``mutation TriggerRun``);
    never its document or variables (a password may be among them, R20)."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def on_operation(self) -> Iterator[None]:
        with self.tracer.start_as_current_span("graphql operation") as span:
            yield
            context = self.execution_context
            try:
                kind = context.operation_type.value
            except Exception:  # a document that did not parse has no operation
                return
            name = context.operation_name
            span.update_name(f"{kind} {name}" if name else kind)
            span.set_attribute("graphql.operation.type", kind)
            if name:
                span.set_attribute("graphql.operation.name", name)
