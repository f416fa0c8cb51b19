"""Start and stop a throwaway ``redis-server`` on a free loopback port, for tests and benchmarks.

Nothing is persisted (``--save '' --appendonly no``) and everything lives in a
temporary directory. Tests that need Redis call :func:`require_redis_server`,
which skips them with a clear reason when the binary is not installed
(CI installs it: ``apt-get install -y redis-server``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

BINARY = os.environ.get("REDIS_SERVER", "redis-server")


def redis_binary() -> str | None:
    return shutil.which(BINARY)


def require_redis_server() -> str:
    """The binary's path, or skip the calling test (pytest is only imported here)."""
    path = redis_binary()
    if path is None:
        import pytest

        pytest.skip(
            f"{BINARY} not installed (apt-get install -y redis-server); Redis tests need a real server"
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``stop()`` and ``start()`` again keep the same port (restarts)."""

    def __init__(self, binary: str | None = None, port: int | None = None) -> None:
        self.binary = binary or redis_binary() or BINARY
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="mcpg-redis-")
        self.dir = Path(self._tmp.name)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.process is not None and self.process.poll() is None:
            return self
        args = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                text = (self.dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {text[-2000:]}")
            if _ping(self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout}s")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


#: A guard replica reduced to its admission stage: opens the store named on the
#: command line, waits for a common start time, then fires concurrent checks of
#: one limit for one principal and server, and prints the outcome counts as JSON.
REPLICA_SCRIPT = r"""
import asyncio, json, sys, time
from mcp_guard.errors import GuardUnavailable, RateLimited
from mcp_guard.model import AccessRequest, LimitSpec, Principal
from mcp_guard.ratelimit import RateLimiter
from mcp_guard.store import open_store

url = sys.argv[1]
calls, concurrency, limit = (int(a) for a in sys.argv[2:5])
start_at = float(sys.argv[5])

async def main():
    store = open_store(url)
    limiter = RateLimiter(store)
    spec = LimitSpec(id="per-user-per-server", requests=limit, window=60.0, per=("subject", "server"))
    principal = Principal(subject="alice")
    request = AccessRequest(method="tools/call", action="call", server="db", kind="tool", target="query")
    counts = {"allowed": 0, "denied": 0, "error": 0}
    todo = iter(range(calls))
    async def worker():
        for _ in todo:
            try:
                await limiter.check(principal, request, [spec])
                counts["allowed"] += 1
            except RateLimited:
                counts["denied"] += 1
            except GuardUnavailable:
                counts["error"] += 1
    await store.get("warm-up")
    await asyncio.sleep(max(0.0, start_at - time.time()))
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    counts["seconds"] = time.perf_counter() - began
    await store.aclose()
    print(json.dumps(counts))

asyncio.run(main())
"""


def run_replicas(
    url: str, replicas: int, calls: int, concurrency: int, limit: int, *, timeout: float = 60.0
) -> list[dict[str, float]]:
    """Run ``replicas`` processes of :data:`REPLICA_SCRIPT` at once; return each one's counts."""
    import json
    import sys

    start_at = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                REPLICA_SCRIPT,
                url,
                str(calls),
                str(concurrency),
                str(limit),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(replicas)
    ]
    results: list[dict[str, float]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"replica failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
        results.append(json.loads(out))
    return results
