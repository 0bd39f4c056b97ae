"""Per-request DataLoaders: a nested field costs one query per batch, never one per row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from strawberry.dataloader import DataLoader

from domain import (
    connections,
    environments,
    flows,
    groups,
    identity,
    machines,
    maintenance,
    runs,
    sharing,
)
from domain.context import DomainContext
from domain.models import (
    Connection,
    DesktopFlow,
    Environment,
    FlowRun,
    Gateway,
    Machine,
    MachineGroup,
    User,
)
from domain.permissions import AccessLevel, Action
from domain.principals import Principal, UserPrincipal

T = TypeVar("T")
R = TypeVar("R", Machine, MachineGroup)


class Loaders:
    def __init__(self, ctx: DomainContext, principal: Principal | None) -> None:
        self.users: DataLoader[str, User | None] = DataLoader(
            load_fn=lambda ids: identity.users_by_ids(ctx, ids)
        )
        self.environments: DataLoader[str, Environment | None] = DataLoader(
            load_fn=lambda ids: environments.environments_by_ids(ctx, ids)
        )
        self.groups: DataLoader[str, MachineGroup | None] = DataLoader(
            load_fn=lambda ids: groups.groups_by_ids(ctx, ids)
        )
        self.machine_counts: DataLoader[str, machines.RunCounts] = DataLoader(
            load_fn=lambda ids: machines.run_counts(ctx, ids)
        )
        user = principal if isinstance(principal, UserPrincipal) else None
        self.machine_access: DataLoader[Machine, AccessLevel | None] = DataLoader(
            load_fn=lambda ms: machines.access_levels(ctx, user, ms),
            cache_key_fn=lambda m: m.id,
        )
        # Groups, sharing and maintenance (R11-R19).
        self.machine_maintenance: DataLoader[Machine, maintenance.MachineMaintenance] = DataLoader(
            load_fn=lambda ms: maintenance.machine_maintenance(ctx, ms), cache_key_fn=lambda m: m.id
        )
        self.group_state: DataLoader[MachineGroup, groups.GroupState] = DataLoader(
            load_fn=lambda gs: groups.group_states(ctx, gs), cache_key_fn=lambda g: g.id
        )
        self.group_access: DataLoader[MachineGroup, AccessLevel | None] = by_resource(
            sharing.access_types, ctx, user, sharing.GROUP
        )
        self.machine_access_lists: DataLoader[Machine, list[sharing.AccessEntry] | None] = (
            by_resource(sharing.access_lists, ctx, user, sharing.MACHINE)
        )
        self.group_access_lists: DataLoader[MachineGroup, list[sharing.AccessEntry] | None] = (
            by_resource(sharing.access_lists, ctx, user, sharing.GROUP)
        )
        self.machine_allowed: DataLoader[Machine, list[Action]] = by_resource(
            sharing.allowed_actions, ctx, user, sharing.MACHINE
        )
        self.group_allowed: DataLoader[MachineGroup, list[Action]] = by_resource(
            sharing.allowed_actions, ctx, user, sharing.GROUP
        )
        self.machine_deactivated_shares: DataLoader[Machine, bool] = by_resource(
            sharing.deactivated_shares_for, ctx, user, sharing.MACHINE
        )
        self.group_deactivated_shares: DataLoader[MachineGroup, bool] = by_resource(
            sharing.deactivated_shares_for, ctx, user, sharing.GROUP
        )

        # Connections, gateways and desktop flows (R20-R22).
        self.machines: DataLoader[str, Machine | None] = DataLoader(
            load_fn=lambda ids: connections.machines_by_ids(ctx, ids)
        )
        self.connections: DataLoader[str, Connection | None] = DataLoader(
            load_fn=lambda ids: connections.connections_by_ids(ctx, ids)
        )
        self.gateways: DataLoader[str, Gateway | None] = DataLoader(
            load_fn=lambda ids: connections.gateways_by_ids(ctx, ids)
        )
        self.flows: DataLoader[str, DesktopFlow | None] = DataLoader(
            load_fn=lambda ids: flows.flows_by_ids(ctx, ids)
        )

        # Runs and queues (R25, R29): one snapshot per environment for a page of runs.
        self.run_waits: DataLoader[FlowRun, runs.WaitState | None] = DataLoader(
            load_fn=lambda rs: runs.wait_states(ctx, rs), cache_key_fn=lambda r: r.id
        )


def by_resource(
    fetch: Callable[
        [DomainContext, UserPrincipal | None, sharing.ResourceKind, list[R]], Awaitable[list[T]]
    ],
    ctx: DomainContext,
    user: UserPrincipal | None,
    kind: sharing.ResourceKind,
) -> DataLoader[R, T]:
    """A loader keyed by machine or group rows (cached by id), batched into one ``fetch``."""
    return DataLoader(load_fn=lambda rs: fetch(ctx, user, kind, rs), cache_key_fn=lambda r: r.id)
