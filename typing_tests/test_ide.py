"""What an editor shows for sa_async, asked of the engines editors run.

basedpyright's language server (the engine of Pylance-like editors) is driven over LSP on
stdio by a small client of our own, and jedi (the engine of jedi-language-server and of IPython
completion) through its Python API. Both work in a temporary workspace outside the repository,
with this virtual environment as the project's interpreter: the user's situation, where
``sa_async`` resolves through site-packages to the ``sa_async-stubs`` package.

The expected documentation is read from the ``.pyi`` files with ``ast``, so these tests follow
the stubs. What jedi cannot do is asserted as what it does, with the reason in a comment: a
test fails when jedi learns it, so that the limitation is not documented any longer than true.
"""

from __future__ import annotations

import ast
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jedi  # type: ignore[import-untyped]
import pytest
from sqlalchemy.ext.asyncio import session as sqlalchemy_asyncio_session

ROOT = Path(__file__).resolve().parent.parent
STUB_SESSION = ROOT / "sa_async-stubs" / "session.pyi"
LANGSERVER = Path(sys.executable).parent / "basedpyright-langserver"
# Server start-up and the first analysis of SQLAlchemy take several seconds on a loaded machine.
FIRST_ANSWER_TIMEOUT = 45.0
ANSWER_TIMEOUT = 20.0

MODULE = '''\
from sqlalchemy.orm import Session

from sa_async import AsyncEngine, AsyncSession, async_sessionmaker


class RoutingSession(Session):
    """A sync session class of the application."""


def build(engine: AsyncEngine) -> None:
    maker = async_sessionmaker(engine, sync_session_class=RoutingSession)
    print(maker)
    print(AsyncSession(engine, sync_session_class=RoutingSession).sync_session)
    print(maker().sync_session)


async def use(session: AsyncSession) -> None:
    print(session.execute)
    session.
'''
MODULE_LINES = MODULE.splitlines()
# Where the user has just typed `session.`: the last line, after the dot.
COMPLETION_LINE = len(MODULE_LINES) - 1
COMPLETION_CHARACTER = len(MODULE_LINES[-1])


def position(needle: str, offset: int) -> tuple[int, int]:
    """Return (line, character) of ``needle``'s character at ``offset`` in MODULE."""
    (found,) = [line for line, text in enumerate(MODULE_LINES) if needle in text]
    return found, MODULE_LINES[found].index(needle) + offset


# -- the stubs' side


@dataclass(frozen=True)
class StubMember:
    name: str
    docstring: str | None
    overloads: int
    definitions: int


def stub_members(stub: Path, class_name: str) -> dict[str, StubMember]:
    """The public members (and ``__call__``) a stub class declares, with their docstrings."""
    module = ast.parse(stub.read_text())
    (cls,) = [
        node for node in module.body if isinstance(node, ast.ClassDef) and node.name == class_name
    ]
    docstrings: dict[str, str | None] = {}
    overloads: dict[str, int] = {}
    definitions: dict[str, int] = {}
    body = cls.body
    for index, node in enumerate(body):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name, docstring = node.name, ast.get_docstring(node)
            decorators = {ast.unparse(decorator) for decorator in node.decorator_list}
            overloads[name] = overloads.get(name, 0) + ("overload" in decorators)
            definitions[name] = definitions.get(name, 0) + 1
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            following = body[index + 1] if index + 1 < len(body) else None
            name, docstring = node.target.id, None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                docstring = str(following.value.value)
        else:
            continue
        # The first overload (or a property's getter) carries the docstring.
        if docstrings.get(name) is None:
            docstrings[name] = docstring
    return {
        name: StubMember(name, docstring, overloads.get(name, 0), definitions.get(name, 1))
        for name, docstring in docstrings.items()
        if not name.startswith("_") or name == "__call__"
    }


def summary(docstring: str) -> str:
    """The docstring's first paragraph, as words: editors rewrap and restyle the rest."""
    paragraph = docstring.strip().split("\n\n")[0]
    return words(paragraph)


