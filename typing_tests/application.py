# pyright: strict
"""A small application written against sa_async, as a user would write it.

Models, repository functions that take any async session (a session or a scoped registry),
a FastAPI-style session dependency (an async generator: FastAPI's ``Depends(get_session)``
would drive it the same way), request handlers, and a background job on a per-task registry.
``test_assert_types.py`` checks it with ``mypy --strict`` (with and without the plugin) and
basedpyright in strict mode, and runs it on an in-memory SQLite database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ForeignKey, String, delete, func, insert, select, update
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

from sa_async import (
    AsyncEngine,
    AsyncSession,
    AsyncSessionProtocol,
    async_scoped_session,
    async_sessionmaker,
    create_async_engine,
)

# -- models


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    published: Mapped[datetime | None]
    author: Mapped[Author] = relationship(back_populates="books")


# -- repository functions: they take a session or a scoped registry alike


async def get_author(session: AsyncSessionProtocol, author_id: int) -> Author | None:
    return await session.get(Author, author_id)


async def author_named(session: AsyncSessionProtocol, name: str) -> Author | None:
    return await session.scalar(select(Author).where(Author.name == name))


async def add_author(session: AsyncSessionProtocol, name: str) -> Author:
    author = Author(name=name)
    session.add(author)
    await session.flush()
    return author


async def authors_with_books(session: AsyncSessionProtocol) -> Sequence[Author]:
    statement = select(Author).options(selectinload(Author.books)).order_by(Author.name)
    return (await session.scalars(statement)).all()


async def titles_by_author(session: AsyncSessionProtocol) -> list[tuple[str, str]]:
    statement = select(Author.name, Book.title).join(Book.author).order_by(Book.id)
    return [(name, title) for name, title in await session.execute(statement)]


async def count_books(session: AsyncSessionProtocol) -> int:
    return await session.scalar(select(func.count()).select_from(Book)) or 0


async def import_books(session: AsyncSessionProtocol, author: Author, titles: list[str]) -> None:
    rows = [{"title": title, "author_id": author.id} for title in titles]
    await session.execute(insert(Book), rows)


async def publish_all(session: AsyncSessionProtocol, when: datetime) -> int:
    statement = update(Book).where(Book.published.is_(None)).values(published=when)
    return (await session.execute(statement)).rowcount


async def remove_unpublished(session: AsyncSessionProtocol) -> int:
    result = await session.execute(delete(Book).where(Book.published.is_(None)))
    return result.rowcount


async def stream_titles(session: AsyncSessionProtocol) -> AsyncIterator[str]:
    async for title in await session.stream_scalars(select(Book.title).order_by(Book.id)):
        yield title


def _longest_title(session: Session, author_id: int) -> str | None:
    # Sync ORM code, lazy loads included, reused through run_sync.
    author = session.get_one(Author, author_id)
    return max((book.title for book in author.books), key=len, default=None)


async def longest_title(session: AsyncSessionProtocol, author_id: int) -> str | None:
    return await session.run_sync(_longest_title, author_id)


# -- the web layer: a session per request, handlers that receive it


@dataclass
class BookIn:
    author: str
    title: str


@dataclass
class BookOut:
    id: int
    author: str
    title: str


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class SessionDependency:
    """``Depends(...)`` target: one session per request, committed when the handler succeeds."""

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self.maker = maker

    async def __call__(self) -> AsyncGenerator[AsyncSession, None]:
        async with self.maker.begin() as session:
            yield session


async def create_book(payload: BookIn, session: AsyncSession) -> BookOut:
    author = await author_named(session, payload.author)
    if author is None:
        author = await add_author(session, payload.author)
    book = Book(title=payload.title, author=author)
    session.add(book)
    await session.flush()
    return BookOut(id=book.id, author=author.name, title=book.title)


async def serve(dependency: SessionDependency, payload: BookIn) -> BookOut:
    """What a web framework does with the dependency for one request."""
    sessions = dependency()
    session = await anext(sessions)
    try:
        response = await create_book(payload, session)
    except Exception as error:
        await sessions.athrow(error)  # the dependency rolls back and re-raises
        raise
    await anext(sessions, None)  # the dependency's exit: commit, then close
    return response


# -- a background job: one session per task, through a scoped registry


async def nightly_publish(registry: async_scoped_session[AsyncSession]) -> int:
    try:
        published = await publish_all(registry, datetime.now(UTC))
        await registry.commit()
        return published
    finally:
        await registry.remove()


async def main(url: str = "sqlite+aiosqlite://") -> list[str]:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    maker = make_sessionmaker(engine)
    dependency = SessionDependency(maker)
    report: list[str] = []

    created = await serve(dependency, BookIn(author="Le Guin", title="The Dispossessed"))
    report.append(f"created {created.title} by {created.author}")

    async with maker.begin() as session:
        author = await author_named(session, created.author)
        assert author is not None
        assert await get_author(session, author.id) is author
        await import_books(session, author, ["The Lathe of Heaven", "Always Coming Home"])
    registry = async_scoped_session(maker, scopefunc=asyncio.current_task)
    report.append(f"published {await asyncio.create_task(nightly_publish(registry))}")

    async with maker() as session:
        report.append(f"books: {await count_books(session)}")
        report.append(f"longest: {await longest_title(session, author.id)}")
        report.extend(f"{name}: {title}" for name, title in await titles_by_author(session))
        report.extend([title async for title in stream_titles(session)])
        for author in await authors_with_books(session):
            report.append(f"{author.name} has {len(author.books)} books")
        report.append(f"removed {await remove_unpublished(session)}")
    await engine.dispose()
    return report


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
