"""What R21-R23 decide a trigger on, read in one statement: the connection, the flow, the
connection's target (machine or group) with the caller's share on it and its unattended bots, the
connection owner's attended licence, the caller's security roles in both environments, and whether
anything of the environment is queued (a run with nothing ahead may be dispatched at once).

Triggering is the hot path of dispatching: one set-based read instead of one ORM statement per
fact (each a round trip to the database thread on SQLite). The rules themselves stay in
domain/runs/runs.py and domain/fleet/access.py; this module only gathers their inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, ScalarSelect, Select, String, bindparam, exists, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from domain.kernel.permissions import AccessLevel, Role
from domain.store.models import (
    Connection,
    Connectivity,
    DesktopFlow,
    FlowRun,
    Machine,
    MachineGroup,
    RoleAssignment,
    RunStatus,
    Share,
    User,
)
from domain.store.models.tables import table_of
from domain.store.prepared import Fetch, Prepared

_ROLE_SEPARATOR = ","


# Named tuples, not frozen dataclasses: read once per trigger, and a frozen dataclass's
# field-by-field __init__ cost the trigger more than the parsing it holds.
class TargetFacts(NamedTuple):
    """The connection's machine or group, as the caller sees it."""

    id: str
    name: str
    environment_id: str
    owner_id: str
    shared: AccessLevel | None  # the caller's share on it, if any
    roles: frozenset[Role]  # the caller's roles in its environment (from role assignments)
    has_unattended_bots: bool  # the machine has some, or one of the group's machines has


class ConnectionFacts(NamedTuple):
    id: str
    environment_id: str
    owner_id: str
    name: str
    connectivity: Connectivity
    machine_id: str | None
    group_id: str | None
    windows_username: str
    roles: frozenset[Role]  # the caller's roles in the connection's environment
    owner_name: str | None  # None: the owner is gone
    owner_attended_licence: bool


class FlowFacts(NamedTuple):
    id: str
    environment_id: str
    owner_id: str


class TriggerFacts(NamedTuple):
    connection: ConnectionFacts | None
    flow: FlowFacts | None
    machine: TargetFacts | None  # the connection's machine, if it targets one that exists
    group: TargetFacts | None  # the connection's group, likewise
    queue_empty: bool  # no run of the connection's environment is queued (nothing ahead)


class _joined(FunctionElement[str]):
    """Strings of a group joined by a comma: ``aggregate_strings`` with its separator written in
    the SQL (``aggregate_strings`` binds it as a literal that is rendered again at every run)."""

    type = String()
    inherit_cache = True


