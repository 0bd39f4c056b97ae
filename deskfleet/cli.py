"""The ``deskfleet`` command: serve, db upgrade, admin token."""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from deskfleet.limits import ensure_open_files
from domain.kernel.settings import Settings


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {
        key: value
        for key in (
            "host",
            "port",
            "database_url",
            "broadcast_url",
            "production",
            "forwarded_allow_ips",
        )
        if (value := getattr(args, key, None)) is not None
    }
    return Settings(**overrides)


def _add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url", help="default: sqlite:///deskfleet.db (DESKFLEET_DATABASE_URL)"
    )


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import SchemaOutdated, check_sign_in, create_app, prepare_database
    from api.observability import configure_logging
    from api.traces import TracesNotInstalled
    from api.transport.uvicorn_adapter import WebSocketProtocol
    from domain.kernel.openid import SignInUnavailable
    from domain.store.storage import StorageUnavailable

    settings = settings_from(args)
    configure_logging(settings.json_logs)
    try:
        asyncio.run(prepare_database(settings))
    except SchemaOutdated as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 2
    except StorageUnavailable as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 1
    try:
        asyncio.run(check_sign_in(settings))  # R44: the provider named is there and usable
    except SignInUnavailable as exc:
        print(f"deskfleet: sign-in with OpenID Connect: {exc}", file=sys.stderr)
        return 2
    # Once the database is known good: a refusal above stays one line.
    ensure_open_files(settings.planned_connections, "planned (DESKFLEET_PLANNED_CONNECTIONS)")
    print(f"DeskFleet serving on http://{settings.host}:{settings.port}/graphql", flush=True)
    try:
        app = create_app(settings)
    except TracesNotInstalled as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 2
    tune_garbage_collector()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        log_config=None,  # keep the handlers configure_logging set (JSON or text)
        timeout_graceful_shutdown=30,  # finish in-flight requests on SIGTERM
        access_log=args.access_log,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ws=WebSocketProtocol,  # uvicorn's websockets-sansio, keeping less per socket
        # Updates are a few hundred bytes of JSON: per-message deflate saves little on the wire
        # and costs a zlib context per connection (most of an idle subscriber's memory) and CPU
        # for every message to every subscriber.
        ws_per_message_deflate=False,
        # A bound on what uvicorn buffers per frame (its own 1009). Twice the message limit:
        # api/guards.WebSocketMessageLimit refuses everything past the limit itself (1009 with
        # its reason); uvicorn only stops a frame far past it while reading it.
        ws_max_size=2 * settings.ws_max_message_bytes,
    )
    return 0


def tune_garbage_collector() -> None:
    """Keep the collector off what lives as long as the process, and run it less often.

    The modules, the schema and the app (some 165,000 objects) never die, yet every full
    collection walked them all: ~100 ms each, several a minute under load. Frozen, they are never
    walked again. A request holds thousands of containers (ORM rows, GraphQL results) that their
    reference counts free at its end, and sixteen requests in flight hold tens of thousands:
    collecting the young generation at CPython's 700 walked them again and again and pushed them
    into the older generations, whose collections then walked them too. Under `list100` load the
    collector took ~3.4 ms per request before, ~0.1 ms after. What a request leaves in cycles is
    still collected, but each collection then frees it all at once: GraphQL's executor left ~50
    objects a request and a collection ~40,000 (~70 ms), until api/transport/acyclic_execution.py broke
    its cycle. Under load a request now leaves none.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD)


# Net container allocations between two young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def db_upgrade(args: argparse.Namespace) -> int:
    from domain.store import schema_version, storage
    from domain.store.db import Database

    settings = settings_from(args)

    async def upgrade() -> None:
        storage.private_database_file(settings.database_url)
        storage.check_opens(settings.database_url)
        await schema_version.upgrade(settings.database_url)
        db = Database(settings.database_url)
        try:
            await storage.probe_write(db)  # an upgraded schema on a database none can write
        finally:
            await db.dispose()

    try:
        with storage.reported(settings.database_url):
            asyncio.run(upgrade())
    except storage.StorageUnavailable as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 1
    print("database schema is current")
    return 0


def admin_token(args: argparse.Namespace) -> int:
    from domain.context import DomainContext
    from domain.identity import bootstrap
    from domain.store import storage
    from domain.store.db import Database

    settings = settings_from(args)

    async def mint() -> str:
        storage.check_opens(settings.database_url)
        ctx = DomainContext(db=Database(settings.database_url), settings=settings)
        try:
            return (await bootstrap.mint_admin_token(ctx)).secret
        finally:
            await ctx.db.dispose()

    try:
        with storage.reported(settings.database_url):
            print(asyncio.run(mint()))
    except (LookupError, storage.StorageUnavailable) as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="deskfleet", description="DeskFleet control plane")
    commands = root.add_subparsers(dest="command", required=True)

    p = commands.add_parser("serve", help="run the API server")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    _add_database(p)
    p.add_argument("--broadcast-url", help="memory:// (default) or redis://host:6379")
    p.add_argument("--production", action="store_true", default=None)
    p.add_argument(
        "--forwarded-allow-ips",
        help="proxies trusted for X-Forwarded-For: addresses or networks, comma-separated, "
        "'*' for any, '' for none (default 127.0.0.1; DESKFLEET_FORWARDED_ALLOW_IPS)",
    )
    p.add_argument(
        "--no-access-log", dest="access_log", action="store_false", help="no line per request"
    )
    p.set_defaults(run=serve)

    db = commands.add_parser("db", help="database schema").add_subparsers(dest="db", required=True)
    p = db.add_parser("upgrade", help="apply Alembic migrations")
    _add_database(p)
    p.set_defaults(run=db_upgrade)

    admin = commands.add_parser("admin", help="administration").add_subparsers(
        dest="admin", required=True
    )
    p = admin.add_parser("token", help="mint a new token for the first administrator")
    _add_database(p)
    p.set_defaults(run=admin_token)

    from deskfleet import (
        demo,
        documents,  # `deskfleet documents register`
        simulator,  # `deskfleet simulate` and `deskfleet demo`
    )

    simulator.add_command(commands)
    demo.add_command(commands)
    documents.add_command(commands)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    args = parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            reason = error["msg"].removeprefix("Value error, ")
            print(f"deskfleet: DESKFLEET_{name.upper()}: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