def words(text: str) -> str:
    # basedpyright renders reST ``literals`` as Markdown `literals`.
    return " ".join(text.replace("``", "`").split())


MEMBERS = stub_members(STUB_SESSION, "AsyncSession")
MAKER_MEMBERS = stub_members(ROOT / "sa_async-stubs" / "maker.pyi", "async_sessionmaker")
# Attributes that jedi finds in SQLAlchemy's AsyncSession, the runtime base class of sa_async's.
JEDI_FOLLOWS_SQLALCHEMY = frozenset({"sync_session", "sync_session_class"})
SQLALCHEMY_SESSION = Path(sqlalchemy_asyncio_session.__file__)
# The members the issue names, and more of each kind (async, sync, property, attribute).
NAMED_MEMBERS = [
    "execute",
    "scalars",
    "get",
    "add",
    "commit",
    "run_sync",
    "sync_session",
    "no_autoflush",
    "info",
    "begin",
]


def test_the_stubs_document_the_members_these_tests_look_at() -> None:
    assert set(NAMED_MEMBERS) <= set(MEMBERS)
    assert all(MEMBERS[name].docstring for name in NAMED_MEMBERS)
    assert MEMBERS["execute"].overloads > 2
    assert MEMBERS["add"].overloads == 0


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project outside the repository whose interpreter is this virtual environment."""
    root = tmp_path_factory.mktemp("editor_workspace")
    (root / "app.py").write_text(MODULE)
    # What a project with a "standard" pyright configuration has; the interpreter comes from
    # the editor (the client's answer to workspace/configuration), as in VS Code.
    (root / "pyrightconfig.json").write_text(json.dumps({"typeCheckingMode": "standard"}))
    return root


# -- basedpyright over LSP


class LanguageServer:
    """A minimal LSP client: JSON-RPC messages with Content-Length framing over stdio."""

    def __init__(self, command: list[str], settings: dict[str, Any], log: Path) -> None:
        self.settings = settings
        self.log = log
        with log.open("wb") as stderr:
            # A session of its own: the entry point starts node as a child process, and the
            # whole group is killed at the end.
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
            )
        self.incoming: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.diagnostics: dict[str, list[dict[str, Any]]] = {}
        self.server_requests: list[str] = []
        self.last_id = 0
        threading.Thread(target=self._read_messages, daemon=True).start()

    def _read_messages(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while True:
            headers: dict[str, str] = {}
            while (line := stdout.readline()) not in (b"\r\n", b"\n"):
                if not line:
                    self.incoming.put(None)
                    return
                name, _, value = line.decode("ascii").partition(":")
                headers[name.strip().lower()] = value.strip()
            self.incoming.put(json.loads(stdout.read(int(headers["content-length"]))))

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        stdin.flush()

    def notify(self, method: str, params: object) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: object, timeout: float = ANSWER_TIMEOUT) -> Any:
        """Send a request and return its result, serving the server's messages meanwhile."""
        self.last_id += 1
        request_id = self.last_id
        self._send({"id": request_id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while True:
            message = self._next_message(deadline, f"{method} (request {request_id})")
            if message.get("id") == request_id and "method" not in message:
                assert "error" not in message, f"{method}: {message['error']}"
                return message.get("result")

    def wait_for_diagnostics(self, uri: str, timeout: float = ANSWER_TIMEOUT) -> list[Any]:
        deadline = time.monotonic() + timeout
        while uri not in self.diagnostics:
            self._next_message(deadline, f"diagnostics of {uri}")
        return self.diagnostics[uri]

    def _next_message(self, deadline: float, awaited: str) -> dict[str, Any]:
        try:
            message = self.incoming.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError(f"no answer in time: {awaited}\n{self.stderr()}") from None
        assert message is not None, f"the server exited: {awaited}\n{self.stderr()}"
        if "method" in message:
            self._serve(message)
        return message

    def _serve(self, message: dict[str, Any]) -> None:
        """Take a notification, or answer a request, from the server."""
        method: str = message["method"]
        params: Any = message.get("params")
        if method == "textDocument/publishDiagnostics":
            self.diagnostics[params["uri"]] = params["diagnostics"]
        if "id" not in message:
            return
        self.server_requests.append(method)
        result: object = None  # client/registerCapability, window/workDoneProgress/create...
        if method == "workspace/configuration":
            result = [self.settings.get(item.get("section", "")) for item in params["items"]]
        self._send({"id": message["id"], "result": result})

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        """Shut down politely, then kill whatever of the process group is left."""
        try:
            if self.process.poll() is None:
                self.request("shutdown", None, timeout=5)
                self.notify("exit", None)
                self.process.wait(timeout=5)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()


@dataclass
class OpenDocument:
    server: LanguageServer
    uri: str

    def at(self, line: int, character: int) -> dict[str, Any]:
        return {
            "textDocument": {"uri": self.uri},
            "position": {"line": line, "character": character},
        }

    def hover(self, needle: str, offset: int) -> str:
        result = self.server.request("textDocument/hover", self.at(*position(needle, offset)))
        assert result is not None, f"no hover on {needle!r}"
        assert result["contents"]["kind"] == "markdown", result
        return str(result["contents"]["value"])


@pytest.fixture(scope="module")
def document(workspace: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenDocument]:
    """basedpyright-langserver, initialized on the workspace, with app.py open."""
    # The editor's settings: the project's interpreter (VS Code's python.pythonPath).
    settings = {"python": {"pythonPath": sys.executable}}
    log = tmp_path_factory.mktemp("langserver") / "stderr.log"
    server = LanguageServer([str(LANGSERVER), "--stdio"], settings, log)
    try:
        uri = (workspace / "app.py").as_uri()
        markup = ["markdown", "plaintext"]
        capabilities = {
            "workspace": {
                "configuration": True,
                "workspaceFolders": True,
                "didChangeWatchedFiles": {"dynamicRegistration": True},
            },
            "window": {"workDoneProgress": True},
            "textDocument": {
                "hover": {"contentFormat": markup},
                "completion": {"completionItem": {"documentationFormat": markup}},
                "signatureHelp": {"signatureInformation": {"documentationFormat": markup}},
            },
        }
        server.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": workspace.as_uri(),
                "workspaceFolders": [{"uri": workspace.as_uri(), "name": workspace.name}],
                "capabilities": capabilities,
            },
            timeout=FIRST_ANSWER_TIMEOUT,
        )
        server.notify("initialized", {})
        server.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": MODULE}},
        )
        # Checked once configured: what the tests ask for is what the user would see.
        server.wait_for_diagnostics(uri, timeout=FIRST_ANSWER_TIMEOUT)
        yield OpenDocument(server, uri)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def completions(document: OpenDocument) -> dict[str, dict[str, Any]]:
    """The completion items offered after `session.`, by label."""
    result = document.server.request(
        "textDocument/completion",
        document.at(COMPLETION_LINE, COMPLETION_CHARACTER),
        timeout=FIRST_ANSWER_TIMEOUT,
    )
    items = result["items"] if isinstance(result, dict) else result
    return {item["label"]: item for item in items}


