"""The official MCP conformance suite through a default portal (``prefix = ""`` in front of the fixtures).

No ``callbacks``: sampling, elicitation and log messages reach the caller on the shared session.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .http_util import free_port

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE_SH = ROOT.parent / "shared" / "tools" / "conformance.sh"
PORTAL = ROOT / "examples" / "portal" / "conformance_portal.py"


def _wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "portal exited"
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            assert time.monotonic() < deadline, "portal did not start"
            time.sleep(0.1)


@pytest.mark.shared
def test_official_conformance_suite_passes_through_the_portal() -> None:
    if not CONFORMANCE_SH.is_file():
        pytest.skip(f"{CONFORMANCE_SH} not found: the shared conformance tools are not checked out")
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: conformance.sh installs the suite with npm")
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    proc = subprocess.Popen(
        [sys.executable, str(PORTAL), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        _wait_ready(url, proc)
        run = subprocess.run(["bash", str(CONFORMANCE_SH), url], capture_output=True, text=True, timeout=900)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    assert run.returncode == 0, f"{last}\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    match = re.fullmatch(r"conformance: (\d+) passed, 0 failed", last)
    assert match and int(match.group(1)) >= 40, last
