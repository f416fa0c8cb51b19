"""The audit event of a state-changing admin command: no CLI path changes state unaudited.

The console audits every action and refuses (or takes back) one its trail cannot take; the
commands that change the same state from a shell follow the same rule. :func:`audited` wraps a
command: it opens the trail its ``--config`` names (the embedded defaults without one, exactly
the trail ``mcp-guard serve`` writes) *before* the command acts, and refuses with exit 1 when it
cannot. The command reports what it did with :meth:`Trail.done` (or what it refused with
:meth:`Trail.refused`) before it prints anything; the event is committed synchronously
(``record_sync``) and the log is closed before the process exits, so nothing is lost. An event
that cannot be written after the change is taken back through the command's ``undo``; a change
that cannot be taken back (a revocation, a removal) stands and the command says so, exit 1.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..audit import AuditLog

#: ``event`` of every record a CLI command writes (the console writes ``console``).
EVENT_KIND = "admin"
#: ``transport`` of those records.
TRANSPORT = "cli"


class TrailFailed(Exception):
    """The command's event could not be written; the message says whether its change stands."""


def operator() -> dict[str, str]:
    """Who ran the command: the OS account (``auth_method`` ``local``: nothing was presented).

    The account of the effective user id, never ``$LOGNAME``/``$USER`` (which ``getpass`` reads
    first): anyone can set those to put another person's name on their change. Under ``sudo`` the
    account is root's and ``$SUDO_USER`` is kept beside it as ``sudo_user``, as sudo set it.
    """
    try:
        import pwd

        uid = os.geteuid()
        subject = pwd.getpwuid(uid).pw_name
    except (ImportError, AttributeError):  # no POSIX accounts (Windows): the login name is all there is
        uid = None
        subject = _login_name()
    except KeyError:  # an id with no account (a container's arbitrary uid): the number says who
        uid = os.geteuid()
        subject = f"uid:{uid}"
    found = {"subject": subject, "auth_method": "local"}
    sudo_user = os.environ.get("SUDO_USER")
    if uid == 0 and sudo_user:
        found["sudo_user"] = sudo_user
    return found


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in a bare container: still record the fact
        return "unknown"


class Trail:
    """The opened audit log of one command and the one event it records."""

    def __init__(self, log: AuditLog, method: str) -> None:
        self._log = log
        self.method = method
        self.recorded = False
        self._principal = operator()
        self._host = socket.gethostname()

    def _write(self, decision: str, fields: dict[str, Any]) -> None:
        import anyio

        from ..model import AuditEvent

        event = AuditEvent(
            method=self.method,
            decision=decision,  # type: ignore[arg-type]
            event=EVENT_KIND,
            principal=self._principal,
            transport=TRANSPORT,
            client_name=self._host,
            **fields,
        )
        self.recorded = True
        anyio.run(self._log.record_sync, event)

    def done(self, *, undo: Callable[[], object] | None = None, **fields: Any) -> None:
        """Record the change just made (``allow``); on failure take it back with ``undo``.

        Raises :class:`TrailFailed` when the event could not be written: the change was undone
        (``undo`` given and it worked) or it stands, and the message says which.
        """
        try:
            self._write("allow", fields)
        except Exception as exc:
            if undo is None:
                raise TrailFailed(
                    f"the change was made, but the audit trail could not take its event ({exc}); "
                    "it cannot be taken back: record it by hand"
                ) from None
            try:
                undo()
            except Exception as again:
                raise TrailFailed(
                    f"the audit trail could not take the event ({exc}) and the change could not be "
                    f"undone ({again}): check it by hand"
                ) from None
            # The failed event may still reach the trail (it waits in the spill file when the store
            # refused it): a second one says the change was taken back, best effort like a refusal.
            self.refused(
                f"taken back: the audit trail could not take the event of the change ({exc})",
                **{k: v for k, v in fields.items() if k != "reasons"},
            )
            raise TrailFailed(
                f"the audit trail could not take the event ({exc}), so nothing was changed: try again later"
            ) from None

    def refused(self, *reasons: str, **fields: Any) -> None:
        """Record a refusal of the command itself (best effort: the refusal stands regardless)."""
        try:
            self._write("deny", {"reasons": reasons, **fields})
        except Exception as exc:
            print(f"mcp-guard: the refusal could not be audited ({exc})", file=sys.stderr)

    def close(self) -> None:
        self._log.close()


