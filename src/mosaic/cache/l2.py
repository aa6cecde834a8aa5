"""L2: cache entries in Redis, with tag indexes, invalidation stamps and a fetch lock.

Three scripts, one round trip each:

* ``get_or_lock`` — the entry, or a miss plus (optionally) the per-key fetch lock, and Redis'
  clock at that instant (the fetch's start, comparable with every replica's invalidations);
* ``store`` — writes the entry unless one of its tags was invalidated after the fetch started
  (a write on another replica raced our read), indexes it under its tags (sorted sets scored
  by expiry, pruned on insert, so indexes stay as small as the live entries), frees the lock;
* ``invalidate`` — deletes every entry of the tags, stamps the tags, and publishes them so that
  every replica evicts its L1.

The scripts touch keys derived inside them (tag members), so they need a single Redis (or
Sentinel), not Redis Cluster.
"""

from __future__ import annotations

from typing import Any

import orjson

from mosaic.state.redis import RedisState

_GET_OR_LOCK = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if ARGV[1] == '0' then return {0, now} end
if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[1]) then return {0, now} end
return {2, now}
"""

_STORE = """
local n = tonumber(ARGV[4])
local started = tonumber(ARGV[3])
local stale = false
for i = 1, n do
  local s = redis.call('GET', KEYS[2 + i])
  if s and tonumber(s) >= started then stale = true break end
end
if not stale then
  local ttl = tonumber(ARGV[2])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for i = 1, n do
    local z = KEYS[2 + n + i]
    redis.call('ZADD', z, now + ttl, KEYS[1])
    redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
    if redis.call('PTTL', z) < ttl then redis.call('PEXPIRE', z, ttl) end
  end
end
if ARGV[5] ~= '' and redis.call('GET', KEYS[2]) == ARGV[5] then redis.call('DEL', KEYS[2]) end
if stale then return 0 end
return 1
"""

_INVALIDATE = """
local n = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local removed = 0
for i = 1, n do
  local members = redis.call('ZRANGE', KEYS[i], 0, -1)
  for j = 1, #members, 500 do
    removed = removed + redis.call('DEL', unpack(members, j, math.min(j + 499, #members)))
  end
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[n + i], now, 'PX', ARGV[2])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return removed
"""

_POLL = """
local v = redis.call('GET', KEYS[1])
if v then return {1, v} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
return {0}
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

VALUE = b"v"
NEGATIVE = b"n"


def encode_value(payload: bytes) -> bytes:
    return VALUE + payload


def encode_negative(message: str, details: dict[str, Any]) -> bytes:
    return NEGATIVE + orjson.dumps({"message": message, "details": details}, default=str)


class L2Store:
    def __init__(self, redis: RedisState) -> None:
        assert redis.client is not None
        self.redis = redis
        client = redis.client
        self.channel = redis.key("cinv")
        self._get = client.register_script(_GET_OR_LOCK)
        self._store = client.register_script(_STORE)
        self._invalidate = client.register_script(_INVALIDATE)
        self._release = client.register_script(_RELEASE)
        self._poll = client.register_script(_POLL)

    def entry(self, key: str) -> str:
        return self.redis.key("c", key)

    def lock(self, key: str) -> str:
        return self.redis.key("cl", key)

    def tag(self, tag: str) -> str:
        return self.redis.key("ct", tag)

    def stamp(self, tag: str) -> str:
        return self.redis.key("cs", tag)

    async def get_or_lock(self, key: str, lock_ms: int, token: str) -> tuple[int, bytes | None, int]:
        """(1, value, 0) on a hit; (0, None, now_ms) on a miss we may fetch (lock taken when
        asked); (2, None, now_ms) when another replica holds the fetch lock."""
        res = await self.redis.run(
            lambda _: self._get(keys=[self.entry(key), self.lock(key)], args=[lock_ms, token]))
        if int(res[0]) == 1:
            value: bytes | str = res[1]
            return 1, value.encode() if isinstance(value, str) else value, 0
        return int(res[0]), None, int(res[1])

    async def poll(self, key: str) -> tuple[int, bytes | None]:
        """(1, value) once the entry exists; (2, None) while the fetch lock is held; (0, None)
        when the lock was released (or expired) without an entry: stop waiting, fetch."""
        res = await self.redis.run(lambda _: self._poll(keys=[self.entry(key), self.lock(key)]))
        if int(res[0]) == 1:
            value: bytes | str = res[1]
            return 1, value.encode() if isinstance(value, str) else value
        return int(res[0]), None

    async def get(self, key: str) -> bytes | None:
        raw = await self.redis.run(lambda r: r.get(self.entry(key)))
        return raw.encode() if isinstance(raw, str) else raw

    def store_args(self, key: str, value: bytes, ttl_ms: int, tags: tuple[str, ...], started_ms: int,
                   token: str) -> tuple[list[str], list[Any]]:
        keys = [self.entry(key), self.lock(key), *(self.stamp(t) for t in tags), *(self.tag(t) for t in tags)]
        return keys, [value, max(1, ttl_ms), started_ms, len(tags), token]

    async def store(self, key: str, value: bytes, ttl_ms: int, tags: tuple[str, ...], started_ms: int,
                    token: str = "") -> bool:
        keys, args = self.store_args(key, value, ttl_ms, tags, started_ms, token)
        return bool(await self.redis.run(lambda _: self._store(keys=keys, args=args)))

    async def store_many(self, items: list[tuple[list[str], list[Any]]]) -> None:
        """Several stores in one pipelined round trip (write-back flushes)."""
        async def run(r: Any) -> None:
            async with r.pipeline(transaction=False) as pipe:
                for keys, args in items:
                    await self._store(keys=keys, args=args, client=pipe)
                await pipe.execute()

        await self.redis.run(run, budget=max(self.redis.op_timeout, 0.002 * len(items)))

    async def release(self, key: str, token: str) -> None:
        await self.redis.run(lambda _: self._release(keys=[self.lock(key)], args=[token]))

    async def invalidate(self, tags: list[str], stamp_ttl_ms: int, payload: bytes) -> int:
        keys = [*(self.tag(t) for t in tags), *(self.stamp(t) for t in tags)]
        return int(await self.redis.run(
            lambda _: self._invalidate(keys=keys, args=[len(tags), stamp_ttl_ms, self.channel, payload])))
