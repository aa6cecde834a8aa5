"""The two-level cache: L1 in this process, L2 in Redis shared by every replica.

Lookup: L1 → L2 → one fetch. Concurrent misses of one key share a single fetch in this
process (singleflight) and, in write-through mode, across replicas too (a short Redis lock:
the others poll L2 for the winner's entry, then fetch themselves if it never comes).

``NotFound`` answers are cached too (``negative_ttl``, short) so that a burst of lookups of a
missing repository does not hit the provider every time.

Invalidation: a write evicts its tags from L1 at once, deletes them in L2 and publishes them;
every other replica evicts them from its L1 on the message. Messages lost during a Redis outage
are covered by clearing L1 when the subscription is re-established, and invalidations that
could not reach Redis are replayed on recovery. A fetch that began before an invalidation of
one of its tags is never stored (L1 and L2 both check), so a slow read cannot resurrect stale
data after a write.

Redis is best-effort for the cache: when it is down, reads use L1 and the provider; nothing
waits on Redis beyond its operation timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel

from mosaic.cache.l1 import L1Cache
from mosaic.cache.l2 import NEGATIVE, VALUE, L2Store, encode_negative, encode_value
from mosaic.cache.writeback import WriteBack
from mosaic.errors import NotFound
from mosaic.resilience.metrics import CACHE_INVALIDATIONS, CACHE_L1_ENTRIES, CACHE_REQUESTS
from mosaic.state.redis import RedisState, RedisUnavailable, Subscriber

log = logging.getLogger("mosaic.cache")

_L1_HIT = CACHE_REQUESTS.labels("l1", "hit")
_L1_NEG = CACHE_REQUESTS.labels("l1", "negative_hit")
_L2_HIT = CACHE_REQUESTS.labels("l2", "hit")
_L2_NEG = CACHE_REQUESTS.labels("l2", "negative_hit")
_MISS = CACHE_REQUESTS.labels("provider", "miss")
_SHARED = CACHE_REQUESTS.labels("singleflight", "shared")


@dataclass(frozen=True, slots=True)
class CacheSettings:
    max_size: int = 1000
    ttl: float = 300.0  # upper bound of any entry's TTL
    negative_ttl: float = 5.0
    use_l2: bool = True
    write_back: bool = False
    # Cross-replica fetch lock (write-through only): how long others wait for the first fetch
    # before fetching themselves. Short on purpose: it only has to cover a provider round trip.
    lock_ms: int = 500
    flush_interval: float = 0.05
    journal: Path | None = None


@dataclass(slots=True)
class Lookup:
    """What the layer knows about one read before fetching it."""

    key: str
    tags: tuple[str, ...]
    negative_tag: str | None
    decode: Callable[[bytes], BaseModel]


Policy = Callable[[], tuple[float, float]]  # after the fetch: (ttl, negative ttl) in seconds


class TwoLevelCache:
    def __init__(self, settings: CacheSettings, redis: RedisState | None = None,
                 subscriber: Subscriber | None = None) -> None:
        self.settings = settings
        self.l1 = L1Cache(settings.max_size)
        self.redis = redis if (redis is not None and redis.configured and settings.use_l2) else None
        self.l2 = L2Store(self.redis) if self.redis is not None else None
        self.writeback = (WriteBack(self.l2, settings.journal, interval=settings.flush_interval)
                          if self.l2 is not None and settings.write_back else None)
        self.origin = uuid.uuid4().hex[:12]
        self._flights: dict[str, asyncio.Future[tuple[Any, bool]]] = {}
        self._pending_invalidations: dict[str, None] = {}
        self.stats = {"l1_hits": 0, "l2_hits": 0, "misses": 0, "negative_hits": 0, "shared_fetches": 0,
                      "stores": 0, "stale_skips": 0, "invalidations": 0, "remote_invalidations": 0}
        if self.redis is not None and subscriber is not None and self.l2 is not None:
            subscriber.subscribe(self.l2.channel, self._on_message)
            subscriber.on_resubscribed(self._after_outage)
            self.redis.on_up(self._on_redis_up)

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        if self.writeback is not None:
            await self.writeback.start()

    async def stop(self) -> None:
        if self.writeback is not None:
            await self.writeback.stop()

    # -- read path ---------------------------------------------------------------------------
    def peek(self, key: str) -> Any:
        """The L1 value (or raise the cached NotFound); :data:`MISSING` when absent."""
        entry = self.l1.get(key)
        if entry is None:
            return MISSING
        if entry.negative:
            self.stats["negative_hits"] += 1
            _L1_NEG.inc()
            raise NotFound(entry.value[0], details=dict(entry.value[1]))
        self.stats["l1_hits"] += 1
        _L1_HIT.inc()
        return entry.value

    async def get_or_fetch(self, lookup: Lookup, fetch: Callable[[], Awaitable[BaseModel]],
                           policy: Policy, remaining: Callable[[], float | None]) -> BaseModel:
        value = self.peek(lookup.key)
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        flight = self._flights.get(lookup.key)
        if flight is not None:
            self.stats["shared_fetches"] += 1
            _SHARED.inc()
            try:
                result, negative = await asyncio.shield(flight)
            except asyncio.CancelledError:
                if flight.cancelled() and not _being_cancelled():
                    # The caller that was fetching went away; we did not: fetch ourselves.
                    return await self.get_or_fetch(lookup, fetch, policy, remaining)
                raise
            if negative:
                raise NotFound(result[0], details=dict(result[1]))
            return result  # type: ignore[no-any-return]
        fut: asyncio.Future[tuple[Any, bool]] = asyncio.get_running_loop().create_future()
        self._flights[lookup.key] = fut
        try:
            result, negative = await self._fetch(lookup, fetch, policy, remaining)
        except BaseException as exc:
            if isinstance(exc, Exception):
                fut.set_exception(exc)
                fut.exception()
            else:
                fut.cancel()
            raise
        else:
            fut.set_result((result, negative))
        finally:
            self._flights.pop(lookup.key, None)
        if negative:
            raise NotFound(result[0], details=dict(result[1]))
        return result  # type: ignore[no-any-return]

    async def _fetch(self, lookup: Lookup, fetch: Callable[[], Awaitable[BaseModel]], policy: Policy,
                     remaining: Callable[[], float | None]) -> tuple[Any, bool]:
        started = time.monotonic()
        started_ms = int(time.time() * 1000)
        token = ""
        l2 = self.l2
        if l2 is not None and l2.redis.available:
            token = uuid.uuid4().hex if self.writeback is None else ""
            try:
                status, raw, started_ms = await l2.get_or_lock(
                    lookup.key, self.settings.lock_ms if token else 0, token)
                if status == 2:
                    raw = await self._await_other_replica(lookup.key, remaining)
                    token = ""
            except RedisUnavailable:
                raw, token = None, ""
            if raw is not None:
                return self._from_l2(lookup, raw, started, policy)
        self.stats["misses"] += 1
        _MISS.inc()
        try:
            result = await fetch()
        except NotFound as exc:
            _, negative_ttl = policy()
            if negative_ttl > 0:
                tags = (*lookup.tags, lookup.negative_tag) if lookup.negative_tag else lookup.tags
                value = (exc.message, exc.details)
                self.l1.set(lookup.key, value, negative_ttl, tags, negative=True, fetch_started=started)
                await self._store_l2(lookup.key, encode_negative(exc.message, exc.details), negative_ttl,
                                     tags, started_ms, token)
            elif token:
                await self._release(lookup.key, token)
            raise
        except BaseException:
            if token:
                await self._release(lookup.key, token)
            raise
        ttl, _ = policy()
        ttl = min(ttl, self.settings.ttl)
        if ttl <= 0:
            if token:
                await self._release(lookup.key, token)
            return result, False
        if not self.l1.set(lookup.key, result, ttl, lookup.tags, fetch_started=started):
            self.stats["stale_skips"] += 1
        await self._store_l2(lookup.key, encode_value(result.__pydantic_serializer__.to_json(result)), ttl,
                             lookup.tags, started_ms, token)
        return result, False

    def _from_l2(self, lookup: Lookup, raw: bytes, started: float, policy: Policy) -> tuple[Any, bool]:
        # The L1 copy lives at most as long as a fresh entry would (L2 has its own expiry).
        ttl, negative_ttl = policy()
        kind, payload = raw[:1], raw[1:]
        if kind == NEGATIVE:
            data = orjson.loads(payload)
            value = (str(data.get("message", "not found")), dict(data.get("details") or {}))
            self.stats["negative_hits"] += 1
            _L2_NEG.inc()
            tags = (*lookup.tags, lookup.negative_tag) if lookup.negative_tag else lookup.tags
            self.l1.set(lookup.key, value, negative_ttl, tags, negative=True, fetch_started=started)
            return value, True
        if kind != VALUE:
            raise ValueError("corrupt cache entry")
        result = lookup.decode(payload)
        self.stats["l2_hits"] += 1
        _L2_HIT.inc()
        self.l1.set(lookup.key, result, min(ttl, self.settings.ttl), lookup.tags, fetch_started=started)
        return result, False

    async def _await_other_replica(self, key: str, remaining: Callable[[], float | None]) -> bytes | None:
        """Another replica is fetching this key: poll L2 briefly for its result."""
        assert self.l2 is not None
        budget = self.settings.lock_ms / 1000
        left = remaining()
        if left is not None:
            budget = min(budget, left / 2)
        until = time.monotonic() + budget
        delay = 0.002
        while time.monotonic() < until:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
            status, raw = await self.l2.poll(key)
            if status != 2:
                return raw  # the entry, or None when the other fetch gave up
        return None

    async def _store_l2(self, key: str, value: bytes, ttl: float, tags: tuple[str, ...], started_ms: int,
                        token: str) -> None:
        l2 = self.l2
        if l2 is None:
            return
        if self.writeback is not None:
            self.writeback.add(key, value, ttl, tags)
            return
        try:
            if await l2.store(key, value, int(ttl * 1000), tags, started_ms, token):
                self.stats["stores"] += 1
            else:
                self.stats["stale_skips"] += 1
        except RedisUnavailable:
            pass

    async def _release(self, key: str, token: str) -> None:
        if self.l2 is None:
            return
        try:
            await self.l2.release(key, token)
        except RedisUnavailable:
            pass

    # -- invalidation ----------------------------------------------------------------------------
    async def invalidate(self, tags: list[str]) -> None:
        if not tags:
            return
        self.stats["invalidations"] += len(tags)
        CACHE_INVALIDATIONS.labels("local").inc(len(tags))
        self.l1.invalidate(tags, self.settings.ttl)
        if self.writeback is not None:
            self.writeback.discard(tags)
        if self.l2 is None:
            return
        try:
            await self._invalidate_l2(tags)
        except RedisUnavailable:
            # Replayed when Redis is back (other replicas clear their L1 on resubscribe).
            for tag in tags:
                self._pending_invalidations[tag] = None
            while len(self._pending_invalidations) > 100_000:
                del self._pending_invalidations[next(iter(self._pending_invalidations))]

    async def _invalidate_l2(self, tags: list[str]) -> None:
        assert self.l2 is not None
        payload = orjson.dumps({"o": self.origin, "t": tags})
        stamp_ttl = int(max(self.settings.ttl, 60.0) * 1000)
        await self.l2.invalidate(tags, stamp_ttl, payload)

    def _on_message(self, _channel: str, data: bytes) -> None:
        try:
            msg = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if msg.get("o") == self.origin:
            return
        tags = [t for t in msg.get("t", []) if isinstance(t, str)]
        self.stats["remote_invalidations"] += len(tags)
        CACHE_INVALIDATIONS.labels("remote").inc(len(tags))
        self.l1.invalidate(tags, self.settings.ttl)
        if self.writeback is not None:
            self.writeback.discard(tags)

    async def _after_outage(self) -> None:
        """Resubscribed after an outage: we may have missed invalidations."""
        self.l1.clear()
        CACHE_L1_ENTRIES.set(0)

    async def _on_redis_up(self) -> None:
        if self._pending_invalidations and self.l2 is not None:
            tags = list(self._pending_invalidations)
            try:
                for i in range(0, len(tags), 500):
                    await self._invalidate_l2(tags[i:i + 500])
            except RedisUnavailable:
                return
            self._pending_invalidations.clear()
        if self.writeback is not None:
            await self.writeback.on_redis_up()

    def snapshot(self) -> dict[str, Any]:
        hits = self.stats["l1_hits"] + self.stats["l2_hits"] + self.stats["negative_hits"]
        total = hits + self.stats["misses"]
        CACHE_L1_ENTRIES.set(len(self.l1))
        out: dict[str, Any] = {
            "l1_entries": len(self.l1), "l1_max": self.settings.max_size, "l1_evictions": self.l1.evictions,
            "l2": "redis" if self.l2 is not None else None,
            "strategy": "write-back" if self.writeback is not None else "write-through",
            "hit_ratio": round(hits / total, 4) if total else None, **self.stats,
            "pending_invalidations": len(self._pending_invalidations),
        }
        if self.writeback is not None:
            out["writeback_pending"] = len(self.writeback.pending)
            out["writeback_flushed"] = self.writeback.flushed
        return out


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
