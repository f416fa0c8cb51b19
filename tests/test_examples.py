"""The shipped examples and the demo run as a user would run them, and do what their docs say."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    env = {"MCP_GUARD_TOKEN": token} if token else {}
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


async def test_quickstart_server_refuses_a_forged_key(quickstart: Path) -> None:
    with pytest.raises(BaseException) as caught:
        async with Client(_params(quickstart, "forged"), mode="legacy") as client:
            await client.list_tools()
    assert first_mcp_error(caught.value).code == errors.AUTHENTICATION_REQUIRED


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
    # One call waits for an admin's approval, given with `mcp-guard approvals approve`.
    waited = out.split("alice publishes a note")[1].split("== ")[0]
    assert "progress: waiting for approval apr-" in waited and "(rule publishing-needs-approval)" in waited
    assert "approved by carol" in waited and "(exit 0)" in waited
    assert "notes__add_note(text='PUBLISH: Q3 numbers')  -> ok" in waited
    for name in ("state.db", "audit.db", "audit.key"):
        assert (tmp_path / "data" / name).is_file()
    assert (tmp_path / "data" / "audit.key").stat().st_mode & 0o077 == 0
