"""Policy conditions: CEL expressions checked at load time and compiled for the request path.

Every ``when`` goes through three steps when the policy loads: the ``cel``
package parses it (so only real CEL is accepted), the checker in
:mod:`.celcheck` types it against the fixed fields of ``principal``,
``request`` and ``context``, and :mod:`.celeval` turns it into a closure.
There is one evaluator: a construct the closure compiler does not cover
(``uint`` and ``bytes`` values, ``bool()``, a whole variable as a value...) is
refused at load, never handed to a second engine with other semantics. The
closures follow the ``cel`` package wherever it and the CEL specification
differ (``size`` of a string counts UTF-8 bytes, ``string(bool)`` is an error),
and ``matches`` runs RE2 (:mod:`.celregex`), in linear time. Nothing is ever
passed to Python's ``eval``.

Custom functions are plain callables taking and returning Python values; they
come from the ``mcp_guard.conditions`` entry-point group or from the
``functions`` mapping given to :func:`~mcp_guard.policy.load_policy`.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from functools import lru_cache
from importlib.metadata import entry_points
from typing import Any

from ..errors import PolicyError
from ..model import AccessRequest, Principal
from .celcheck import OBJECTS, CelTypeError, Checker
from .celeval import EvalError, FieldGetters, Fn, Unsupported, compile_node, in_cidr, path_within
from .celparse import CelSyntaxError, parse

__all__ = [
    "BUILTIN_FUNCTIONS",
    "Activation",
    "Condition",
    "ConditionError",
    "EvalError",
    "compile_condition",
    "condition_functions",
]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mcp_guard.conditions"
BUILTIN_FUNCTIONS: Mapping[str, Callable[..., Any]] = {"in_cidr": in_cidr, "path_within": path_within}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED_NAMES = frozenset(
    {
        "size",
        "matches",
        "int",
        "uint",
        "double",
        "string",
        "bytes",
        "bool",
        "timestamp",
        "duration",
        "dyn",
        "has",
    }
)


class ConditionError(ValueError):
    """A ``when`` expression is invalid; ``column`` is 1-based when known."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


class Activation:
    """The variables of one evaluation, read lazily from the principal and request.

    Built only when a candidate rule has a condition, and never shared between
    requests, so comprehension variables can live in ``vars``.
    """

    __slots__ = ("_local", "_time", "groups", "p", "r", "roles", "server", "target", "tz", "vars")

    def __init__(
        self,
        principal: Principal,
        request: AccessRequest,
        roles: frozenset[str],
        tz: tzinfo | None = None,
        server: str | None = None,
        target: str | None = None,
    ) -> None:
        self.p = principal
        self.r = request
        self.roles = roles
        self.groups = principal.groups
        self.tz = tz
        self.server = request.server if server is None else server
        self.target = request.target if target is None else target
        self.vars: dict[str, Any] = {}
        self._time: datetime | None = None
        self._local: datetime | None = None

    @property
    def time(self) -> datetime:
        if self._time is None:
            ctx = self.r.context
            t = ctx.time if ctx is not None else datetime.now(timezone.utc)
            self._time = t if t.tzinfo is not None else t.replace(tzinfo=timezone.utc)
        return self._time

    @property
    def local(self) -> datetime:
        if self._local is None:
            self._local = self.time.astimezone(self.tz) if self.tz is not None else self.time
        return self._local

    @property
    def timezone(self) -> str:
        tz = self.local.tzinfo
        key = getattr(tz, "key", None)
        return str(key) if key else (self.local.tzname() or "UTC")

    def auth_age(self) -> int:
        if self.p.auth_time is None:
            raise EvalError("principal.auth_time is unknown")
        at = self.p.auth_time if self.p.auth_time.tzinfo else self.p.auth_time.replace(tzinfo=timezone.utc)
        return int((self.time - at).total_seconds())

    def as_cel(self) -> dict[str, Any]:
        """The variables as plain values, for conditions evaluated by ``cel`` itself."""
        return {
            obj: {name: _plain(getter(self)) for name, getter in fields.items() if _safe(getter, self)}
            for obj, fields in GETTERS.items()
        }


def _safe(getter: Fn, act: Activation) -> bool:
    try:
        return getter(act) is not None
    except EvalError:
        return False


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, frozenset)):
        return [_plain(v) for v in value]
    return value


