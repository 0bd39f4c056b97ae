"""The baselines: bare Strawberry on the same Starlette/uvicorn stack, serving in-memory data.

``{ hello }`` for `trivial`, and 100 in-memory machines of the same shape as DeskFleet's list for
`list100`; parser and validation caches bounded as in DeskFleet.
"""

from __future__ import annotations

import argparse

import strawberry
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache


@strawberry.type
class Person:
    display_name: str


@strawberry.type
class Group:
    name: str


@strawberry.type
class Machine:
    name: str
    description: str
    version: str
    status: str
    maintenance: bool
    running_count: int
    queued_count: int
    access_type: str
    group: Group | None
    owner: Person


@strawberry.type
class MachineConnection:
    total_count: int
    nodes: list[Machine]


MACHINES = [
    Machine(
        name=f"machine-{i:04d}",
        description="bench machine",
        version="2.8.73.21119",
        status="CONNECTED",
        maintenance=i % 10 == 0,
        running_count=i % 3,
        queued_count=i % 5,
        access_type="ADMIN",
        group=Group(name=f"group-{i % 20:02d}"),
        owner=Person(display_name=f"owner {i % 10}"),
    )
    for i in range(100)
]


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    def machines(self, first: int = 100) -> MachineConnection:
        return MachineConnection(total_count=len(MACHINES), nodes=MACHINES[:first])


schema = strawberry.Schema(
    query=Query,
    extensions=[lambda: ParserCache(maxsize=256), lambda: ValidationCache(maxsize=256)],
)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/graphql", GraphQL(schema, graphql_ide=None), methods=["GET", "POST"]),
        Route("/healthz", healthz),
    ]
)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
