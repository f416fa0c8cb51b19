"""Compiles type-checked CEL syntax trees into Python closures.

Going through the ``cel`` extension costs 30-45 us per decision, most of it
converting the activation into CEL values; a closure reads the
:class:`~mcp_guard.model.Principal` and :class:`~mcp_guard.model.AccessRequest`
attributes directly and costs about a microsecond for common conditions.
The closures follow CEL semantics: no implicit conversions, heterogeneous
numeric equality, truncating integer division, 64-bit overflow errors, and
error absorption by ``&&``/``||``. Any construct this module does not cover
raises :class:`Unsupported` and the condition is evaluated by ``cel`` itself.
"""

from __future__ import annotations

import ipaddress
import math
import posixpath
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

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

__all__ = ["EvalError", "Unsupported", "compile_node", "in_cidr", "path_within"]

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_NoneType = type(None)


class EvalError(Exception):
    """A condition could not be evaluated (missing key, wrong type, overflow)."""


class Unsupported(Exception):
    """The closure compiler does not cover this construct; ``cel`` evaluates the condition."""


Fn = Callable[[Any], Any]


# --- extension functions -------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _address(ip: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(ip)


@lru_cache(maxsize=1024)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr, strict=False)


def in_cidr(ip: Any, cidr: Any) -> bool:
    """Whether ``ip`` lies in ``cidr``; a malformed address or network is an evaluation error."""
    if not isinstance(ip, str) or not isinstance(cidr, str):
        raise EvalError("in_cidr() needs two strings")
    try:
        addr = _address(ip)
        net = _network(cidr)
    except ValueError as exc:
        raise EvalError(f"in_cidr(): {exc}") from None
    if addr.version != net.version:
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            return addr.ipv4_mapped in net
        return False
    return addr in net


def _clean_path(value: str) -> str:
    if value.startswith("file://"):
        value = unquote(value[7:])
        if not value.startswith("/"):
            value = "/" + value.split("/", 1)[1] if "/" in value else "/"
    if "\x00" in value:
        raise EvalError("path contains a NUL byte")
    return posixpath.normpath(value.replace("\\", "/"))


def path_within(path: Any, root: Any) -> bool:
    """Whether ``path``, after resolving ``.``/``..`` and backslashes, stays inside ``root``.

    ``file://`` URIs are decoded first. A relative path is never within an
    absolute root: the server may resolve it against a directory the policy
    cannot know, so the check fails closed.
    """
    if not isinstance(path, str) or not isinstance(root, str):
        raise EvalError("path_within() needs two strings")
    p, r = _clean_path(path), _clean_path(root)
    if p.startswith("/") != r.startswith("/"):
        return False
    if not r.startswith("/") and (p == ".." or p.startswith("../")):
        return False
    if r in ("/", "."):
        return True if r == "/" else not (p == ".." or p.startswith("../"))
    return p == r or p.startswith(r + "/")


# --- value semantics -----------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return (type(v) is int or type(v) is float) and type(v) is not bool


