"""The table of the proxied surface (``sa_async/_surface.py``) is what the classes have.

Each row's kind is checked against the member ``AsyncSession`` got, and against what the member
does while another task's operation holds the session: a member that reads only is allowed then
and changes nothing, every other one is refused before any IO. So a state-changing member filed
under a reading kind fails here, whatever its name. The registries forward exactly the rows that
name them, each of the kind the proxied member has.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any

import pytest
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from sa_async import AsyncSession, async_scoped_session, scoped_session
from sa_async._surface import SURFACE, Kind, Registries, forwarded_by, members
from sa_async.exc import ConcurrentSessionUseError
from tests.conftest import Maker, operation_in_progress
from tests.models import Address, User

FORWARDED_METHODS = (Kind.SYNC, Kind.GUARDED_SYNC, Kind.BRIDGED, Kind.TO_COMPLETION)


def test_each_forwarded_method_is_built_for_its_kind() -> None:
    for name in members(*FORWARDED_METHODS):
        function = AsyncSession.__dict__[name]
        assert function.__module__ == "sa_async.session", name
        assert inspect.signature(function) == inspect.signature(getattr(Session, name)), name
        awaitable = SURFACE[name].kind in (Kind.BRIDGED, Kind.TO_COMPLETION)
        assert inspect.iscoroutinefunction(function) is awaitable, name


def test_each_forwarded_attribute_is_a_property_of_its_kind() -> None:
    for name in members(Kind.PROPERTY, Kind.SETTABLE):
        attribute = AsyncSession.__dict__[name]
        assert isinstance(attribute, property), name
        assert (attribute.fset is not None) is (SURFACE[name].kind is Kind.SETTABLE), name
    for name in members(Kind.CLASSMETHOD):
        assert isinstance(AsyncSession.__dict__[name], classmethod), name


def test_the_members_written_out_are_in_the_class_body_and_the_others_absent() -> None:
    source = inspect.getsource(AsyncSession)
    for name in members(Kind.OWN):
        spelled = f"def {name}(" if name != "sync_session" else "sync_session: Session"
        assert spelled in source, name
    for name in members(Kind.NONE):
        assert not hasattr(AsyncSession, name), name
        assert hasattr(Session, name), name


def installed_members(registry: type[Any]) -> set[str]:
    """The members of ``registry`` that its module did not write out: the installed ones."""
    written_in = inspect.getsourcefile(registry)
    found = set()
    for name, value in vars(registry).items():
        function = value.fget if isinstance(value, property) else value
        function = getattr(function, "__func__", function)
        code = getattr(function, "__code__", None)
        if code is not None and code.co_filename != written_in:
            found.add(name)
    return found


def test_the_table_lists_every_member_the_registries_forward() -> None:
    assert installed_members(async_scoped_session) == set(forwarded_by(Registries.ASYNC_SCOPED))
    assert installed_members(scoped_session) == set(forwarded_by(Registries.SCOPED))


def test_each_registry_member_has_the_kind_of_the_proxied_one() -> None:
    for registry, session_class, registries in (
        (async_scoped_session, AsyncSession, Registries.ASYNC_SCOPED),
        (scoped_session, Session, Registries.SCOPED),
    ):
        for name in forwarded_by(registries):
            forwarded = inspect.getattr_static(registry, name)
            proxied = inspect.getattr_static(session_class, name, None)
            if isinstance(proxied, classmethod):
                assert isinstance(forwarded, classmethod), name
            elif inspect.isfunction(proxied):
                assert inspect.iscoroutinefunction(forwarded) is inspect.iscoroutinefunction(
                    proxied
                ), name
                assert inspect.signature(forwarded) == inspect.signature(proxied), name
            else:
                assert isinstance(forwarded, property), name
                settable = (
                    hasattr(proxied, "__set__")
                    if hasattr(proxied, "__get__")
                    else name != "sync_session"
                )
                assert (forwarded.fset is not None) is settable, name


# -- what each kind does while another task's operation holds the session


def arguments_for(name: str, user: User) -> tuple[list[Any], dict[str, Any]]:
    """Arguments for each required parameter of ``Session.<name>``, chosen by parameter name."""
    by_parameter: dict[str, Any] = {
        "instance": user,
        "obj": user,
        "instances": [user],
        "entity": User,
        "ident": user.id,
    }
    positional: list[Any] = []
    for parameter in list(inspect.signature(getattr(Session, name)).parameters.values())[1:]:
        if parameter.default is not parameter.empty or parameter.kind in (
            parameter.VAR_POSITIONAL,
            parameter.VAR_KEYWORD,
        ):
            continue
        assert parameter.name in by_parameter, (
            f"tests/test_surface.py: give {name}() an argument for {parameter.name!r}"
        )
        positional.append(by_parameter[parameter.name])
    return positional, {}


def state_of(session: AsyncSession, user: User) -> tuple[object, ...]:
    """What a member that reads only must leave as it found it."""
    sync_session = session.sync_session
    return (
        set(sync_session.identity_map.keys()),
        set(sync_session.new),
        set(sync_session.dirty),
        set(sync_session.deleted),
        sync_session.in_transaction(),
        frozenset(sa_inspect(user).expired_attributes),
        user in sync_session,
    )


async def call(session: AsyncSession, name: str, user: User) -> object:
    args, kw = arguments_for(name, user)
    outcome = getattr(session, name)(*args, **kw)
    if isinstance(outcome, Awaitable):
        return await outcome
    return list(outcome) if name == "__iter__" else outcome


@pytest.mark.parametrize("name", members(*FORWARDED_METHODS))
async def test_a_member_is_allowed_during_another_operation_only_if_it_reads_only(
    maker: Maker, name: str
) -> None:
    async with maker() as session:
        user = User(name="ann", addresses=[Address(email="ann@example.com")])
        session.add(user)
        await session.flush()
        async with operation_in_progress(session):
            before = state_of(session, user)
            second = asyncio.create_task(call(session, name, user), name=f"second {name}")
            if SURFACE[name].kind is Kind.SYNC:
                await second
                assert state_of(session, user) == before, f"{name} changed the session"
            else:
                with pytest.raises(ConcurrentSessionUseError, match=rf"so {name}\(\) from"):
                    await second
                assert state_of(session, user) == before, f"refused {name} changed the session"
        await session.rollback()
