"""AsyncAttrs (``sa_async/attrs.py``): ``await obj.awaitable_attrs.name`` loads a relationship,
a deferred or an expired attribute that a plain read refuses, with sa_async's sessions and with
SQLAlchemy's."""

from __future__ import annotations

import pytest
import sqlalchemy.ext.asyncio as sqlalchemy_asyncio
from sqlalchemy import select

from sa_async import AsyncEngine
from tests.conftest import Maker, add_users, raises_implicit_io, untyped
from tests.models import Address, User


async def test_awaitable_attrs_load_relationships_deferred_and_expired_attributes(
    maker: Maker,
) -> None:
    (ann_id,) = await add_users(maker, "ann")
    async with maker.begin() as session:
        session.add_all(
            [Address(email="1@x", user_id=ann_id), Address(email="2@x", user_id=ann_id)]
        )
        (await session.get_one(User, ann_id)).bio = "deferred bio"
    async with maker() as session:
        ann = await session.get_one(User, ann_id)
        with raises_implicit_io("User.addresses"):
            _ = ann.addresses
        addresses = await ann.awaitable_attrs.addresses
        assert [address.email for address in addresses] == ["1@x", "2@x"]
        assert ann.addresses is addresses
        with raises_implicit_io("User.bio"):
            _ = ann.bio
        assert await ann.awaitable_attrs.bio == "deferred bio"
    async with maker() as session:
        address = await session.get_one(Address, addresses[0].id)
        with raises_implicit_io("Address.user"):
            _ = address.user
        assert (await address.awaitable_attrs.user).name == "ann"
        session.expire(address)
        assert await address.awaitable_attrs.email == "1@x"
        with pytest.raises(AttributeError):
            # Untyped: the plugin reports the unknown name, which this test makes on purpose.
            await untyped(address.awaitable_attrs).no_such_attribute


async def test_awaitable_attrs_work_with_sqlalchemys_session_too(engine: AsyncEngine) -> None:
    async with sqlalchemy_asyncio.AsyncSession(engine) as theirs:
        theirs.add(User(name="ann", addresses=[Address(email="a@x")]))
        await theirs.commit()
        ann = await theirs.scalar(select(User))
        assert ann is not None
        assert [a.email for a in await ann.awaitable_attrs.addresses] == ["a@x"]
