"""A span for every SQL statement, from SQLAlchemy's public engine events.

OpenTelemetry's SQLAlchemy instrumentor does the same, but for a whole process: it patches
``create_engine`` once, for one tracer provider. Here each :class:`~domain.store.db.Database`
traces with its own app's tracer (several apps share a process in the tests). A span carries
the statement's text and the database system, never the parameters (they hold secrets' digests
and users' input).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

_OPEN = "deskfleet.statement_spans"  # in Connection.info: the spans of statements under way


def trace_statements(engine: AsyncEngine, tracer: Tracer) -> None:
    sync = engine.sync_engine
    system = sync.dialect.name

    def before(conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        span = tracer.start_span(
            statement_name(statement),
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": system, "db.query.text": statement},
        )
        conn.info.setdefault(_OPEN, []).append(span)

    def after(conn: Connection, *_: Any) -> None:
        _close(conn, None)

    def failed(context: ExceptionContext) -> None:
        if context.connection is not None:
            _close(context.connection, context.original_exception)

    event.listen(sync, "before_cursor_execute", before)
    event.listen(sync, "after_cursor_execute", after)
    event.listen(sync, "handle_error", failed)


def statement_name(statement: str) -> str:
    """A span's name: the statement's first word (``SELECT``, ``UPDATE``...)."""
    words = statement.split(None, 1)
    return words[0].upper() if words else "SQL"


def _close(conn: Connection, error: BaseException | None) -> None:
    open_spans: list[Span] = conn.info.get(_OPEN, [])
    if not open_spans:
        return
    span = open_spans.pop()
    if error is not None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, type(error).__name__))
    span.end()
