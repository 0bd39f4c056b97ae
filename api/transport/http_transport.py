"""GraphQL over HTTP for the request nearly every client sends: a POST of one JSON operation.

Strawberry's view handles every shape of request (GET, multipart uploads, batches, streamed
answers); for the common one it still scans every header for a streaming ``Accept``, parses the
content type, decodes the body with the standard ``json``, builds an empty Starlette response
only to delete its ``Content-Length`` again, and encodes the answer to text and back to bytes.
For a small query that was about a sixth of DeskFleet's time per request (`trivial`).
:class:`JSONPostTransport` overrides those hooks of the view for that request, with the same
answers and the same errors; anything else goes to Strawberry's own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property

import orjson
from cross_web import AsyncHTTPRequestAdapter, HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.http.streaming import HTTPStreamTransport


class SubResponse(Response):
    """What a resolver may set on the HTTP answer (status, headers, a background task), made
    without rendering an empty body and computing headers Strawberry deletes again."""

    def __init__(self) -> None:
        self.status_code = None  # type: ignore[assignment]
        self.background = None
        self.body = b""
        self.raw_headers = []


def is_json(content_type: str | None) -> bool:
    # Strawberry's test: "application/json" within the media type, parameters aside.
    return content_type is not None and "application/json" in (
        content_type.partition(";")[0].strip().lower()
    )


class JSONPostTransport:
    """Mixed into DeskFleet's view (before Strawberry's ``GraphQL``)."""

    protocols: Sequence[str]
    stream_transport_classes_by_protocol: Mapping[str, type[HTTPStreamTransport]]

    @cached_property
    def _stream_transports(self) -> tuple[HTTPStreamTransport, ...]:
        # The view's streaming transports, as Strawberry makes them from these public settings.
        classes = self.stream_transport_classes_by_protocol
        return tuple(classes[protocol]() for protocol in self.protocols if protocol in classes)

    def _streams(self, request: AsyncHTTPRequestAdapter) -> bool:
        headers = request.headers
        if "accept" not in headers:  # no .get(): a missing header raises and catches inside
            return False
        accept = headers["accept"]
        return any(transport.accepts(accept) for transport in self._stream_transports)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            return await self._parse_http_body(request)
        except ClientDisconnect:
            # The client went away while its body arrived: nobody is left to answer, and it is
            # no fault of the server's (uvicorn would log it as an ERROR with a traceback).
            raise HTTPException(400, "The client went away before its request arrived.") from None

    async def _parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        if request.method != "POST" or not is_json(request.content_type) or self._streams(request):
            return await super().parse_http_body(request)  # type: ignore[misc]
        data = self.parse_json(await request.get_body())  # type: ignore[attr-defined]
        if isinstance(data, list):  # a batch: Strawberry refuses it (the body is kept)
            return await super().parse_http_body(request)  # type: ignore[misc]
        if not isinstance(data, dict):
            raise HTTPException(
                400, "The request body must be a JSON object: one GraphQL operation."
            )
        query = data.get("query")
        if not isinstance(query, str | None):
            raise HTTPException(
                400, "The GraphQL operation's `query` must be a string or null, if provided."
            )
        variables = data.get("variables")
        if not isinstance(variables, dict | None):
            raise HTTPException(
                400, "The GraphQL operation's `variables` must be an object or null, if provided."
            )
        extensions = data.get("extensions")
        if not isinstance(extensions, dict | None):
            raise HTTPException(
                400,
                "The GraphQL operation's `extensions` must be an object or null, if provided.",
            )
        return GraphQLRequestData(
            query=query,
            variables=variables,
            operation_name=data.get("operationName"),
            extensions=extensions,
        )

    def decode_json(self, data: str | bytes) -> object:
        # orjson's JSONDecodeError is json's: Strawberry's parse_json still answers 400.
        return orjson.loads(data)

    def encode_json(self, data: object) -> str:
        # For Strawberry's other answers (streamed parts); the common one is create_response's.
        return orjson.dumps(data).decode()

    async def get_sub_response(self, request: Request | WebSocket) -> Response:
        return SubResponse()

    def create_response(
        self,
        response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
        sub_response: Response,
    ) -> Response:
        response = Response(
            orjson.dumps(response_data),
            status_code=sub_response.status_code or 200,
            media_type="application/json",
            background=sub_response.background,
        )
        response.raw_headers.extend(sub_response.raw_headers)
        return response
