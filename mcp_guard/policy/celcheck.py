"""Load-time type checking of policy conditions.

A condition that can never be right should fail when the policy loads, not
silently deny (or worse, silently match a deny) in production. The checker
knows the fixed shape of ``principal``, ``request`` and ``context``; the open
maps (``principal.attributes``, ``request.arguments``) are ``dyn`` and
follow the runtime error rule instead.

Types are plain values: a primitive name (``"string"``), ``("list", T)``,
``("map", K, V)``, or ``("object", name)`` for the three fixed variables.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, Union

from .celparse import (
    Binary,
    Call,
    Comprehension,
    Cond,
    Ident,
    Index,
    ListLit,
    Lit,
    MapLit,
    Node,
    Select,
    Unary,
)
from .celregex import PatternError, compile_pattern

Type = Union[str, tuple[Any, ...]]  # noqa: UP007 - a runtime alias must work on 3.10

DYN: Type = "dyn"
STRING_LIST: Type = ("list", "string")
OPEN_MAP: Type = ("map", "string", "dyn")

#: The fixed fields of the three condition variables. Nullable fields are typed
#: by their non-null type; comparing them with ``null`` is allowed.
OBJECTS: dict[str, dict[str, Type]] = {
    "principal": {
        "subject": "string",
        "roles": STRING_LIST,
        "groups": STRING_LIST,
        "scopes": STRING_LIST,
        "tenant": "string",
        "mfa": "bool",
        "amr": STRING_LIST,
        "auth_method": "string",
        "auth_time": "timestamp",
        "auth_age": "int",
        "ip": "string",
        "country": "string",
        "issuer": "string",
        "attributes": OPEN_MAP,
    },
    "request": {
        "action": "string",
        "method": "string",
        "server": "string",
        "kind": "string",
        "target": "string",
        "arguments": OPEN_MAP,
        "tags": STRING_LIST,
        "annotations": OPEN_MAP,
    },
    "context": {
        "time": "timestamp",
        "hour": "int",
        "minute": "int",
        "weekday": "int",
        "timezone": "string",
    },
}

_NUMERIC = frozenset({"int", "uint", "double"})
_ORDERED = frozenset({"int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration"})


class CelTypeError(ValueError):
    """The expression is well-formed but cannot type-check; ``column`` is 1-based."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(f"column {column}: {message}" if column else message)
        self.column = column


def type_name(t: Type) -> str:
    if isinstance(t, str):
        return t
    if t[0] == "list":
        return f"list({type_name(t[1])})"
    if t[0] == "map":
        return f"map({type_name(t[1])}, {type_name(t[2])})"
    return str(t[1])


def _is(t: Type, *names: str) -> bool:
    return t == DYN or (isinstance(t, str) and t in names)


def _compatible(a: Type, b: Type) -> bool:
    """Whether values of the two types may be compared for equality."""
    if DYN in (a, b) or "null" in (a, b) or a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        return a in _NUMERIC and b in _NUMERIC
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] and a[0] in ("list", "map"):
        return all(_compatible(x, y) for x, y in zip(a[1:], b[1:], strict=True))
    return False


def _join(a: Type, b: Type) -> Type:
    if a == b:
        return a
    if a == "null":
        return b
    if b == "null":
        return a
    return DYN


def _literal_regex(node: Call) -> None:
    """``matches`` takes a literal pattern, compiled by RE2 at load (see :mod:`.celregex`):
    a pattern never comes from a request, and a policy's own pattern must be accepted."""
    pattern = node.args[-1] if node.args else None
    if not isinstance(pattern, Lit) or pattern.type != "string":
        raise CelTypeError("matches() needs a string literal as its pattern", node.pos)
    try:
        compile_pattern(pattern.value)
    except PatternError as exc:
        raise CelTypeError(str(exc), node.pos) from None


