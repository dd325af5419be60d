"""The FastAPI example (examples/fastapi_app/): every endpoint, on aiosqlite and PostgreSQL.

Requests go through httpx's ASGI transport, after the application's lifespan has started (it
creates the engine and the tables). What the endpoints answer is checked against what the
database holds, read on a connection of its own; and the example type-checks with
``mypy --strict`` (with the plugin) and basedpyright.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from examples.fastapi_app.main import create_app
from examples.fastapi_app.models import Base
from sa_async import AsyncEngine, create_async_engine
from tests.conftest import checked_out

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "examples/fastapi_app"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine of the tests' own on each database, to read back what the application wrote;
    the example's tables are dropped before and after."""
    engine = create_async_engine(database_url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
    try:
        yield engine
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
        await engine.dispose()


@pytest.fixture
async def app(database_url: str, database: AsyncEngine) -> AsyncIterator[FastAPI]:
    """The application on the test database, started (lifespan) as a server would."""
    application = create_app(database_url)
    async with application.router.lifespan_context(application):
        yield application
        # Every request's session has been closed: no connection stays checked out.
        assert checked_out(application.state.engine) == 0


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http_client:
        yield http_client


async def rows(database: AsyncEngine, sql: str) -> list[tuple[Any, ...]]:
    async with database.connect() as connection:
        return [tuple(row) for row in await connection.execute(text(sql))]


async def snapshot(database: AsyncEngine) -> list[list[tuple[Any, ...]]]:
    """Every row of the example's tables."""
    return [
        await rows(database, "SELECT * FROM fastapi_app_projects ORDER BY id"),
        await rows(database, "SELECT * FROM fastapi_app_tasks ORDER BY id"),
    ]


async def create_project(client: httpx.AsyncClient, name: str, description: str = "") -> int:
    response = await client.post("/projects", json={"name": name, "description": description})
    assert response.status_code == 201, response.text
    project_id: int = response.json()["id"]
    return project_id


async def create_task(client: httpx.AsyncClient, project_id: int, title: str) -> int:
    response = await client.post(f"/projects/{project_id}/tasks", json={"title": title})
    assert response.status_code == 201, response.text
    task_id: int = response.json()["id"]
    return task_id


async def test_projects_are_created_listed_read_updated_and_deleted(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    created = await client.post("/projects", json={"name": "Garden", "description": "veg"})
    assert created.status_code == 201
    project = created.json()
    assert project == {"id": project["id"], "name": "Garden", "description": "veg"}
    assert await rows(database, "SELECT id, name, description FROM fastapi_app_projects") == [
        (project["id"], "Garden", "veg")
    ]
    other_id = await create_project(client, "Kitchen")

    listed = await client.get("/projects")
    assert listed.status_code == 200
    assert [item["name"] for item in listed.json()] == ["Garden", "Kitchen"]
    assert (await client.get(f"/projects/{project['id']}")).json() == project

    renamed = await client.patch(f"/projects/{project['id']}", json={"name": "Orchard"})
    assert renamed.status_code == 200
    assert renamed.json() == {**project, "name": "Orchard"}
    # Fields not sent (and fields sent as null) are left as they were.
    unchanged = await client.patch(f"/projects/{project['id']}", json={"name": None})
    assert unchanged.json() == {**project, "name": "Orchard"}
    assert await rows(
        database, "SELECT name, description FROM fastapi_app_projects ORDER BY id"
    ) == [
        ("Orchard", "veg"),
        ("Kitchen", ""),
    ]

    deleted = await client.delete(f"/projects/{project['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert (await client.get(f"/projects/{project['id']}")).status_code == 404
    assert await rows(database, "SELECT id FROM fastapi_app_projects") == [(other_id,)]


async def test_the_project_list_is_paged(client: httpx.AsyncClient) -> None:
    for number in range(5):
        await create_project(client, f"project {number}")
    page = await client.get("/projects", params={"offset": 1, "limit": 2})
    assert [item["name"] for item in page.json()] == ["project 1", "project 2"]
    assert (await client.get("/projects", params={"offset": 5})).json() == []


async def test_a_duplicate_project_name_is_a_conflict(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    await create_project(client, "Garden")
    second_id = await create_project(client, "Kitchen")

    duplicate = await client.post("/projects", json={"name": "Garden"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"detail": "a project named 'Garden' already exists"}
    renamed = await client.patch(f"/projects/{second_id}", json={"name": "Garden"})
    assert renamed.status_code == 409
    assert await rows(database, "SELECT name FROM fastapi_app_projects ORDER BY id") == [
        ("Garden",),
        ("Kitchen",),
    ]


async def test_tasks_are_created_listed_through_awaitable_attrs_updated_and_deleted(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    project_id = await create_project(client, "Garden")
    other_id = await create_project(client, "Kitchen")
    dig, plant = (
        await create_task(client, project_id, "Dig"),
        await create_task(client, project_id, "Plant"),
    )
    await create_task(client, other_id, "Cook")

    listed = await client.get(f"/projects/{project_id}/tasks")
    assert listed.status_code == 200
    assert listed.json() == [
        {"id": dig, "title": "Dig", "done": False, "project_id": project_id},
        {"id": plant, "title": "Plant", "done": False, "project_id": project_id},
    ]
    assert (await client.get(f"/projects/{other_id}/tasks")).json()[0]["title"] == "Cook"
    assert (await client.get(f"/tasks/{dig}")).json()["title"] == "Dig"

    updated = await client.patch(f"/tasks/{dig}", json={"done": True})
    assert updated.json() == {"id": dig, "title": "Dig", "done": True, "project_id": project_id}
    retitled = await client.patch(f"/tasks/{plant}", json={"title": "Sow"})
    assert retitled.json()["title"] == "Sow" and retitled.json()["done"] is False
    assert (await client.delete(f"/tasks/{plant}")).status_code == 204
    assert (await client.get(f"/tasks/{plant}")).status_code == 404
    assert await rows(
        database, "SELECT title, done, project_id FROM fastapi_app_tasks ORDER BY id"
    ) == [
        ("Dig", True, project_id),
        ("Cook", False, other_id),
    ]


async def test_deleting_a_project_deletes_its_tasks(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    project_id = await create_project(client, "Garden")
    other_id = await create_project(client, "Kitchen")
    for title in ("Dig", "Plant"):
        await create_task(client, project_id, title)
    kept = await create_task(client, other_id, "Cook")

    assert (await client.delete(f"/projects/{project_id}")).status_code == 204
    assert await rows(database, "SELECT id FROM fastapi_app_tasks") == [(kept,)]


async def test_complete_updates_open_tasks_and_the_run_sync_report_sees_it(
    client: httpx.AsyncClient, database: AsyncEngine
) -> None:
    project_id = await create_project(client, "Garden")
    other_id = await create_project(client, "Kitchen")
    for title in ("Dig", "Plant", "Water"):
        await create_task(client, project_id, title)
    await create_task(client, other_id, "Cook")
    await client.patch(
        f"/tasks/{await create_task(client, project_id, 'Fence')}", json={"done": True}
    )

    report = await client.get(f"/projects/{project_id}/report")
    assert report.status_code == 200
    assert report.json() == {
        "project_id": project_id,
        "name": "Garden",
        "tasks": 4,
        "done": 1,
        "open_titles": ["Dig", "Plant", "Water"],
    }

    completed = await client.post(f"/projects/{project_id}/complete")
    assert completed.status_code == 200
    assert completed.json() == {"completed": 3}
    assert (await client.post(f"/projects/{project_id}/complete")).json() == {"completed": 0}
    report_after = (await client.get(f"/projects/{project_id}/report")).json()
    assert (report_after["done"], report_after["open_titles"]) == (4, [])
    assert await rows(
        database,
        "SELECT project_id, COUNT(*) FROM fastapi_app_tasks WHERE NOT done GROUP BY project_id",
    ) == [(other_id, 1)]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/projects/999", None),
        ("PATCH", "/projects/999", {"name": "x"}),
        ("DELETE", "/projects/999", None),
        ("GET", "/projects/999/tasks", None),
        ("POST", "/projects/999/tasks", {"title": "x"}),
        ("POST", "/projects/999/complete", None),
        ("GET", "/projects/999/report", None),
        ("GET", "/tasks/999", None),
        ("PATCH", "/tasks/999", {"done": True}),
        ("DELETE", "/tasks/999", None),
    ],
)
async def test_unknown_ids_are_not_found(
    client: httpx.AsyncClient,
    database: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 404
    kind = path.split("/")[1].rstrip("s")
    assert response.json() == {"detail": f"{kind} 999 not found"}
    assert await rows(database, "SELECT COUNT(*) FROM fastapi_app_tasks") == [(0,)]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/projects", {"name": ""}, "name"),
        ("POST", "/projects", {"name": "x" * 101}, "name"),
        ("POST", "/projects", {"description": "no name"}, "name"),
        ("POST", "/projects", {"name": ["a list"]}, "name"),
        ("POST", "/projects", None, "body"),
        ("PATCH", "/projects/{project}", {"name": ""}, "name"),
        ("PATCH", "/projects/{project}", {"description": "x" * 501}, "description"),
        ("GET", "/projects?limit=0", None, "limit"),
        ("GET", "/projects?limit=101", None, "limit"),
        ("GET", "/projects?offset=-1", None, "offset"),
        ("GET", "/projects/first", None, "project_id"),
        ("POST", "/projects/{project}/tasks", {"title": ""}, "title"),
        ("POST", "/projects/{project}/tasks", {"title": "x", "done": "perhaps"}, "done"),
        ("PATCH", "/tasks/{task}", {"title": "x" * 201}, "title"),
        ("DELETE", "/tasks/last", None, "task_id"),
    ],
)
async def test_invalid_requests_are_rejected_and_change_nothing(
    client: httpx.AsyncClient,
    database: AsyncEngine,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    field: str,
) -> None:
    project_id = await create_project(client, "Garden", "veg")
    task_id = await create_task(client, project_id, "Dig")
    before = await snapshot(database)

    response = await client.request(
        method, path.format(project=project_id, task=task_id), json=body
    )
    assert response.status_code == 422, response.text
    assert [error["loc"][-1] for error in response.json()["detail"]] == [field]
    assert await snapshot(database) == before


def run(*command: str) -> tuple[int, str]:
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    return completed.returncode, completed.stdout + completed.stderr


def test_the_example_passes_mypy_strict_with_the_plugin() -> None:
    status, output = run(sys.executable, "-m", "mypy", "--strict", EXAMPLE)
    assert status == 0, output
    assert "Success: no issues found in 6 source files" in output, output


def test_the_example_passes_basedpyright() -> None:
    status, output = run(
        sys.executable, "-m", "basedpyright", "--pythonpath", sys.executable, EXAMPLE
    )
    assert status == 0, output
    assert "0 errors, 0 warnings" in output, output


def test_the_demo_runs_without_a_server() -> None:
    status, output = run(sys.executable, "-m", "examples.fastapi_app")
    assert status == 0, output
    assert "completed {'completed': 3}" in output, output
