"""sa_async in one file: models, a sessionmaker, transactions, queries and lazy loads.

Runs on an in-memory SQLite database (aiosqlite) by default, or on ``DATABASE_URL``
(e.g. ``postgresql+asyncpg://user:password@localhost/db``)::

    python examples/quickstart.py
    mypy --strict examples/quickstart.py
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import ForeignKey, String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, selectinload

from sa_async import AsyncAttrs, AsyncSession, async_sessionmaker, create_async_engine


class Base(AsyncAttrs, DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "quickstart_authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")


class Book(Base):
    __tablename__ = "quickstart_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    stock: Mapped[int] = mapped_column(default=0)
    author_id: Mapped[int] = mapped_column(ForeignKey("quickstart_authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


async def add_library(maker: async_sessionmaker[AsyncSession]) -> None:
    # begin(): one transaction, committed when the block ends, rolled back if it raises.
    async with maker.begin() as session:
        session.add_all(
            [
                Author(name="Ursula", books=[Book(title="Earthsea", stock=3)]),
                Author(name="Italo", books=[Book(title="Invisible Cities", stock=1)]),
            ]
        )


async def restock(session: AsyncSession, title: str, extra: int) -> int:
    # DML without RETURNING gives a CursorResult: rowcount says how many rows changed.
    result = await session.execute(
        update(Book).where(Book.title == title).values(stock=Book.stock + extra)
    )
    await session.commit()
    return result.rowcount


async def report(session: AsyncSession) -> None:
    # Typed selects give typed rows.
    rows = await session.execute(
        select(Author.name, func.count(Book.id))
        .join(Author.books)
        .group_by(Author.name)
        .order_by(Author.name)
    )
    for name, count in rows:
        print(f"{name}: {count} book(s)")

    # Eager loading avoids IO on attribute access...
    authors = (await session.scalars(select(Author).options(selectinload(Author.books)))).all()
    for author in authors:
        print(author.name, [book.title for book in author.books])

    # ...and awaitable_attrs loads lazily, explicitly.
    book = await session.get_one(Book, 1)
    author = await book.awaitable_attrs.author
    print(f"{book.title!r} by {author.name}, {book.stock} in stock")

    # A SAVEPOINT: its work is undone alone.
    try:
        async with session.begin_nested():
            session.add(Author(name="Nobody"))
            raise LookupError("changed my mind")
    except LookupError:
        pass
    nobody = await session.scalar(select(Author).where(Author.name == "Nobody"))
    print("after the rolled-back savepoint:", nobody)

    # Sync ORM code runs unchanged inside run_sync.
    titles = await session.run_sync(
        lambda sync_session: sorted(b.title for b in sync_session.scalars(select(Book)))
    )
    print("all titles:", titles)


async def main() -> None:
    engine = create_async_engine(os.environ.get("DATABASE_URL", "sqlite+aiosqlite://"))
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
        await connection.run_sync(Base.metadata.create_all)

    maker = async_sessionmaker(engine, expire_on_commit=False)
    await add_library(maker)
    async with maker() as session:
        changed = await restock(session, "Earthsea", 2)
        print(f"restocked {changed} row(s)")
        await report(session)

    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.drop_all)
    await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
