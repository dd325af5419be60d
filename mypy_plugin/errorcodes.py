"""The plugin's error codes: users can silence each with ``# type: ignore[sa-async-...]`` or
``disable_error_code``."""

from mypy.errorcodes import ATTR_DEFINED, ErrorCode

# A sub-code of attr-defined: `# type: ignore[attr-defined]` and disabling attr-defined silence
# it too, as they would the same typo written `obj.nmae`.
AWAITABLE_ATTRS = ErrorCode(
    "sa-async-awaitable-attrs",
    "obj.awaitable_attrs.<name> names no attribute of the class, or one of its methods",
    "sa-async",
    sub_code_of=ATTR_DEFINED,
)

# The misuse checks: one parent code, so that `# type: ignore[sa-async-misuse]` or
# `disable_error_code = sa-async-misuse` silences them all, and a sub-code for each kind.
MISUSE = ErrorCode(
    "sa-async-misuse",
    "sa_async API used in a way the runtime refuses or warns about",
    "sa-async",
)
SESSION_CLASS = ErrorCode(
    "sa-async-session-class",
    "class_ or sync_session_class names a session class of the wrong kind (sync or async)",
    "sa-async",
    sub_code_of=MISUSE,
)
REGISTRY = ErrorCode(
    "sa-async-registry",
    "scoped_session given an async sessionmaker, or async_scoped_session a sync one",
    "sa-async",
    sub_code_of=MISUSE,
)
SYNC_BIND = ErrorCode(
    "sa-async-sync-bind",
    "bind or a value of binds is a sync Engine or Connection, where an AsyncEngine or "
    "AsyncConnection is needed",
    "sa-async",
    sub_code_of=MISUSE,
)
