"""Cost of the guard's instrumentation per request: off, in-process metrics, metrics + OpenTelemetry.

Runs ``Guard.run`` (the pipeline every adapter uses) on a ``tools/call`` with a
trivial call step and an allow-list policy, no audit, in alternating rounds,
and reports the median per request. The OpenTelemetry variant uses the SDK's
TracerProvider and MeterProvider with an in-memory span exporter, the most a
process pays short of network export (which a batch processor moves off the
request path).

Run: ``python benchmarks/telemetry.py``.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcp_guard import Guard, Principal
from mcp_guard.model import RequestContext
from mcp_guard.pipeline import Exchange
from mcp_guard.policy import AllowListPolicy
from mcp_guard.telemetry import Telemetry

N = 20000
ROUNDS = 8
ALICE = Principal("alice", roles=frozenset({"user"}))


def variants() -> dict[str, Telemetry | None]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(exporter))
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()])
    otel = Telemetry(traces=True, otel_metrics=True, tracer_provider=tracer, meter_provider=meter)
    otel.exporter = exporter  # type: ignore[attr-defined]  # cleared between rounds
    return {"off": None, "metrics": Telemetry(), "metrics+otel": otel}


async def run(guard: Guard, n: int) -> list[float]:
    params = {"name": "echo", "arguments": {"text": "hi"}}
    context = RequestContext(time=datetime.now(timezone.utc), transport="memory", request_id=1)

    async def call(admitted: Any) -> dict[str, Any]:
        return {"content": [], "isError": False}

    samples = []
    gc.disable()
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            await guard.run(Exchange("tools/call", params, "bench", context, principal=ALICE), call)
            samples.append(time.perf_counter() - t0)
    finally:
        gc.enable()
    return samples


async def main() -> None:
    guards = {
        name: Guard(policy=AllowListPolicy(tools=["echo"]), server="bench", telemetry=t)
        for name, t in variants().items()
    }
    times: dict[str, list[float]] = {k: [] for k in guards}
    for guard in guards.values():
        await run(guard, 500)  # warm-up
    for _ in range(ROUNDS):
        for name, guard in guards.items():
            times[name] += await run(guard, N // ROUNDS)
            exporter = getattr(guard.telemetry, "exporter", None)
            if exporter is not None:
                exporter.clear()
    base = statistics.median(times["off"]) * 1e6
    print("mcp-guard instrumentation (median Guard.run of an allowed tools/call, no audit)")
    for name, samples in times.items():
        median = statistics.median(samples) * 1e6
        print(f"  {name:14}{median:8.1f} us   +{median - base:6.1f} us")


if __name__ == "__main__":
    asyncio.run(main())
