"""Compiles type-checked CEL syntax trees into Python closures.

Going through the ``cel`` extension costs 30-45 us per decision, most of it
converting the activation into CEL values; a closure reads the
:class:`~mcp_guard.model.Principal` and :class:`~mcp_guard.model.AccessRequest`
attributes directly and costs about a microsecond for common conditions.
The closures follow CEL semantics: no implicit conversions, heterogeneous
numeric equality, truncating integer division, 64-bit overflow errors, and
error absorption by ``&&``/``||``, and wherever the ``cel`` package (the
reference) departs from the CEL specification, the package's behaviour, so a
condition has one meaning. Any construct this module does not cover raises
:class:`Unsupported` and the policy is refused at load: there is no second
evaluator to fall back to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from .celfuncs import _address, _network, in_cidr, path_within
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
from .celregex import compile_pattern
from .celvalues import (
    _CONVERSIONS,
    EvalError,
    _add,
    _bool,
    _check_int,
    _contains,
    _div,
    _mod,
    _mul,
    _order,
    _size,
    _str_method,
    _sub,
)
from .celvalues import cel_eq as cel_eq
from .celvalues import parse_duration as parse_duration
from .celvalues import parse_timestamp as parse_timestamp

__all__ = ["EvalError", "Unsupported", "compile_node", "in_cidr", "path_within"]


class Unsupported(Exception):
    """The closure compiler does not cover this construct: the condition is refused at load."""


Fn = Callable[[Any], Any]


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
                raise Unsupported(f"{node.type} literals")
            value = node.value
            return lambda a: value
        if isinstance(node, Ident):
            name = node.name
            if name in self.getters:
                raise Unsupported(f"{name!r} used as a whole value (select a field, e.g. {name}.<field>)")

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
            if name == "matches":
                return _matches(recv, node.args[0])
            method = _str_method(name)
            arg = args[0]
            return lambda a: method(recv(a), arg(a))
        if name == "size":
            arg = args[0]
            return lambda a: _size(arg(a))
        if name == "matches":
            return _matches(args[0], node.args[1])
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
            raise Unsupported(f"{name}()")
        fn = self.functions.get(name)
        if fn is None:
            raise Unsupported(f"function {name}()")
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


def _matches(subject: Fn, pattern: Node) -> Fn:
    """``subject.matches(pattern)``: the checker has made sure ``pattern`` is an accepted literal."""
    if not isinstance(pattern, Lit) or type(pattern.value) is not str:
        raise Unsupported("matches() with a pattern that is not a string literal")
    search = compile_pattern(pattern.value)

    def matches(a: Any) -> bool:
        v = subject(a)
        if type(v) is not str:
            raise EvalError("matches() needs a string")
        try:
            return search(v)
        except UnicodeEncodeError:
            raise EvalError("matches() of a string that is not valid Unicode") from None

    return matches


def compile_node(node: Node, getters: FieldGetters, functions: Mapping[str, Callable[..., Any]]) -> Fn:
    """Closure computing ``node`` over an activation; raises :class:`Unsupported` if not covered."""
    return _Compiler(getters, functions).compile(node)
