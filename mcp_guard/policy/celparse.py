"""A parser for the CEL expression grammar, producing a small AST.

The ``cel`` package validates syntax but exposes no syntax tree, and the policy
needs one twice: to type-check fixed fields at load time (a misspelt
``principal.mfaa`` must be a load error even in a branch no sample would
reach) and to compile conditions into Python closures fast enough for the
request path. Every expression is also compiled by ``cel`` itself, so this
parser never has to be the judge of what is valid CEL, only of its shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Binary",
    "Call",
    "CelSyntaxError",
    "Comprehension",
    "Cond",
    "Ident",
    "Index",
    "ListLit",
    "Lit",
    "MapLit",
    "Node",
    "Select",
    "Unary",
    "parse",
]


class CelSyntaxError(ValueError):
    """The expression could not be parsed; ``column`` is 1-based."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"column {column}: {message}")
        self.column = column


@dataclass(frozen=True, slots=True)
class Lit:
    value: Any
    type: str  # bool, int, uint, double, string, bytes, null


@dataclass(frozen=True, slots=True)
class Ident:
    name: str
    pos: int


@dataclass(frozen=True, slots=True)
class Select:
    operand: Node
    field: str
    pos: int
    test_only: bool = False


@dataclass(frozen=True, slots=True)
class Index:
    operand: Node
    index: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    args: tuple[Node, ...]
    pos: int
    target: Node | None = None


@dataclass(frozen=True, slots=True)
class ListLit:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class MapLit:
    entries: tuple[tuple[Node, Node], ...]


@dataclass(frozen=True, slots=True)
class Unary:
    op: str
    operand: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Cond:
    test: Node
    then: Node
    orelse: Node
    pos: int


@dataclass(frozen=True, slots=True)
class Comprehension:
    """``exists``, ``all``, ``exists_one``, ``map``, ``filter`` over ``range``."""

    macro: str
    range: Node
    var: str
    body: Node
    pos: int
    predicate: Node | None = None  # map(x, predicate, body)


