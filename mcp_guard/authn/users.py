"""The users file: password hashes, TOTP secrets and the principal fields of each local user.

JSON, mode 0600 (it holds TOTP secrets), written atomically. Read at start and
re-read when its modification time changes, so ``mcp-guard users add`` takes
effect without a restart and a login costs one ``stat``, not a parse.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..errors import ConfigError
from ..model import Principal


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    totp_secret: str | None = None
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tenant: str | None = None
    disabled: bool = False

    def principal(self) -> Principal:
        return Principal(
            subject=self.name,
            tenant=self.tenant,
            roles=frozenset(self.roles),
            groups=frozenset(self.groups),
            auth_method="password",
        )


_FIELDS = {"password_hash", "totp_secret", "roles", "groups", "tenant", "disabled"}


def _parse(path: Path, text: str) -> dict[str, User]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"not valid JSON: {exc}", file=str(path), line=getattr(exc, "lineno", None)
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("users"), dict):
        raise ConfigError("expected an object with a 'users' object", file=str(path), field="users")
    users: dict[str, User] = {}
    for name, entry in document["users"].items():
        where = f"users.{name}"
        if not isinstance(entry, dict):
            raise ConfigError("expected an object", file=str(path), field=where)
        unknown = set(entry) - _FIELDS
        if unknown:
            raise ConfigError(f"unknown field(s) {sorted(unknown)}", file=str(path), field=where)
        if not isinstance(entry.get("password_hash"), str):
            raise ConfigError("password_hash missing", file=str(path), field=f"{where}.password_hash")
        try:
            users[name] = User(
                name=name,
                password_hash=entry["password_hash"],
                totp_secret=entry.get("totp_secret"),
                roles=tuple(entry.get("roles", ())),
                groups=tuple(entry.get("groups", ())),
                tenant=entry.get("tenant"),
                disabled=bool(entry.get("disabled", False)),
            )
        except TypeError as exc:
            raise ConfigError(str(exc), file=str(path), field=where) from None
    return users


class UsersFile:
    """Local users, loaded from ``path`` (a missing file means no users yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, User] = {}
        self.refresh()

    def refresh(self) -> None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._users, self._stamp = {}, None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._users = _parse(self.path, self.path.read_text(encoding="utf-8"))
            self._stamp = stamp

    def get(self, name: str) -> User | None:
        self.refresh()
        return self._users.get(name)

    def all(self) -> list[User]:
        self.refresh()
        return sorted(self._users.values(), key=lambda u: u.name)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the file's write lock and read it afresh: a change is made to the newest file.

        Every change reads the whole file and writes it back; two commands at once would each
        write over the other's change (a user added lost, one removed back) while the audit
        trail records both. The lock (``flock`` on ``.NAME.lock`` beside it, mode 0600) makes
        them take turns; where there is no ``flock`` (Windows) writers are not serialized.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            self._stamp = None  # read it again even if size and time look unchanged
            self.refresh()
            yield
        finally:
            os.close(fd)  # releases the lock

    def put(self, user: User) -> None:
        with self._writing():
            self._users[user.name] = user
            self._save()

    def update(self, name: str, **changes: Any) -> User:
        with self._writing():
            user = self._users.get(name)
            if user is None:
                raise KeyError(name)
            updated = replace(user, **changes)
            self._users[name] = updated
            self._save()
        return updated

    def remove(self, name: str) -> bool:
        with self._writing():
            if self._users.pop(name, None) is None:
                return False
            self._save()
        return True

    def _save(self) -> None:
        document = {
            "version": 1,
            "users": {
                name: {k: v for k, v in asdict(user).items() if k != "name"}
                for name, user in sorted(self._users.items())
            },
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".users-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=2)
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None
        self.refresh()


__all__ = ["User", "UsersFile"]
