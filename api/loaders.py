"""Per-request DataLoaders: a nested field costs one query per batch, never one per row."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from domain import environments, groups, identity, machines
from domain.context import DomainContext
from domain.models import Environment, Machine, MachineGroup, User
from domain.permissions import AccessLevel
from domain.principals import Principal, UserPrincipal


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