def cel_eq(a: Any, b: Any) -> bool:
    ta, tb = type(a), type(b)
    if ta is tb and (ta is str or ta is int or ta is float or ta is bool or ta is _NoneType):
        return bool(a == b)
    if ta is bool or tb is bool or a is None or b is None:
        return False
    if _is_num(a) and _is_num(b):
        return bool(a == b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(cel_eq(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return len(a) == len(b) and all(k in b and cel_eq(v, b[k]) for k, v in a.items())
    if ta is tb and ta in (bytes, datetime, timedelta):
        return bool(a == b)
    return False


def _order(a: Any, b: Any) -> int:
    if (_is_num(a) and _is_num(b)) or (
        type(a) is type(b) and type(a) in (str, bool, bytes, datetime, timedelta)
    ):
        return -1 if a < b else (1 if a > b else 0)
    raise EvalError(f"cannot order {type(a).__name__} and {type(b).__name__}")


def _check_int(v: int) -> int:
    if v < _INT_MIN or v > _INT_MAX:
        raise EvalError("integer overflow")
    return v


def _add(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb:
        if ta is int:
            return _check_int(a + b)
        if ta in (float, str, bytes, timedelta):
            return a + b
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return [*a, *b]
    if isinstance(a, datetime) and tb is timedelta:
        return a + b
    if ta is timedelta and isinstance(b, datetime):
        return b + a
    raise EvalError(f"no '+' for {ta.__name__} and {tb.__name__}")


def _sub(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        return _check_int(a - b)
    if ta is tb and ta in (float, timedelta):
        return a - b
    if isinstance(a, datetime) and (isinstance(b, datetime) or tb is timedelta):
        return a - b
    raise EvalError(f"no '-' for {ta.__name__} and {tb.__name__}")


def _mul(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        return _check_int(a * b)
    if ta is tb and ta is float:
        return a * b
    raise EvalError(f"no '*' for {ta.__name__} and {tb.__name__}")


def _div(a: Any, b: Any) -> Any:
    ta, tb = type(a), type(b)
    if ta is tb and ta is int:
        if b == 0:
            raise EvalError("division by zero")
        q = abs(a) // abs(b)
        return _check_int(q if (a < 0) == (b < 0) else -q)
    if ta is tb and ta is float:
        if b == 0.0:
            return math.nan if a == 0.0 or math.isnan(a) else math.copysign(math.inf, a) * math.copysign(1, b)
        return a / b
    raise EvalError(f"no '/' for {ta.__name__} and {tb.__name__}")


def _mod(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int:
        if b == 0:
            raise EvalError("modulus by zero")
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    raise EvalError(f"no '%' for {type(a).__name__} and {type(b).__name__}")


def _contains(container: Any, item: Any) -> bool:
    if isinstance(container, (frozenset, set)):
        return type(item) is str and item in container
    if isinstance(container, Mapping):
        return any(cel_eq(k, item) for k in container) if type(item) is not str else item in container
    if isinstance(container, (list, tuple)):
        return any(cel_eq(x, item) for x in container)
    raise EvalError(f"'in' needs a list or map, not {type(container).__name__}")


def _size(v: Any) -> int:
    if isinstance(v, (str, bytes, list, tuple, Mapping)):
        return len(v)
    raise EvalError(f"size() of {type(v).__name__}")


def _bool(v: Any) -> bool:
    if type(v) is bool:
        return v
    raise EvalError(f"expected bool, got {type(v).__name__}")


_DURATION = re.compile(r"([0-9]*\.?[0-9]+)(h|ms|us|µs|ns|m|s)")
_UNIT = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def parse_duration(text: str) -> timedelta:
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    pos, total = 0, 0.0
    for m in _DURATION.finditer(body):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(body) or not body:
        raise EvalError(f"invalid duration {text!r}")
    return timedelta(seconds=sign * total)


def parse_timestamp(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise EvalError(f"invalid timestamp {text!r}") from None
    if value.tzinfo is None:
        raise EvalError(f"timestamp {text!r} has no time zone")
    return value


def _to_int(v: Any) -> int:
    if type(v) is int:
        return v
    if type(v) is float:
        if math.isnan(v) or math.isinf(v):
            raise EvalError("int() of a non-finite double")
        return _check_int(int(v))
    if type(v) is str:
        try:
            return _check_int(int(v, 10))
        except ValueError:
            raise EvalError(f"int() of {v!r}") from None
    if isinstance(v, datetime):
        return int(v.timestamp())
    raise EvalError(f"int() of {type(v).__name__}")


def _to_double(v: Any) -> float:
    if type(v) in (int, float):
        return float(v)
    if type(v) is str:
        try:
            return float(v)
        except ValueError:
            raise EvalError(f"double() of {v!r}") from None
    raise EvalError(f"double() of {type(v).__name__}")


def _to_string(v: Any) -> str:
    if type(v) is str:
        return v
    if type(v) is bool:
        return "true" if v else "false"
    if type(v) in (int, float):
        return str(v)
    if type(v) is bytes:
        return v.decode("utf-8")
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    raise EvalError(f"string() of {type(v).__name__}")


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    if type(v) is str:
        return parse_timestamp(v)
    if type(v) is int:
        return datetime.fromtimestamp(v, timezone.utc)
    raise EvalError(f"timestamp() of {type(v).__name__}")


def _to_duration(v: Any) -> timedelta:
    if isinstance(v, timedelta):
        return v
    if type(v) is str:
        return parse_duration(v)
    raise EvalError(f"duration() of {type(v).__name__}")


_CONVERSIONS: dict[str, Callable[[Any], Any]] = {
    "int": _to_int,
    "double": _to_double,
    "string": _to_string,
    "timestamp": _to_timestamp,
    "duration": _to_duration,
    "dyn": lambda v: v,
}


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise EvalError(f"invalid regex {pattern!r}: {exc}") from None


def _str_method(name: str) -> Callable[[Any, Any], bool]:
    def method(recv: Any, arg: Any) -> bool:
        if type(recv) is not str or type(arg) is not str:
            raise EvalError(f"{name}() needs strings")
        if name == "startsWith":
            return recv.startswith(arg)
        if name == "endsWith":
            return recv.endswith(arg)
        if name == "contains":
            return arg in recv
        return _regex(arg).search(recv) is not None

    return method


# --- compiler ------------------------------------------------------------------------------------

#: Getters for the fixed fields of the three condition variables, over an activation object.
FieldGetters = Mapping[str, Mapping[str, Fn]]


def _select_value(value: Any, field: str) -> Any:
    if isinstance(value, Mapping):
        try:
            return value[field]
        except KeyError:
            raise EvalError(f"no such key {field!r}") from None
    raise EvalError(f"cannot select {field!r} from {type(value).__name__}")


class _Compiler:
    def __init__(self, getters: FieldGetters, functions: Mapping[str, Callable[..., Any]]) -> None:
        self.getters = getters
        self.functions = functions

    def compile(self, node: Node) -> Fn:
        if isinstance(node, Lit):
            if node.type in ("uint", "bytes"):
                raise Unsupported(node.type)
            value = node.value
            return lambda a: value
        if isinstance(node, Ident):
            name = node.name
            if name in self.getters:
                raise Unsupported("bare object variable")

            def local(a: Any) -> Any:
                return a.vars[name]

            return local
        if isinstance(node, Select):
            return self._select(node)
        if isinstance(node, Index):
            return self._index(node)
        if isinstance(node, ListLit):
            items = [self.compile(i) for i in node.items]
            return lambda a: [f(a) for f in items]
        if isinstance(node, MapLit):
            entries = [(self.compile(k), self.compile(v)) for k, v in node.entries]
            return lambda a: {k(a): v(a) for k, v in entries}
        if isinstance(node, Unary):
            operand = self.compile(node.operand)
            if node.op == "!":
                return lambda a: not _bool(operand(a))

            def neg(a: Any) -> Any:
                v = operand(a)
                if type(v) is int:
                    return _check_int(-v)
                if type(v) in (float, timedelta):
                    return -v
                raise EvalError(f"no '-' for {type(v).__name__}")

            return neg
        if isinstance(node, Binary):
            return self._binary(node)
        if isinstance(node, Cond):
            test, then, orelse = self.compile(node.test), self.compile(node.then), self.compile(node.orelse)
            return lambda a: then(a) if _bool(test(a)) else orelse(a)
        if isinstance(node, Comprehension):
            return self._comprehension(node)
        if isinstance(node, Call):
            return self._call(node)
        raise Unsupported(type(node).__name__)

    def _select(self, node: Select) -> Fn:
        field = node.field
        if isinstance(node.operand, Ident) and node.operand.name in self.getters:
            getter = self.getters[node.operand.name][field]
            if node.test_only:
                return lambda a: getter(a) is not None
            return getter
        operand = self.compile(node.operand)
        if node.test_only:

            def has(a: Any) -> bool:
                v = operand(a)
                if isinstance(v, Mapping):
                    return field in v
                raise EvalError(f"has() on {type(v).__name__}")

            return has
        return lambda a: _select_value(operand(a), field)

    def _index(self, node: Index) -> Fn:
        operand, index = self.compile(node.operand), self.compile(node.index)

        def get(a: Any) -> Any:
            container, key = operand(a), index(a)
            if isinstance(container, Mapping):
                if type(key) not in (str, int, bool):
                    raise EvalError("invalid map key type")
                try:
                    return container[key]
                except KeyError:
                    raise EvalError(f"no such key {key!r}") from None
            if isinstance(container, (list, tuple)):
                if type(key) is float and key.is_integer():
                    key = int(key)
                if type(key) is not int or not 0 <= key < len(container):
                    raise EvalError(f"list index {key!r} out of range")
                return container[key]
            raise EvalError(f"cannot index {type(container).__name__}")

        return get

    def _binary(self, node: Binary) -> Fn:
        op = node.op
        if op == "in" and isinstance(node.right, Select) and isinstance(node.right.operand, Ident):
            key = (node.right.operand.name, node.right.field)
            if key in (("principal", "roles"), ("principal", "groups")) and not node.right.test_only:
                left = self.compile(node.left)
                attr = "roles" if key[1] == "roles" else "groups"

                def member(a: Any) -> bool:
                    v = left(a)
                    return type(v) is str and v in getattr(a, attr)

                return member
        left, right = self.compile(node.left), self.compile(node.right)
        if op == "&&":

            def and_(a: Any) -> bool:
                try:
                    lv = _bool(left(a))
                except Exception:
                    if right(a) is False:
                        return False
                    raise
                if not lv:
                    return False
                return _bool(right(a))

            return and_
        if op == "||":

            def or_(a: Any) -> bool:
                try:
                    lv = _bool(left(a))
                except Exception:
                    if right(a) is True:
                        return True
                    raise
                if lv:
                    return True
                return _bool(right(a))

            return or_
        if op == "==":
            if isinstance(node.right, Lit) and node.right.type in ("string", "int"):
                const, ctype = node.right.value, type(node.right.value)

                def eq_const(a: Any) -> bool:
                    v = left(a)
                    return bool(v == const) if type(v) is ctype else cel_eq(v, const)

                return eq_const
            return lambda a: cel_eq(left(a), right(a))
        if op == "!=":
            return lambda a: not cel_eq(left(a), right(a))
        if op == "<":
            return lambda a: _order(left(a), right(a)) < 0
        if op == "<=":
            return lambda a: _order(left(a), right(a)) <= 0
        if op == ">":
            return lambda a: _order(left(a), right(a)) > 0
        if op == ">=":
            return lambda a: _order(left(a), right(a)) >= 0
        if op == "in":
            return lambda a: _contains(right(a), left(a))
        arith = {"+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod}[op]
        return lambda a: arith(left(a), right(a))

    def _comprehension(self, node: Comprehension) -> Fn:
        rng, body, var, macro = self.compile(node.range), self.compile(node.body), node.var, node.macro
        pred = self.compile(node.predicate) if node.predicate is not None else None

        def items(a: Any) -> list[Any]:
            v = rng(a)
            if isinstance(v, (list, tuple, Mapping, frozenset)):
                return sorted(v) if isinstance(v, frozenset) else list(v)
            raise EvalError(f"{macro}() over {type(v).__name__}")

        def run(a: Any) -> Any:
            values = items(a)
            saved = a.vars.get(var, _MISSING)
            try:
                if macro in ("exists", "all"):
                    want = macro == "exists"
                    error: Exception | None = None
                    for item in values:
                        a.vars[var] = item
                        try:
                            if _bool(body(a)) is want:
                                return want
                        except Exception as exc:
                            error = exc
                    if error is not None:
                        raise error
                    return not want
                if macro == "exists_one":
                    count = 0
                    for item in values:
                        a.vars[var] = item
                        count += _bool(body(a))
                    return count == 1
                out = []
                for item in values:
                    a.vars[var] = item
                    if macro == "filter":
                        if _bool(body(a)):
                            out.append(item)
                    elif pred is None or _bool(pred(a)):
                        out.append(body(a))
                return out
            finally:
                if saved is _MISSING:
                    a.vars.pop(var, None)
                else:
                    a.vars[var] = saved

        return run

    def _call(self, node: Call) -> Fn:
        name = node.function
        args = [self.compile(x) for x in node.args]
        if node.target is not None:
            recv = self.compile(node.target)
            if name == "size":
                return lambda a: _size(recv(a))
            if name == "matches" and isinstance(node.args[0], Lit) and node.args[0].type == "string":
                pattern = re.compile(node.args[0].value)

                def matches(a: Any) -> bool:
                    v = recv(a)
                    if type(v) is not str:
                        raise EvalError("matches() needs a string")
                    return pattern.search(v) is not None

                return matches
            method = _str_method(name)
            arg = args[0]
            return lambda a: method(recv(a), arg(a))
        if name == "size":
            arg = args[0]
            return lambda a: _size(arg(a))
        if name == "matches":
            method = _str_method("matches")
            first, second = args
            return lambda a: method(first(a), second(a))
        if name in _CONVERSIONS and len(args) == 1:
            conv, arg = _CONVERSIONS[name], args[0]
            if isinstance(node.args[0], Lit):  # fold timestamp("...") and friends at load time
                try:
                    value = conv(node.args[0].value)
                except EvalError:
                    pass
                else:
                    return lambda a: value
            return lambda a: conv(arg(a))
        if name in ("uint", "bool", "bytes"):
            raise Unsupported(name)
        fn = self.functions.get(name)
        if fn is None:
            raise Unsupported(name)
        if name == "in_cidr" and isinstance(node.args[1], Lit) and isinstance(node.args[1].value, str):
            try:
                net = _network(node.args[1].value)
            except ValueError:
                pass
            else:
                ip_arg = args[0]

                def cidr(a: Any) -> bool:
                    ip = ip_arg(a)
                    if type(ip) is not str:
                        raise EvalError("in_cidr() needs a string address")
                    try:
                        addr = _address(ip)
                    except ValueError as exc:
                        raise EvalError(f"in_cidr(): {exc}") from None
                    if addr.version != net.version:
                        return in_cidr(ip, str(net))
                    return addr in net

                return cidr
        if len(args) == 1:
            only = args[0]
            return lambda a: fn(only(a))
        if len(args) == 2:
            first, second = args
            return lambda a: fn(first(a), second(a))
        return lambda a: fn(*[f(a) for f in args])


_MISSING = object()


def compile_node(node: Node, getters: FieldGetters, functions: Mapping[str, Callable[..., Any]]) -> Fn:
    """Closure computing ``node`` over an activation; raises :class:`Unsupported` if not covered."""
    return _Compiler(getters, functions).compile(node)
