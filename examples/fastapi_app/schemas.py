"""Request and response bodies (pydantic), read from the ORM objects' attributes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ProjectCreate(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)


class ProjectUpdate(BaseModel):
    """A partial update: only the fields sent are changed."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    description: str | None = Field(default=None, max_length=500)


class ProjectRead(BaseModel):
    # No tasks here: listing them is an endpoint of its own, so that reading a project never
    # needs a lazy load.
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str


class TaskCreate(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    done: bool = False


class TaskUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=200)
    done: bool | None = None


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    done: bool
    project_id: int


class ProjectReport(BaseModel):
    project_id: int
    name: str
    tasks: int
    done: int
    open_titles: list[str]


class Completed(BaseModel):
    completed: int