def test_the_server_reads_the_stubs_through_site_packages(document: OpenDocument) -> None:
    # `workspace/configuration` gave the interpreter; its site-packages has the stub package.
    assert "workspace/configuration" in document.server.server_requests
    locations = document.server.request(
        "textDocument/definition", document.at(*position("AsyncSession,", 2))
    )
    # Stub first; pyright adds the implementation it maps the stub to.
    assert locations[0]["uri"] == STUB_SESSION.as_uri(), locations


def test_completing_session_offers_every_member_of_the_stubs(
    completions: dict[str, dict[str, Any]],
) -> None:
    assert set(NAMED_MEMBERS) <= set(completions)
    assert set(MEMBERS) <= set(completions), sorted(set(MEMBERS) - set(completions))


def test_completion_items_resolve_to_the_stub_docstrings(
    document: OpenDocument, completions: dict[str, dict[str, Any]]
) -> None:
    for member in MEMBERS.values():
        if member.docstring is None:
            continue
        # The documentation comes with completionItem/resolve, not with the list.
        resolved = document.server.request("completionItem/resolve", completions[member.name])
        documentation = resolved["documentation"]
        assert documentation["kind"] == "markdown", resolved
        assert summary(member.docstring) in words(documentation["value"]), (member.name, resolved)
    execute = document.server.request("completionItem/resolve", completions["execute"])
    assert execute["documentation"]["value"].count("def execute(") == MEMBERS["execute"].overloads


