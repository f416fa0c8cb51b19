"""The extension functions conditions may call: ``in_cidr`` and ``path_within``.

:mod:`.conditions` registers them as built-ins for both evaluation paths,
and the closure compiler of :mod:`.celeval` specialises ``in_cidr`` with a
constant network using the same cached address parsing, so they sit in a
module below both.
"""

from __future__ import annotations

import ipaddress
import posixpath
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
