"""CPU and instructions per in-memory ``tools/call``: bare server vs the same server guarded.

The servers, guard and call are those of ``overhead.py`` (API key + allow-list policy + SQLite
audit, a trivial tool, legacy session). Wall-clock medians swing by tens of percent on a shared
machine, so this measures what load disturbs least:

- ``python benchmarks/guard_cpu.py``: alternating rounds in one process of a bare server, the
  guarded one, and the guarded one without an auditor (no flusher thread). Each round reports
  CPU time per call of the whole process (``time.process_time``: it includes the audit flusher
  and the SDK's worker thread running the sync tool) and of the event loop's thread alone
  (``time.thread_time``), with the ratio to the bare server's round.
- ``python benchmarks/guard_cpu.py --calls N --only bare|guarded|unaudited``: N calls after a
  warm-up, bracketed for ``valgrind --tool=callgrind`` by two marker calls into libc, so that
  only the N calls are counted (instruction counts do not depend on the machine's load)::

      valgrind --tool=callgrind --separate-threads=yes --zero-before=getloadavg \\
          --dump-before=ctermid python benchmarks/guard_cpu.py --calls 1000 --only guarded

  The dump triggered by ``ctermid`` holds the event loop's thread for exactly the N calls;
  divide by N. ``callgrind_annotate`` on the two dumps shows where the difference goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcp import Client
from overhead import KEY, build_guard, build_server

WARM_UP = 200


async def _calls(client: Client, n: int) -> None:
    for _ in range(n):
        await client.call_tool("echo", {"text": "hi"})


async def _round(client: Client, n: int) -> tuple[float, float]:
    """Process and thread CPU time per call over ``n`` calls, in microseconds."""
    process, thread = time.process_time(), time.thread_time()
    await _calls(client, n)
    return (time.process_time() - process) / n * 1e6, (time.thread_time() - thread) / n * 1e6


KINDS = ("bare", "guarded", "unaudited")


def _server(kind: str, tmp: Path) -> tuple[Any, Any]:
    """One server of ``kind``: bare, guarded as in ``overhead.py``, or guarded without an auditor."""
    server = build_server()
    if kind == "bare":
        return server, None
    guard, _ = build_guard(tmp)
    if kind == "unaudited":
        guard.auditor = None  # no flusher work at all: isolates the request path's own cost
    guard.protect(server, credential=KEY, read_env=False)
    return server, guard


async def alternate(rounds: int, per_round: int) -> None:
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        built = {k: _server(k, Path(tmp) / k) for k in KINDS}
        async with AsyncExitStack() as stack:
            clients = {
                k: await stack.enter_async_context(Client(s, mode="legacy")) for k, (s, _) in built.items()
            }
            for client in clients.values():
                await _calls(client, WARM_UP)
            for _ in range(rounds):
                for kind, client in clients.items():
                    results[kind].append(await _round(client, per_round))
        for _, guard in built.values():
            if guard is not None:
                await guard.aclose()
    print(f"CPU per in-memory tools/call, {rounds} alternating rounds of {per_round} calls (us)")
    for i, what in enumerate(("process", "event-loop thread")):
        bare = [r[i] for r in results["bare"]]
        print(f"  {what}: bare {statistics.median(bare):.1f} ({min(bare):.0f}-{max(bare):.0f})")
        for kind in KINDS[1:]:
            own = [r[i] for r in results[kind]]
            ratios = [y / x for x, y in zip(bare, own, strict=True)]
            print(
                f"    {kind:10} {statistics.median(own):7.1f} ({min(own):.0f}-{max(own):.0f})"
                f"  ratio to bare {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})"
            )


async def counted(only: str, calls: int) -> None:
    """``calls`` calls to one server between the two callgrind markers."""
    with tempfile.TemporaryDirectory() as tmp:
        server, guard = _server(only, Path(tmp))
        async with Client(server, mode="legacy") as client:
            await _calls(client, WARM_UP)
            os.getloadavg()  # marker: --zero-before=getloadavg
            await _calls(client, calls)
            os.ctermid()  # marker: --dump-before=ctermid
        if guard is not None:
            await guard.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--per-round", type=int, default=500)
    parser.add_argument("--calls", type=int, help="count N calls for callgrind instead")
    parser.add_argument("--only", choices=KINDS, default="guarded")
    opts = parser.parse_args()
    if opts.calls:
        asyncio.run(counted(opts.only, opts.calls))
    else:
        asyncio.run(alternate(opts.rounds, opts.per_round))


if __name__ == "__main__":
    main()
