"""Step-up at call time: the caller is sent to the step-up page, signs in with a real TOTP, the call runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, types
from mcp.shared.exceptions import MCPError
from starlette.applications import Starlette

from mcp_guard.authn import totp
from mcp_guard.authn.issuer import TokenIssuer
from mcp_guard.authn.lockout import Lockout, LockoutPolicy
from mcp_guard.authn.login import LoginService
from mcp_guard.authn.passwords import hash_password
from mcp_guard.authn.stepup import StepUps, step_up_routes
from mcp_guard.authn.users import User, UsersFile
from mcp_guard.errors import ACCESS_DENIED, URL_ELICITATION_REQUIRED
from mcp_guard.guard import Guard
from mcp_guard.model import Principal
from mcp_guard.policy import policy_from_dict
from mcp_guard.store import MemoryStore

from .helpers import ListAuditor
from .test_hitl_approvals import bank

PASSWORD = "correct horse battery staple"
SECRET = totp.new_secret()
PAGE = "http://guard.test/login/step-up"


def world(tmp_path: Path) -> tuple[Any, Guard, httpx.AsyncClient]:
    store = MemoryStore()
    users = UsersFile(tmp_path / "users.json")
    users.put(User("olga", hash_password(PASSWORD, "scrypt"), SECRET, roles=("ops",)))
    users.put(User("mallory", hash_password(PASSWORD, "scrypt"), SECRET))
    service = LoginService(users, TokenIssuer(tmp_path / "keys"), Lockout(store, LockoutPolicy()), store)
    step_ups = StepUps(store, PAGE)
    rule = {"id": "transfers", "effect": "allow", "tools": ["transfer"], "step_up": "15m"}
    guard = Guard(
        policy=policy_from_dict({"rules": [rule]}),
        auditor=ListAuditor(),
        anonymous=Principal("olga", roles=frozenset({"ops"})),  # an API-key-like credential: no MFA
        store=store,
        step_ups=step_ups,
    )
    server = bank()
    guard.protect(server, read_env=False)
    page = Starlette(routes=step_up_routes(service, step_ups))
    browser = httpx.AsyncClient(transport=httpx.ASGITransport(app=page), base_url="http://guard.test")
    return server, guard, browser


async def sign_in(browser: httpx.AsyncClient, url: str, user: str = "olga") -> httpx.Response:
    step_id = httpx.URL(url).params["id"]
    form = await browser.get(url)
    assert form.status_code == 200 and f'value="{step_id}"' in form.text
    code = totp.code_at(SECRET, totp.current_step())
    data = {"id": step_id, "username": user, "password": PASSWORD, "totp": code}
    return await browser.post("/login/step-up", data=data)


async def test_2025_url_elicitation_then_the_call_runs(tmp_path: Path) -> None:
    server, _, browser = world(tmp_path)
    seen: list[str] = []

    async def open_link(context: Any, params: Any) -> types.ElicitResult:
        assert params.mode == "url"
        seen.append(params.url)
        done = await sign_in(browser, params.url)
        assert done.status_code == 200 and "Done" in done.text
        return types.ElicitResult(action="accept")

    async with Client(server, mode="legacy", elicitation_callback=open_link) as client:
        result = await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert result.is_error is False and seen[0].startswith(PAGE + "?id=")
    assert server.transfers == [(5, "bob")]


async def test_2026_url_elicitation_required_then_the_retry_runs(tmp_path: Path) -> None:
    server, _, browser = world(tmp_path)
    async with Client(server, mode="auto") as client:
        with pytest.raises(MCPError) as required:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
        assert required.value.error.code == URL_ELICITATION_REQUIRED
        (item,) = required.value.error.data["elicitations"]
        assert item["mode"] == "url" and item["url"].startswith(PAGE)
        wrong = await sign_in(browser, item["url"], user="mallory")  # another user cannot step up for olga
        assert wrong.status_code == 400
        with pytest.raises(MCPError) as still:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
        assert still.value.error.code == URL_ELICITATION_REQUIRED
        (item,) = still.value.error.data["elicitations"]
        assert (await sign_in(browser, item["url"])).status_code == 200
        assert (await client.call_tool("transfer", {"amount": 5, "to": "bob"})).is_error is False
        replay = await sign_in(browser, item["url"])  # neither the link nor the code works twice
        assert replay.status_code in (400, 401) and "Done" not in replay.text
    assert server.transfers == [(5, "bob")]


async def test_a_wrong_code_on_the_page_steps_nobody_up(tmp_path: Path) -> None:
    server, _, browser = world(tmp_path)
    async with Client(server, mode="auto") as client:
        with pytest.raises(MCPError) as required:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
        url = required.value.error.data["elicitations"][0]["url"]
        step_id = httpx.URL(url).params["id"]
        data = {"id": step_id, "username": "olga", "password": PASSWORD, "totp": "000000"}
        assert (await browser.post("/login/step-up", data=data)).status_code == 401
        with pytest.raises(MCPError):
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert server.transfers == []


async def test_a_declined_link_refuses_the_call(tmp_path: Path) -> None:
    server, _, _ = world(tmp_path)

    async def decline(context: Any, params: Any) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    async with Client(server, mode="legacy", elicitation_callback=decline) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("transfer", {"amount": 5, "to": "bob"})
    assert refused.value.error.code == ACCESS_DENIED and server.transfers == []


def test_the_config_turns_the_step_up_page_on(tmp_path: Path) -> None:
    from mcp_guard.config import load_config
    from mcp_guard.errors import ConfigError
    from mcp_guard.portal.serving import http_auth

    config = tmp_path / "guard.toml"
    config.write_text('[authn.passwords]\nstep_up_url = "https://guard.example/auth/step-up"\n')
    guard = Guard.from_config(config)
    assert guard.step_ups is not None and guard.step_ups.url == "https://guard.example/auth/step-up"
    routes = http_auth(load_config(config), guard)["custom_starlette_routes"]
    assert "/auth/step-up" in [r.path for r in routes]
    config.write_text('[authn.passwords]\nstep_up_url = "/login/step-up"\n')
    with pytest.raises(ConfigError, match="step_up_url"):
        load_config(config)
    assert Guard.from_config(_plain(tmp_path)).step_ups is None  # no URL: refused as before


def _plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.toml"
    path.write_text("[authn.passwords]\n")
    return path