def test_hover_on_execute_shows_its_overloads_and_documentation(document: OpenDocument) -> None:
    # On a reference that is not called: every overload (in a call, the one that matched).
    text = document.hover("session.execute", len("session.ex"))
    assert text.startswith("```python\n(method)\n"), text
    assert text.count("def execute(") == MEMBERS["execute"].overloads, text
    assert "statement: TypedReturnsRows[*_Ts@execute]" in text
    assert "-> CoroutineType[Any, Any, CursorResult[*tuple[Any, ...]]]" in text
    docstring = MEMBERS["execute"].docstring
    assert docstring is not None
    assert summary(docstring) in words(text)


def test_hover_on_a_sessionmaker_shows_its_session_type(document: OpenDocument) -> None:
    text = document.hover("maker =", 1)
    assert "(variable) maker: async_sessionmaker[AsyncSession[RoutingSession]]" in text, text
    # On the call: the overload that matched, with the constructor's documentation.
    call = document.hover("async_sessionmaker(engine", 3)
    assert "sync_session_class: type[_S2@__new__]" in call, call
    assert "Configure the factory." in call, call


def test_calling_a_sessionmaker_shows_its_call_documentation_in_signature_help(
    document: OpenDocument,
) -> None:
    call = MAKER_MEMBERS["__call__"].docstring
    assert call is not None
    line, character = position("maker().sync_session", len("maker("))
    result = document.server.request("textDocument/signatureHelp", document.at(line, character))
    (signature,) = result["signatures"]
    assert signature["label"].startswith("(**local_kw: object)"), signature
    assert summary(call) in words(signature["documentation"]["value"]), signature
    # basedpyright limitation: a hover on the call of an instance shows __call__'s documentation
    # only for classes defined in source files, not in stubs (its hover provider skips that
    # fallback for stub-defined classes): the hover shows the call's signature without it.
    hover = document.hover("maker().sync_session", len("mak"))
    assert "def maker(**local_kw: object) -> AsyncSession[RoutingSession]" in hover, hover
    assert summary(call) not in words(hover), hover


def test_the_module_has_no_other_error(document: OpenDocument) -> None:
    diagnostics = document.server.wait_for_diagnostics(document.uri)
    # Errors and warnings; only the line still being typed is incomplete.
    problems = [
        diagnostic
        for diagnostic in diagnostics
        if diagnostic.get("severity", 1) <= 2
        and diagnostic["range"]["start"]["line"] != COMPLETION_LINE
    ]
    assert problems == [], problems


# -- jedi


@pytest.fixture(scope="module")
def script(workspace: Path) -> jedi.Script:
    project = jedi.Project(workspace, environment_path=sys.prefix)
    return jedi.Script(MODULE, path=workspace / "app.py", project=project)


def test_jedi_finds_the_stub_package(script: jedi.Script) -> None:
    line, character = position("AsyncSession,", 2)
    (stub,) = script.goto(line + 1, character, follow_imports=True, prefer_stubs=True)
    assert stub.module_path == STUB_SESSION
    # Without prefer_stubs jedi goes on to the runtime definition, as designed.
    (runtime,) = script.goto(line + 1, character, follow_imports=True)
    assert runtime.module_path == ROOT / "sa_async" / "session.py"


