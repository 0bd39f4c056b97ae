"""First run: an empty installation gets a default environment and an admin with a token."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from domain.context import DomainContext
from domain.identity.identity import IssuedToken, add_token
from domain.kernel.permissions import Role
from domain.kernel.versions import MIN_FLOW_EXTENSIONS
from domain.store.models import Environment, EnvironmentKind, RoleAssignment, User

DEFAULT_ENVIRONMENT = "Default"
ADMIN_EMAIL = "admin@deskfleet.local"


async def first_run(ctx: DomainContext) -> IssuedToken | None:
    """Create the admin and the default environment when there are no users; else ``None``.

    Instances of a cluster starting together on a new PostgreSQL database may all find no users:
    the unique environment name and admin email let one win; the others roll back and carry on.
    """
    try:
        return await _first_run(ctx)
    except IntegrityError:
        return None  # another instance made the first run at the same moment


async def _first_run(ctx: DomainContext) -> IssuedToken | None:
    now = ctx.clock.now()
    async with ctx.db.write() as session:
        if (await session.exec(select(User.id).limit(1))).first() is not None:
            return None
        environment = Environment(
            name=DEFAULT_ENVIRONMENT,
            kind=EnvironmentKind.DEFAULT,
            flow_extensions_version=MIN_FLOW_EXTENSIONS,
            created_at=now,
        )
        admin = User(display_name="Administrator", email=ADMIN_EMAIL, is_admin=True, created_at=now)
        session.add_all([environment, admin])
        await session.flush()
        session.add(
            RoleAssignment(
                environment_id=environment.id,
                user_id=admin.id,
                role=Role.ENVIRONMENT_ADMIN,
                created_at=now,
            )
        )
        return add_token(ctx, session, admin, "first-run admin token")


async def mint_admin_token(ctx: DomainContext, name: str = "admin token (CLI)") -> IssuedToken:
    """``deskfleet admin token``: whoever can run the CLI on the server holds the database."""
    async with ctx.db.write() as session:
        admin = (
            await session.exec(
                select(User)
                .where(col(User.is_admin).is_(True), col(User.active).is_(True))
                .order_by(col(User.created_at))
                .limit(1)
            )
        ).first()
        if admin is None:
            raise LookupError("no active administrator exists; start the server once first")
        return add_token(ctx, session, admin, name)
