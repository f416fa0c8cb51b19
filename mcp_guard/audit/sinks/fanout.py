"""Fan-out to several sinks with per-sink progress, so a retry only resends what a sink missed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ...protocols import AuditSink


class FanoutError(RuntimeError):
    """One or more sinks failed; the others already have the batch."""


class FanoutSink:
    """An :class:`~mcp_guard.protocols.AuditSink` that writes every batch to each child.

    A failing child does not stop the others; the batch is reported failed
    (so the pipeline spills and retries) and on retry the children that
    already succeeded skip records up to the seq they hold.
    """

    def __init__(self, sinks: Sequence[AuditSink]) -> None:
        self.sinks = list(sinks)
        self._done = [0] * len(self.sinks)

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        errors: list[str] = []
        for i, sink in enumerate(self.sinks):
            fresh = [r for r in records if int(r.get("seq", 0)) > self._done[i]] if self._done[i] else records
            if not fresh:
                continue
            try:
                sink.write(fresh)
            except Exception as exc:
                errors.append(f"{sink!r}: {type(exc).__name__}: {exc}")
            else:
                self._done[i] = max(self._done[i], int(fresh[-1].get("seq", 0)))
        if errors:
            raise FanoutError("; ".join(errors))

    def head(self) -> tuple[int, str, str | None] | None:
        best: tuple[int, str, str | None] | None = None
        for sink in self.sinks:
            head = getattr(sink, "head", None)
            found = head() if callable(head) else None
            if found is not None and (
                best is None or found[0] > best[0] or (found[0] == best[0] and found[2])
            ):
                best = found
        return best

    def close(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:
                errors.append(f"{sink!r}: {exc}")
        if errors:
            raise FanoutError("; ".join(errors))
