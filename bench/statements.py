"""SQL statements per page of the machine list, counted in-process on the real app."""

from __future__ import annotations

import httpx
from sqlalchemy import event

from api.app import create_app
from bench.suites import LIST100
from domain.kernel.settings import Settings


async def statements_per_page(database_url: str, token: str) -> tuple[int, int]:
    app = create_app(Settings(database_url=database_url))
    counts: dict[int, int] = {}
    async with app.router.lifespan_context(app):
        db = app.state.domain.db
        engines = {db.write_engine.sync_engine, db.read_engine.sync_engine}
        seen = [0]

        def count(*_: object) -> None:
            seen[0] += 1

        for engine in engines:
            event.listen(engine, "before_cursor_execute", count)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            # The first request of a token records its use (a write); count steady state.
            await client.post(
                "/graphql", json={"query": LIST100}, headers={"Authorization": f"Bearer {token}"}
            )
            for size in (10, 100):
                query = LIST100.replace("first: 100", f"first: {size}")
                seen[0] = 0
                response = await client.post(
                    "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
                )
                body = response.json()
                assert not body.get("errors"), body
                counts[size] = seen[0]
    return counts[10], counts[100]
