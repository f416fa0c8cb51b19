"""``mcp-guard audit anomalies``: read the trail for trouble with the detectors serve runs live.

One finding per line: JSON with ``--json`` (the contract in docs/audit.md), else a table. The
whole store is read so the baselines know each subject's history; ``--since`` only limits which
findings are reported. Thresholds come from ``[anomalies]`` of ``--config``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..audit.anomaly import AnomalySettings, Finding
    from ..audit.config import AuditConfig


def register(
    sub: Any,
    common: Callable[[argparse.ArgumentParser], None],
    *,
    store: Callable[[argparse.Namespace, AuditConfig], Path],
    since: Callable[[str | None, str], float | None],
) -> None:
    """Add ``anomalies`` to the ``audit`` group: ``common`` adds PATH and ``--config``, ``store``
    finds the store as the other audit commands do, ``since`` parses their time forms."""
    p = sub.add_parser("anomalies", help="find auth-failure bursts, denial bursts, rate spikes, novelties")
    common(p)
    p.add_argument(
        "--since",
        help="report findings from then on (ISO 8601, today, 24h, 7d, ...); older events still teach"
        " the baselines",
    )
    p.add_argument("--json", action="store_true", help="one JSON finding per line")
    p.set_defaults(func=functools.partial(cmd_anomalies, store=store, since=since))


def load_settings(path: Path | None) -> AnomalySettings:
    """``[anomalies]`` of a guard config (defaults without one), errors with file, line and field."""
    from pydantic import ValidationError

    from .._toml import read_file, validation_error
    from ..audit.anomaly import AnomalySettings
    from ..errors import ConfigError

    if path is None:
        return AnomalySettings()
    text, data = read_file(path)
    table = data.get("anomalies", {})
    if not isinstance(table, dict):
        raise ConfigError("must be a table", file=str(path), field="anomalies")
    try:
        return AnomalySettings.model_validate(table)
    except ValidationError as exc:
        raise validation_error(exc, str(path), text, prefix=("anomalies",), model=AnomalySettings) from None


def format_finding(f: Finding) -> str:
    """One table row; stored text is escaped so it cannot forge lines or drive the terminal."""
    from ..audit.anomaly.detect import iso
    from ..audit.canonical import printable

    target = f"{f.server or '-'}/{f.target or '-'}" if f.server else "-"
    row = (
        f"{iso(f.end)[:19]}  {f.kind:<13}  {f.who:<16}  {f.source_ip or '-':<15}  "
        f"{target:<24}  {f.score:>6.1f}  {f.why}"
    )
    return printable(row)


def cmd_anomalies(
    args: argparse.Namespace,
    *,
    store: Callable[[argparse.Namespace, AuditConfig], Path],
    since: Callable[[str | None, str], float | None],
) -> int:
    from ..audit.anomaly import Detector, read_events
    from ..audit.config import load_audit_config
    from ..audit.verify import StoreError

    settings = load_settings(args.config)
    path = store(args, load_audit_config(args.config))
    start = since(args.since, "--since")
    try:
        findings = Detector(settings.thresholds()).run(read_events(path), start)
    except StoreError as exc:
        print(f"mcp-guard: {exc}", file=sys.stderr)
        return 1
    if args.json:
        for f in findings:
            print(json.dumps(f.as_dict(), ensure_ascii=True))
        return 0
    if not findings:
        print("no anomalies", file=sys.stderr)
        return 0
    head = ("TIME (UTC)", 19), ("KIND", 13), ("SUBJECT", 16), ("SOURCE", 15), ("SERVER/TARGET", 24)
    print("  ".join(f"{name:<{width}}" for name, width in head) + "  SCORE  WHY")
    for f in findings:
        print(format_finding(f))
    return 0
