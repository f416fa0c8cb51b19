"""The extension functions conditions may call: ``in_cidr`` and ``path_within``.

:mod:`.conditions` registers them as built-ins for both evaluation paths,
and the closure compiler of :mod:`.celeval` specialises ``in_cidr`` with a
constant network using the same cached address parsing, so they sit in a
module below both.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from .celvalues import EvalError

__all__ = ["in_cidr", "path_within"]

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


#: ``scheme://authority`` at the start of a URI (``C:\\dir`` and ``urn:x`` are paths, not URIs).
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://([^/\\?#]*)(.*)$", re.DOTALL)
#: A percent-encoded dot, slash or backslash: a segment boundary that some reader sees and another not.
_ENCODED_SEPARATOR = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)
_MAX_DECODES = 8


class _Refused(Exception):
    """The path cannot be judged safely: ``path_within`` is false."""


def _split(value: str) -> tuple[str, list[str]]:
    """``(origin, readings)``: ``scheme://authority`` (``""`` for plain paths and ``file:`` URIs)
    and each way the path may be read.

    A URI's path is read both with and without its ``?query`` / ``#fragment``: a URL
    parser drops them, an object store takes ``?`` as part of the key. Every percent
    encoding level is looked at: one hiding a dot, slash or backslash (``%2e``,
    ``%252f``, ...) is refused rather than decoded, since a server that splits
    segments before decoding and one that decodes first would disagree on where
    the path leads.
    """
    level = value
    for _ in range(_MAX_DECODES):
        if _ENCODED_SEPARATOR.search(level):
            raise _Refused
        decoded = unquote(level)
        if decoded == level:
            break
        level = decoded
    else:
        raise _Refused  # still changing: nested deeper than any reader decodes
    match = _URI.match(value)
    if match is None:
        return "", [value]
    scheme, authority, path = match.groups()
    origin = "" if scheme.lower() == "file" else f"{scheme.lower()}://{authority}"
    path = unquote(path)
    if not path.startswith(("/", "\\")):
        path = "/" + path
    cut = re.split(r"[?#]", path, maxsplit=1)[0]
    return origin, [path] if cut == path else [path, cut]


def _clean_path(value: str) -> str:
    if "\x00" in value:
        raise EvalError("path contains a NUL byte")
    return posixpath.normpath(value.replace("\\", "/"))


def _within(p: str, r: str) -> bool:
    if p.startswith("/") != r.startswith("/"):
        return False
    if not r.startswith("/") and (p == ".." or p.startswith("../")):
        return False
    if r in ("/", "."):
        return True if r == "/" else not (p == ".." or p.startswith("../"))
    return p == r or p.startswith(r + "/")


def path_within(path: Any, root: Any) -> bool:
    """Whether ``path``, after resolving ``.``/``..`` and backslashes, stays inside ``root``.

    URIs (``scheme://authority/path``) are within only under the same scheme and
    authority; ``file://`` URIs compare as plain paths. A percent-encoded dot,
    slash or backslash, at any encoding depth and in any path, makes the answer
    false; other encodings in a URI are decoded. A relative path is never within
    an absolute root: the server may resolve it against a directory the policy
    cannot know, so the check fails closed.
    """
    if not isinstance(path, str) or not isinstance(root, str):
        raise EvalError("path_within() needs two strings")
    if "\x00" in path or "\x00" in root:
        raise EvalError("path contains a NUL byte")
    try:
        p_origin, readings = _split(path)
        r_origin, (r_path, *_) = _split(root)
    except _Refused:
        return False
    if p_origin != r_origin:
        return False
    r = _clean_path(r_path)
    return all(_within(_clean_path(p), r) for p in readings)
