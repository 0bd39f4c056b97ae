"""R39 at the door: a caller whose bucket is known to be short for a request it sent before is
refused before the GraphQL machinery runs, with the answer that machinery would give.

A caller that never backs off keeps resending the same request once throttled; each refusal
used to take the whole request path (the view, the context, the cached parse, validation and
cost), so a flooder's refusals held most of the event loop and every other caller queued behind
them (``neighbour_p99``). Here a refusal costs a body read and three look-ups.

It acts only on what is already known, so it never refuses what the full path would accept:

- the caller: a bearer credential the credential cache vouches for now (the same cache
  authentication answers from: a revoked or unknown one goes the full way and is told so); the
  view's context then takes that caller as found here;
- the cost: the cost the full path computed for the same body before (the operation's policy
  leaves it in the request's scope under :data:`OPERATION_COST`; a body is the document, its
  operation name and its variables, so it determines the cost);
- the bucket: :meth:`~api.transport.throttle.Buckets.known_short`, exact in one process and an
  upper bound of a bucket shared through Redis.

Anything else (no credential, another content type, a bucket that affords the costliest accepted
operation, a body past :data:`MAX_REMEMBERED_BODY` or not seen yet, a bucket that may afford it)
goes on unchanged, its body handed on as read.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import bearer_from_header
from api.transport import throttle
from api.transport.guards import principal_key
from api.transport.http_transport import is_json
from domain.kernel.principals import Principal

OPERATION_COST = "deskfleet.operation_cost"  # the key in an HTTP request's ASGI scope
# The caller the door found vouched for, in the request's scope: the view's context takes it
# instead of reading the header and asking the credential cache a second time.
VOUCHED_CALLER = "deskfleet.vouched_caller"
MAX_REMEMBERED_BODY = 16 * 1024  # bytes: the costs remembered take at most ~16 MiB
REMEMBERED_BODIES = 1024


class EarlyRefusal:
    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        vouch: Callable[[str], Principal | None],
        buckets: throttle.Buckets,
        max_cost: int,
        on_refused: Callable[[], object] = lambda: None,
    ) -> None:
        self.app = app
        self.on_refused = on_refused  # e.g. the app's counter of them
        self.path = path
        self.vouch = vouch  # domain.identity.identity.vouched_for, on the app's domain
        self.buckets = buckets
        self.max_cost = max_cost
        self.costs: OrderedDict[bytes, int] = OrderedDict()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        key = self._caller(scope)
        # A bucket that affords the costliest operation accepted has nothing to refuse: the body
        # is not even looked at (that keeps the door's cost on every other request to a header
        # scan and two look-ups).
        if key is None or self.buckets.known_short(key, self.max_cost) is None:
            await self.app(scope, receive, send)
            return
        read, body = await _read_body(receive)
        cost = self.costs.get(body) if body is not None else None
        refused = self.buckets.known_short(key, cost) if cost is not None else None
        if refused is not None and cost is not None:
            self.on_refused()
            await _throttled(cost, refused)(scope, receive, send)
            return
        await self.app(scope, _replaying(read, receive), send)
        learned = scope.get(OPERATION_COST)
        if body is not None and isinstance(learned, int):
            self.costs[body] = learned
            self.costs.move_to_end(body)
            if len(self.costs) > REMEMBERED_BODIES:
                self.costs.popitem(last=False)

    def _caller(self, scope: Scope) -> str | None:
        """The bucket of a JSON request whose credential the cache vouches for (the caller is
        left in the scope under :data:`VOUCHED_CALLER`); else None."""
        authorization = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        if authorization is None or not is_json(content_type):  # as the view tells JSON
            return None
        bearer = bearer_from_header(authorization)
        principal = self.vouch(bearer) if bearer else None
        if principal is None:
            return None
        scope[VOUCHED_CALLER] = principal
        return principal_key(principal)


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """Every message of the body as received, and the body when it is whole and small enough
    to remember (None otherwise: a disconnect, or past :data:`MAX_REMEMBERED_BODY`)."""
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return read, None
        size += len(message.get("body", b""))
        if size > MAX_REMEMBERED_BODY:
            return read, None
        if not message.get("more_body", False):
            return read, b"".join(m.get("body", b"") for m in read)


def _replaying(read: list[Message], receive: Receive) -> Receive:
    pending = list(read)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


def _throttled(cost: int, refused: throttle.Refused) -> Response:
    message, extensions, retry = throttle.refusal(cost, refused)
    answer = {
        "data": None,
        "errors": [{"message": message, "extensions": extensions}],
        "extensions": {"cost": throttle.cost_report(cost, refused)},
    }
    headers = {"retry-after": str(retry)} if retry is not None else None
    return Response(
        orjson.dumps(answer),
        status_code=429 if retry is not None else 200,
        headers=headers,
        media_type="application/json",
    )
