"""``mcp-guard demo``: a scripted end-to-end run of the portal on embedded defaults.

Three example upstreams (one of them poisoned) behind one guarded URL on
127.0.0.1, two users with different roles connecting over streamable HTTP with
real MCP clients, and the audit trail read back and verified at the end. State
and audit live in SQLite under ``./.mcp-guard/`` (created on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError

KEYS = {"alice": "alice-demo-key", "bob": "bob-demo-key"}


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="run the scripted end-to-end demo (portal, two users, audit)")
    p.add_argument("--data-dir", default=".mcp-guard", help="where state and audit go (default ./.mcp-guard)")
    p.add_argument("--serve", action="store_true", help="keep the portal serving after the scenario")
    p.add_argument("--port", type=int, default=0, help="port for the portal (default: a free one)")
    p.set_defaults(func=run)


def _example_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "examples" / "portal"
    if not (here / "guard.toml").is_file():
        raise ConfigError("the demo runs from a source checkout (examples/portal/guard.toml not found)")
    return here


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Printer:
    def __init__(self) -> None:
        self.step = 0

    def section(self, title: str) -> None:
        self.step += 1
        print(f"\n== {self.step}. {title}")

    @staticmethod
    def line(text: str) -> None:
        print(f"   {text}")


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_scenario(args))


async def _scenario(args: argparse.Namespace) -> int:
    import uvicorn

    from ..config import load_config
    from ..portal import Portal

    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    example = _example_dir()
    config = load_config(example / "guard.toml")
    config = config.model_copy(
        update={
            "guard": config.guard.model_copy(
                update={"state": f"sqlite:///{data}/state.db", "audit": [f"sqlite:///{data}/audit.db"]}
            ),
            "audit": {**config.audit, "key_file": str(data / "audit.key")},
        }
    )
    port = args.port or _free_port()
    out = _Printer()
    print("mcp-guard demo: one guarded portal in front of three MCP servers")
    print(f"   state and audit: {data}/ (SQLite)   portal: http://127.0.0.1:{port}/mcp")
    portal = Portal.from_guard_config(config)
    app = portal.streamable_http_app(port=port)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()
                return 1
            await asyncio.sleep(0.05)
        await _walkthrough(out, f"http://127.0.0.1:{port}/mcp")
        await _approval(out, f"http://127.0.0.1:{port}/mcp", example / "guard.toml", data)
        if args.serve:
            out.section("Serving until Ctrl-C")
            out.line(f"connect with: Authorization: Bearer {KEYS['alice']}  (or {KEYS['bob']})")
            with contextlib.suppress(asyncio.CancelledError):
                await serving
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await serving
        await portal.guard.aclose()
    return _show_audit(out, data)


def _client(url: str, key: str) -> Any:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(30, read=300)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=timeout)
    return Client(streamable_http_client(url, http_client=http), mode="legacy")


async def _try(out: _Printer, label: str, call: Any) -> Any:
    from mcp.shared.exceptions import MCPError

    try:
        result = await call
    except MCPError as exc:
        out.line(f"{label:44} -> refused: {exc.message} (code {exc.code})")
        return None
    out.line(f"{label:44} -> ok: {_shown(result)}")
    return result


def _shown(result: Any) -> str:
    """A call's result in one line; an empty one says so instead of printing ``''``."""
    structured = getattr(result, "structured_content", None)
    value: Any = structured.get("result", structured) if isinstance(structured, dict) else None
    if value is None:
        content = getattr(result, "content", None) or ()
        value = " ".join(getattr(c, "text", "") for c in content).strip()
    if value in ("", [], {}, None):
        return "empty result (nothing matched)"
    return clip(value if isinstance(value, str) else repr(value), 60)


def clip(text: str, width: int) -> str:
    """``text`` on one line, at most ``width`` characters, cut between words with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[: width - 1]
    space = cut.rfind(" ")
    if space > width // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:(") + "\u2026"


def _refusal(exc: BaseException) -> str:
    """What refused a connection: the MCP error inside the SDK's exception groups, or the HTTP status."""
    from mcp.shared.exceptions import MCPError

    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        if isinstance(current, MCPError):
            return f"{current.message} (code {current.code})"
        status = getattr(getattr(current, "response", None), "status_code", None)
        if isinstance(status, int):
            return f"HTTP {status}"
        pending.extend(getattr(current, "exceptions", ()))
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return f"{type(exc).__name__}: {exc}"


