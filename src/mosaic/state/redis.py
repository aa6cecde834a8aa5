"""One shared Redis client per gateway, with a health flag and recovery by itself.

Redis holds what replicas must agree on (cache entries and their invalidation, rate-limit
windows, circuit-breaker state, idempotency records), but it must never become the single point
of failure of the gateway. So every use of Redis here is:

* bounded in time: socket and connect timeouts, no client-side retries, and an overall
  ``asyncio.timeout`` around each operation — a hung Redis costs at most ``op_timeout``;
* skipped while Redis is known to be down: after the first failure, callers get
  :class:`RedisUnavailable` at once (no socket is touched) and degrade — L1 only, local limits,
  local breakers — while one background probe pings with backoff;
* restored automatically: when the probe succeeds, stale pooled connections are dropped and the
  registered ``on_up`` callbacks run (resubscribe, resynchronise, flush queued writes).

Usage::

    state = RedisState.from_env()            # MOSAIC_REDIS_URL, MOSAIC_REDIS_PREFIX
    await state.start()
    value = await state.run(lambda r: r.get(state.key("x")))   # RedisUnavailable when degraded
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import MaxConnectionsError, RedisError, ResponseError

from mosaic.errors import ConfigError
from mosaic.security.redaction import redact_text

log = logging.getLogger("mosaic.state.redis")

T = TypeVar("T")

DEFAULT_PREFIX = "mosaic:"
# Errors that mean "Redis cannot be reached or answered too late" (ResponseError is a bug or a
# script problem, not an outage, and is treated separately).
_OUTAGE = (RedisError, OSError, TimeoutError, ConnectionError)


class RedisUnavailable(Exception):
    """Redis is not usable right now; the caller must degrade (or fail closed) by itself."""


def redact_url(url: str) -> str:
    """The URL without its password, for logs and status."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


