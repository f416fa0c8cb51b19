"""Routing table: prefixes, collisions withheld from both upstreams, URI templates, cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mcp.shared.exceptions import MCPError

from mcp_guard.errors import GUARD_UNAVAILABLE
from mcp_guard.portal import build_catalog
from mcp_guard.portal.catalog import template_pattern
from mcp_guard.portal.portal import Portal, _decode_cursor, _encode_cursor

from .test_portal_support import make_guard


def tools(*names: str) -> dict[str, list[dict[str, object]]]:
    return {"tool": [{"name": n, "inputSchema": {"type": "object"}} for n in names]}


def test_prefixes_and_collisions() -> None:
    catalog = build_catalog(
        [
            ("a", "a__", tools("x", "y")),
            ("b", "", tools("a__x", "z")),  # b's unprefixed `a__x` collides with a's `x`
            ("c", "", tools("z")),  # `z` from b and c: withheld from both
        ]
    )
    assert sorted(catalog.routes["tool"]) == ["a__y"]
    assert catalog.collisions["tool"] == {"a__x", "z"}
    route = catalog.route("tool", "a__y")
    assert route is not None and (route.upstream, route.name) == ("a", "y")


def test_resources_keep_uris_and_collide_by_uri() -> None:
    catalog = build_catalog(
        [
            ("a", "a__", {"resource": [{"uri": "file:///x"}, {"uri": "file:///shared"}]}),
            (
                "b",
                "b__",
                {
                    "resource": [{"uri": "file:///shared"}],
                    "resource_template": [{"uriTemplate": "db://{t}/rows"}],
                },
            ),
        ]
    )
    assert catalog.route_uri("file:///x") is not None
    assert catalog.route_uri("file:///shared") is None
    route = catalog.route_uri("db://orders/rows")
    assert route is not None and route.upstream == "b"
    assert catalog.route_uri("db://orders/rows/extra") is None


def test_template_patterns() -> None:
    assert template_pattern("notes://note/{id}").fullmatch("notes://note/7")
    assert not template_pattern("notes://note/{id}").fullmatch("notes://note/7/8")
    assert template_pattern("file://{+path}").fullmatch("file:///etc/hosts")
    assert template_pattern("api://x{?q,page}").fullmatch("api://x?q=1&page=2")
    assert not template_pattern("a.b://{x}").fullmatch("aXb://1")  # literal parts are escaped


NAMES = st.text(alphabet="abcxyz_", min_size=1, max_size=4)


@given(st.lists(st.tuples(st.sampled_from(["u1", "u2", "u3"]), NAMES), max_size=20), st.booleans())
def test_every_public_name_routes_to_exactly_one_owner(pairs: list[tuple[str, str]], prefixed: bool) -> None:
    by_up: dict[str, list[str]] = {}
    for up, name in pairs:
        by_up.setdefault(up, []).append(name)
    served = [(up, f"{up}__" if prefixed else "", tools(*names)) for up, names in by_up.items()]
    catalog = build_catalog(served)
    owners: dict[str, list[str]] = {}
    for up, prefix, lists in served:
        for item in lists["tool"]:
            owners.setdefault(prefix + str(item["name"]), []).append(up)
    for public, who in owners.items():
        route = catalog.route("tool", public)
        if len(who) == 1:
            assert route is not None and route.upstream == who[0]
        else:
            assert route is None and public in catalog.collisions["tool"]


@given(st.integers(min_value=0, max_value=10**9))
def test_cursor_round_trip(offset: int) -> None:
    assert _decode_cursor(_encode_cursor(offset)) == offset


@given(st.text(max_size=20))
def test_bad_cursors_are_refused(text: str) -> None:
    try:
        value = _decode_cursor(text)
    except MCPError:
        return
    assert value >= 0


async def test_handlers_refuse_without_the_guard_middleware() -> None:
    from mcp import types

    portal = Portal(make_guard())

    class Ctx:
        session = None
        protocol_version = "2025-11-25"
        meta = None
        request_id = 1

    with pytest.raises(MCPError) as exc:
        await portal._call_tool(Ctx(), types.CallToolRequestParams(name="x", arguments={}))
    assert exc.value.code == GUARD_UNAVAILABLE
