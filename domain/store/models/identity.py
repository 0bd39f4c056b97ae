"""Users, their API tokens and their security roles per environment."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

from sqlalchemy import Column, UniqueConstraint, false
from sqlalchemy import Enum as SAEnum
from sqlmodel import Field, SQLModel

from domain.kernel.permissions import Role
from domain.store.models.columns import UTCDateTime, new_id


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    display_name: str = Field(max_length=200)
    email: str = Field(max_length=320, unique=True, index=True)
    active: bool = True
    # May create environments and users across the installation.
    is_admin: bool = False
    attended_licence: bool = False  # R23
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    deactivated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=200)
    # Shown in lists so people recognise a token; the secret itself is only stored hashed.
    prefix: str = Field(max_length=16)
    secret_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RoleAssignment(SQLModel, table=True):
    __tablename__ = "role_assignments"
    __table_args__ = (UniqueConstraint("environment_id", "user_id", "role"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: Role = Field(sa_column=Column(SAEnum(Role, native_enum=False, length=32), nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    # R44: granted by a group mapping at sign-in, and taken back when the groups no longer grant
    # it; a role granted by hand (False) is never touched by sign-in.
    from_sign_in: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class SignInMatch(str, Enum):
    """How a provider's subject was first tied to a DeskFleet user (R44)."""

    EMAIL = "EMAIL"  # linked to the existing user with the provider's verified e-mail
    PROVISIONED = "PROVISIONED"  # the user was created at that first sign-in


class SignInIdentity(SQLModel, table=True):
    """A person of the organisation's OpenID Connect provider, by issuer and subject (R44)."""

    __tablename__ = "sign_in_identities"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    issuer: str = Field(max_length=500)
    subject: str = Field(max_length=255)
    user_id: str = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    matched_by: SignInMatch = Field(
        sa_column=Column(SAEnum(SignInMatch, native_enum=False, length=16), nullable=False)
    )
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)


class SignInGroupRole(SQLModel, table=True):
    """R44: members of the provider's ``group`` hold ``role`` in the environment."""

    __tablename__ = "sign_in_group_roles"
    __table_args__ = (UniqueConstraint("environment_id", "group", "role"),)

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    environment_id: str = Field(foreign_key="environments.id", index=True, ondelete="CASCADE")
    group: str = Field(max_length=255)
    role: Role = Field(sa_column=Column(SAEnum(Role, native_enum=False, length=32), nullable=False))
    created_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
