"""The shipped examples and the demo run as a user would run them, and do what their docs say."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_guard import errors

from .test_core_memory import first_mcp_error

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def quickstart(tmp_path: Path) -> Path:
    """A copy of the quick-start server and its config, so its SQLite state stays in tmp."""
    shutil.copy(EXAMPLES / "quickstart_server.py", tmp_path)
    shutil.copytree(EXAMPLES / "quickstart", tmp_path / "quickstart")
    return tmp_path / "quickstart_server.py"


def _params(script: Path, token: str | None) -> StdioServerParameters:
    env = {"PYTHONPATH": str(ROOT)}  # this tree's mcp_guard, whatever the venv has installed
    if token:
        env["MCP_GUARD_TOKEN"] = token
    return StdioServerParameters(command=sys.executable, args=[str(script)], env=env, cwd=str(script.parent))


def test_quickstart_server_keeps_its_guard_code_short() -> None:
    lines = (EXAMPLES / "quickstart_server.py").read_text().splitlines()
    guard_lines = [line for line in lines if "guard" in line.lower() and not line.lstrip().startswith("#")]
    code = [line for line in guard_lines if not line.lstrip().startswith(('"', "Run", "MCP_GUARD"))]
    assert 1 <= len(code) <= 10, code


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_quickstart_server_over_stdio(quickstart: Path, mode: str) -> None:
    async with Client(_params(quickstart, "demo-key-alice"), mode=mode) as alice:
        names = sorted(t.name for t in (await alice.list_tools()).tools)
        assert names == ["add_note", "list_notes", "search_notes"]  # delete_notes is denied to all
        found = await alice.call_tool("search_notes", {"query": "milk"})
        assert found.structured_content == {"result": ["buy milk"]}
        stored = await alice.call_tool("add_note", {"text": "short"})
        assert stored.structured_content == {"result": "stored note 3"}
        with pytest.raises(MCPError) as denied:
            await alice.call_tool("add_note", {"text": "x" * 201})  # the rule's `when` fails
        assert denied.value.code == errors.ACCESS_DENIED
        with pytest.raises(MCPError) as hidden:
            await alice.call_tool("delete_notes", {"query": "milk"})
        assert hidden.value.code == errors.ACCESS_DENIED
    async with Client(_params(quickstart, "demo-key-bob"), mode=mode) as bob:
        assert sorted(t.name for t in (await bob.list_tools()).tools) == ["list_notes", "search_notes"]
        with pytest.raises(MCPError):
            await bob.call_tool("add_note", {"text": "sneaky"})
    assert (quickstart.parent / "quickstart" / ".mcp-guard" / "audit.db").is_file()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("token", [None, "forged"])
async def test_quickstart_server_refuses_a_forged_or_missing_key(
    quickstart: Path, mode: str, token: str | None
) -> None:
    """What docs/quickstart.md promises: -32001, whichever handshake the client starts with."""
    with pytest.raises(BaseException) as caught:
        async with Client(_params(quickstart, token), mode=mode) as client:
            await client.list_tools()
    error = first_mcp_error(caught.value)
    assert (error.code, error.message) == (errors.AUTHENTICATION_REQUIRED, "Authentication required")


def _run(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_guarded_client_example(tmp_path: Path) -> None:
    done = _run(str(EXAMPLES / "guarded_client.py"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tools the model sees: ['forecast']"  # admin_reset: policy; air_quality: poisoned
    assert "forecast: Sunny in Oslo" in lines
    assert any(line.startswith("air_quality: refused") for line in lines)
    assert any(line.startswith("admin_reset: refused") for line in lines)


def test_demo_runs_end_to_end_on_embedded_defaults(tmp_path: Path) -> None:
    done = _run("-m", "mcp_guard", "demo", "--data-dir", str(tmp_path / "data"), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "alice (analyst) lists tools: sees 7" in out
    assert "bob (viewer) lists tools: sees 3" in out
    assert "weather_alerts" not in out.split("== 3.")[0].split("sees 7")[1].splitlines()[1]
    assert "notes__add_note(text='sneaky')" in out and "refused" in out
    assert "ok: " in out.split("verify the hash chain")[1]
    assert "ok: ''" not in out  # an empty result says so
    forged = out.split("a caller with a forged key")[1].split("==")[0]
    assert "Authentication required (code -32001)" in forged and "HTTP 401" in forged
    trail = out.split("the audit trail")[1].split("verify the hash chain")[0]
    poisoned = next(line for line in trail.splitlines() if "wx_weather_alerts" in line)
    assert "withheld on upstream 'weather'" in poisoned, poisoned  # what really happened
    for line in trail.splitlines():  # reasons are cut between words, with an ellipsis
        words = line.split()
        assert not words or words[-1].endswith("\u2026") or len(line) < 3 + 10 + 27 + 29 + 7 + 70, line
    # One call waits for an admin's approval, given with `mcp-guard approvals approve`.
    waited = out.split("alice publishes a note")[1].split("== ")[0]
    assert "progress: waiting for approval apr-" in waited and "(rule publishing-needs-approval)" in waited
    assert "approved by carol" in waited and "(exit 0)" in waited
    assert "notes__add_note(text='PUBLISH: Q3 numbers')  -> ok" in waited
    for name in ("state.db", "audit.db", "audit.key"):
        assert (tmp_path / "data" / name).is_file()
    assert (tmp_path / "data" / "audit.key").stat().st_mode & 0o077 == 0


async def test_fastmcp_example_over_stdio(tmp_path: Path) -> None:
    pytest.importorskip("fastmcp")
    shutil.copy(EXAMPLES / "fastmcp_server.py", tmp_path)
    shutil.copytree(EXAMPLES / "quickstart", tmp_path / "quickstart")
    script = tmp_path / "fastmcp_server.py"
    guard_lines = [line for line in script.read_text().splitlines() if line.startswith("guard.")]
    assert guard_lines == ["guard.protect(mcp)  # the guard line"]
    params = _params(script, "demo-key-bob")
    params.env = {**(params.env or {}), "PYTHONPATH": str(ROOT)}  # this checkout's mcp_guard
    async with Client(params) as bob:
        assert sorted(t.name for t in (await bob.list_tools()).tools) == ["list_notes", "search_notes"]
        found = await bob.call_tool("search_notes", {"query": "milk"})
        assert "buy milk" in str(found.content)
        with pytest.raises(MCPError) as denied:
            await bob.call_tool("add_note", {"text": "x"})
        assert denied.value.code == errors.ACCESS_DENIED
    assert (tmp_path / "quickstart" / ".mcp-guard" / "audit.db").is_file()


def _python_blocks(section: str) -> list[str]:
    text = (ROOT / "docs" / "quickstart.md").read_text()
    part = text.split(section, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return [block.split("```", 1)[0] for block in part.split("```python\n")[1:]]


@pytest.mark.parametrize(("key", "expected"), [("demo-key-bob", "['search_notes']"), ("wrong-key", None)])
async def test_quickstart_http_recipe_as_documented(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    key: str,
    expected: str | None,
) -> None:
    """The HTTP server and client of docs/quickstart.md, run as written (port and key swapped in)."""
    import warnings

    from .http_util import free_port
    from .test_serve_http import running

    server_code, client_code = _python_blocks("### Over streamable HTTP, with a bearer token")[:2]
    shutil.copytree(EXAMPLES / "quickstart", tmp_path / "examples" / "quickstart")
    monkeypatch.chdir(tmp_path)
    port = free_port()
    server_ns: dict[str, object] = {"__name__": "notes_http"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the recipe starts without deprecation warnings
        exec(server_code, server_ns)  # not __main__: the test serves it on a free port below
    client_code = client_code.replace("8000", str(port)).replace("demo-key-bob", key)
    client_code = client_code.replace("asyncio.run(main())", "")
    client_ns: dict[str, object] = {"__name__": "http_client"}
    exec(client_code, client_ns)
    guard: Any = server_ns["guard"]
    with running(guard.http_server(server_ns["mcp"], port=port)):
        await client_ns["main"]()  # type: ignore[operator]
    out = capsys.readouterr().out.splitlines()
    if expected is None:
        assert out == ["refused: -32001 Authentication required"]
    else:
        assert out == [expected, "{'result': ['ship mcp-guard']}"]
    assert "_httpx_utils" not in client_code  # only the SDK's public API
