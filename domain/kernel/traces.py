"""Traces (OpenTelemetry): the tracer each use case finds in its context, and a trace carried
as a W3C ``traceparent`` across what is not one call: a run's row from its trigger to its
dispatch, and the event that tells its machine.

The domain uses the OpenTelemetry API only. Unless the app configures a tracer provider
(api/traces.py, off by default) the tracer is a no-op, nothing is carried and a run's
``traceparent`` stays empty.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NoOpTracer, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

NAME = "deskfleet"  # the instrumentation scope of every span DeskFleet makes itself
_W3C = TraceContextTextMapPropagator()


def no_tracer() -> Tracer:
    return NoOpTracer()


def current_traceparent() -> str | None:
    """The current span as a ``traceparent``; None when nothing is traced."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def _context(traceparent: str) -> Context:
    return _W3C.extract({"traceparent": traceparent})


@contextmanager
def continued(
    tracer: Tracer,
    name: str,
    traceparents: Sequence[str],
    attributes: Mapping[str, AttributeValue],
    links: Sequence[Link] = (),
) -> Iterator[str | None]:
    """A span in the trace of the first of ``traceparents``, linked to the others' (several
    traced changes may wake one reader), made current; it gives its own ``traceparent``.
    Nothing at all when none is given: what was not traced is not continued."""
    if not traceparents:
        yield None
        return
    others = [
        Link(trace.get_current_span(_context(t)).get_span_context()) for t in traceparents[1:]
    ]
    with tracer.start_as_current_span(
        name, context=_context(traceparents[0]), links=[*links, *others], attributes=attributes
    ):
        yield current_traceparent()
