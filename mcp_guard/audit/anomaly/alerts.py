"""Where live findings go: the log, and webhooks (any :class:`~mcp_guard.protocols.AlertSink`).

The webhook POSTs the finding as JSON through the guard's hardened outbound client
(:class:`~mcp_guard.authn.fetch.SafeFetcher`): https only, no private, loopback, link-local or
metadata addresses unless the operator allowed them, the checked address pinned against DNS
rebinding, no redirects. A failed delivery is retried with doubling back-off; after the last
attempt the failure is raised to the monitor, which logs it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import anyio

from ...authn.fetch import FetchError, FetchPolicy, SafeFetcher
from ..canonical import printable
from .settings import WebhookSettings

log = logging.getLogger("mcp_guard.anomalies")


class LoggingAlertSink:
    """One WARNING per finding on the ``mcp_guard.anomalies`` logger (escaped: no forged lines)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log

    async def alert(self, finding: Mapping[str, Any]) -> None:
        self.logger.warning(
            "anomaly %s: subject %s, source %s: %s%s",
            finding.get("kind"),
            printable(str(finding.get("subject") or "-")),
            printable(str(finding.get("source_ip") or "-")),
            printable(str(finding.get("why"))),
            f" (action: {finding['action']})" if finding.get("action", "none") != "none" else "",
        )


class DeliveryError(Exception):
    """A webhook did not accept an alert after every attempt."""


class WebhookAlertSink:
    """POST each finding as JSON to ``url``; a 2xx answer is delivery."""

    def __init__(self, settings: WebhookSettings, *, fetcher: SafeFetcher | None = None) -> None:
        self.settings = settings
        self.url = settings.url
        self.fetcher = fetcher or SafeFetcher(
            FetchPolicy(
                allow_insecure_loopback=settings.allow_insecure_loopback,
                allow_private_addresses=settings.allow_private_addresses,
                timeout=settings.timeout,
            )
        )

    async def check(self) -> None:
        """Raise :class:`FetchError` when the URL breaks the outbound rules (checked at start)."""
        await self.fetcher.check_url(self.url)

    async def alert(self, finding: Mapping[str, Any]) -> None:
        delay = self.settings.backoff
        problem = ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                await anyio.sleep(delay)
                delay *= 2
            try:
                status = await self.fetcher.post_json(self.url, dict(finding))
            except FetchError as exc:
                problem = str(exc)
                if "refusing" in problem or "non-public" in problem or "must name" in problem:
                    break  # the rules will not change between attempts
                continue
            if 200 <= status < 300:
                return
            problem = f"HTTP {status}"
        raise DeliveryError(f"webhook {self.url}: {problem} (alert {json.dumps(finding.get('kind'))})")


__all__ = ["DeliveryError", "LoggingAlertSink", "WebhookAlertSink"]
