"""The portal's routing table: which downstream name or URI belongs to which upstream.

Built from the items each upstream currently serves (after approval, pins and
sanitizer verdicts), independent of any caller. A name or URI that two
upstreams would expose is withheld from both: routing it to either would let
one upstream impersonate the other's tool. Per-caller filtering happens later,
in each upstream's guarded session.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..classify import canonical_uri
from ..errors import AccessDenied

logger = logging.getLogger("mcp_guard.portal")

#: MCP list kinds the portal aggregates, with the key of their list result.
LIST_KEYS: Mapping[str, str] = {
    "tool": "tools",
    "prompt": "prompts",
    "resource": "resources",
    "resource_template": "resourceTemplates",
}

#: Kinds whose names get the upstream's prefix; resources keep their URIs.
PREFIXED = frozenset({"tool", "prompt"})


def item_key(kind: str, item: Mapping[str, Any]) -> str | None:
    value = item.get(
        "uriTemplate" if kind == "resource_template" else "uri" if kind == "resource" else "name"
    )
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class Route:
    """One served item: which upstream, its own name there, and its wire form."""

    upstream: str
    name: str
    item: Mapping[str, Any]


@dataclass(slots=True)
class Catalog:
    """Downstream name/URI -> :class:`Route`, per kind, plus the names withheld for collisions."""

    routes: dict[str, dict[str, Route]] = field(default_factory=lambda: {k: {} for k in LIST_KEYS})
    collisions: dict[str, set[str]] = field(default_factory=lambda: {k: set() for k in LIST_KEYS})
    templates: list[tuple[re.Pattern[str], Route]] = field(default_factory=list)

    def route(self, kind: str, name: str) -> Route | None:
        return self.routes[kind].get(name)

    def route_uri(self, uri: str) -> Route | None:
        """A concrete resource, else the single upstream whose URI template matches ``uri``."""
        found = self.routes["resource"].get(uri)
        if found is None:
            with contextlib.suppress(AccessDenied):  # the guard refuses that spelling itself
                found = self.routes["resource"].get(canonical_uri(uri))
        if found is not None:
            return found
        if uri in self.collisions["resource"]:
            return None
        owners = {r.upstream: r for pattern, r in self.templates if pattern.fullmatch(uri)}
        if len(owners) == 1:
            return next(iter(owners.values()))
        return None


def build_catalog(served: Sequence[tuple[str, str, Mapping[str, Sequence[Mapping[str, Any]]]]]) -> Catalog:
    """Combine ``(upstream name, prefix, {kind: items})`` into one routing table."""
    catalog = Catalog()
    for kind in LIST_KEYS:
        seen: dict[str, Route] = {}
        dropped: set[str] = set()
        for upstream, prefix, lists in served:
            for item in lists.get(kind, ()):
                own = item_key(kind, item)
                if own is None:
                    continue
                public = prefix + own if kind in PREFIXED else own
                if public in dropped:
                    continue
                if public in seen:
                    if seen[public].upstream != upstream:
                        logger.warning(
                            "%s %r is exposed by both %r and %r: withheld from both",
                            kind,
                            public,
                            seen[public].upstream,
                            upstream,
                        )
                    del seen[public]
                    dropped.add(public)
                    continue
                seen[public] = Route(upstream, own, item)
        catalog.routes[kind] = seen
        catalog.collisions[kind] = dropped
    for route in catalog.routes["resource_template"].values():
        catalog.templates.append((template_pattern(route.name), route))
    return catalog


_EXPR = re.compile(r"\{([+#./;?&]?)([^}]*)\}")


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex for the URIs an RFC 6570 template can expand to (simple and reserved expansion)."""
    out: list[str] = []
    pos = 0
    for m in _EXPR.finditer(template):
        out.append(re.escape(template[pos : m.start()]))
        op = m.group(1)
        if op in ("+", "#"):
            out.append(".*")
        elif op in ("?", "&"):
            out.append(r"(?:[?&][^#]*)?")
        else:
            out.append(r"[^/?#]*")
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out))


def public_item(kind: str, public: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """The item as the downstream client sees it: renamed for tools and prompts."""
    item = dict(item)
    if kind in PREFIXED:
        item["name"] = public
    return item


__all__ = ["LIST_KEYS", "Catalog", "Route", "build_catalog", "item_key", "public_item", "template_pattern"]
