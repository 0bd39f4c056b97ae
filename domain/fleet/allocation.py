"""Unattended bots allocated to machines from their environment's capacity pool (R24)."""

from __future__ import annotations

from sqlmodel import col, func, select

from domain.bus.events import MachineChanged, emit
from domain.context import DomainContext
from domain.fleet.access import authorize_machine
from domain.identity.authorization import require_user
from domain.kernel import validation
from domain.kernel.errors import ErrorCode, RuleViolation
from domain.kernel.permissions import Action
from domain.kernel.principals import Principal
from domain.store.models import Environment, Machine

MAX_BOTS_PER_MACHINE = 1000


async def allocate_unattended_bots(
    ctx: DomainContext, principal: Principal, machine_id: str, count: int
) -> Machine:
    """Set how many unattended bots a machine holds. Across an environment the machines' bots
    never exceed its ``unattended_capacity``. Fewer bots than running runs is allowed: running
    runs finish (as with maintenance, R16) and no new one starts until a bot is free."""
    user = require_user(principal)
    machine_id = validation.ident(machine_id, field="machineId")
    validation.bounded_int(count, field="count", minimum=0, maximum=MAX_BOTS_PER_MACHINE)
    async with ctx.db.write() as session:
        machine = await authorize_machine(session, user, machine_id, Action.EDIT)
        # Lock the pool (PostgreSQL; SQLite writers are serialised) so two allocations in the
        # same environment cannot both pass the check.
        environment = (
            await session.exec(
                select(Environment)
                .where(Environment.id == machine.environment_id)
                .with_for_update()
            )
        ).one()
        others = (
            await session.exec(
                select(func.coalesce(func.sum(Machine.unattended_bots), 0)).where(
                    Machine.environment_id == environment.id, col(Machine.id) != machine.id
                )
            )
        ).one()
        available = environment.unattended_capacity - int(others)
        if count > available:
            raise RuleViolation(
                ErrorCode.CAPACITY_EXCEEDED,
                f"environment {environment.name!r} has {environment.unattended_capacity} "
                f"unattended bots in its pool and {int(others)} are allocated to other machines: "
                f"at most {max(available, 0)} can go to machine {machine.name!r}, not {count}",
                rule="R24",
            )
        if machine.unattended_bots != count:
            machine.unattended_bots = count
            session.add(machine)
            emit(ctx.events, session, MachineChanged(machine.id, machine.environment_id))
    return machine