GETTERS: FieldGetters = {
    "principal": {
        "subject": lambda a: a.p.subject,
        "roles": lambda a: sorted(a.roles),
        "groups": lambda a: sorted(a.groups),
        "scopes": lambda a: sorted(a.p.scopes),
        "tenant": lambda a: a.p.tenant,
        "mfa": lambda a: a.p.mfa,
        "amr": lambda a: list(a.p.amr),
        "auth_method": lambda a: a.p.auth_method,
        "auth_time": lambda a: a.p.auth_time,
        "auth_age": lambda a: a.auth_age(),
        "ip": lambda a: a.p.ip,
        "country": lambda a: a.p.country,
        "issuer": lambda a: a.p.issuer,
        "attributes": lambda a: a.p.attributes,
    },
    "request": {
        "action": lambda a: a.r.action,
        "method": lambda a: a.r.method,
        "server": lambda a: a.server,
        "kind": lambda a: a.r.kind,
        "target": lambda a: a.target,
        "arguments": lambda a: a.r.arguments,
        "tags": lambda a: sorted(a.r.tags),
        "annotations": lambda a: a.r.annotations,
    },
    "context": {
        "time": lambda a: a.time,
        "hour": lambda a: a.local.hour,
        "minute": lambda a: a.local.minute,
        "weekday": lambda a: a.local.isoweekday() % 7,
        "timezone": lambda a: a.timezone,
    },
}
assert {k: set(v) for k, v in GETTERS.items()} == {k: set(v) for k, v in OBJECTS.items()}


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled ``when``: call it with an :class:`Activation`; errors raise, never return False."""

    source: str
    fn: Fn

    def __call__(self, act: Activation) -> bool:
        value = self.fn(act)
        if type(value) is not bool:
            raise EvalError(f"condition produced {type(value).__name__}, not bool")
        return value


@lru_cache(maxsize=1)
def _entry_point_functions() -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            fn = ep.load()
        except Exception as exc:
            log.error("cannot load condition function %s from %s: %s", ep.name, ep.value, exc)
            continue
        if callable(fn):
            found[ep.name] = fn
    return found


def condition_functions(
    explicit: Mapping[str, Callable[..., Any]] | None = None,
) -> dict[str, Callable[..., Any]]:
    """Built-in functions, then installed entry points, then ``explicit`` (which wins over plugins)."""
    functions = dict(BUILTIN_FUNCTIONS)
    plugins = {**_entry_point_functions(), **(explicit or {})}
    for name, fn in plugins.items():
        if not _NAME.match(name) or name in _RESERVED_NAMES or name in BUILTIN_FUNCTIONS:
            raise PolicyError(f"condition function name {name!r} is invalid or reserved", field="functions")
        if not callable(fn):
            raise PolicyError(f"condition function {name!r} is not callable", field="functions")
        functions[name] = fn
    return functions


def _arity(fn: Callable[..., Any]) -> int | None:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind is p.VAR_POSITIONAL or p.default is not p.empty:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _syntax_message(exc: Exception) -> str:
    first = str(exc).splitlines()
    for line in first:
        if "Syntax error" in line or "ERROR" in line:
            return line.split("ERROR: <input>:", 1)[-1].strip()
    return first[0] if first else "syntax error"


def compile_condition(source: str, functions: Mapping[str, Callable[..., Any]]) -> Condition:
    """Parse, type-check and compile one ``when``; raise :class:`ConditionError` if it is not sound."""
    if not source.strip():
        raise ConditionError("empty condition")
    import cel  # the Rust extension takes ~150 ms to import: only policies with conditions pay it

    try:
        cel.compile(source)
    except Exception as exc:
        raise ConditionError(f"CEL syntax error: {_syntax_message(exc)}") from None
    returns = {"in_cidr": "bool", "path_within": "bool"}
    checker = Checker({name: _arity(fn) for name, fn in functions.items()}, returns)
    try:
        tree = parse(source)
        result = checker.check(tree)
        if result not in ("bool", "dyn"):
            raise ConditionError(f"a condition must be bool, this one is {result}")
        return Condition(source, compile_node(tree, GETTERS, functions))
    except CelSyntaxError as exc:
        raise ConditionError(f"unsupported CEL syntax: {exc}", exc.column) from None
    except CelTypeError as exc:
        raise ConditionError(f"type error: {exc}", exc.column) from None
    except RecursionError:
        raise ConditionError("expression is nested too deeply") from None
    except Unsupported as exc:
        raise ConditionError(f"not supported in policy conditions: {exc}") from None
