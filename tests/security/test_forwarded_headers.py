"""``mcp-guard serve`` believes ``X-Forwarded-For`` only from ``[listen] trusted_proxies``.

uvicorn's defaults (``proxy_headers=True``, ``forwarded_allow_ips`` = loopback) let any local
caller pick the address policy sees as ``principal.ip`` and the audit records as ``source_ip``.
These tests run the real ``mcp-guard serve`` and read what it audited.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from mcp_guard.config import ListenSection, config_from_dict
from mcp_guard.errors import ConfigError

from ..http_util import INITIALIZE, MCP_HEADERS, free_port

REPO = Path(__file__).resolve().parents[2]
FORGED = "203.0.113.9"


def write_config(tmp_path: Path, port: int, listen: str = "") -> Path:
    cfg = tmp_path / "guard.toml"
    cfg.write_text(
        f"""
[guard]
state = "sqlite:///state.db"
audit = ["jsonl:///audit.jsonl"]

[authn.anonymous]
subject = "visitor"

[listen]
port = {port}
{listen}
"""
    )
    return cfg


@contextmanager
def mcp_guard_serve(cfg: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``python -m mcp_guard serve --config cfg``, up and listening; stopped (and its audit flushed) after."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("FORWARDED_ALLOW_IPS", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcp_guard", "serve", "--config", str(cfg)],
        cwd=cfg.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "mcp-guard serve did not start"
                time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def audited(cfg: Path) -> list[dict[str, Any]]:
    path = cfg.parent / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def initialize_from(port: int, forwarded_for: str) -> int:
    headers = {**MCP_HEADERS, "X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
    r = httpx.post(f"http://127.0.0.1:{port}/mcp", json=INITIALIZE, headers=headers, timeout=20)
    return r.status_code


def initialize_ips(cfg: Path) -> set[str | None]:
    return {e.get("source_ip") for e in audited(cfg) if e.get("method") == "initialize"}


def test_a_forged_x_forwarded_for_is_not_the_audited_source_by_default(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port)
    with mcp_guard_serve(cfg, port):
        assert initialize_from(port, FORGED) == 200
    assert initialize_ips(cfg) == {"127.0.0.1"}


def test_x_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port, 'trusted_proxies = ["127.0.0.1"]')
    with mcp_guard_serve(cfg, port):
        assert initialize_from(port, FORGED) == 200
    assert initialize_ips(cfg) == {FORGED}


def test_a_proxy_outside_trusted_proxies_is_not_believed(tmp_path: Path) -> None:
    port = free_port()
    cfg = write_config(tmp_path, port, 'trusted_proxies = ["10.0.0.0/8"]')
    with mcp_guard_serve(cfg, port):
        assert initialize_from(port, FORGED) == 200
    assert initialize_ips(cfg) == {"127.0.0.1"}


def test_trusted_proxies_is_validated_and_maps_to_uvicorn_settings() -> None:
    assert ListenSection().server_options() == {
        "proxy_headers": False,
        "forwarded_allow_ips": "",
        "timeout_keep_alive": 5,
    }
    listen = ListenSection(trusted_proxies=["127.0.0.1", "10.1.2.3/8", "::1"])
    options = listen.server_options()
    assert options["proxy_headers"] is True
    # "10.1.2.3/8" would be a literal name to uvicorn (never matching): it is normalised.
    assert options["forwarded_allow_ips"] == "127.0.0.1,10.0.0.0/8,::1"
    for bad in (["*"], ["proxy.internal"], ["10.0.0.0/33"]):
        with pytest.raises(ConfigError, match="trusted_proxies"):
            config_from_dict({"listen": {"trusted_proxies": bad}})
    with pytest.raises(ConfigError, match="trusted_proxy"):
        config_from_dict({"listen": {"trusted_proxy": ["127.0.0.1"]}})  # unknown keys stay refused
