"""Turn an MCP method and its raw params into an :class:`AccessRequest`.

The table below is the guard's whole knowledge of the protocol surface
(revisions 2025-11-25 and 2026-07-28). A method missing from it is refused:
new protocol methods must be classified here before any client can use them
through a guard, which is the point of default deny.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import AccessDenied, MethodNotAllowed
from .model import AccessRequest, RequestContext, TargetKind


@dataclass(frozen=True, slots=True)
class MethodInfo:
    """How the guard treats one MCP method.

    ``action`` feeds the policy; ``list_kind`` names the item kind a list
    method returns (its result is filtered per item); ``housekeeping`` marks
    protocol plumbing that every authenticated principal may use.
    """

    action: str
    kind: TargetKind | None = None
    list_key: str | None = None
    list_kind: str | None = None
    housekeeping: bool = False


#: Client-to-server requests.
REQUESTS: Mapping[str, MethodInfo] = {
    "initialize": MethodInfo("session", housekeeping=True),
    "ping": MethodInfo("session", housekeeping=True),
    "server/discover": MethodInfo("session", housekeeping=True),
    "logging/setLevel": MethodInfo("log", housekeeping=True),
    "tools/list": MethodInfo("list", list_key="tools", list_kind="tool"),
    "prompts/list": MethodInfo("list", list_key="prompts", list_kind="prompt"),
    "resources/list": MethodInfo("list", list_key="resources", list_kind="resource"),
    "resources/templates/list": MethodInfo(
        "list", list_key="resourceTemplates", list_kind="resource_template"
    ),
    "tools/call": MethodInfo("call", kind="tool"),
    "prompts/get": MethodInfo("get", kind="prompt"),
    "resources/read": MethodInfo("read", kind="resource"),
    "resources/subscribe": MethodInfo("subscribe", kind="resource"),
    "resources/unsubscribe": MethodInfo("subscribe", kind="resource"),
    "completion/complete": MethodInfo("complete"),
    "subscriptions/listen": MethodInfo("listen"),
}

#: Client-to-server notifications. All are protocol plumbing.
NOTIFICATIONS: frozenset[str] = frozenset(
    {
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/roots/list_changed",
    }
)


def _str_field(params: Mapping[str, Any], name: str, method: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        # Malformed params never reach a handler through the guard: the
        # policy could not have judged them.
        raise AccessDenied(f"{method}: params.{name} must be a non-empty string")
    return value


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
#: Octets whose escape would let a decoding server read a different path than the policy matched:
#: a separator ('/', '\\'), a second level of encoding ('%') or the end of a C string.
_AMBIGUOUS = {0x2F: "'/'", 0x5C: "'\\'", 0x25: "'%' (nested encoding)", 0x00: "NUL"}
_UTF8_LEADS = {2: (0xC2, 0xDF), 3: (0xE0, 0xEF), 4: (0xF0, 0xF4)}
_HEX = frozenset("0123456789abcdefABCDEF")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(//([^/?#]*))?")


def canonical_uri(uri: str) -> str:
    """The spelling of a resource URI that policy rules are matched against.

    Servers percent-decode what they read from a URI (template parameters, file
    paths), so two spellings of the same resource must meet the same rules.
    Following RFC 3986 section 6.2.2, escapes of unreserved characters
    (``ALPHA DIGIT - . _ ~``) are decoded, the remaining escapes are written in
    upper case, and the scheme and host are lower-cased; escaped UTF-8 is read
    as the characters it encodes (RFC 3987 section 3.2), so a rule naming
    ``josé`` meets ``jos%C3%A9``. A URI a decoding server could read
    differently from any spelling a rule can name is refused: an escaped
    ``/``, ``\\``, ``%`` or NUL, a malformed escape, escaped octets that are
    not UTF-8, or a ``.``/``..`` path segment.
    """
    out: list[str] = []
    i = 0
    while i < len(uri):
        if uri[i] != "%":
            out.append(uri[i])
            i += 1
            continue
        octets = bytearray()
        while i < len(uri) and uri[i] == "%":
            pair = uri[i + 1 : i + 3]
            if len(pair) != 2 or not set(pair) <= _HEX:
                raise AccessDenied(f"resource URI {uri!r}: malformed percent-escape at offset {i}")
            octets.append(int(pair, 16))
            i += 3
        out.append(_unescaped(uri, bytes(octets)))
    text = "".join(out)
    found = _SCHEME.match(text)
    if found is not None:
        head = found.group(1).lower() + ":"
        if found.group(2) is not None:
            user, at, host = found.group(3).rpartition("@")
            head += "//" + user + at + host.lower()
        text = head + text[found.end() :]
    path = re.split(r"[?#]", text, maxsplit=1)[0]
    if any(seg in (".", "..") for seg in path.split("/")):
        raise AccessDenied(f"resource URI {uri!r}: a '.' or '..' path segment is refused")
    return text


def _unescaped(uri: str, octets: bytes) -> str:
    """One run of escaped octets in canonical form (see :func:`canonical_uri`)."""
    out: list[str] = []
    k = 0
    while k < len(octets):
        octet = octets[k]
        if octet < 0x80:
            if octet in _AMBIGUOUS:
                raise AccessDenied(f"resource URI {uri!r}: an encoded {_AMBIGUOUS[octet]} is refused")
            out.append(chr(octet) if chr(octet) in _UNRESERVED else f"%{octet:02X}")
            k += 1
            continue
        # The length of the UTF-8 sequence this lead octet starts (1: not a lead, decoding fails).
        size = next((n for n, (lo, hi) in _UTF8_LEADS.items() if lo <= octet <= hi), 1)
        try:
            out.append(octets[k : k + size].decode("utf-8"))  # a lone or stray octet fails here
        except UnicodeDecodeError:
            raise AccessDenied(f"resource URI {uri!r}: percent-encoded octets that are not UTF-8") from None
        k += size
    return "".join(out)


def _uri_field(params: Mapping[str, Any], method: str) -> str:
    return canonical_uri(_str_field(params, "uri", method))


def _arguments(params: Mapping[str, Any], method: str) -> Mapping[str, Any]:
    args = params.get("arguments")
    if args is None:
        return {}
    if type(args) is not dict and not isinstance(args, Mapping):  # dict first: the ABC check is slow
        raise AccessDenied(f"{method}: params.arguments must be an object")
    return args


def classify(
    method: str,
    params: Mapping[str, Any] | None,
    server: str,
    context: RequestContext | None = None,
    *,
    notification: bool = False,
) -> tuple[AccessRequest, MethodInfo]:
    """Classify one inbound message; raise :class:`MethodNotAllowed` for anything unknown."""
    p: Mapping[str, Any] = params if type(params) is dict or isinstance(params, Mapping) else {}
    if notification:
        if method not in NOTIFICATIONS:
            raise MethodNotAllowed(f"unknown notification {method!r}")
        return AccessRequest(method, "notify", server, context=context), _NOTIFY
    info = REQUESTS.get(method)
    if info is None:
        raise MethodNotAllowed(f"unknown method {method!r}")
    if info.kind == "tool":
        req = AccessRequest(
            method, info.action, server, "tool", _str_field(p, "name", method), _arguments(p, method), context
        )
    elif info.kind == "prompt":
        req = AccessRequest(
            method,
            info.action,
            server,
            "prompt",
            _str_field(p, "name", method),
            _arguments(p, method),
            context,
        )
    elif info.kind == "resource":
        req = AccessRequest(method, info.action, server, "resource", _uri_field(p, method), {}, context)
    elif method == "completion/complete":
        req = _classify_completion(p, server, context)
    elif method == "subscriptions/listen":
        req = AccessRequest(method, "listen", server, None, None, {"uris": listen_uris(p)}, context)
    else:
        req = AccessRequest(method, info.action, server, context=context)
    return req, info


_NOTIFY = MethodInfo("notify", housekeeping=True)


def _classify_completion(p: Mapping[str, Any], server: str, context: RequestContext | None) -> AccessRequest:
    ref = p.get("ref")
    if not isinstance(ref, Mapping):
        raise AccessDenied("completion/complete: params.ref must be an object")
    argument = p.get("argument")
    args: dict[str, Any] = {}
    if isinstance(argument, Mapping) and isinstance(argument.get("name"), str):
        args[argument["name"]] = argument.get("value")
    kind = ref.get("type")
    if kind == "ref/prompt":
        return AccessRequest(
            "completion/complete",
            "complete",
            server,
            "prompt",
            _str_field(ref, "name", "completion"),
            args,
            context,
        )
    if kind == "ref/resource":
        return AccessRequest(
            "completion/complete",
            "complete",
            server,
            "resource",
            _uri_field(ref, "completion"),
            args,
            context,
        )
    raise AccessDenied(f"completion/complete: unknown ref type {kind!r}")


def listen_uris(p: Mapping[str, Any]) -> list[str]:
    """Resource URIs a 2026-07-28 ``subscriptions/listen`` asks updates for (each is checked as subscribe)."""
    notifications = p.get("notifications")
    if notifications is None:
        return []
    if not isinstance(notifications, Mapping):
        raise AccessDenied("subscriptions/listen: params.notifications must be an object")
    uris = notifications.get("resourceSubscriptions") or []
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise AccessDenied("subscriptions/listen: resourceSubscriptions must be a list of strings")
    return [canonical_uri(u) for u in uris]


def item_name(kind: str, item: Mapping[str, Any]) -> str | None:
    """The name a policy matches for a list item: tool/prompt name, resource URI, template URI template."""
    if kind == "resource":
        value = item.get("uri")
        if isinstance(value, str):
            # Listed under the spelling requests are matched in (an ambiguous one as it stands).
            try:
                return canonical_uri(value)
            except AccessDenied:
                return value
    elif kind == "resource_template":
        value = item.get("uriTemplate")
    else:
        value = item.get("name")
    return value if isinstance(value, str) else None
