"""The machine runtime's side of runs, authenticated by its machine key (R5): its user sessions
(R26), its assignments, confirming a start and reporting the end of a run (R7, R28), and the
commands it must carry out.

Every report carries the run's ``attempt`` (a fencing token): a runtime holding an assignment
that was withdrawn and given again (R28) is refused, so a run is never held by two bots (R30).
Reports are idempotent: repeating one after a lost response returns the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.bus.events import MachineChanged, emit
from domain.connections.connections import credentials_for_run
from domain.context import DomainContext
from domain.identity.authorization import require_machine
from domain.kernel import validation
from domain.kernel.errors import Conflict, ErrorCode, NotFound, ValidationFailed
from domain.kernel.principals import MachinePrincipal, Principal
from domain.kernel.settings import Settings
from domain.kernel.versions import Version
from domain.runs.retries import retry_ended
from domain.runs.run_lengths import record_run_length
from domain.runs.runs import run_events, run_of_row
from domain.store.models import (
    Connection,
    Connectivity,
    DesktopFlow,
    FlowRun,
    Machine,
    MachineCommand,
    RunStatus,
)
from domain.store.models.tables import table_of
from domain.store.prepared import Prepared

FINISH_OUTCOMES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
MAX_SESSIONS = 200


@dataclass(frozen=True)
class Assignment:
    run: FlowRun
    flow_name: str
    username: str
    password: str | None  # None when the connection is gone or cannot be opened


_R = table_of(FlowRun).c
_C = table_of(Connection).c
_F = table_of(DesktopFlow).c
_MC = table_of(MachineCommand).c
_COMMAND_KEYS = tuple(column.key for column in table_of(MachineCommand).columns)
# A machine's list is read again at every change of its work, between a dispatch and the machine
# having it (`assignment_latency` in docs/performance.md): one prepared read each on a kept
# reading connection, where two ORM read transactions and a look-up of each run's connection
# took a dozen trips to the database thread.
_ASSIGNED = Prepared(
    core_select(
        *table_of(FlowRun).columns,
        _F.name.label("flow_name"),
        _C.connectivity.label("connection_connectivity"),
        _C.windows_username.label("connection_username"),
        _C.password_ciphertext.label("connection_password"),
    )
    .join(table_of(DesktopFlow), _F.id == _R.flow_id)
    .outerjoin(table_of(Connection), _C.id == _R.connection_id)
    .where(_R.machine_id == bindparam("machine_id"), _R.status == RunStatus.DISPATCHED)
    .order_by(_R.dispatched_at, _R.id)
)
_PENDING = Prepared(
    core_select(*table_of(MachineCommand).columns)
    .where(_MC.machine_id == bindparam("machine_id"), _MC.completed_at.is_(None))
    .order_by(_MC.created_at, _MC.id)
)


async def assignments(ctx: DomainContext, principal: Principal) -> list[Assignment]:
    """The runs dispatched to the calling machine and not yet confirmed, oldest first."""
    caller = require_machine(principal)
    rows = await ctx.db.fetch_direct(_ASSIGNED, {"machine_id": caller.machine_id})
    return [_assignment(row, ctx.settings) for row in rows]


def _assignment(row: dict[str, Any], settings: Settings) -> Assignment:
    run = run_of_row(row)
    credentials = None
    if row["connection_connectivity"] is not None:  # else the connection went away meanwhile
        credentials = credentials_for_run(
            Connectivity(row["connection_connectivity"]),
            row["connection_username"],
            row["connection_password"],
            settings,
        )
    username, password = credentials or (run.run_as, None)
    return Assignment(run, row["flow_name"], username, password)


def _attempt(attempt: int) -> None:
    """Attempts count from 1 (the first dispatch); anything else names no attempt at all."""
    validation.bounded_int(attempt, field="attempt", minimum=1, maximum=2**31 - 1)


async def _own_run(
    session: AsyncSession, caller: MachinePrincipal, run_id: str, attempt: int
) -> FlowRun:
    run = (
        await session.exec(select(FlowRun).where(FlowRun.id == run_id).with_for_update())
    ).first()
    mine = run is not None and run.machine_id == caller.machine_id
    # R6: a run still running when its machine moved to another environment is still its own.
    if run is None or (not mine and run.environment_id != caller.environment_id):
        raise NotFound("run", run_id)
    if run.machine_id != caller.machine_id or run.attempt != attempt:
        raise Conflict(
            ErrorCode.STALE_ATTEMPT,
            f"attempt {attempt} of this run is no longer yours (it is at attempt {run.attempt}): "
            "do not run it",
        )
    return run


async def confirm_run_started(
    ctx: DomainContext, principal: Principal, run_id: str, attempt: int
) -> FlowRun:
    """R28: DISPATCHED -> RUNNING, only for the machine and attempt it was dispatched as."""
    caller = require_machine(principal)
    run_id = validation.ident(run_id, field="runId")
    _attempt(attempt)
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        run = await _own_run(session, caller, run_id, attempt)
        if run.status is RunStatus.RUNNING:
            return run  # a repeated confirmation
        if run.status is not RunStatus.DISPATCHED:
            raise Conflict(
                ErrorCode.RUN_FINISHED, f"the run is {run.status.value}: do not start it"
            )
        run.status = RunStatus.RUNNING
        run.started_at = now
        session.add(run)
        run_events(ctx, session, run, run.machine_id)
    return run


async def report_run_finished(
    ctx: DomainContext,
    principal: Principal,
    run_id: str,
    attempt: int,
    *,
    outcome: RunStatus,
    error_code: str | None = None,
    error_message: str | None = None,
    runtime_version: str | None = None,
) -> FlowRun:
    """R28: RUNNING -> SUCCEEDED | FAILED, and R7: the machine takes the version it reports.
    A failure the run's retry policy retries queues its retry in the same transaction (R40)."""
    caller = require_machine(principal)
    run_id = validation.ident(run_id, field="runId")
    _attempt(attempt)
    if outcome not in FINISH_OUTCOMES:
        raise ValidationFailed(
            ErrorCode.INVALID_VALUE, "outcome must be SUCCEEDED or FAILED", field="outcome"
        )
    if error_code is not None:
        error_code = validation.name(error_code, field="errorCode", max_length=64)
    if error_message is not None:
        error_message = validation.text(error_message, field="errorMessage", max_length=2000)
    version = Version.parse(runtime_version, field="runtimeVersion") if runtime_version else None
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        run = await _own_run(session, caller, run_id, attempt)
        if run.status is outcome:
            return run  # a repeated report
        if run.status not in (RunStatus.RUNNING, RunStatus.DISPATCHED):
            raise Conflict(
                ErrorCode.RUN_FINISHED,
                f"the run already ended {run.status.value}"
                + (f" ({run.error_code})" if run.error_code else ""),
            )
        if run.started_at is not None:  # R42: only a run seen starting says how long it ran
            await record_run_length(session, run.flow_id, run.started_at, now)
        run.status = outcome
        run.started_at = run.started_at or now  # finished without confirming: it did start
        run.ended_at = now
        run.error_code = error_code if outcome is RunStatus.FAILED else None
        run.error_message = error_message if outcome is RunStatus.FAILED else None
        if version is not None:
            run.reported_runtime_version = str(version)
            machine = await session.get(Machine, caller.machine_id)
            if machine is not None and machine.runtime_version != str(version):
                machine.runtime_version = str(version)  # R7
                session.add(machine)
                emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
        session.add(run)
        run_events(ctx, session, run, run.machine_id)
        if outcome is RunStatus.FAILED:
            await retry_ended(ctx, session, run, now)
    return run


async def pending_commands(ctx: DomainContext, principal: Principal) -> list[MachineCommand]:
    caller = require_machine(principal)
    rows = await ctx.db.fetch_direct(_PENDING, {"machine_id": caller.machine_id})
    return [
        MachineCommand.model_construct(**{key: row[key] for key in _COMMAND_KEYS}) for row in rows
    ]


async def complete_command(
    ctx: DomainContext, principal: Principal, command_id: str
) -> MachineCommand:
    caller = require_machine(principal)
    command_id = validation.ident(command_id, field="commandId")
    async with ctx.db.write() as session:
        command = await session.get(MachineCommand, command_id)
        if command is None or command.machine_id != caller.machine_id:
            raise NotFound("command", command_id)
        if command.completed_at is None:
            command.completed_at = ctx.clock.now()
            session.add(command)
    return command
