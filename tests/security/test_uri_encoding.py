"""A percent-encoded spelling of a denied resource URI is denied too (the server decodes it)."""

from __future__ import annotations

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict

RULES = [
    {"id": "read-hr", "effect": "allow", "resources": ["hr://users/*"]},
    {"id": "no-ceo", "effect": "deny", "resources": ["hr://users/ceo/*"]},
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "uri",
    [
        "hr://users/ceo/salary",
        "hr://users/%63eo/salary",
        "HR://USERS/c%65o/salary",
        "hr://users/%2563eo/salary",
    ],
)
async def test_encoded_uri_meets_the_deny_rule(uri: str) -> None:
    server = MCPServer("hr")

    @server.resource("hr://users/{name}/salary")
    def salary(name: str) -> str:
        return f"salary of {name}"

    guard = Guard(policy=policy_from_dict({"rules": RULES}), anonymous=Principal("eve"))
    guard.protect(server, read_env=False)
    async with Client(server, mode="legacy") as client:
        allowed = await client.read_resource("hr://users/bob/salary")
        assert allowed.contents[0].text == "salary of bob"  # type: ignore[union-attr]
        with pytest.raises(Exception, match="denied"):
            await client.read_resource(uri)
