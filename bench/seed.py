"""A fleet for the benchmarks, written straight to the database: users, groups, machines, runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import select

from domain.context import DomainContext
from domain.identity import bootstrap
from domain.identity.identity import add_token
from domain.identity.secrets import MACHINE_KEY_PREFIX, digest, new_secret
from domain.kernel.permissions import Role
from domain.kernel.settings import Settings
from domain.store import schema_version
from domain.store.db import Database
from domain.store.models import (
    Connection,
    Connectivity,
    DesktopFlow,
    Environment,
    FlowRun,
    Machine,
    MachineGroup,
    RoleAssignment,
    RunMode,
    RunPriority,
    RunStatus,
    User,
)


@dataclass(frozen=True)
class SeededFleet:
    admin_token: str
    environment_id: str
    viewer_tokens: tuple[str, ...] = ()  # environment admins, one token each
    machine_keys: tuple[str, ...] = ()  # each machine's key, in the order of their names


async def seed(
    database_url: str,
    *,
    machines: int = 1000,
    groups: int = 20,
    runs: int = 5000,
    viewers: int = 0,
) -> SeededFleet:
    await schema_version.upgrade(database_url)
    ctx = DomainContext(db=Database(database_url), settings=Settings(database_url=database_url))
    try:
        issued = await bootstrap.first_run(ctx)
        assert issued is not None, "seed() needs an empty database"
        now = ctx.clock.now()
        async with ctx.db.write() as session:
            environment = (await session.exec(select(Environment))).one()
            environment.unattended_capacity = machines * 2
            owners = [
                User(display_name=f"owner {i}", email=f"owner{i}@bench.test", created_at=now)
                for i in range(10)
            ]
            session.add_all(owners)
            await session.flush()
            group_rows = [
                MachineGroup(
                    environment_id=environment.id,
                    name=f"group-{g:02d}",
                    owner_id=owners[g % len(owners)].id,
                    created_at=now,
                )
                for g in range(groups)
            ]
            session.add_all(group_rows)
            await session.flush()
            keys = [new_secret(MACHINE_KEY_PREFIX) for _ in range(machines)]
            machine_rows = [
                Machine(
                    environment_id=environment.id,
                    name=f"machine-{m:04d}",
                    description="bench machine",
                    owner_id=owners[m % len(owners)].id,
                    registered_by_id=owners[m % len(owners)].id,
                    group_id=group_rows[m % groups].id if groups and m % 2 == 0 else None,
                    runtime_version="2.8.73.21119",
                    os_edition="Windows 11 Pro",
                    maintenance=m % 10 == 0,
                    unattended_bots=2,
                    last_heartbeat_at=now + timedelta(days=3650),
                    key_hash=digest(keys[m]),
                    key_expires_at=now + timedelta(days=3650),
                    created_at=now,
                )
                for m in range(machines)
            ]
            session.add_all(machine_rows)
            flow = DesktopFlow(
                environment_id=environment.id,
                owner_id=owners[0].id,
                name="bench flow",
                created_at=now,
            )
            session.add(flow)
            await session.flush()
            connection = Connection(
                environment_id=environment.id,
                owner_id=owners[0].id,
                name="bench connection",
                connectivity=Connectivity.DIRECT,
                machine_id=machine_rows[0].id,
                windows_username="bench",
                password_ciphertext="not-a-real-ciphertext",
                created_at=now,
                updated_at=now,
            )
            session.add(connection)
            await session.flush()
            statuses = [RunStatus.SUCCEEDED, RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.FAILED]
            for r in range(runs):
                status = statuses[r % len(statuses)]
                # Queued runs wait on machines in maintenance, so the dispatcher leaves them be
                # and the fleet stays the same size throughout the measurements.
                index = (r * 10) % machines if status is RunStatus.QUEUED else r % machines
                machine = machine_rows[index]
                session.add(
                    FlowRun(
                        environment_id=environment.id,
                        flow_id=flow.id,
                        connection_id=connection.id,
                        target_machine_id=machine.id,
                        run_as="bench",
                        connection_owner_id=owners[0].id,
                        triggered_by_id=owners[0].id,
                        mode=RunMode.UNATTENDED,
                        priority=RunPriority.NORMAL,
                        status=status,
                        queued_at=now,
                        machine_id=machine.id if status is not RunStatus.QUEUED else None,
                        created_at=now,
                    )
                )
            viewer_tokens: list[str] = []
            for v in range(viewers):
                viewer = User(
                    display_name=f"viewer {v}", email=f"viewer{v}@bench.test", created_at=now
                )
                session.add(viewer)
                await session.flush()
                session.add(
                    RoleAssignment(
                        environment_id=environment.id,
                        user_id=viewer.id,
                        role=Role.ENVIRONMENT_ADMIN,
                        created_at=now,
                    )
                )
                viewer_tokens.append(add_token(ctx, session, viewer, "bench viewer").secret)
        return SeededFleet(
            admin_token=issued.secret,
            environment_id=environment.id,
            viewer_tokens=tuple(viewer_tokens),
            machine_keys=tuple(keys),
        )
    finally:
        await ctx.db.dispose()
