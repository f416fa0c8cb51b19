"""Instructions per call of a portal, under callgrind: a measure the machine's load does not move.

CPU time per call (``portal.py``) drifts with what else runs on the machine;
the number of instructions a portal executes per call does not. This runs the
upstream of ``portal.py`` natively and each portal named on the command line
(the modes of ``portal.py``: ``lane``, ``lane-before``, ``lane-h11``,
``lane-flush200``, ...; ``direct``: a second upstream, the bare SDK server)
under ``valgrind --tool=callgrind`` with instrumentation off, so start-up runs
at near native speed. One client opens a session and warms up; then
instrumentation is switched on, ``CG_CALLS`` calls (60) are made, and the
instructions of all the server's threads (for a portal its event loop and the
audit flusher) are divided by the calls. Kernel time (system calls) is not
counted: ``send`` and ``epoll`` cost what they cost either way.

Run: ``.venv/bin/python benchmarks/portal_instructions.py lane lane-before`` (needs valgrind).
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import anyio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import portal as bench  # noqa: E402

CALLS = int(os.environ.get("CG_CALLS", "60"))


async def calls(url: str, pid: int, tool: str = "notes__echo") -> None:
    """Warm up, switch callgrind's counting on, and make the measured calls."""
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {bench.KEY}"})
    async with http, streamable_http_client(url, http_client=http) as (r, w), ClientSession(r, w) as session:
        await session.initialize()
        for _ in range(20):
            await session.call_tool(tool, {"text": "x"})
        for switch in (["-i", "on"], ["-z"]):
            subprocess.run(["callgrind_control", *switch, str(pid)], check=True, capture_output=True)
        for _ in range(CALLS):
            result = await session.call_tool(tool, {"text": "hello"})
            assert not result.is_error, result


def measure(mode: str, upstream: str, out_dir: Path) -> float:
    """Instructions per call of the portal ``mode`` (see the module docstring)."""
    port = bench.free_port()
    out = out_dir / f"callgrind.{mode}.out"
    # ``direct``: a second upstream, measured the same way (what a bare SDK server does per call).
    served = ["--upstream", str(port)]
    if mode != "direct":
        served = ["--portal", str(port), upstream, tempfile.mkdtemp(dir=out_dir), mode]
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(HERE / "portal.py"),
        *served,
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=out_dir)
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        bench.wait_http(url, timeout=900)
        anyio.run(calls, url, proc.pid, "echo" if mode == "direct" else "notes__echo")
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    total = 0
    for dump in glob.glob(f"{out}*"):
        with open(dump) as fh:
            total += sum(int(line.split()[1]) for line in fh if line.startswith("totals:"))
    return total / CALLS


def main() -> None:
    modes = sys.argv[1:] or ["lane", "lane-before"]
    up_port = bench.free_port()
    upstream = f"http://127.0.0.1:{up_port}/mcp"
    server = subprocess.Popen([sys.executable, str(HERE / "portal.py"), "--upstream", str(up_port)])
    try:
        bench.wait_http(upstream)
        with tempfile.TemporaryDirectory() as out_dir:
            for mode in modes:
                per_call = measure(mode, upstream, Path(out_dir))
                print(f"{mode:<14} {per_call / 1e6:6.2f} M instructions per call ({CALLS} calls)", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
