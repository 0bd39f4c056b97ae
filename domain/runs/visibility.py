"""Who may see a desktop flow and who may see a run. To anyone else they do not exist: every use
case answers an invisible flow or run exactly as an id that names none (R38), with the id the
caller gave.

- A flow is seen by its owner and by the admins of its environment.
- A run is seen by the admins of its environment, by who triggered it, by the owner of its
  connection, and by whoever can access (R12) the machine or group it is queued for.
- Who is behind a run (who triggered it, its connection's owner) is seen by the admins of its
  environment, by who triggered it and by the owner of its connection; those who see the run only
  through its machine or group see its place, status and wait, not the people. Its connection and
  its flow follow their own rules (a run's ``connection`` is null to whoever ``connection(id)``
  answers null).

Installation admins see everything. Each rule is written once, beside the shapes the use cases
need: a predicate on facts already read, a WHERE clause for lists, a look-up by id.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, false, or_, true
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from domain.identity.authorization import admin_environment_ids, roles_in
from domain.kernel.errors import NotFound
from domain.kernel.permissions import Role
from domain.kernel.principals import UserPrincipal
from domain.store.models import DesktopFlow, FlowRun, Machine, MachineGroup, Share

# --- desktop flows -----------------------------------------------------------------------------


def sees_flow(user: UserPrincipal, owner_id: str, roles: frozenset[Role]) -> bool:
    """The rule. ``roles``: the caller's security roles in the flow's environment."""
    return owner_id == user.user_id or user.is_admin or Role.ENVIRONMENT_ADMIN in roles


def flows_visible_to(user: UserPrincipal, admin_of: set[str] | None) -> ColumnElement[bool]:
    """The rule as a WHERE clause; ``admin_of`` is ``admin_environment_ids`` (None: all)."""
    if admin_of is None:
        return true()
    return or_(
        col(DesktopFlow.owner_id) == user.user_id,
        col(DesktopFlow.environment_id).in_(admin_of) if admin_of else false(),
    )


def flow_not_found(flow_id: str) -> NotFound:
    """What a flow that does not exist, or is not visible, is answered with."""
    return NotFound("desktop flow", flow_id)


async def visible_flow(session: AsyncSession, user: UserPrincipal, flow_id: str) -> DesktopFlow:
    flow = await session.get(DesktopFlow, flow_id)
    if flow is None or not sees_flow(
        user, flow.owner_id, await roles_in(session, user, flow.environment_id)
    ):
        raise flow_not_found(flow_id)
    return flow


# --- runs --------------------------------------------------------------------------------------


def runs_visible_to(user: UserPrincipal, admin_of: set[str] | None) -> ColumnElement[bool]:
    """The run rule as a WHERE clause; ``admin_of`` is ``admin_environment_ids`` (None: all)."""
    if admin_of is None:
        return true()
    uid = user.user_id
    machines = (
        select(Machine.id)
        .where(Machine.owner_id == uid)
        .union(
            select(Share.machine_id).where(Share.user_id == uid, col(Share.machine_id).is_not(None))
        )
    )
    groups = (
        select(MachineGroup.id)
        .where(MachineGroup.owner_id == uid)
        .union(select(Share.group_id).where(Share.user_id == uid, col(Share.group_id).is_not(None)))
    )
    return or_(
        col(FlowRun.environment_id).in_(admin_of) if admin_of else false(),
        col(FlowRun.triggered_by_id) == uid,
        col(FlowRun.connection_owner_id) == uid,
        col(FlowRun.target_machine_id).in_(machines),
        col(FlowRun.target_group_id).in_(groups),
    )


def sees_run_people(
    user: UserPrincipal, triggered_by_id: str, connection_owner_id: str, admin: bool
) -> bool:
    """The people rule; ``admin``: the caller administers the run's environment."""
    return admin or user.is_admin or user.user_id in (triggered_by_id, connection_owner_id)


def run_not_found(run_id: str) -> NotFound:
    """What a run that does not exist, or is not visible, is answered with."""
    return NotFound("run", run_id)


async def visible_run(
    session: AsyncSession, user: UserPrincipal, run_id: str, *, for_update: bool = False
) -> FlowRun:
    """The run, or :func:`run_not_found` alike whether it is missing or invisible."""
    admin_of = await admin_environment_ids(session, user)
    stmt = select(FlowRun).where(FlowRun.id == run_id, runs_visible_to(user, admin_of))
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    run = (await session.exec(stmt)).first()
    if run is None:
        raise run_not_found(run_id)
    return run
