"""``max_request_bytes`` for every HTTP request, enforced while the body arrives.

Starlette reads a whole body into memory when asked for it, and uvicorn sets no limit of its
own, so a check after reading would have buffered (and for GraphQL, JSON-parsed) any size first.
A declared ``Content-Length`` past the limit is answered 413 before a byte of the body is read;
a body without one (chunked) is counted as it comes and refused as soon as it passes the limit.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.kernel.settings import Settings


class _TooLarge(Exception):
    pass


def _refusal(max_bytes: int, size: int | None) -> PlainTextResponse:
    said = f"is {size} bytes" if size is not None else f"passed {max_bytes} bytes"
    return PlainTextResponse(
        f"the request body {said}; at most {max_bytes} bytes are accepted", status_code=413
    )


class RequestBodyLimit:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings  # read per request, as the other limits are

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.settings.max_request_bytes
        declared = _content_length(scope)
        if declared is not None:
            if declared > max_bytes:
                await _refusal(max_bytes, declared)(scope, receive, send)
            else:  # the server hands over exactly the declared length, nothing to count
                await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise _TooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except _TooLarge:
            if started:  # the application answered before reading it all: nothing to add
                raise
            await _refusal(max_bytes, None)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    # The raw headers scanned as they are: a Starlette Headers made for one look-up cost more.
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None