async def _walkthrough(out: _Printer, url: str) -> None:
    for user in ("alice", "bob"):
        async with _client(url, KEYS[user]) as c:
            tools = sorted(t.name for t in (await c.list_tools()).tools)
            role = "analyst" if user == "alice" else "viewer"
            out.section(f"{user} ({role}) lists tools: sees {len(tools)}")
            out.line(", ".join(tools))
            out.line("weather's poisoned 'weather_alerts' is absent: the sanitizer withheld it for everyone")
    out.section("alice (analyst) works")
    async with _client(url, KEYS["alice"]) as c:
        await _try(
            out, "notes__search_notes(query='keys')", c.call_tool("notes__search_notes", {"query": "keys"})
        )
        await _try(
            out, "notes__add_note(text='demo note')", c.call_tool("notes__add_note", {"text": "demo note"})
        )
        await _try(out, "wx_forecast(city='Oslo')", c.call_tool("wx_forecast", {"city": "Oslo"}))
        await _try(
            out,
            "time__get_current_time(timezone='UTC')",
            c.call_tool("time__get_current_time", {"timezone": "UTC"}),
        )
        await _try(
            out, "notes__delete_note(index=1)  [needs MFA]", c.call_tool("notes__delete_note", {"index": 1})
        )
        await _try(
            out,
            "wx_weather_alerts(city='Oslo')  [poisoned]",
            c.call_tool("wx_weather_alerts", {"city": "Oslo"}),
        )
    out.section("bob (viewer) tries more than his role allows")
    async with _client(url, KEYS["bob"]) as c:
        await _try(
            out,
            "notes__search_notes(query='numbers')",
            c.call_tool("notes__search_notes", {"query": "numbers"}),
        )
        await _try(out, "notes__add_note(text='sneaky')", c.call_tool("notes__add_note", {"text": "sneaky"}))
        await _try(
            out,
            "time__convert_time(...)",
            c.call_tool(
                "time__convert_time",
                {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"},
            ),
        )
    out.section("a caller with a forged key")
    try:
        async with _client(url, "forged-key") as c:
            await c.list_tools()
        out.line("unexpectedly accepted")
    except Exception as exc:  # the client raises a group from its task group
        out.line(f"refused before any MCP method ran: {_refusal(exc)}")
    out.line(f"the same request with curl gets: {await _raw_status(url)}")


async def _raw_status(url: str) -> str:
    """The HTTP answer to a ``tools/list`` with a forged key, as a plain HTTP client sees it."""
    import httpx

    headers = {
        "Authorization": "Bearer forged-key",
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    async with httpx.AsyncClient() as http:
        response = await http.post(url, json=body, headers=headers)
    text = clip(response.text, 90) if response.text else "no body"
    return f"HTTP {response.status_code}, {text}"


async def _approval(out: _Printer, url: str, config: Path, data: Path) -> None:
    """One call that waits for an admin's approval, decided with ``mcp-guard approvals approve``."""
    from ..approvals import ApprovalBook
    from ..store import open_store
    from .main import main

    out.section("alice publishes a note: the policy wants an admin's approval first")
    state = f"sqlite:///{data}/state.db"
    store = open_store(state)
    notes: list[str] = []

    async def approve_when_asked() -> None:
        book = ApprovalBook(store, notifiers=())
        while not (pending := await book.list()):
            await asyncio.sleep(0.1)
        request = pending[0]
        where = f"{request.server}/{request.target}"
        out.line(
            f"pending {request.id}: {request.subject} -> {where} {request.arguments} (rule {request.rule})"
        )
        argv = ["approvals", "approve", request.id, "--as", "carol", "--note", "demo"]
        out.line(f"$ mcp-guard {' '.join(argv)}")
        code = await asyncio.to_thread(main, [*argv, "--config", str(config), "--state", state])
        out.line(f"(exit {code})")

    async def progress(value: float, total: float | None, message: str | None) -> None:
        if not notes:
            out.line(f"progress: {message}")
        notes.append(message or "")

    try:
        async with _client(url, KEYS["alice"]) as c:
            deciding = asyncio.create_task(approve_when_asked())
            call = c.call_tool("notes__add_note", {"text": "PUBLISH: Q3 numbers"}, progress_callback=progress)
            await _try(out, "notes__add_note(text='PUBLISH: Q3 numbers')", call)
            await deciding
    finally:
        await store.aclose()


def _show_audit(out: _Printer, data: Path) -> int:
    from ..audit.chain import AnchorError, read_anchor
    from ..audit.keys import load_key_file
    from ..audit.query import Filters, query
    from ..audit.verify import StoreError, VerifyResult, store_rows, verify_rows

    store = data / "audit.db"
    out.section("the audit trail (newest 40 decisions, oldest first)")
    for r in query(store, Filters(), 40, newest=True):
        principal = r.get("principal") or {}
        who = principal.get("subject", "-") if isinstance(principal, dict) else "-"
        target = f"{r.get('server') or ''}/{r.get('target') or ''}".strip("/")
        why = r.get("rule") or ""
        if r.get("decision") != "allow" and r.get("reasons"):
            reason = str(r["reasons"][0])
            why = reason if why in reason else f"{why}: {reason}"
        out.line(f"{who:10} {r.get('method')!s:26} {target:28} {r.get('decision')!s:6} {clip(why, 70)}")
    out.section("verify the hash chain (same check as `mcp-guard audit verify`)")
    keys = load_key_file(data / "audit.key")
    try:
        anchor = read_anchor(data / "audit.anchor", keys)
        result = verify_rows(store_rows(store), keys, anchor)
    except (AnchorError, StoreError) as exc:
        result = VerifyResult(False, 0, str(exc))
    out.line(result.message if result.ok else f"FAIL: {result.message}")
    print()
    return 0 if result.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run(argparse.Namespace(data_dir=".mcp-guard", serve=False, port=0)))