@compiles(_joined)
def _joined_default(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"string_agg({compiler.process(element.clauses, **kw)}, '{_ROLE_SEPARATOR}')"


@compiles(_joined, "sqlite")
def _joined_sqlite(element: _joined, compiler: Any, **kw: Any) -> str:
    return f"group_concat({compiler.process(element.clauses, **kw)}, '{_ROLE_SEPARATOR}')"


def _roles_in(environment_id: ColumnElement[Any]) -> ScalarSelect[str]:
    """The caller's roles in ``environment_id``, as one separated string (NULL: none)."""
    ra = table_of(RoleAssignment).c
    return (
        select(_joined(ra.role))
        .where(ra.user_id == bindparam("user_id"), ra.environment_id == environment_id)
        .scalar_subquery()
    )


def _share(column: ColumnElement[Any], resource_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    s = table_of(Share).c
    return (
        select(s.access)
        .where(s.user_id == bindparam("user_id"), column == resource_id)
        .limit(1)
        .scalar_subquery()
    )


def _statement() -> Select[tuple[object, ...]]:
    c = table_of(Connection).c
    f = table_of(DesktopFlow).c
    m = table_of(Machine).c
    g = table_of(MachineGroup).c
    u = table_of(User).c
    s = table_of(Share).c
    members = table_of(Machine).alias("members")
    # Whether, not how many: the first member with bots ends the look (a sum read them all).
    group_bots = exists(
        select(members.c.id).where(members.c.group_id == g.id, members.c.unattended_bots > 0)
    )
    flows = table_of(DesktopFlow)
    r = table_of(FlowRun).c
    queued = exists(
        select(r.id).where(r.environment_id == c.environment_id, r.status == RunStatus.QUEUED)
    )
    return (
        select(
            c.id,
            c.environment_id,
            c.owner_id,
            c.name,
            c.connectivity,
            c.machine_id,
            c.group_id,
            c.windows_username,
            _roles_in(c.environment_id).label("connection_roles"),
            u.display_name,
            u.attended_licence,
            f.id.label("flow_id"),
            f.environment_id.label("flow_environment_id"),
            f.owner_id.label("flow_owner_id"),
            m.id.label("machine_found"),
            m.name.label("machine_name"),
            m.environment_id.label("machine_environment_id"),
            m.owner_id.label("machine_owner_id"),
            m.unattended_bots.label("machine_bots"),
            _share(s.machine_id, m.id).label("machine_share"),
            _roles_in(m.environment_id).label("machine_roles"),
            g.id.label("group_found"),
            g.name.label("group_name"),
            g.environment_id.label("group_environment_id"),
            g.owner_id.label("group_owner_id"),
            group_bots.label("group_bots"),
            _share(s.group_id, g.id).label("group_share"),
            _roles_in(g.environment_id).label("group_roles"),
            (~queued).label("queue_empty"),
        )
        .select_from(table_of(Connection))
        .outerjoin(flows, f.id == bindparam("flow_id"))
        .outerjoin(table_of(Machine), m.id == c.machine_id)
        .outerjoin(table_of(MachineGroup), g.id == c.group_id)
        .outerjoin(table_of(User), u.id == c.owner_id)
        .where(c.id == bindparam("connection_id"))
    )


# Compiled once per database: executions only bind the three ids.
_FACTS = Prepared(_statement())


def _roles(text: str | None) -> frozenset[Role]:
    return frozenset(Role(r) for r in text.split(_ROLE_SEPARATOR)) if text else frozenset()


def _access(value: object) -> AccessLevel | None:
    return None if value is None else AccessLevel(value)


def read_trigger_facts(user_id: str, connection_id: str, flow_id: str) -> Fetch:
    """The step of a script that reads the facts; :func:`trigger_facts` makes sense of its rows."""
    return Fetch(_FACTS, {"user_id": user_id, "connection_id": connection_id, "flow_id": flow_id})


def trigger_facts(rows: list[dict[str, Any]]) -> TriggerFacts:
    if not rows:
        return TriggerFacts(connection=None, flow=None, machine=None, group=None, queue_empty=False)
    row = rows[0]
    connection = ConnectionFacts(
        id=row["id"],
        environment_id=row["environment_id"],
        owner_id=row["owner_id"],
        name=row["name"],
        connectivity=Connectivity(row["connectivity"]),
        machine_id=row["machine_id"],
        group_id=row["group_id"],
        windows_username=row["windows_username"],
        roles=_roles(row["connection_roles"]),
        owner_name=row["display_name"],
        owner_attended_licence=bool(row["attended_licence"]),
    )
    flow = (
        FlowFacts(row["flow_id"], row["flow_environment_id"], row["flow_owner_id"])
        if row["flow_id"] is not None
        else None
    )
    return TriggerFacts(
        connection=connection,
        flow=flow,
        machine=_target(row, "machine"),
        group=_target(row, "group"),
        queue_empty=bool(row["queue_empty"]),
    )


def _target(row: Mapping[str, Any], kind: str) -> TargetFacts | None:
    """The connection's machine or group (``kind``), from the columns labelled ``<kind>_...``."""
    found = row[f"{kind}_found"]
    if found is None:
        return None
    return TargetFacts(
        id=found,
        name=row[f"{kind}_name"],
        environment_id=row[f"{kind}_environment_id"],
        owner_id=row[f"{kind}_owner_id"],
        shared=_access(row[f"{kind}_share"]),
        roles=_roles(row[f"{kind}_roles"]),
        has_unattended_bots=(row[f"{kind}_bots"] or 0) > 0,
    )