class RedisState:
    """A Redis client with a health flag, an outage probe and recovery callbacks."""

    def __init__(self, url: str | None, *, prefix: str = DEFAULT_PREFIX, op_timeout: float = 0.5,
                 probe_interval: float = 0.2, max_probe_interval: float = 2.0,
                 max_connections: int = 256) -> None:
        self.url = url
        self.prefix = prefix if prefix.endswith(":") else prefix + ":"
        self.op_timeout = op_timeout
        self.probe_interval = probe_interval
        self.max_probe_interval = max_probe_interval
        # Identifies this process among the replicas (heartbeats, status).
        self.replica_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.client: Redis | None = None
        if url is not None:
            self.client = Redis.from_url(
                url, socket_timeout=op_timeout, socket_connect_timeout=op_timeout,
                # No hidden retries: a failure must surface at once so that we degrade.
                retry=Retry(NoBackoff(), 0), retry_on_timeout=False,
                # A few more than the slots below: the pub/sub connection lives outside them.
                max_connections=max_connections + 8, health_check_interval=0)
        # Concurrent operations are bounded here rather than by the pool (which fails at once
        # when exhausted): a burst queues for a slot, and waiting for a slot — load, not an
        # outage — never marks Redis down.
        self._slots = asyncio.Semaphore(max_connections)
        self._up = False
        self._up_event = asyncio.Event()
        self.last_error: str | None = None
        self.down_since: float | None = None
        self.outages = 0
        self._probe: asyncio.Task[None] | None = None
        self._on_up: list[Callable[[], Awaitable[None]]] = []
        self._on_down: list[Callable[[], None]] = []
        self._started = False

    @classmethod
    def from_env(cls, url: str | None = None, prefix: str | None = None) -> RedisState:
        """Configured from ``MOSAIC_REDIS_URL``, ``MOSAIC_REDIS_PREFIX`` and
        ``MOSAIC_REDIS_TIMEOUT_MS`` (default 500: the longest a request waits on Redis) unless given."""
        from mosaic.config.schema import Settings

        timeout_ms = os.environ.get("MOSAIC_REDIS_TIMEOUT_MS", "").strip() or "500"
        if not timeout_ms.isdigit() or not 0 < int(timeout_ms) <= 60_000:
            raise ConfigError([f"environment variable MOSAIC_REDIS_TIMEOUT_MS: expected a number of "
                               f"milliseconds from 1 to 60000, got {timeout_ms!r}"])
        try:
            return cls(url if url is not None else Settings().redis_url,
                       prefix=prefix or os.environ.get("MOSAIC_REDIS_PREFIX") or DEFAULT_PREFIX,
                       op_timeout=int(timeout_ms) / 1000)
        except ValueError as exc:  # redis-py's URL parser: masked in case a message quotes the URL
            raise ConfigError([f"environment variable MOSAIC_REDIS_URL: {redact_text(str(exc))}"]) from None

    # -- state ------------------------------------------------------------------
    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def available(self) -> bool:
        return self._up and self.client is not None

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def on_up(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` each time Redis becomes reachable again (not at the first start)."""
        self._on_up.append(callback)

    def on_down(self, callback: Callable[[], None]) -> None:
        self._on_down.append(callback)

    def health(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "url": redact_url(self.url) if self.url else None,
            "available": self.available,
            "status": "disabled" if not self.configured else ("up" if self.available else "down"),
            "down_for_s": round(time.monotonic() - self.down_since, 3) if self.down_since else None,
            "last_error": self.last_error,
            "outages": self.outages,
            "replica": self.replica_id,
        }

    # -- lifecycle ----------------------------------------------------------------
    async def start(self) -> None:
        if self._started or self.client is None:
            return
        self._started = True
        try:
            async with asyncio.timeout(self.op_timeout * 4):
                await self.client.ping()
        except _OUTAGE as exc:
            self.mark_down(exc)
        else:
            self._set_up()

    async def stop(self) -> None:
        self._started = False
        probe, self._probe = self._probe, None
        if probe is not None:
            probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await probe
        if self.client is not None:
            with contextlib.suppress(*_OUTAGE):
                await self.client.aclose()
        self._up = False
        self._up_event.clear()

    async def wait_up(self, limit: float | None = None) -> bool:
        if self.available:
            return True
        try:
            async with asyncio.timeout(limit):
                await self._up_event.wait()
        except TimeoutError:
            return False
        return self.available

    # -- use --------------------------------------------------------------------------
    async def run(self, fn: Callable[[Redis], Awaitable[T]], *, budget: float | None = None) -> T:
        """Run one Redis operation within ``op_timeout``; :class:`RedisUnavailable` when degraded."""
        client = self.client
        if client is None or not self._up:
            raise RedisUnavailable("redis is not available")
        limit = budget or self.op_timeout
        slots = self._slots
        if slots.locked():
            try:
                async with asyncio.timeout(limit):
                    await slots.acquire()
            except TimeoutError:
                raise RedisUnavailable("redis is busy: no free connection in time") from None
        else:
            await slots.acquire()
        try:
            async with asyncio.timeout(limit):
                return await fn(client)
        except ResponseError as exc:
            log.error("redis rejected a command: %s", exc)
            raise RedisUnavailable(f"redis error: {exc}") from exc
        except MaxConnectionsError as exc:
            raise RedisUnavailable("redis is busy: connection pool exhausted") from exc
        except _OUTAGE as exc:
            self.mark_down(exc)
            raise RedisUnavailable(f"redis is not available: {type(exc).__name__}") from exc
        finally:
            slots.release()

    def mark_down(self, exc: BaseException | None = None) -> None:
        """Record an outage and start probing (idempotent)."""
        if exc is not None:
            self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._up or self.down_since is None:
            if self._up:
                self.outages += 1
                log.warning("redis unreachable, degrading to local state: %s", self.last_error)
            self.down_since = time.monotonic()
        self._up = False
        self._up_event.clear()
        for cb in self._on_down:
            try:
                cb()
            except Exception:
                log.exception("redis on_down callback failed")
        if self._started and (self._probe is None or self._probe.done()):
            self._probe = asyncio.get_running_loop().create_task(self._probe_loop(), name="redis-probe")

    def _set_up(self) -> None:
        self._up = True
        self.down_since = None
        self._up_event.set()

    async def _probe_loop(self) -> None:
        delay = self.probe_interval
        client = self.client
        assert client is not None
        while self._started and not self._up:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(self.op_timeout):
                    await client.ping()
            except _OUTAGE as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"[:300]
                delay = min(delay * 2, self.max_probe_interval)
                continue
            # Pooled connections opened before the outage point at a dead socket: drop them so
            # that the first commands after recovery do not fail and flap the state again.
            with contextlib.suppress(*_OUTAGE):
                await client.connection_pool.disconnect()
            log.warning("redis reachable again after %.1fs", time.monotonic() - (self.down_since or 0))
            self._set_up()
            for cb in list(self._on_up):
                try:
                    await cb()
                except Exception:
                    log.exception("redis on_up callback failed")


Handler = Callable[[str, bytes], None]


class Subscriber:
    """Pub/sub on one connection, resubscribed after every outage.

    ``on_resubscribed`` callbacks run after each (re)subscription: messages published while
    we were disconnected are lost, so a listener must resynchronise (e.g. clear its L1).
    """

    def __init__(self, state: RedisState) -> None:
        self.state = state
        self.handlers: dict[str, Handler] = {}
        self._on_resubscribed: list[Callable[[], Awaitable[None]]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._started_down = False
        self.subscriptions = 0

    def subscribe(self, channel: str, handler: Handler) -> None:
        self.handlers[channel] = handler

    def on_resubscribed(self, callback: Callable[[], Awaitable[None]]) -> None:
        self._on_resubscribed.append(callback)

    async def start(self) -> None:
        if self.state.client is None or not self.handlers or self._task is not None:
            return
        self._started_down = not self.state.available
        self._task = asyncio.get_running_loop().create_task(self._run(), name="redis-subscriber")
        if self._started_down:
            return  # it subscribes when Redis comes back; start-up does not wait for it
        # Give the first subscription a moment so that a gateway that just started already
        # hears invalidations; never block start-up on it.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.state.op_timeout * 4):
                await self._ready.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        first = True
        while True:
            if not await self.state.wait_up(limit=1.0):
                continue
            client = self.state.client
            assert client is not None
            pubsub: PubSub = client.pubsub(ignore_subscribe_messages=True)
            try:
                async with asyncio.timeout(self.state.op_timeout * 4):
                    await pubsub.subscribe(*self.handlers)
                self.subscriptions += 1
                # State kept while we were not subscribed may be stale: let listeners catch up.
                if not first or self._started_down:
                    for cb in list(self._on_resubscribed):
                        try:
                            await cb()
                        except Exception:
                            log.exception("resubscribe callback failed")
                first = False
                self._ready.set()
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is None:
                        if not self.state.available:
                            break
                        continue
                    channel = msg["channel"]
                    name = channel.decode() if isinstance(channel, bytes) else str(channel)
                    handler = self.handlers.get(name)
                    if handler is not None:
                        data = msg["data"]
                        try:
                            handler(name, data if isinstance(data, bytes) else str(data).encode())
                        except Exception:
                            log.exception("pub/sub handler for %s failed", name)
            except _OUTAGE as exc:
                self.state.mark_down(exc)
            finally:
                with contextlib.suppress(*_OUTAGE, RuntimeError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
