"""Idempotent writes: a replayed write returns the first result instead of writing twice.

A write carrying an ``Idempotency-Key`` (``ctx.idempotency_key``) is recorded per tenant:

1. *reserve* — before anything is sent, the key is written as ``pending`` with the params'
   fingerprint and a lease (SET NX: only one request of all replicas wins);
2. the call runs;
3. *complete* — the result (or the error) replaces the reservation, kept ``ttl`` (24 h).

A replay with the same key gets the stored result (``ctx.meta["idempotent_replay"] = True``), or
the stored error; a replay *while* the first is in flight waits for it (up to its deadline or
``wait``) and otherwise gets ``Conflict``. Reusing a key with other params is ``InvalidRequest``.

Outcomes are stored as follows, so that nothing is ever written twice:

* success, and errors where the provider answered (4xx) — stored and replayed as they were;
* errors proving nothing was sent (``sent=False``, 429, our own breaker/bulkhead/limiter) — the
  reservation is released, so the client may retry with the same key;
* unknown outcomes (timeouts, connection reset after sending, 5xx, a crash of this process) —
  stored as *unknown*: a replay gets ``Conflict`` asking to check the resource and use a new
  key. A gateway that crashes between the provider call and step 3 leaves a ``pending`` record
  whose lease runs out: it is then treated exactly as unknown.

Without an explicit key, an *idempotent* write (the catalog says repeating it is harmless) gets a
key derived from tenant, operation and params: identical calls in flight at the same time in
this process share one provider call and its result. Nothing is kept after completion, so a
later identical call runs again (set A, set B, set A must end in A).

The records live in Redis when it is configured: they are shared-state-critical, so while
Redis is unreachable a write with an explicit key fails closed (``provider_unavailable``,
``sent=False``: retry later, nothing was done) rather than risk a duplicate. Without Redis
(embedded mode) they live in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from pydantic import BaseModel

from mosaic.errors import (
    ERRORS_BY_CODE,
    Conflict,
    InvalidRequest,
    MosaicError,
    ProviderUnavailable,
    RateLimited,
)
from mosaic.gateway.pipeline import Call, Next
from mosaic.resilience.errors import is_local_rejection
from mosaic.resilience.metrics import IDEMPOTENCY
from mosaic.state.redis import RedisState, RedisUnavailable

log = logging.getLogger("mosaic.resilience.idempotency")

# Definitive answers of the provider: deterministic for the same request, safe to replay.
_ANSWERED = frozenset({"invalid_request", "not_found", "conflict", "unauthorized", "forbidden",
                       "operation_not_supported", "unknown_operation"})


@dataclass(frozen=True, slots=True)
class IdempotencySettings:
    ttl: float = 24 * 3600.0
    # How long a pending reservation is honoured beyond the call's own deadline.
    lease_margin: float = 5.0
    # Lease when the call has no deadline.
    default_lease: float = 300.0
    # How long a replay waits for an in-flight first request when it has no deadline.
    wait: float = 10.0


def fingerprint(call: Call) -> str:
    body = orjson.dumps(call.params.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(call.op.qualified_name.encode() + b"\0" + body).hexdigest()[:32]


def _pending(fp: str, owner: str, lease_until: float) -> bytes:
    return orjson.dumps({"s": "pending", "fp": fp, "owner": owner, "lease": lease_until})


class Store(Protocol):
    async def reserve(self, key: str, record: bytes, ttl: float) -> bytes | None:
        """Store ``record`` if ``key`` is free; else return what is there."""

    async def replace(self, key: str, owner: str, record: bytes | None, ttl: float) -> None:
        """Replace (or delete, with None) our own reservation."""

    async def get(self, key: str) -> bytes | None: ...


_REPLACE = """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local ok, rec = pcall(cjson.decode, cur)
if not ok or rec['owner'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
return 1
"""


class RedisStore:
    def __init__(self, redis: RedisState) -> None:
        self.redis = redis
        assert redis.client is not None
        self._replace = redis.client.register_script(_REPLACE)

    async def reserve(self, key: str, record: bytes, ttl: float) -> bytes | None:
        async def op(r: Any) -> bytes | None:
            async with r.pipeline(transaction=True) as p:
                p.set(key, record, nx=True, px=int(ttl * 1000))
                p.get(key)
                created, current = await p.execute()
            return None if created else current  # type: ignore[no-any-return]

        return await self.redis.run(op)

    async def replace(self, key: str, owner: str, record: bytes | None, ttl: float) -> None:
        args: list[bytes | str | int] = [owner, record or b"", int(ttl * 1000)]
        await self.redis.run(lambda _: self._replace(keys=[key], args=args))

    async def get(self, key: str) -> bytes | None:
        raw = await self.redis.run(lambda r: r.get(key))
        return raw.encode() if isinstance(raw, str) else raw


class MemoryStore:
    """In-process records for the embedded mode (one process, no Redis)."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._data: dict[str, tuple[float, bytes]] = {}
        self.max_entries = max_entries

    def _live(self, key: str) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            del self._data[key]
            return None
        return item[1]

    async def reserve(self, key: str, record: bytes, ttl: float) -> bytes | None:
        current = self._live(key)
        if current is not None:
            return current
        if len(self._data) >= self.max_entries:
            now = time.monotonic()
            for k in [k for k, (exp, _) in self._data.items() if exp <= now]:
                del self._data[k]
            while len(self._data) >= self.max_entries:
                del self._data[next(iter(self._data))]
        self._data[key] = (time.monotonic() + ttl, record)
        return None

    async def replace(self, key: str, owner: str, record: bytes | None, ttl: float) -> None:
        current = self._live(key)
        if current is None or orjson.loads(current).get("owner") != owner:
            return
        if record is None:
            self._data.pop(key, None)
        else:
            self._data[key] = (time.monotonic() + ttl, record)

    async def get(self, key: str) -> bytes | None:
        return self._live(key)


def _error_record(exc: MosaicError, fp: str, owner: str, unknown: bool) -> bytes:
    data: dict[str, Any] = {"s": "unknown" if unknown else "error", "fp": fp, "owner": owner,
                            "code": exc.code, "message": exc.message, "details": exc.details}
    return orjson.dumps(data, default=str)


def _rebuild_error(rec: dict[str, Any]) -> MosaicError:
    cls = ERRORS_BY_CODE.get(str(rec.get("code")), MosaicError)
    exc = cls.__new__(cls)
    MosaicError.__init__(exc, str(rec.get("message", "")), details=dict(rec.get("details") or {}))
    if isinstance(exc, RateLimited):
        exc.retry_after = exc.details.get("retry_after")
    if isinstance(exc, ProviderUnavailable):
        exc.sent = True
    return exc


class IdempotencyLayer:
    """The pipeline layer (writes only; reads pass straight through)."""

    def __init__(self, redis: RedisState | None, settings: IdempotencySettings | None = None) -> None:
        self.settings = settings or IdempotencySettings()
        self.redis = redis if redis is not None and redis.configured else None
        self.store: Store = RedisStore(self.redis) if self.redis is not None else MemoryStore()
        # Derived keys being executed in this process: identical concurrent calls share them.
        self._inflight: dict[str, asyncio.Future[BaseModel]] = {}
        self.prefix = redis.key("idem") if redis is not None else "idem"

    async def __call__(self, call: Call, nxt: Next) -> BaseModel:
        op = call.op
        if op.is_read:
            return await nxt(call)
        key = call.ctx.idempotency_key
        if key is None:
            if not op.idempotent:
                return await nxt(call)
            return await self._collapse(call, nxt)
        return await self._keyed(call, nxt, key)

    # -- derived keys: share one in-flight call -----------------------------------------
    async def _collapse(self, call: Call, nxt: Next) -> BaseModel:
        key = f"{call.ctx.tenant}\0{fingerprint(call)}"
        running = self._inflight.get(key)
        if running is not None:
            IDEMPOTENCY.labels("collapsed").inc()
            try:
                result = await asyncio.shield(running)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if running.cancelled() and task is not None and task.cancelling() == 0:
                    return await self._collapse(call, nxt)  # the first caller went away: run it
                raise
            call.ctx.meta["idempotent_replay"] = True
            return result
        fut: asyncio.Future[BaseModel] = asyncio.get_running_loop().create_future()
        self._inflight[key] = fut
        try:
            result = await nxt(call)
        except Exception as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved here: no "never retrieved" warning when nobody shared it
            raise
        except BaseException:
            fut.cancel()
            raise
        else:
            fut.set_result(result)
            return result
        finally:
            self._inflight.pop(key, None)

    # -- explicit keys ------------------------------------------------------------------------
    def _record_key(self, call: Call, key: str) -> str:
        digest = hashlib.sha256(key.encode()).hexdigest()[:40]
        return f"{self.prefix}:{call.ctx.tenant}:{digest}"

    def _lease(self, call: Call) -> float:
        remaining = call.ctx.remaining()
        base = self.settings.default_lease if remaining is None else remaining
        return time.time() + base + self.settings.lease_margin

    async def _keyed(self, call: Call, nxt: Next, key: str) -> BaseModel:
        s = self.settings
        rkey = self._record_key(call, key)
        fp = fingerprint(call)
        owner = uuid.uuid4().hex
        started = time.monotonic()
        while True:
            try:
                existing = await self.store.reserve(rkey, _pending(fp, owner, self._lease(call)), s.ttl)
            except RedisUnavailable:
                IDEMPOTENCY.labels("store_unavailable").inc()
                raise ProviderUnavailable(
                    "the idempotency store (Redis) is unreachable; the write was not sent — retry later "
                    "with the same Idempotency-Key", details={"idempotency_key": key}, sent=False) from None
            if existing is None:
                break
            rec = orjson.loads(existing)
            if rec.get("fp") != fp:
                IDEMPOTENCY.labels("mismatch").inc()
                raise InvalidRequest("this Idempotency-Key was already used with other parameters or "
                                     "another operation; use a new key", details={"idempotency_key": key})
            state = rec.get("s")
            if state == "pending":
                if rec.get("lease", 0) > time.time():
                    await self._wait(call, key, started)
                    continue
                state = "unknown"
            IDEMPOTENCY.labels("replayed").inc()
            call.ctx.meta["idempotent_replay"] = True
            return self._replay(call, key, rec, state)
        IDEMPOTENCY.labels("first").inc()
        try:
            result = await nxt(call)
        except MosaicError as exc:
            await self._finish_error(call, rkey, owner, fp, exc)
            raise
        except asyncio.CancelledError:
            # The caller went away mid-call: whether the provider applied it is unknown.
            self._spawn(self._complete(rkey, owner, _error_record(
                ProviderUnavailable("the request was cancelled while the provider was being called"),
                fp, owner, unknown=True)))
            raise
        except Exception as exc:
            error = MosaicError(f"internal error: {type(exc).__name__}")
            await self._complete(rkey, owner, _error_record(error, fp, owner, unknown=True))
            raise
        record = orjson.dumps({"s": "done", "fp": fp, "owner": owner,
                               "result": result.model_dump(mode="json")})
        await self._complete(rkey, owner, record)
        return result

    async def _finish_error(self, call: Call, rkey: str, owner: str, fp: str, exc: MosaicError) -> None:
        not_sent = (is_local_rejection(exc) or isinstance(exc, RateLimited)
                    or (isinstance(exc, ProviderUnavailable) and not exc.sent))
        if not_sent:
            await self._complete(rkey, owner, None)
        elif exc.code in _ANSWERED:
            await self._complete(rkey, owner, _error_record(exc, fp, owner, unknown=False))
        else:
            await self._complete(rkey, owner, _error_record(exc, fp, owner, unknown=True))

    async def _complete(self, rkey: str, owner: str, record: bytes | None) -> None:
        try:
            await self.store.replace(rkey, owner, record, self.settings.ttl)
        except RedisUnavailable:
            # The pending reservation stays; when its lease ends a replay is told the outcome is
            # unknown — never executed twice.
            log.warning("idempotency record could not be completed (redis unavailable)")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    async def _wait(self, call: Call, key: str, started: float) -> None:
        remaining = call.ctx.remaining()
        limit = self.settings.wait if remaining is None else remaining
        elapsed = time.monotonic() - started
        if elapsed >= limit - 0.01:
            IDEMPOTENCY.labels("in_progress").inc()
            raise Conflict("a request with this Idempotency-Key is still in progress; retry later",
                           details={"idempotency_key": key})
        await asyncio.sleep(min(0.05, 0.005 * (1 + elapsed * 20), max(0.001, limit - elapsed)))

    def _replay(self, call: Call, key: str, rec: dict[str, Any], state: object) -> BaseModel:
        if state == "done":
            return call.op.result.model_validate(rec["result"])
        if state == "error":
            raise _rebuild_error(rec)
        detail = rec.get("code") or "interrupted"
        raise Conflict(
            "an earlier request with this Idempotency-Key may or may not have been applied "
            f"({detail}); check the resource and retry with a new key",
            details={"idempotency_key": key, "first_outcome": detail})


_BACKGROUND: set[asyncio.Task[None]] = set()
