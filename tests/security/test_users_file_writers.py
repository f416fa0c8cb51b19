"""Commands changing the users file at the same time lose none of each other's changes.

Each ``mcp-guard users add|passwd|totp|remove`` reads the file, changes one entry and writes it
back whole. Two of them at once (a provisioning script, two admins) must not write over each
other: a user the trail says was added must exist, and one it says was removed must not return.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from mcp_guard.authn.users import User, UsersFile

WRITERS, EACH = 4, 15


def _writer(path: Path, n: int, start: object) -> None:
    start.wait()  # type: ignore[attr-defined]
    users = UsersFile(path)
    for i in range(EACH):
        users.put(User(name=f"u{n}-{i}", password_hash="x"))
    users.remove(f"u{n}-0")


def test_concurrent_writers_keep_every_change(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(path, n, start)) for n in range(WRITERS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    names = {u.name for u in UsersFile(path).all()}
    assert names == {f"u{n}-{i}" for n in range(WRITERS) for i in range(1, EACH)}
