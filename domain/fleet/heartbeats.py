"""A machine's heartbeat (R9) and the Windows sessions it reports with it (R26).

The heartbeat is the request a large fleet sends most: 10,000 machines every 30 seconds are 333 a
second. It is one short script (domain/store/prepared.py): read the machine and its sessions,
write what changed, commit; on SQLite the whole of it is one trip to the database thread. Through
the ORM it took four trips and the ORM's own work, about three times as long (`heartbeats` in
docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, update
from sqlmodel import col, select

from domain.bus.events import MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.machines import key_action_required, status_of
from domain.fleet.sessions import ReportedSession, check_sessions, same_sessions
from domain.identity.authorization import require_machine
from domain.kernel import validation
from domain.kernel.errors import NotFound
from domain.kernel.principals import Principal
from domain.kernel.versions import Version
from domain.store.models import Machine, MachineStatus, UserSession
from domain.store.models.columns import new_id
from domain.store.models.tables import table_of
from domain.store.prepared import Execute, Fetch, Prepared, Script


class _Seen(NamedTuple):
    last_heartbeat_at: datetime | None


@dataclass(frozen=True)
class HeartbeatAck:
    machine: Machine
    key_action_required: bool


_MACHINE = Prepared(
    select(*table_of(Machine).columns).where(col(Machine.id) == bindparam("machine_id"))
)
_SESSIONS = Prepared(
    select(col(UserSession.username), col(UserSession.state)).where(
        col(UserSession.machine_id) == bindparam("machine_id")
    )
)
_BEAT = Prepared(
    update(table_of(Machine))
    .where(col(Machine.id) == bindparam("machine_id"))
    .values(last_heartbeat_at=bindparam("now"), os_edition=bindparam("os_edition"))
)
_CLEAR_SESSIONS = Prepared(
    delete(table_of(UserSession)).where(col(UserSession.machine_id) == bindparam("machine_id"))
)
_SESSION_COLUMNS = tuple(c.key for c in table_of(UserSession).columns)
_ADD_SESSION = Prepared(
    insert(table_of(UserSession)).values({key: bindparam(key) for key in _SESSION_COLUMNS})
)


async def heartbeat(
    ctx: DomainContext,
    principal: Principal,
    *,
    runtime_version: str,
    os_edition: str,
    sessions: list[ReportedSession] | None = None,
) -> HeartbeatAck:
    """The runtime says it is alive (R9) and, when ``sessions`` is given, which Windows user
    sessions it holds (they replace the ones reported before; R26). Its version is only taken
    after runs (R7)."""
    caller = require_machine(principal)
    Version.parse(runtime_version, field="runtimeVersion")
    os_edition = validation.name(os_edition, field="osEdition")
    reported = check_sessions(sessions) if sessions is not None else None
    now = ctx.clock.now()
    script = _beat(
        caller.machine_id, os_edition, reported, now, ctx.settings.heartbeat_timeout_seconds
    )
    async with ctx.db.write_direct() as transaction:
        machine, changed = await transaction.run(script)
        if changed:  # published once the transaction has committed
            emit(ctx.events, transaction, MachineChanged(machine.id, machine.environment_id))
    return HeartbeatAck(machine=machine, key_action_required=key_action_required(machine, now))


def _beat(
    machine_id: str,
    os_edition: str,
    reported: Sequence[ReportedSession] | None,
    now: datetime,
    timeout_seconds: float,
) -> Script[tuple[Machine, bool]]:
    """Whether the machine's status or sessions changed, with the machine as written."""
    rows: list[dict[str, Any]] = yield Fetch(_MACHINE, {"machine_id": machine_id})
    if not rows:
        raise NotFound("machine", machine_id)
    row = rows[0]
    was = status_of(_Seen(row["last_heartbeat_at"]), now, timeout_seconds)
    sessions_changed = False
    if reported is not None:
        existing = yield Fetch(_SESSIONS, {"machine_id": machine_id})
        sessions_changed = not same_sessions(
            [(row["username"], row["state"]) for row in existing], reported
        )
    if sessions_changed:
        assert reported is not None
        yield Execute(_CLEAR_SESSIONS, {"machine_id": machine_id})
        for s in reported:
            yield Execute(
                _ADD_SESSION,
                {
                    "id": new_id(),
                    "machine_id": machine_id,
                    "username": s.username,
                    "state": s.state,
                    "reported_at": now,
                },
            )
    yield Execute(
        _BEAT, {"machine_id": machine_id, "now": now, "os_edition": os_edition}, last=True
    )
    # Every value read back as SQLAlchemy would give it: nothing to validate again.
    machine = Machine.model_construct(**{**row, "last_heartbeat_at": now, "os_edition": os_edition})
    return machine, was is not MachineStatus.CONNECTED or sessions_changed