def test_jedi_completes_session_members_with_their_documentation(script: jedi.Script) -> None:
    completions = {
        completion.name: completion
        for completion in script.complete(COMPLETION_LINE + 1, COMPLETION_CHARACTER)
    }
    assert set(MEMBERS) <= set(completions), sorted(set(MEMBERS) - set(completions))
    runtime = runtime_async_session_names()
    sqlalchemys = sqlalchemy_async_session_names()
    for member in MEMBERS.values():
        completion = completions[member.name]
        if member.name in JEDI_FOLLOWS_SQLALCHEMY:
            # SQLAlchemy's class declares these attributes too, and jedi, which reads the
            # runtime classes, goes to that declaration (its documentation is SQLAlchemy's).
            assert completion.module_path == SQLALCHEMY_SESSION, member.name
            continue
        assert completion.module_path == STUB_SESSION, member.name
        if member.docstring is None:
            continue
        shown = summary(member.docstring) in words(completion.docstring())
        # jedi limitations. It takes a member's documentation from the runtime class, not from
        # the stub: where sa_async's class body defines the member, that definition's, which
        # tools/generate_stubs.py writes from the stub (the first overload's docstring), except
        # for a property with a setter, of whose two definitions jedi shows the last, the setter,
        # which has none; where the runtime installs the member from the table in _surface.py,
        # jedi finds the member in the runtime's base class, SQLAlchemy's AsyncSession, and shows
        # SQLAlchemy's documentation of the same method.
        assert member.name in runtime or member.name in sqlalchemys, member.name
        expected = runtime.get(member.name) == 1
        assert shown == expected, (member.name, completion.docstring())
        if member.overloads:
            assert completion.docstring().startswith(f"{member.name}("), member.name


def sqlalchemy_async_session_names() -> set[str]:
    """The members that the body of SQLAlchemy's AsyncSession class declares."""
    module = ast.parse(SQLALCHEMY_SESSION.read_text())
    (cls,) = [
        node
        for node in module.body
        if isinstance(node, ast.ClassDef) and node.name == "AsyncSession"
    ]
    return {
        node.name for node in cls.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def runtime_async_session_names() -> dict[str, int]:
    """The methods and properties that the runtime's AsyncSession class body defines itself, and
    how many definitions each has (a property with a setter has two)."""
    module = ast.parse((ROOT / "sa_async" / "session.py").read_text())
    (cls,) = [
        node
        for node in module.body
        if isinstance(node, ast.ClassDef) and node.name == "AsyncSession"
    ]
    definitions: dict[str, int] = {}
    for node in cls.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            definitions[node.name] = definitions.get(node.name, 0) + 1
    return definitions


def inferred(script: jedi.Script, needle: str, offset: int) -> list[str]:
    line, character = position(needle, offset)
    return [name.full_name or name.name for name in script.infer(line + 1, character)]


def test_jedi_infers_the_sync_session_type(script: jedi.Script) -> None:
    # jedi limitation: it reads the attribute's declaration in SQLAlchemy's class, the runtime
    # base of sa_async's, rather than the stub's generic one, so the sync session class given
    # is not known to it.
    needle = "sync_session_class=RoutingSession).sync_session"
    assert inferred(script, needle, len(needle) - 1) == ["sqlalchemy.orm.session.Session"]
    # jedi limitation: it does not evaluate the overloads of a constructor's `__new__`, so a
    # sessionmaker's session type is not known to it beyond SQLAlchemy's declaration.
    assert inferred(script, "maker().sync_session", len("maker().sync")) == [
        "sqlalchemy.orm.session.Session"
    ]
    assert inferred(script, "maker =", 1) == ["sa_async.maker.async_sessionmaker"]
