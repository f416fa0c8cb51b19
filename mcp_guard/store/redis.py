"""Redis state store: what many replicas behind a load balancer share.

Every operation that reads and writes is one Redis command or one Lua script,
so it is atomic across replicas; rate windows use the Redis server's clock
(``TIME``), so replicas with skewed clocks still agree on a window.

Failure is closed: a connection error, timeout or any other Redis error raises
:class:`~mcp_guard.errors.GuardUnavailable`, which the guard turns into a
refusal. Nothing is cached locally, so when Redis comes back the next call
reconnects (the pool drops dead connections and retries once at once, which
also covers a connection that went stale while Redis restarted). A retried
``hit`` whose first attempt did reach Redis counts twice: stricter, never
looser.

redis-py's asyncio connections belong to the event loop that opened them. The
store keeps one client per running loop (created on first use in that loop),
so it is safe to share between loops; ``aclose`` closes the client of the loop
it is awaited in.

Only the asyncio backend is supported. The store has no tasks, events, locks or
sleeps of its own (its timeouts are redis-py's socket timeouts), but redis-py's
async client is built on asyncio (``asyncio.get_running_loop``, asyncio streams, futures and
locks) and cannot run under trio. Used under trio, every operation raises
:class:`RedisBackendError` (a ``RuntimeError``) saying so instead of failing
somewhere inside redis-py; ``aclose`` does nothing there, as nothing was opened.

Keys live under a namespace (``prefix``, default ``mcpg:``): ``k:`` for
values, ``s:`` for sets, ``h:`` for rate windows and ``c:`` for channels.
A Redis Cluster is not supported (``hit_many`` touches several keys).
"""

from __future__ import annotations

# asyncio is used for two things only, both forced by redis-py's asyncio client: finding the
# event loop its connections belong to (_asyncio_loop) and catching the asyncio.TimeoutError it
# can raise (a different class from TimeoutError before Python 3.11). Nothing else here is
# tied to a backend.
import asyncio
import builtins
import contextlib
import hashlib
import math
import os
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import count
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, RedisError

from ..errors import GuardUnavailable
from ..protocols import RateDecision
from ._common import PERIOD_ANCHOR, PERIOD_GRACE, Spend, check_distinct, check_spends

_current_library: Callable[[], str] | None
try:  # trio depends on sniffio, so without it nothing but asyncio can be running
    from sniffio import AsyncLibraryNotFoundError
    from sniffio import current_async_library as _current_library
except ImportError:  # pragma: no cover - sniffio comes with trio and with older anyio
    _current_library = None

NEEDS_ASYNCIO = "the redis store needs the asyncio backend: redis-py's asyncio client does not run under trio"

#: What a failed Redis round trip raises: redis-py's own errors, socket errors and asyncio's
#: timeout (see the comment on the asyncio import).
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisBackendError(RuntimeError):
    """The Redis store was used outside asyncio, for example under trio."""


def _asyncio_loop() -> asyncio.AbstractEventLoop:
    """The running asyncio loop; :class:`RedisBackendError` under any other backend (trio)."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    library = "asyncio" if loop is not None else None
    if _current_library is not None:
        # sniffio names the library of the current task, which is what decides whether
        # redis-py's awaits can work (a reachable asyncio loop is not enough, e.g. with trio-asyncio).
        try:
            library = _current_library()
        except AsyncLibraryNotFoundError:
            library = None
    if loop is None or library != "asyncio":
        raise RedisBackendError(f"{NEEDS_ASYNCIO} (running under {library or 'no async library'})")
    return loop


#: Sliding-window log over several keys, all or nothing. KEYS: window sets;
#: ARGV: member, then limit and window (microseconds) per key. Returns
#: {admitted, count1, retry1_us, count2, retry2_us, ...}.
_HIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local member = ARGV[1]
local out = {1}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 * i])
  local window = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  local c = redis.call('ZCARD', KEYS[i])
  local retry = 0
  if c >= limit then
    out[1] = 0
    retry = window
    if c > 0 then
      local oldest = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      retry = tonumber(oldest[2]) + window - now
    end
  end
  out[2 * i] = c
  out[2 * i + 1] = retry
end
if out[1] == 1 then
  for i = 1, #KEYS do
    redis.call('ZADD', KEYS[i], now, member)
    redis.call('PEXPIRE', KEYS[i], math.ceil(tonumber(ARGV[2 * i + 1]) / 1000) + 1)
    out[2 * i] = out[2 * i] + 1
  end
end
return out
"""

