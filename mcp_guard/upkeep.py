"""The guard's background jobs: following revocations, refreshing keys, following the state store.

They run on anyio like everything else, in a task group owned by the guard;
``async with guard:`` starts them and stops them on exit, under asyncio or trio.
On asyncio that task group lives in a task of its own, so enter and exit may
happen in different tasks (an async fixture, a lifespan); under trio it is
entered in the caller's task. A server started with ``mcp.run()`` gives the
guard no hook at all, so the first request starts the jobs lazily, which only
asyncio can do without a task group: under trio use ``async with guard:``
(``docs/deployment.md``).
"""

from __future__ import annotations

import asyncio  # only for the lazy start: the one backend that can spawn a task without a task group
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup

logger = logging.getLogger("mcp_guard")

Job = Callable[[], Awaitable[Any]]

_FAILED = "guard background task stopped"


class Upkeep:
    """A guard's background jobs and the task group they run in (one per guard)."""

    def __init__(self) -> None:
        self._jobs: list[tuple[Job, str]] = []
        self._tg: TaskGroup | None = None
        self._lazy: Any = None  # the asyncio task of a lazy start
        self._entered = False

    def add(self, job: Job, failure: str = _FAILED) -> None:
        """Run ``job()`` until the guard closes; at once if the jobs already run."""
        self._jobs.append((job, failure))
        if self._tg is not None:
            self._tg.start_soon(_guarded, job, failure)

    @property
    def running(self) -> bool:
        return self._tg is not None

    async def __aenter__(self) -> Upkeep:
        # On asyncio the jobs get a task of their own, so ``async with`` may be entered and left
        # in different tasks (an async test fixture, a lifespan); elsewhere a task group it is.
        self._spawn()
        if self._tg is None and self._lazy is None:
            tg = anyio.create_task_group()
            await tg.__aenter__()
            self._tg, self._entered = tg, True
            for job, failure in self._jobs:
                tg.start_soon(_guarded, job, failure)
        return self

    def start_lazily(self) -> None:
        """Start the jobs from inside a request, where no task group is at hand (asyncio only)."""
        if self._jobs and self._tg is None and self._lazy is None:  # checked on every request
            self._spawn()

    def _spawn(self) -> None:
        if self._tg is not None or self._lazy is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            # Another backend (trio): no task can be spawned without a task group.
            logger.debug("guard upkeep not started: outside asyncio use `async with guard:`")
            return
        self._lazy = loop.create_task(self._run())

    async def _run(self) -> None:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for job, failure in self._jobs:
                tg.start_soon(_guarded, job, failure)
            await anyio.sleep_forever()

    async def aclose(self) -> None:
        """Stop every job. Safe to call twice."""
        tg, self._tg = self._tg, None
        if self._lazy is not None:
            task, self._lazy = self._lazy, None
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():
                await asyncio.wait({task}, timeout=5)  # the jobs' own cleanup runs before close returns
        if tg is not None and self._entered:
            self._entered = False
            tg.cancel_scope.cancel()
            await tg.__aexit__(None, None, None)


async def _guarded(job: Job, failure: str) -> None:
    try:
        await job()
    except Exception:
        logger.exception(failure)


__all__ = ["Job", "Upkeep"]
