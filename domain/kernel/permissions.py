"""The permission model of R12-R15, as data. Every check in DeskFleet reads these tables."""

from __future__ import annotations

from enum import Enum


class Role(str, Enum):
    ENVIRONMENT_ADMIN = "ENVIRONMENT_ADMIN"
    ENVIRONMENT_MAKER = "ENVIRONMENT_MAKER"
    MACHINE_OWNER = "MACHINE_OWNER"
    MACHINE_USER = "MACHINE_USER"
    MACHINE_USER_CAN_SHARE = "MACHINE_USER_CAN_SHARE"


class AccessLevel(str, Enum):
    """What a user holds on one machine or group. ``ADMIN`` is shown to environment admins."""

    OWNER = "OWNER"
    CO_OWNER = "CO_OWNER"
    USER = "USER"
    ADMIN = "ADMIN"


class Action(str, Enum):
    REGISTER = "REGISTER"  # register a machine (environment-wide, no resource)
    RUN = "RUN"  # run a desktop flow on it / connect to it
    SHARE = "SHARE"
    ADD_TO_GROUP = "ADD_TO_GROUP"
    EDIT = "EDIT"  # edit details, maintenance, key rotation
    DELETE = "DELETE"


# R12: what each access level on a resource allows.
RESOURCE_ACCESS: dict[AccessLevel, frozenset[Action]] = {
    AccessLevel.OWNER: frozenset(
        {Action.RUN, Action.SHARE, Action.ADD_TO_GROUP, Action.EDIT, Action.DELETE}
    ),
    AccessLevel.CO_OWNER: frozenset(
        {Action.RUN, Action.SHARE, Action.ADD_TO_GROUP, Action.EDIT, Action.DELETE}
    ),
    AccessLevel.USER: frozenset({Action.RUN}),
    AccessLevel.ADMIN: frozenset(Action),
}

_OWNER_PRIVILEGES = frozenset(
    {Action.REGISTER, Action.RUN, Action.SHARE, Action.ADD_TO_GROUP, Action.EDIT, Action.DELETE}
)

# R13: the privileges each security role grants in its environment.
ROLE_PRIVILEGES: dict[Role, frozenset[Action]] = {
    Role.ENVIRONMENT_ADMIN: frozenset(Action),
    Role.ENVIRONMENT_MAKER: _OWNER_PRIVILEGES,
    Role.MACHINE_OWNER: _OWNER_PRIVILEGES,
    Role.MACHINE_USER: frozenset({Action.RUN}),
    Role.MACHINE_USER_CAN_SHARE: frozenset({Action.RUN, Action.SHARE}),
}

# R14: the order used to refuse escalation when sharing.
ACCESS_RANK: dict[AccessLevel, int] = {
    AccessLevel.USER: 1,
    AccessLevel.CO_OWNER: 2,
    AccessLevel.OWNER: 3,
    AccessLevel.ADMIN: 4,
}

SHAREABLE_LEVELS = (AccessLevel.CO_OWNER, AccessLevel.USER)

# R13 x R14: the role named for it lets a machine *user* share what they use. R12 alone would deny
# a USER-access holder sharing; this role adds it, and R14 then caps what they grant at USER.
ROLE_RESOURCE_ACCESS: dict[Role, dict[AccessLevel, frozenset[Action]]] = {
    Role.MACHINE_USER_CAN_SHARE: {AccessLevel.USER: frozenset({Action.SHARE})},
}


def resource_actions(roles: frozenset[Role], access: AccessLevel) -> frozenset[Action]:
    """R12 for ``access``, plus what the caller's roles add to that access level."""
    actions = RESOURCE_ACCESS[access]
    for role in roles:
        actions |= ROLE_RESOURCE_ACCESS.get(role, {}).get(access, frozenset())
    return actions


def grantable_levels(access: AccessLevel) -> tuple[AccessLevel, ...]:
    """R14: the levels someone holding ``access`` may grant (never more than they hold)."""
    return tuple(lvl for lvl in SHAREABLE_LEVELS if ACCESS_RANK[lvl] <= ACCESS_RANK[access])


def privileges(roles: frozenset[Role], *, restrict_registration: bool) -> frozenset[Action]:
    """Union of the privileges of ``roles``; R4's restriction takes registration from makers."""
    granted: set[Action] = set()
    for role in roles:
        actions = ROLE_PRIVILEGES[role]
        if role is Role.ENVIRONMENT_MAKER and restrict_registration:
            actions = actions - {Action.REGISTER}
        granted |= actions
    return frozenset(granted)


def allows(
    roles: frozenset[Role],
    access: AccessLevel | None,
    action: Action,
    *,
    restrict_registration: bool = False,
) -> bool:
    """R13: an action needs the privilege and access to the resource, except for admins."""
    if Role.ENVIRONMENT_ADMIN in roles:
        return True
    if action not in privileges(roles, restrict_registration=restrict_registration):
        return False
    if action is Action.REGISTER:
        return True
    return access is not None and action in resource_actions(roles, access)
