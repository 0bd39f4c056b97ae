"""``deskfleet documents register FOLDER``: trust every ``.graphql`` file under a folder.

Each file is one document, registered by the SHA-256 of its exact text (what a client sends whole
or names in a persisted query). Every file must parse and validate against the schema; if any
does not, nothing is registered and each problem is printed with its file. Registering a document
twice changes nothing. With ``DESKFLEET_TRUSTED_DOCUMENTS_ONLY=true`` the servers then accept
these documents (and the dashboard's own) and no others.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from graphql import GraphQLError, parse, validate


def add_command(commands: Any) -> None:
    documents = commands.add_parser("documents", help="trusted documents").add_subparsers(
        dest="documents", required=True
    )
    p = documents.add_parser(
        "register",
        help="trust every .graphql file under a folder",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("folder", type=Path)
    p.add_argument(
        "--database-url", help="default: sqlite:///deskfleet.db (DESKFLEET_DATABASE_URL)"
    )
    p.set_defaults(run=register)


def problems(path: Path, text: str) -> list[str]:
    from api.schema import schema
    from api.transport.strawberry_adapter import graphql_schema

    try:
        errors: list[GraphQLError] = validate(graphql_schema(schema), parse(text))
    except GraphQLError as error:
        errors = [error]
    return [f"{path}: {error.message}" for error in errors]


def register(args: argparse.Namespace) -> int:
    from api.app import SchemaOutdated, prepare_database
    from deskfleet.cli import settings_from
    from domain.documents import trusted
    from domain.kernel.clock import SystemClock
    from domain.store import storage
    from domain.store.db import Database

    folder: Path = args.folder
    if not folder.is_dir():
        print(f"deskfleet: {folder} is not a folder", file=sys.stderr)
        return 2
    files = sorted(folder.rglob("*.graphql"))
    if not files:
        print(f"deskfleet: {folder} holds no .graphql file", file=sys.stderr)
        return 2
    documents: list[tuple[str, str]] = []
    found: list[str] = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            found.append(f"{path}: cannot be read as UTF-8 text ({exc.__class__.__name__})")
            continue
        documents.append((str(path.relative_to(folder)), text))
        found.extend(problems(path, text))
    if found:
        print("\n".join(f"deskfleet: {line}" for line in found), file=sys.stderr)
        print("deskfleet: nothing was registered", file=sys.stderr)
        return 2
    settings = settings_from(args)

    async def run() -> trusted.Registered:
        await prepare_database(settings)  # an embedded SQLite is upgraded, as `serve` does
        db = Database(settings.database_url)
        try:
            return await trusted.register(db, documents, SystemClock().now())
        finally:
            await db.dispose()

    try:
        with storage.reported(settings.database_url):
            registered = asyncio.run(run())
    except SchemaOutdated as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 2
    except storage.StorageUnavailable as exc:
        print(f"deskfleet: {exc}", file=sys.stderr)
        return 1
    for source, text in documents:
        print(f"{trusted.sha256_of(text)}  {source}")
    print(f"{len(registered.added)} document(s) registered, {len(registered.known)} already were")
    return 0