def open_trail(args: argparse.Namespace, method: str) -> Trail:
    """The trail of ``--config`` (or the embedded defaults), checked able to take events.

    ConfigError (exit 2) for a config that cannot be read; :class:`TrailFailed` when the trail it
    names cannot be opened or cannot take events.
    """
    from ..audit import load_audit_config, open_auditor

    cfg = load_audit_config(getattr(args, "config", None))
    if cfg.urls and all(url.startswith("logging:") for url in cfg.urls):
        # A command's log lines go to its own stderr at best, never to a running guard's log:
        # the event would vanish while the change stands. Like an empty list, that is no trail.
        raise TrailFailed(
            "the audit trail cannot be opened ([guard] audit only logs (logging://), and a command's "
            "log reaches no guard's; add a sqlite:// or jsonl:// store), so nothing was changed"
        )
    try:
        log = open_auditor(cfg.urls, cfg.settings, cfg.base_dir)
    except Exception as exc:  # a store that cannot be created or opened (ConfigError names it)
        raise TrailFailed(f"the audit trail cannot be opened ({exc}), so nothing was changed") from None
    try:
        log.check_available()
    except Exception as exc:
        log.close()
        raise TrailFailed(f"the audit trail cannot take events ({exc}), so nothing was changed") from None
    if getattr(args, "config", None) is None and getattr(args, "state", None):
        # The store is named, its guard's trail is not: the event goes to the current directory's
        # default trail, where no guard writes. Say so before acting, so it is not lost unnoticed.
        where = ", ".join(_place(url, cfg.base_dir) for url in cfg.urls)
        print(
            f"mcp-guard: no --config: the audit event of this change goes to {where}, not to the trail "
            "of the guard using --state; pass that guard's --config to record it there",
            file=sys.stderr,
        )
    return Trail(log, method)


def _place(url: str, base: Path) -> str:
    """A trail URL as a path a reader can find (relative sqlite/jsonl paths resolved)."""
    for scheme in ("sqlite:///", "jsonl:///"):
        if url.startswith(scheme):
            return str(base / url[len(scheme) :])
    return url


def trail_of(args: argparse.Namespace) -> Trail:
    """The trail :func:`audited` opened for this command."""
    trail: Trail = args.audit_trail
    return trail


def audited(method: str, command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wrap ``command`` so it runs only with an open trail and always leaves exactly one event.

    ``method`` is ``<group>.<action>``, recorded as ``cli/<group>.<action>``. A command that
    returns without recording (an unforeseen path) still leaves an event: allow for exit 0,
    deny otherwise; bad input it raises as ConfigError is recorded as a deny with its message.
    """
    name = f"cli/{method}"

    @functools.wraps(command)
    def run(args: argparse.Namespace) -> int:
        try:
            trail = open_trail(args, name)
        except TrailFailed as exc:
            print(f"mcp-guard: {exc}", file=sys.stderr)
            return 1
        args.audit_trail = trail
        try:
            try:
                code = int(command(args) or 0)
            except ConfigError as exc:
                if not trail.recorded:
                    trail.refused(" ".join(str(exc).split()))
                raise
            except TrailFailed as exc:
                print(f"mcp-guard: {exc}", file=sys.stderr)
                return 1
            except BaseException:
                if not trail.recorded:
                    trail.refused("the command failed")
                raise
            if not trail.recorded:
                if code == 0:
                    try:
                        trail.done()
                    except TrailFailed as exc:
                        print(f"mcp-guard: {exc}", file=sys.stderr)
                        return 1
                else:
                    trail.refused(f"refused (exit {code})")
            return code
        finally:
            trail.close()

    return run
