"""Every class that the stubs declare generic can be subscripted at run time too, as annotations
evaluated at run time need (FastAPI and pydantic read ``AsyncSession[RoutingSession]``)."""

from __future__ import annotations

import ast
import importlib
import typing
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from sa_async import AsyncSession, AsyncSessionProtocol, async_scoped_session

STUBS = Path(__file__).resolve().parent.parent / "sa_async-stubs"


def generic_classes_of_the_stubs() -> list[tuple[str, str, int]]:
    """(module, class name, number of type parameters) of each generic class in the stubs."""
    found: list[tuple[str, str, int]] = []
    for stub in sorted(STUBS.glob("*.pyi")):
        module = stub.stem
        for node in ast.parse(stub.read_text()).body:
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                # Generic[...], Protocol[...], or a generic base given type variables
                # (ScopeRegistry(ScopedRegistry[_T])); a base given Any makes nothing generic.
                if not isinstance(base, ast.Subscript):
                    continue
                parameters = base.slice
                items = parameters.elts if isinstance(parameters, ast.Tuple) else [parameters]
                if all(isinstance(item, ast.Name) and item.id.startswith("_") for item in items):
                    found.append((module, node.name, len(items)))
                    break
    return found


GENERIC_CLASSES = generic_classes_of_the_stubs()


def test_the_walk_finds_the_generic_classes() -> None:
    names = {name for _, name, _ in GENERIC_CLASSES}
    assert {
        "AsyncSession",
        "AsyncSessionProtocol",
        "ScopeRegistry",
        "SessionBeginContext",
        "async_scoped_session",
        "async_sessionmaker",
        "scoped_session",
    } <= names


@pytest.mark.parametrize(
    ("module", "name", "parameters"),
    GENERIC_CLASSES,
    ids=[f"{module}.{name}" for module, name, _ in GENERIC_CLASSES],
)
def test_generic_class_is_subscriptable_at_run_time(
    module: str, name: str, parameters: int
) -> None:
    runtime_class = getattr(importlib.import_module(f"sa_async.{module}"), name)
    arguments = (Session,) * parameters
    alias = runtime_class[arguments if parameters > 1 else arguments[0]]
    assert typing.get_origin(alias) is runtime_class
    assert typing.get_args(alias) == arguments


def test_annotations_of_generic_classes_resolve_at_run_time() -> None:
    def handler(
        session: AsyncSessionProtocol[Session], registry: async_scoped_session[AsyncSession]
    ) -> None:
        del session, registry

    # What FastAPI and pydantic do with string annotations.
    hints = typing.get_type_hints(handler)
    assert hints["session"] == AsyncSessionProtocol[Session]
    assert typing.get_origin(hints["registry"]) is async_scoped_session
    assert typing.get_args(hints["registry"]) == (AsyncSession,)
