"""Who is calling: a person with an API token, or a machine runtime with its machine key."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserPrincipal:
    user_id: str
    token_id: str
    is_admin: bool


@dataclass(frozen=True)
class MachinePrincipal:
    machine_id: str
    environment_id: str
    key_expired: bool


Principal = UserPrincipal | MachinePrincipal