class Checker:
    """Infers the type of an expression, raising :class:`CelTypeError` on the first mistake.

    ``functions`` names the extension functions available (built-in ones and
    plugins) with their arity (``None`` = any); their results are ``dyn``
    unless listed in ``returns``.
    """

    def __init__(
        self, functions: Mapping[str, int | None], returns: Mapping[str, Type] | None = None
    ) -> None:
        self.functions = functions
        self.returns = returns or {}

    def check(self, node: Node, scope: Mapping[str, Type] | None = None) -> Type:
        return self._check(node, dict(scope or {}))

    def _check(self, node: Node, scope: dict[str, Type]) -> Type:
        if isinstance(node, Lit):
            return node.type
        if isinstance(node, Ident):
            if node.name in scope:
                return scope[node.name]
            if node.name in OBJECTS:
                return ("object", node.name)
            hint = _did_you_mean(node.name, [*scope, *OBJECTS])
            raise CelTypeError(
                f"unknown variable {node.name!r}{hint} (use principal, request or context)", node.pos
            )
        if isinstance(node, Select):
            return self._select(node, scope)
        if isinstance(node, Index):
            container = self._check(node.operand, scope)
            key = self._check(node.index, scope)
            if container == DYN:
                return DYN
            if isinstance(container, tuple) and container[0] == "list":
                if not _is(key, "int", "uint"):
                    raise CelTypeError(f"list index must be int, not {type_name(key)}", node.pos)
                return container[1]  # type: ignore[no-any-return]
            if isinstance(container, tuple) and container[0] == "map":
                if not _compatible(key, container[1]):
                    raise CelTypeError(f"map key must be {type_name(container[1])}", node.pos)
                return container[2]  # type: ignore[no-any-return]
            raise CelTypeError(f"cannot index a value of type {type_name(container)}", node.pos)
        if isinstance(node, ListLit):
            elem: Type | None = None
            for item in node.items:
                t = self._check(item, scope)
                elem = t if elem is None else _join(elem, t)
            return ("list", elem or DYN)
        if isinstance(node, MapLit):
            kt: Type | None = None
            vt: Type | None = None
            for k, v in node.entries:
                ktype = self._check(k, scope)
                if not _is(ktype, "string", "int", "uint", "bool"):
                    raise CelTypeError(f"map keys must be string, int, uint or bool, not {type_name(ktype)}")
                kt = ktype if kt is None else _join(kt, ktype)
                vtype = self._check(v, scope)
                vt = vtype if vt is None else _join(vt, vtype)
            return ("map", kt or DYN, vt or DYN)
        if isinstance(node, Unary):
            t = self._check(node.operand, scope)
            if node.op == "!":
                if not _is(t, "bool"):
                    raise CelTypeError(f"'!' needs a bool, not {type_name(t)}", node.pos)
                return "bool"
            if not _is(t, "int", "double", "duration"):
                raise CelTypeError(f"unary '-' needs a number, not {type_name(t)}", node.pos)
            return t
        if isinstance(node, Binary):
            return self._binary(node, scope)
        if isinstance(node, Cond):
            test = self._check(node.test, scope)
            if not _is(test, "bool"):
                raise CelTypeError(f"the condition of '?:' must be bool, not {type_name(test)}", node.pos)
            return _join(self._check(node.then, scope), self._check(node.orelse, scope))
        if isinstance(node, Comprehension):
            rng = self._check(node.range, scope)
            if rng == DYN:
                var_t: Type = DYN
            elif isinstance(rng, tuple) and rng[0] in ("list", "map"):
                var_t = rng[1]
            else:
                raise CelTypeError(f"{node.macro}() needs a list or map, not {type_name(rng)}", node.pos)
            inner = {**scope, node.var: var_t}
            if node.predicate is not None:
                pred = self._check(node.predicate, inner)
                if not _is(pred, "bool"):
                    raise CelTypeError("the filter of map() must be bool", node.pos)
            body = self._check(node.body, inner)
            if node.macro in ("all", "exists", "exists_one", "filter"):
                if not _is(body, "bool"):
                    raise CelTypeError(f"the predicate of {node.macro}() must be bool", node.pos)
                return ("list", var_t) if node.macro == "filter" else "bool"
            return ("list", body)
        if isinstance(node, Call):
            return self._call(node, scope)
        raise CelTypeError(f"unsupported expression {type(node).__name__}")

    def _select(self, node: Select, scope: dict[str, Type]) -> Type:
        operand = self._check(node.operand, scope)
        if isinstance(operand, tuple) and operand[0] == "object":
            fields = OBJECTS[operand[1]]
            if node.field not in fields:
                known = ", ".join(sorted(fields))
                hint = _did_you_mean(node.field, fields)
                raise CelTypeError(
                    f"{operand[1]} has no field {node.field!r}{hint} (known: {known})", node.pos
                )
            return "bool" if node.test_only else fields[node.field]
        if operand == DYN or (isinstance(operand, tuple) and operand[0] == "map"):
            if isinstance(operand, tuple) and not _is(operand[1], "string"):
                raise CelTypeError("field selection needs a map with string keys", node.pos)
            if node.test_only:
                return "bool"
            return DYN if operand == DYN else operand[2]
        raise CelTypeError(f"type {type_name(operand)} has no field {node.field!r}", node.pos)

    def _binary(self, node: Binary, scope: dict[str, Type]) -> Type:
        left = self._check(node.left, scope)
        right = self._check(node.right, scope)
        op = node.op
        ln, rn = type_name(left), type_name(right)
        if op in ("&&", "||"):
            if not (_is(left, "bool") and _is(right, "bool")):
                raise CelTypeError(f"{op!r} needs bool operands, not {ln} and {rn}", node.pos)
            return "bool"
        if op in ("==", "!="):
            if not _compatible(left, right):
                raise CelTypeError(f"cannot compare {ln} with {rn}", node.pos)
            return "bool"
        if op in ("<", "<=", ">", ">="):
            ok = left == DYN or right == DYN
            if not ok and isinstance(left, str) and isinstance(right, str):
                ok = (left == right and left in _ORDERED) or (left in _NUMERIC and right in _NUMERIC)
            if not ok:
                raise CelTypeError(f"cannot order {ln} and {rn}", node.pos)
            return "bool"
        if op == "in":
            if right == DYN:
                return "bool"
            if isinstance(right, tuple) and right[0] in ("list", "map"):
                if not _compatible(left, right[1]):
                    raise CelTypeError(f"{ln} can never be in a {rn}", node.pos)
                return "bool"
            raise CelTypeError(f"'in' needs a list or map on the right, not {rn}", node.pos)
        # arithmetic
        if left == DYN or right == DYN:
            return DYN
        if op == "+":
            if left == right and (
                left in ("int", "uint", "double", "string", "bytes", "duration")
                or (isinstance(left, tuple) and left[0] == "list")
            ):
                return left
            if isinstance(left, tuple) and isinstance(right, tuple) and left[0] == right[0] == "list":
                return ("list", _join(left[1], right[1]))
            if {left, right} == {"timestamp", "duration"}:
                return "timestamp"
        elif op == "-":
            if left == right and left in ("int", "uint", "double", "duration"):
                return left
            if left == "timestamp" and right == "timestamp":
                return "duration"
            if left == "timestamp" and right == "duration":
                return "timestamp"
        elif op in ("*", "/"):
            if left == right and left in _NUMERIC:
                return left
        elif op == "%" and left == right and left in ("int", "uint"):
            return left
        raise CelTypeError(f"no operator {op!r} for {ln} and {rn} (CEL does not convert types)", node.pos)

    def _call(self, node: Call, scope: dict[str, Type]) -> Type:
        args = [self._check(a, scope) for a in node.args]
        name = node.function
        if name == "matches":
            _literal_regex(node)
        if node.target is not None:
            recv = self._check(node.target, scope)
            if name in ("startsWith", "endsWith", "contains", "matches"):
                if len(args) != 1 or not _is(recv, "string") or not _is(args[0], "string"):
                    raise CelTypeError(f"{name}() is string.{name}(string)", node.pos)
                return "bool"
            if name == "size" and not args:
                return self._size(recv, node.pos)
            hint = _did_you_mean(name, _METHODS)
            raise CelTypeError(f"unknown method {name!r} on {type_name(recv)}{hint}", node.pos)
        if name == "size" and len(args) == 1:
            return self._size(args[0], node.pos)
        if name == "matches":
            # the cel package has only the method form; the global one would always be an error there
            raise CelTypeError("write text.matches(pattern), not matches(text, pattern)", node.pos)
        conversions: dict[str, tuple[Type, tuple[str, ...]]] = {
            "int": ("int", ("int", "uint", "double", "string", "timestamp")),
            "uint": ("uint", ("int", "uint", "double", "string")),
            "double": ("double", ("int", "uint", "double", "string")),
            # the cel package has no string(bool) (nor int(bool), double(bool)): refused here
            "string": ("string", ("int", "uint", "double", "string", "bytes", "timestamp", "duration")),
            "timestamp": ("timestamp", ("string", "timestamp", "int")),
            "duration": ("duration", ("string", "duration")),
            "bool": ("bool", ("bool", "string")),
            "bytes": ("bytes", ("bytes", "string")),
        }
        if name in conversions and len(args) == 1:
            result, accepted = conversions[name]
            if not _is(args[0], *accepted):
                raise CelTypeError(f"{name}() cannot convert {type_name(args[0])}", node.pos)
            return result
        if name == "dyn" and len(args) == 1:
            return DYN
        if name in self.functions:
            arity = self.functions[name]
            if arity is not None and arity != len(args):
                raise CelTypeError(f"{name}() takes {arity} argument(s), not {len(args)}", node.pos)
            return self.returns.get(name, DYN)
        hint = _did_you_mean(name, ["size", "dyn", *conversions, *self.functions])
        raise CelTypeError(f"unknown function {name!r}{hint}", node.pos)

    @staticmethod
    def _size(t: Type, pos: int) -> Type:
        if _is(t, "string", "bytes") or (isinstance(t, tuple) and t[0] in ("list", "map")):
            return "int"
        raise CelTypeError(f"size() of {type_name(t)} is undefined", pos)


#: The methods a condition may call on a value (``text.startsWith("x")``, ``list.size()``).
_METHODS = ("startsWith", "endsWith", "contains", "matches", "size")


def _did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest known name, case-insensitively (``startswith``)."""
    names = {k.lower(): k for k in known}
    close = difflib.get_close_matches(name.lower(), list(names), n=1, cutoff=0.6)
    return f" (did you mean {names[close[0]]!r}?)" if close else ""
