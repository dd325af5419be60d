"""Drive the application in-process, without a server: ``python -m examples.fastapi_app``.

Sends a few requests through httpx's ASGI transport and prints the answers; uses an in-memory
SQLite database unless ``DATABASE_URL`` is set.
"""

from __future__ import annotations

import asyncio
import os

import httpx

from .main import create_app


async def demo() -> None:
    app = create_app(os.environ.get("DATABASE_URL", "sqlite+aiosqlite://"))
    # httpx's transport does not run the lifespan: enter it as a server would.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://demo") as client:
            project = (await client.post("/projects", json={"name": "Garden"})).json()
            print("created", project)
            for title in ("Dig", "Plant", "Water"):
                await client.post(f"/projects/{project['id']}/tasks", json={"title": title})
            print("tasks", (await client.get(f"/projects/{project['id']}/tasks")).json())
            print("completed", (await client.post(f"/projects/{project['id']}/complete")).json())
            print("report", (await client.get(f"/projects/{project['id']}/report")).json())


if __name__ == "__main__":
    asyncio.run(demo())
