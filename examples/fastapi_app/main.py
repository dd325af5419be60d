"""The application: CRUD endpoints for projects and tasks, built by ``create_app()``.

Serve ``app`` with any ASGI server, e.g. ``uvicorn examples.fastapi_app.main:app`` from the
repository root; ``DATABASE_URL`` picks the database (default: a SQLite file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, FastAPI, HTTPException, Query, status
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sa_async import AsyncSession, create_async_engine

from .db import SessionDep, database_url, make_sessionmaker
from .models import Base, Project, Task
from .schemas import (
    Completed,
    ProjectCreate,
    ProjectRead,
    ProjectReport,
    ProjectUpdate,
    TaskCreate,
    TaskRead,
    TaskUpdate,
)

router = APIRouter()


async def project_or_404(session: AsyncSession, project_id: int) -> Project:
    project = await session.get(Project, project_id)
    if project is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return project


async def task_or_404(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id)
    if task is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"task {task_id} not found")
    return task


async def commit_unless_name_taken(session: AsyncSession, name: str | None) -> None:
    try:
        await session.commit()
    except IntegrityError:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"a project named {name!r} already exists"
        ) from None


# -- projects


@router.post("/projects", status_code=status.HTTP_201_CREATED)
async def create_project(body: ProjectCreate, session: SessionDep) -> ProjectRead:
    project = Project(name=body.name, description=body.description)
    session.add(project)
    await commit_unless_name_taken(session, body.name)
    return ProjectRead.model_validate(project)


@router.get("/projects")
async def list_projects(
    session: SessionDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> list[ProjectRead]:
    projects = await session.scalars(
        select(Project).order_by(Project.id).offset(offset).limit(limit)
    )
    return [ProjectRead.model_validate(project) for project in projects]


@router.get("/projects/{project_id}")
async def get_project(project_id: int, session: SessionDep) -> ProjectRead:
    return ProjectRead.model_validate(await project_or_404(session, project_id))


@router.patch("/projects/{project_id}")
async def update_project(project_id: int, body: ProjectUpdate, session: SessionDep) -> ProjectRead:
    project = await project_or_404(session, project_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(project, field, value)
    await commit_unless_name_taken(session, body.name)
    return ProjectRead.model_validate(project)


@router.delete("/projects/{project_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_project(project_id: int, session: SessionDep) -> None:
    # delete() is awaited: the cascade to the tasks loads them inside the bridge.
    await session.delete(await project_or_404(session, project_id))
    await session.commit()


# -- a project's tasks


@router.get("/projects/{project_id}/tasks")
async def list_tasks(project_id: int, session: SessionDep) -> list[TaskRead]:
    project = await project_or_404(session, project_id)
    # A lazy relationship, loaded explicitly: a plain `project.tasks` here would raise
    # ImplicitIOError, as an attribute access cannot await the query.
    tasks: list[Task] = await project.awaitable_attrs.tasks
    return [TaskRead.model_validate(task) for task in tasks]


@router.post("/projects/{project_id}/tasks", status_code=status.HTTP_201_CREATED)
async def create_task(project_id: int, body: TaskCreate, session: SessionDep) -> TaskRead:
    project = await project_or_404(session, project_id)
    task = Task(title=body.title, done=body.done, project_id=project.id)
    session.add(task)
    await session.commit()
    return TaskRead.model_validate(task)


@router.post("/projects/{project_id}/complete")
async def complete_tasks(project_id: int, session: SessionDep) -> Completed:
    """Mark every open task of the project done, in one UPDATE."""
    await project_or_404(session, project_id)
    result = await session.execute(
        update(Task).where(Task.project_id == project_id, Task.done.is_(False)).values(done=True)
    )
    await session.commit()
    # An UPDATE without RETURNING gives a CursorResult: rowcount type-checks.
    return Completed(completed=result.rowcount)


def summarize(session: Session, project_id: int) -> ProjectReport | None:
    """Sync ORM code, run as it is by run_sync: the lazy load of project.tasks just works."""
    project = session.get(Project, project_id)
    if project is None:
        return None
    open_titles = [task.title for task in project.tasks if not task.done]
    return ProjectReport(
        project_id=project.id,
        name=project.name,
        tasks=len(project.tasks),
        done=len(project.tasks) - len(open_titles),
        open_titles=open_titles,
    )


@router.get("/projects/{project_id}/report")
async def project_report(project_id: int, session: SessionDep) -> ProjectReport:
    report = await session.run_sync(summarize, project_id)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"project {project_id} not found")
    return report


# -- tasks by id


@router.get("/tasks/{task_id}")
async def get_task(task_id: int, session: SessionDep) -> TaskRead:
    return TaskRead.model_validate(await task_or_404(session, task_id))


@router.patch("/tasks/{task_id}")
async def update_task(task_id: int, body: TaskUpdate, session: SessionDep) -> TaskRead:
    task = await task_or_404(session, task_id)
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(task, field, value)
    await session.commit()
    return TaskRead.model_validate(task)


@router.delete("/tasks/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_task(task_id: int, session: SessionDep) -> None:
    await session.delete(await task_or_404(session, task_id))
    await session.commit()


def create_app(url: str | None = None) -> FastAPI:
    """Build the application on ``url`` (default: ``DATABASE_URL``, or a SQLite file).

    The engine is created, and the tables with it, when the server starts the application
    (its lifespan), and disposed of when it stops.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(url or database_url())
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="sa_async example: projects and tasks", lifespan=lifespan)
    app.include_router(router)
    return app


app = create_app()