#: Budget counters over several keys, all or nothing, in fixed windows read from the Redis
#: server's clock (TIME), so replicas with skewed clocks agree on the window. KEYS: counter
#: bases; ARGV: anchor, grace, then cost, limit and period (seconds) per key. The window's
#: counter is ``base@start``. Returns {admitted, used1, end1, used2, end2, ...}.
_SPEND_LUA = """
local now = tonumber(redis.call('TIME')[1])
local anchor = tonumber(ARGV[1])
local grace = tonumber(ARGV[2])
local out = {1}
local names = {}
for i = 1, #KEYS do
  local cost = tonumber(ARGV[3 * i])
  local limit = tonumber(ARGV[3 * i + 1])
  local period = tonumber(ARGV[3 * i + 2])
  local start = anchor + math.floor((now - anchor) / period) * period
  names[i] = KEYS[i] .. '@' .. string.format('%d', start)
  local used = tonumber(redis.call('GET', names[i]) or '0')
  if used + cost > limit then
    out[1] = 0
  end
  out[2 * i] = used
  out[2 * i + 1] = start + period
end
if out[1] == 1 then
  for i = 1, #KEYS do
    local cost = tonumber(ARGV[3 * i])
    if cost > 0 then
      out[2 * i] = redis.call('INCRBY', names[i], cost)
      redis.call('EXPIREAT', names[i], out[2 * i + 1] + grace)
    end
  end
end
return out
"""

