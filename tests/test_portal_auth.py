"""`serve` with `[authn.oauth]`: the SDK's 401 + RFC 9728 flow in front of the portal, refusals audited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from mcp_guard.config import load_config
from mcp_guard.portal import Portal

from .helpers import ListAuditor
from .http_util import free_port, serve
from .test_portal_support import EXAMPLES, client

KEY = "portal-auth-test-key"


def write_config(tmp_path: Path, port: int) -> Path:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    (tmp_path / "policy.toml").write_text(
        'version = 1\n[[rules]]\nid = "all-notes"\neffect = "allow"\nservers = ["notes"]\n'
    )
    path = tmp_path / "guard.toml"
    path.write_text(
        f"""
[guard]
server = "portal"
policy = "policy.toml"
state = "memory://"
audit = ["logging://"]

[[authn.api_keys]]
subject = "alice"
key_sha256 = "{digest}"
scopes = ["mcp"]

[authn.oauth]
issuer_url = "https://idp.example"
resource_server_url = "http://127.0.0.1:{port}/mcp"
required_scopes = ["mcp"]

[[servers]]
name = "notes"
command = "python"
args = ["{EXAMPLES / "notes_server.py"}"]
"""
    )
    return path


async def test_portal_with_oauth_settings_gives_the_standard_401_flow(tmp_path: Path) -> None:
    port = free_port()
    auditor = ListAuditor()
    portal = Portal.from_guard_config(load_config(write_config(tmp_path, port)), auditor=auditor)
    with serve(portal.streamable_http_app(port=port), port) as url:
        async with httpx.AsyncClient() as http:
            body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            hdrs = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
            refused = await http.post(url + "/mcp", json=body, headers=hdrs)
            assert refused.status_code == 401
            assert "resource_metadata=" in refused.headers["www-authenticate"]
            meta = await http.get(url + "/.well-known/oauth-protected-resource/mcp")
            assert meta.status_code == 200 and meta.json()["scopes_supported"] == ["mcp"]
        async with client(url, KEY) as c:
            assert "notes__search_notes" in [t.name for t in (await c.list_tools()).tools]
        with pytest.raises(BaseException) as caught:
            async with client(url, "forged") as c:
                await c.list_tools()
        # The 401 carries a JSON-RPC error body, which the SDK client surfaces as it is.
        assert "MCPError(-32001, 'Authentication required'" in repr(caught.value)
    authn = [e for e in auditor.events if e.event == "authn"]
    assert [e.reasons[0] for e in authn][:1] == ["no credential presented (HTTP 401)"]
    assert len(authn) == 2 and all(e.decision == "deny" for e in authn)