Node = Lit | Ident | Select | Index | Call | ListLit | MapLit | Unary | Binary | Cond | Comprehension

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<float>(?:\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\.\d+(?:[eE][+-]?\d+)?))
  | (?P<hex>0[xX][0-9a-fA-F]+[uU]?)
  | (?P<int>\d+[uU]?)
  | (?P<string>[rR]?[bB]?[rR]?(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,\[\]{}()])
    """,
    re.VERBOSE,
)

_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "`": "`",
    "?": "?",
}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[xX][0-9a-fA-F]{2}|[0-3][0-7]{2}|.)", re.DOTALL)
_RESERVED = frozenset(
    [
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})


def _unescape(body: str, pos: int) -> str:
    def sub(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "uU":
            return chr(int(e[1:], 16))
        if e[0] in "xX":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        if e in _ESCAPES:
            return _ESCAPES[e]
        raise CelSyntaxError(f"invalid escape sequence \\{e}", pos)

    return _ESCAPE.sub(sub, body)


def _string_literal(text: str, pos: int) -> Lit:
    prefix = ""
    while text[0] not in "\"'":
        prefix += text[0].lower()
        text = text[1:]
    quote = text[:3] if text[:3] in ('"""', "'''") else text[0]
    body = text[len(quote) : -len(quote)]
    value = body if "r" in prefix else _unescape(body, pos)
    if "b" in prefix:
        return Lit(value.encode("utf-8"), "bytes")
    return Lit(value, "string")


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        i = 0
        while i < len(source):
            m = _TOKEN.match(source, i)
            if m is None:
                raise CelSyntaxError(f"unexpected character {source[i]!r}", i + 1)
            kind = m.lastgroup or ""
            if kind != "ws":
                self.tokens.append((kind, m.group(), i + 1))
            i = m.end()
        self.tokens.append(("eof", "", len(source) + 1))
        self.i = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def next(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        kind, value, _ = self.tokens[self.i]
        if kind in ("op", "ident") and value == text:
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> int:
        kind, value, pos = self.next()
        if value != text or kind not in ("op", "ident"):
            raise CelSyntaxError(f"expected {text!r}, found {value or 'end of expression'!r}", pos)
        return pos

    def expr(self) -> Node:
        test = self.or_()
        if self.peek()[1] == "?" and self.peek()[0] == "op":
            pos = self.next()[2]
            then = self.or_()
            self.expect(":")
            orelse = self.expr()
            return Cond(test, then, orelse, pos)
        return test

    def or_(self) -> Node:
        node = self.and_()
        while self.peek()[:2] == ("op", "||"):
            pos = self.next()[2]
            node = Binary("||", node, self.and_(), pos)
        return node

    def and_(self) -> Node:
        node = self.relation()
        while self.peek()[:2] == ("op", "&&"):
            pos = self.next()[2]
            node = Binary("&&", node, self.relation(), pos)
        return node

    def relation(self) -> Node:
        node = self.addition()
        while True:
            kind, value, pos = self.peek()
            if (kind == "op" and value in ("==", "!=", "<", "<=", ">", ">=")) or (
                kind == "ident" and value == "in"
            ):
                self.next()
                node = Binary(value, node, self.addition(), pos)
            else:
                return node

    def addition(self) -> Node:
        node = self.multiplication()
        while self.peek()[0] == "op" and self.peek()[1] in ("+", "-"):
            _, op, pos = self.next()
            node = Binary(op, node, self.multiplication(), pos)
        return node

    def multiplication(self) -> Node:
        node = self.unary()
        while self.peek()[0] == "op" and self.peek()[1] in ("*", "/", "%"):
            _, op, pos = self.next()
            node = Binary(op, node, self.unary(), pos)
        return node

    def unary(self) -> Node:
        kind, value, pos = self.peek()
        if kind == "op" and value in ("!", "-"):
            self.next()
            operand = self.unary()
            if value == "-" and isinstance(operand, Lit) and operand.type in ("int", "double"):
                return Lit(-operand.value, operand.type)
            return Unary(value, operand, pos)
        return self.member()

    def member(self) -> Node:
        node = self.primary()
        while True:
            kind, value, pos = self.peek()
            if kind != "op":
                return node
            if value == ".":
                self.next()
                fkind, field, fpos = self.next()
                if fkind != "ident":
                    raise CelSyntaxError("expected a field name after '.'", fpos)
                if self.accept("("):
                    args = self.arguments(")")
                    node = self.method(node, field, args, fpos)
                else:
                    node = Select(node, field, fpos)
            elif value == "[":
                self.next()
                index = self.expr()
                self.expect("]")
                node = Index(node, index, pos)
            else:
                return node

    def method(self, target: Node, name: str, args: tuple[Node, ...], pos: int) -> Node:
        if name in _MACROS and args and isinstance(args[0], Ident):
            var = args[0].name
            if name == "map" and len(args) == 3:
                return Comprehension("map", target, var, args[2], pos, predicate=args[1])
            if len(args) == 2:
                return Comprehension(name, target, var, args[1], pos)
        return Call(name, args, pos, target)

    def arguments(self, close: str) -> tuple[Node, ...]:
        args: list[Node] = []
        if self.accept(close):
            return ()
        while True:
            args.append(self.expr())
            if self.accept(close):
                return tuple(args)
            self.expect(",")
            if self.accept(close):  # trailing comma
                return tuple(args)

    def primary(self) -> Node:
        kind, value, pos = self.next()
        if kind == "int":
            if value[-1] in "uU":
                return Lit(int(value[:-1]), "uint")
            return Lit(int(value), "int")
        if kind == "hex":
            if value[-1] in "uU":
                return Lit(int(value[:-1], 16), "uint")
            return Lit(int(value, 16), "int")
        if kind == "float":
            return Lit(float(value), "double")
        if kind == "string":
            return _string_literal(value, pos)
        if kind == "ident":
            if value == "true":
                return Lit(True, "bool")
            if value == "false":
                return Lit(False, "bool")
            if value == "null":
                return Lit(None, "null")
            if value in _RESERVED or value == "in":
                raise CelSyntaxError(f"reserved word {value!r}", pos)
            if self.accept("("):
                args = self.arguments(")")
                if value == "has":
                    if len(args) != 1 or not isinstance(args[0], Select):
                        raise CelSyntaxError("has() needs one field selection, e.g. has(a.b)", pos)
                    sel = args[0]
                    return Select(sel.operand, sel.field, sel.pos, test_only=True)
                return Call(value, args, pos)
            return Ident(value, pos)
        if kind == "op":
            if value == "(":
                node = self.expr()
                self.expect(")")
                return node
            if value == "[":
                return ListLit(self.arguments("]"))
            if value == "{":
                entries: list[tuple[Node, Node]] = []
                if not self.accept("}"):
                    while True:
                        key = self.expr()
                        self.expect(":")
                        entries.append((key, self.expr()))
                        if self.accept("}"):
                            break
                        self.expect(",")
                        if self.accept("}"):
                            break
                return MapLit(tuple(entries))
            if value == ".":
                raise CelSyntaxError("leading '.' names are not supported", pos)
        raise CelSyntaxError(f"unexpected {value or 'end of expression'!r}", pos)


def parse(source: str) -> Node:
    """Parse one CEL expression; raise :class:`CelSyntaxError` on anything malformed."""
    parser = _Parser(source)
    node = parser.expr()
    kind, value, pos = parser.peek()
    if kind != "eof":
        raise CelSyntaxError(f"unexpected {value!r} after the expression", pos)
    return node
