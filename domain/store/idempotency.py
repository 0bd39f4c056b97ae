"""R46: idempotency keys for the mutations that create something.

A caller may send a key with a creating mutation. The first request with it creates, and records
(caller, mutation, key), a fingerprint of its input and the id of what it created, in the same
transaction as what it created: a crash keeps both or neither. A later request with that key from
the same caller within :data:`WINDOW` creates nothing and is answered from the record (the use
case rebuilds its payload from the object the id names, as it is now); with another input it is
refused (``IDEMPOTENCY_KEY_REUSED``). Two requests at once, on two instances: the second one's
record meets the first one's in the table's primary key, its whole transaction rolls back, and it
is answered as a replay. An older record counts for nothing and is replaced.

A creating use case says it once, around its transaction (``createWebhook`` as the example)::

    request = idempotency.request(user.user_id, "createWebhook", idempotency_key, {"url": url})
    return await idempotency.once(
        ctx.db,
        request,
        create=lambda: _create_webhook(ctx, user, url, request),  # calls remember() in its transaction
        replay=lambda earlier: _webhook_again(ctx, user, earlier.result_id),
    )

``remember(session, request, webhook.id, now)`` writes the record in an ORM write transaction;
:func:`remember_steps` are the same writes as steps of a :data:`~domain.store.prepared.Script`
(``triggerRun``'s direct transaction). Both do nothing when the request carries no key.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import bindparam, delete, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.kernel.errors import Conflict, ErrorCode, ValidationFailed
from domain.store.db import Database
from domain.store.models import IdempotencyKey
from domain.store.models.tables import table_of
from domain.store.prepared import Execute, Prepared
from domain.store.storage import is_constraint_violation

WINDOW = timedelta(hours=24)
KEY_MAX = 255
FIELD = "idempotencyKey"
# Visible ASCII: a UUID, a ULID or a counter of the client's fit; blanks and controls do not.
_KEY = re.compile(r"[\x21-\x7e]+")

T = TypeVar("T")


@dataclass(frozen=True)
class Request:
    """A creating request that carries an idempotency key."""

    caller_id: str
    mutation: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class Earlier:
    """What the first request with the key created."""

    result_id: str
    secret: str | None  # sealed, if the use case kept one (a machine key)
    created_at: datetime


def checked_key(value: str) -> str:
    if not 1 <= len(value) <= KEY_MAX or not _KEY.fullmatch(value):
        raise ValidationFailed(
            ErrorCode.INVALID_IDEMPOTENCY_KEY,
            f"{FIELD} must be 1 to {KEY_MAX} visible ASCII characters (no blanks); "
            "a new UUID per operation will do",
            field=FIELD,
        )
    return value


def fingerprint(given: Mapping[str, Any]) -> str:
    """The digest of a request's input, checked and normalised by its use case (secrets in it
    already replaced by keyed fingerprints: ``Vault.fingerprint``)."""
    canonical = json.dumps(given, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def request(
    caller_id: str, mutation: str, key: str | None, given: Mapping[str, Any]
) -> Request | None:
    """The request to remember, or ``None`` when the caller sent no key."""
    if key is None:
        return None
    return Request(caller_id, mutation, checked_key(key), fingerprint(given))


_t = table_of(IdempotencyKey).c
_FIND = Prepared(
    select(_t.fingerprint, _t.result_id, _t.secret, _t.created_at).where(
        _t.caller_id == bindparam("caller_id"),
        _t.mutation == bindparam("mutation"),
        _t.key == bindparam("key"),
    )
)
_FORGET_STALE = Prepared(
    delete(table_of(IdempotencyKey)).where(
        _t.caller_id == bindparam("caller_id"),
        _t.mutation == bindparam("mutation"),
        _t.key == bindparam("key"),
        _t.created_at <= bindparam("stale_before"),
    )
)
_REMEMBER = Prepared(
    insert(table_of(IdempotencyKey)).values(
        {name: bindparam(name) for name in (c.key for c in table_of(IdempotencyKey).columns)}
    )
)


def _identity(request: Request) -> dict[str, str]:
    return {"caller_id": request.caller_id, "mutation": request.mutation, "key": request.key}


async def earlier(db: Database, request: Request, now: datetime) -> Earlier | None:
    """What an earlier request with this key created, if it is recent; refused when that request
    had another input (nothing is created)."""
    rows = await db.fetch_direct(_FIND, _identity(request))
    if not rows or rows[0]["created_at"] <= now - WINDOW:
        return None
    row = rows[0]
    if row["fingerprint"] != request.fingerprint:
        raise Conflict(
            ErrorCode.IDEMPOTENCY_KEY_REUSED,
            f"this {FIELD} was already used with another input for {request.mutation}: "
            "send a new key for a new request",
        )
    return Earlier(row["result_id"], row["secret"], row["created_at"])


async def once(
    db: Database,
    request: Request | None,
    now: datetime,
    *,
    create: Callable[[], Awaitable[T]],
    replay: Callable[[Earlier], Awaitable[T]],
) -> T:
    """``create()`` (which calls :func:`remember` in its transaction), unless an earlier request
    with the key created already: then ``replay(earlier)``. Also when a concurrent request with
    the key commits first: this one's record then violates the primary key, its transaction
    rolls back whole, and what the other created is answered."""
    if request is None:
        return await create()
    found = await earlier(db, request, now)
    if found is not None:
        return await replay(found)
    try:
        return await create()
    except Exception as exc:
        if not is_constraint_violation(exc):
            raise
        found = await earlier(db, request, now)
        if found is None:  # another constraint: not ours to answer
            raise
    return await replay(found)


def _row(request: Request, result_id: str, now: datetime, secret: str | None) -> dict[str, Any]:
    return {
        **_identity(request),
        "fingerprint": request.fingerprint,
        "result_id": result_id,
        "secret": secret,
        "created_at": now,
    }


def remember_steps(
    request: Request | None, result_id: str, now: datetime, *, secret: str | None = None
) -> list[Execute]:
    """The writes of :func:`remember`, as steps of a direct transaction's script (none without a
    key); a stale record of the key goes first."""
    if request is None:
        return []
    return [
        Execute(_FORGET_STALE, {**_identity(request), "stale_before": now - WINDOW}),
        Execute(_REMEMBER, _row(request, result_id, now, secret)),
    ]


async def remember(
    session: AsyncSession,
    request: Request | None,
    result_id: str,
    now: datetime,
    *,
    secret: str | None = None,
) -> None:
    """Record, in ``session``'s transaction, that ``request`` created ``result_id`` (``secret``:
    sealed, what its answer showed that is kept nowhere else). Nothing without a key."""
    if request is None:
        return
    connection = await session.connection()
    for step in remember_steps(request, result_id, now, secret=secret):
        await connection.execute(step.statement.statement, dict(step.parameters))


async def prune(db: Database, now: datetime) -> int:
    """Forget the records older than :data:`WINDOW` (a replay no longer finds them anyway);
    how many went."""
    async with db.write() as session:
        connection = await session.connection()
        result = await connection.execute(
            delete(table_of(IdempotencyKey)).where(_t.created_at <= now - WINDOW)
        )
    return int(result.rowcount)
