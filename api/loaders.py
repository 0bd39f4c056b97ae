"""Per-request DataLoaders: a nested field costs one query per batch, never one per row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from functools import cached_property
from typing import Any, Generic, TypeVar

from strawberry.dataloader import DataLoader

from domain.connections import connections
from domain.context import DomainContext
from domain.fleet import environments, groups, machines, maintenance, sharing
from domain.fleet.groups import GroupState  # not groups.GroupState: the class has a `groups`
from domain.fleet.machine_views import GroupRecord, MachineRecord
from domain.identity import identity
from domain.kernel.permissions import AccessLevel, Action
from domain.kernel.principals import Principal, UserPrincipal
from domain.runs import flows, runs
from domain.statistics import waits
from domain.store.models import (
    Connection,
    DesktopFlow,
    Environment,
    FlowRun,
    Gateway,
    Machine,
    MachineGroup,
    RunWait,
    User,
)

T = TypeVar("T")
R = TypeVar("R", MachineRecord, GroupRecord)


class Deferred(Generic[T]):
    """A field's value read only if the query selects it: awaiting it runs ``load`` then.

    Unlike a coroutine made in advance, one never awaited costs nothing and warns nowhere.
    """

    __slots__ = ("load",)

    def __init__(self, load: Callable[[], Awaitable[T]]) -> None:
        self.load = load

    def __await__(self) -> Generator[Any, None, T]:
        return self.load().__await__()

    def part(self, name: str) -> Deferred[Any]:
        """One attribute of the loaded value, loaded (once, through the loader) if selected."""

        async def load() -> Any:
            return getattr(await self, name)

        return Deferred(load)


class Loaders:
    """Each loader is made on first use: most requests touch one or two of them."""

    def __init__(self, ctx: DomainContext, principal: Principal | None) -> None:
        self.ctx = ctx
        self.user = principal if isinstance(principal, UserPrincipal) else None

    @cached_property
    def users(self) -> DataLoader[str, User | None]:
        return DataLoader(load_fn=lambda ids: identity.users_by_ids(self.ctx, ids))

    @cached_property
    def environments(self) -> DataLoader[str, Environment | None]:
        return DataLoader(load_fn=lambda ids: environments.environments_by_ids(self.ctx, ids))

    @cached_property
    def groups(self) -> DataLoader[str, MachineGroup | None]:
        return DataLoader(load_fn=lambda ids: groups.groups_by_ids(self.ctx, ids))

    @cached_property
    def machine_counts(self) -> DataLoader[str, machines.RunCounts]:
        return DataLoader(load_fn=lambda ids: machines.run_counts(self.ctx, ids))

    @cached_property
    def machine_access(self) -> DataLoader[Machine, AccessLevel | None]:
        return DataLoader(
            load_fn=lambda ms: machines.access_levels(self.ctx, self.user, ms),
            cache_key_fn=lambda m: m.id,
        )

    # Groups, sharing and maintenance (R11-R19).
    @cached_property
    def machine_maintenance(self) -> DataLoader[Machine, maintenance.MachineMaintenance]:
        return DataLoader(
            load_fn=lambda ms: maintenance.machine_maintenance(self.ctx, ms),
            cache_key_fn=lambda m: m.id,
        )

    @cached_property
    def group_state(self) -> DataLoader[GroupRecord, GroupState]:
        return DataLoader(
            load_fn=lambda gs: groups.group_states(self.ctx, gs), cache_key_fn=lambda g: g.id
        )

    @cached_property
    def group_access(self) -> DataLoader[GroupRecord, AccessLevel | None]:
        return by_resource(sharing.access_types, self.ctx, self.user, sharing.GROUP)

    @cached_property
    def machine_access_lists(self) -> DataLoader[MachineRecord, list[sharing.AccessEntry] | None]:
        return by_resource(sharing.access_lists, self.ctx, self.user, sharing.MACHINE)

    @cached_property
    def group_access_lists(self) -> DataLoader[GroupRecord, list[sharing.AccessEntry] | None]:
        return by_resource(sharing.access_lists, self.ctx, self.user, sharing.GROUP)

    @cached_property
    def machine_allowed(self) -> DataLoader[MachineRecord, list[Action]]:
        return by_resource(sharing.allowed_actions, self.ctx, self.user, sharing.MACHINE)

    @cached_property
    def group_allowed(self) -> DataLoader[GroupRecord, list[Action]]:
        return by_resource(sharing.allowed_actions, self.ctx, self.user, sharing.GROUP)

    @cached_property
    def machine_deactivated_shares(self) -> DataLoader[MachineRecord, bool]:
        return by_resource(sharing.deactivated_shares_for, self.ctx, self.user, sharing.MACHINE)

    @cached_property
    def group_deactivated_shares(self) -> DataLoader[GroupRecord, bool]:
        return by_resource(sharing.deactivated_shares_for, self.ctx, self.user, sharing.GROUP)

    # Connections, gateways and desktop flows (R20-R22).
    @cached_property
    def machines(self) -> DataLoader[str, Machine | None]:
        return DataLoader(load_fn=lambda ids: connections.machines_by_ids(self.ctx, ids))

    @cached_property
    def connections(self) -> DataLoader[str, Connection | None]:
        return DataLoader(
            load_fn=lambda ids: connections.connections_by_ids(self.ctx, self.user, ids)
        )

    @cached_property
    def gateways(self) -> DataLoader[str, Gateway | None]:
        return DataLoader(load_fn=lambda ids: connections.gateways_by_ids(self.ctx, ids))

    @cached_property
    def flows(self) -> DataLoader[str, DesktopFlow | None]:
        return DataLoader(load_fn=lambda ids: flows.flows_by_ids(self.ctx, self.user, ids))

    @cached_property
    def run_people(self) -> DataLoader[FlowRun, bool]:
        """Whether the caller may see who is behind each run (R38)."""
        return DataLoader(
            load_fn=lambda rs: runs.people_visible(self.ctx, self.user, rs),
            cache_key_fn=lambda r: r.id,
        )

    # Retry chains (R40): the run each retries and the run that retries each, where visible.
    @cached_property
    def retried_runs(self) -> DataLoader[str, FlowRun | None]:
        return DataLoader(
            load_fn=lambda ids: runs.chain_neighbours(self.ctx, self.user, ids, retried_by=False)
        )

    @cached_property
    def retrying_runs(self) -> DataLoader[str, FlowRun | None]:
        return DataLoader(
            load_fn=lambda ids: runs.chain_neighbours(self.ctx, self.user, ids, retried_by=True)
        )

    @cached_property
    def wait_histories(self) -> DataLoader[str, list[RunWait]]:
        return DataLoader(load_fn=lambda ids: waits.histories(self.ctx, ids))

    # Runs and queues (R25, R29): one snapshot per environment for a page of runs.
    @cached_property
    def run_waits(self) -> DataLoader[FlowRun, runs.WaitState | None]:
        return DataLoader(
            load_fn=lambda rs: runs.wait_states(self.ctx, rs), cache_key_fn=lambda r: r.id
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