#: INCRBY that sets a TTL only on a key without one (same as the other stores).
_INCR_LUA = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
"""

_GLOB_SPECIAL = str.maketrans({c: "\\" + c for c in "*?[]\\"})


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class RedisStore:
    """A :class:`~mcp_guard.protocols.StateStore` on a Redis server (redis-py asyncio).

    ``url`` is passed to redis-py (``redis://``, ``rediss://``, credentials
    included); ``options`` are extra connection-pool arguments such as
    ``max_connections``, which switches to a pool that queues callers.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "mcpg:",
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._url = url
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            **(options or {}),
        }
        self._k = prefix + "k:"
        self._s = prefix + "s:"
        self._h = prefix + "h:"
        self._c = prefix + "c:"
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._current: aioredis.Redis | None = None
        self._hit_sha = hashlib.sha1(_HIT_LUA.encode(), usedforsecurity=False).hexdigest()
        self._incr_sha = hashlib.sha1(_INCR_LUA.encode(), usedforsecurity=False).hexdigest()
        self._spend_sha = hashlib.sha1(_SPEND_LUA.encode(), usedforsecurity=False).hexdigest()
        self._member_prefix = os.urandom(6).hex() + "-"
        self._members = count()

    def _make_client(self, retries: int) -> aioredis.Redis:
        retry = Retry(NoBackoff(), retries)
        if "max_connections" in self._options:
            # A bounded pool makes callers wait for a free connection (up to the socket timeout)
            # instead of failing the moment the bound is reached.
            pool = aioredis.BlockingConnectionPool.from_url(
                self._url, retry=retry, timeout=self._options["socket_timeout"], **self._options
            )
            return aioredis.Redis.from_pool(pool)
        return aioredis.Redis.from_url(self._url, retry=retry, **self._options)

    def _client(self) -> aioredis.Redis:
        loop = _asyncio_loop()
        if loop is self._loop and self._current is not None:
            return self._current
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = self._make_client(1)
        self._loop, self._current = loop, client
        return client

    @staticmethod
    def _unavailable(op: str, exc: BaseException) -> GuardUnavailable:
        return GuardUnavailable(f"state store unavailable: redis {op}: {type(exc).__name__}: {exc}")

    async def _script(self, sha: str, body: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        client = self._client()
        try:
            try:
                return await client.evalsha(sha, len(keys), *keys, *args)
            except NoScriptError:
                return await client.eval(body, len(keys), *keys, *args)
        except _ERRORS as exc:
            raise self._unavailable("script", exc) from exc

    async def _do(self, op: str, *args: Any) -> Any:
        try:
            return await self._client().execute_command(op, *args)  # type: ignore[no-untyped-call]
        except _ERRORS as exc:
            raise self._unavailable(op.lower(), exc) from exc

    # -- rate limits -------------------------------------------------------------------------

    async def hit(self, key: str, limit: int, window: float) -> RateDecision:
        return (await self.hit_many(((key, limit, window),)))[0]

    async def hit_many(self, hits: Sequence[tuple[str, int, float]]) -> list[RateDecision]:
        """Count one call against several limits in one script, all or nothing (keys must be distinct)."""
        check_distinct(hits)
        keys = [self._h + key for key, _, _ in hits]
        args: list[Any] = [self._member_prefix + str(next(self._members))]
        for _, limit, window in hits:
            args.append(int(limit))
            args.append(max(1, int(window * 1_000_000)))
        raw = await self._script(self._hit_sha, _HIT_LUA, keys, args)
        admitted = int(raw[0]) == 1
        out: list[RateDecision] = []
        for i, (_, limit, _) in enumerate(hits):
            count_, retry_us = int(raw[2 * i + 1]), int(raw[2 * i + 2])
            denied = not admitted and count_ >= limit
            out.append(RateDecision(not denied, count_, limit, max(retry_us, 0) / 1e6 if denied else 0.0))
        return out

    async def spend_many(self, items: Sequence[Spend], now: float) -> tuple[bool, list[tuple[int, int]]]:
        """Charge one call to several budget counters in one script, all or nothing.

        Same contract as :meth:`MemoryStore.spend_many <mcp_guard.store.memory.MemoryStore.spend_many>`,
        except that ``now`` is ignored: the window comes from the Redis server's clock, which
        every replica shares. Counters are key-value entries named ``key@window_start``.
        """
        check_spends(items)
        keys = [self._k + key for key, _, _, _ in items]
        args: list[Any] = [PERIOD_ANCHOR, PERIOD_GRACE]
        for _, cost, limit, period in items:
            args.extend((int(cost), int(limit), int(period)))
        raw = await self._script(self._spend_sha, _SPEND_LUA, keys, args)
        return int(raw[0]) == 1, [(int(raw[2 * i + 1]), int(raw[2 * i + 2])) for i in range(len(items))]

    # -- key-value ---------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value = await self._do("GET", self._k + key)
        return bytes(value) if value is not None else None

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        if ttl is None:
            await self._do("SET", self._k + key, value)
        elif ttl <= 0:
            await self._do("DEL", self._k + key)
        else:
            await self._do("SET", self._k + key, value, "PX", _ms(ttl))

    async def set_if_absent(self, key: str, value: bytes, ttl: float | None = None) -> bool:
        """Store ``value`` only when ``key`` holds nothing live; True when this call stored it."""
        if ttl is not None and ttl <= 0:
            return await self.get(key) is None
        extra: list[Any] = ["PX", _ms(ttl)] if ttl is not None else []
        return bool(await self._do("SET", self._k + key, value, "NX", *extra))

    async def take(self, key: str) -> bytes | None:
        """Return and delete a value in one command, so a one-time token is redeemed once."""
        value = await self._do("GETDEL", self._k + key)
        return bytes(value) if value is not None else None

    async def keys(self, prefix: str = "") -> list[str]:
        """Key-value and set keys starting with ``prefix``, sorted (SCAN, not KEYS)."""
        client = self._client()
        found: builtins.set[str] = set()
        try:
            for space in (self._k, self._s):
                pattern = (space + prefix).translate(_GLOB_SPECIAL) + "*"
                async for name in client.scan_iter(match=pattern, count=500):
                    found.add(bytes(name).decode()[len(space) :])
        except _ERRORS as exc:
            raise self._unavailable("scan", exc) from exc
        return sorted(found)

    async def delete(self, key: str) -> None:
        await self._do("DEL", self._k + key, self._s + key)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        ttl_arg = str(_ms(ttl)) if ttl is not None else ""
        return int(await self._script(self._incr_sha, _INCR_LUA, [self._k + key], [int(amount), ttl_arg]))

    # -- sets --------------------------------------------------------------------------------

    async def sadd(self, key: str, member: str) -> None:
        await self._do("SADD", self._s + key, member)

    async def srem(self, key: str, member: str) -> None:
        await self._do("SREM", self._s + key, member)

    async def sismember(self, key: str, member: str) -> bool:
        return bool(await self._do("SISMEMBER", self._s + key, member))

    async def smembers(self, key: str) -> builtins.set[str]:
        members = await self._do("SMEMBERS", self._s + key)
        return {bytes(m).decode() for m in members}

    # -- change notification -----------------------------------------------------------------

    async def publish(self, channel: str, message: str) -> None:
        await self._do("PUBLISH", self._c + channel, message)

    async def subscribe(self, channel: str) -> AsyncIterator[str]:
        """Yield messages published after the first ``__anext__``.

        The subscription has its own connection without retries: if it
        breaks, this iterator raises ``GuardUnavailable`` instead of silently
        resubscribing, because messages sent in the gap are lost. Consumers
        should subscribe again and reload the state they cache. Outside asyncio
        (trio) the first ``__anext__`` raises :class:`RedisBackendError`.
        """
        _asyncio_loop()
        client = self._make_client(0)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self._c + channel)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None and message.get("type") == "message":
                    yield bytes(message["data"]).decode()
        except _ERRORS as exc:
            raise self._unavailable("subscribe", exc) from exc
        finally:
            try:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
                await client.aclose()
            except _ERRORS:
                pass

    async def ping(self) -> None:
        """Round trip to the server; raises ``GuardUnavailable`` when it is unreachable."""
        await self._do("PING")

    async def aclose(self) -> None:
        """Close the client of the running loop; nothing to do outside asyncio, where none opened."""
        try:
            loop = _asyncio_loop()
        except RedisBackendError:
            return
        client = self._clients.pop(loop, None)
        if client is self._current:
            self._loop, self._current = None, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()
