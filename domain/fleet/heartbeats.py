"""A machine's heartbeat (R9) and the Windows sessions it reports with it (R26).

The heartbeat is the request a large fleet sends most: 10,000 machines every 30 seconds are 333 a
second. It is one short script (domain/store/prepared.py): read the machine and its sessions,
write what changed, commit; on SQLite the whole of it is one trip to the database thread, shared
with the heartbeats that wait for the write turn with it, and one commit for them all
(domain/store/shared_commits.py). Through the ORM it took four trips and the ORM's own work,
about three times as long (`heartbeats` in docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, insert, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from domain.bus.events import MachineChanged
from domain.context import DomainContext
from domain.fleet.machines import key_action_required, status_of
from domain.fleet.sessions import ReportedSession, check_sessions, same_sessions
from domain.identity.authorization import require_machine
from domain.kernel import validation
from domain.kernel.errors import NotFound
from domain.kernel.principals import Principal
from domain.kernel.versions import Version, below
from domain.store.models import Environment, Machine, MachineStatus, UserSession
from domain.store.models.columns import new_id
from domain.store.models.tables import table_of
from domain.store.prepared import Execute, Fetch, Prepared, Script
from domain.webhooks import outbox


class _Seen(NamedTuple):
    last_heartbeat_at: datetime | None


class _Key(NamedTuple):
    key_expires_at: datetime
    key_rotation_pending: bool


class HeartbeatAck:
    """What a heartbeat answers. Its ``machine`` is made when first asked for: a runtime's
    heartbeat seldom asks, and making it (the model, then the API's type) took ~30 us of CPU of
    the ~550 a heartbeat takes in `heartbeats` (docs/performance.md)."""

    def __init__(self, row: dict[str, Any], key_action_required: bool) -> None:
        self._row = row  # the machine as written, every value as SQLAlchemy gives it
        self.key_action_required = key_action_required

    @cached_property
    def machine(self) -> Machine:
        return Machine.model_construct(**self._row)  # read back: nothing to validate again


_MACHINE = Prepared(
    core_select(
        *table_of(Machine).columns,
        # R41: the environment's minimum runtime version, read with the machine.
        select(col(Environment.min_runtime_version))
        .where(col(Environment.id) == col(Machine.environment_id))
        .scalar_subquery()
        .label("minimum"),
    ).where(col(Machine.id) == bindparam("machine_id"))
)
_TAKE_VERSION = Prepared(
    update(table_of(Machine))
    .where(col(Machine.id) == bindparam("machine_id"))
    .values(runtime_version=bindparam("runtime_version"))
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
    after runs (R7), or while it is below its environment's minimum (R41): a machine that gets
    no run could not report its update otherwise."""
    caller = require_machine(principal)
    version = Version.parse(runtime_version, field="runtimeVersion")
    os_edition = validation.name(os_edition, field="osEdition")
    reported = check_sessions(sessions) if sessions is not None else None
    now = ctx.clock.now()
    script = _beat(
        caller.machine_id,
        version,
        os_edition,
        reported,
        now,
        ctx.settings.heartbeat_timeout_seconds,
    )
    row, changed = await ctx.db.write_script(script)
    if changed:  # published once the transaction has committed
        await ctx.events.publish(MachineChanged(row["id"], row["environment_id"]))
    key = _Key(row["key_expires_at"], row["key_rotation_pending"])
    return HeartbeatAck(row, key_action_required(key, now))


def _beat(
    machine_id: str,
    version: Version,
    os_edition: str,
    reported: Sequence[ReportedSession] | None,
    now: datetime,
    timeout_seconds: float,
) -> Script[tuple[dict[str, Any], bool]]:
    """Whether the machine's status or sessions changed, with the machine's row as written."""
    rows: list[dict[str, Any]] = yield Fetch(_MACHINE, {"machine_id": machine_id})
    if not rows:
        raise NotFound("machine", machine_id)
    row = rows[0]
    updated = _updated_runtime(row.pop("minimum"), row["runtime_version"], version)
    if updated is not None:
        yield Execute(_TAKE_VERSION, {"machine_id": machine_id, "runtime_version": updated})
        row["runtime_version"] = updated
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
    if was is not MachineStatus.CONNECTED:  # R43: recorded with the heartbeat that did it
        yield from outbox.steps(
            outbox.Happened(
                row["environment_id"],
                outbox.MACHINE_STATUS_CHANGED,
                machine_status_data(row["id"], row["name"], MachineStatus.CONNECTED, now),
                now,
            )
        )
    yield Execute(
        _BEAT, {"machine_id": machine_id, "now": now, "os_edition": os_edition}, last=True
    )
    row.update(last_heartbeat_at=now, os_edition=os_edition)
    return row, was is not MachineStatus.CONNECTED or sessions_changed or updated is not None


def machine_status_data(
    machine_id: str, name: str, status: MachineStatus, last_heartbeat_at: datetime | None
) -> dict[str, Any]:
    """A machine.status.changed event's data (R43)."""
    return {
        "machineId": machine_id,
        "machineName": name,
        "status": status.value,
        "lastHeartbeatAt": last_heartbeat_at.isoformat() if last_heartbeat_at else None,
    }


def _updated_runtime(minimum: str | None, recorded: str, reported: Version) -> str | None:
    """R41: the reported version, when the recorded one is below the minimum and it is not."""
    if below(recorded, minimum) and not below(str(reported), minimum):
        return str(reported)
    return None
