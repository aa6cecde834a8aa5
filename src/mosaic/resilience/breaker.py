"""Circuit breaker per provider instance, with Resilience4j semantics, optionally shared on Redis.

Why our own: the Python breakers on PyPI (pybreaker, aiobreaker, purgatory, circuitbreaker)
all open after N *consecutive* failures and allow one trial call; none has a count- or
time-based sliding window with a minimum number of calls, a slow-call rate, or N permitted
calls in half-open — the behaviour the issue asks for. This module implements exactly that:

* CLOSED: outcomes go into a sliding window (the last ``slidingWindowSize`` calls, or the calls of
  the last ``slidingWindowMs`` in ten buckets; subtract-on-evict, O(1) per call). Once the
  window holds ``minimumNumberOfCalls``, a failure rate or a slow-call rate at or above its
  threshold opens the breaker.
* OPEN: calls are rejected with :class:`CircuitOpen` (``sent=False``: failover may try another
  instance even for a write) for ``waitDurationInOpenStateMs``, multiplied by
  ``waitDurationBackoffMultiplier`` for each re-open without a close in between.
* HALF_OPEN: exactly ``permittedNumberOfCallsInHalfOpenState`` trial calls are let through;
  when they have all completed, their failure/slow rates decide: CLOSED or OPEN again.

Shared state: with Redis available and ``shared: true``, every *transition* (and the half-open
permits and tallies) goes through small Lua scripts on one hash per instance, and is published
so that all replicas hold the same state within a pub/sub hop. Outcome windows stay local to
each replica (counting them in Redis would add a round trip to every call); the first replica
whose window crosses a threshold opens the breaker for everyone. When Redis is unreachable each
replica runs the same state machine locally, and adopts the shared state again on recovery.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from mosaic.errors import ProviderUnavailable
from mosaic.resilience.config import CircuitBreakerConfig
from mosaic.resilience.errors import LocalRejection
from mosaic.resilience.metrics import BREAKER_REJECTED, BREAKER_STATE, BREAKER_TRANSITIONS
from mosaic.state.redis import RedisState, RedisUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger("mosaic.resilience.breaker")


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


STATE_VALUE = {State.CLOSED: 0, State.OPEN: 1, State.HALF_OPEN: 2}


class CircuitOpen(ProviderUnavailable, LocalRejection):
    """The breaker of a provider instance rejects calls; the request was not sent."""

    def __init__(self, plugin_id: str, state: State, retry_after: float | None) -> None:
        what = "open" if state is State.OPEN else "half-open and its trial calls are taken"
        details: dict[str, Any] = {"provider": plugin_id, "breaker": state.value}
        if retry_after is not None:
            details["retry_after"] = round(retry_after, 3)
        super().__init__(f"circuit breaker of {plugin_id} is {what}", details=details, sent=False)
        self.retry_after = retry_after


# -- sliding windows ----------------------------------------------------------------

FAILED = 1
SLOW = 2


class CountWindow:
    """The outcomes of the last ``size`` calls; totals kept up to date on insert and evict."""

    __slots__ = ("_buf", "_filled", "_pos", "calls", "failed", "size", "slow")

    def __init__(self, size: int) -> None:
        self.size = size
        self._buf = bytearray(size)
        self._pos = 0
        self._filled = 0
        self.calls = self.failed = self.slow = 0

    def record(self, flags: int, now: float) -> None:
        if self._filled == self.size:
            old = self._buf[self._pos]
            self.failed -= old & FAILED
            self.slow -= (old & SLOW) >> 1
        else:
            self._filled += 1
            self.calls += 1
        self._buf[self._pos] = flags
        self.failed += flags & FAILED
        self.slow += (flags & SLOW) >> 1
        self._pos = (self._pos + 1) % self.size

    def snapshot(self, now: float) -> tuple[int, int, int]:
        return self.calls, self.failed, self.slow

    def reset(self) -> None:
        self._buf = bytearray(self.size)
        self._pos = self._filled = 0
        self.calls = self.failed = self.slow = 0


class TimeWindow:
    """The outcomes of the last ``window`` seconds, in ``buckets`` partial aggregations."""

    __slots__ = ("_calls", "_epoch", "_failed", "_slow", "buckets", "span", "window")

    def __init__(self, window: float, buckets: int = 10) -> None:
        self.window = window
        self.buckets = buckets
        self.span = window / buckets
        self._epoch = [-1] * buckets
        self._calls = [0] * buckets
        self._failed = [0] * buckets
        self._slow = [0] * buckets

    def record(self, flags: int, now: float) -> None:
        epoch = int(now / self.span)
        i = epoch % self.buckets
        if self._epoch[i] != epoch:
            self._epoch[i] = epoch
            self._calls[i] = self._failed[i] = self._slow[i] = 0
        self._calls[i] += 1
        self._failed[i] += flags & FAILED
        self._slow[i] += (flags & SLOW) >> 1

    def snapshot(self, now: float) -> tuple[int, int, int]:
        oldest = int(now / self.span) - self.buckets + 1
        calls = failed = slow = 0
        for i in range(self.buckets):
            if self._epoch[i] >= oldest:
                calls += self._calls[i]
                failed += self._failed[i]
                slow += self._slow[i]
        return calls, failed, slow

    def reset(self) -> None:
        self._epoch = [-1] * self.buckets


# -- shared state scripts ---------------------------------------------------------------
# One hash per instance: state, gen (bumped on every transition), since (ms of the last
# transition), wait (ms the open state lasts), opens (re-opens without a close), and the
# half-open tallies ho_permits / ho_ok / ho_fail / ho_slow.

_HEAD = """
local h = KEYS[1]
local cur = redis.call('HMGET', h, 'state', 'gen', 'since', 'wait', 'opens')
local state = cur[1] or 'closed'
local gen = tonumber(cur[2]) or 0
local since = tonumber(cur[3]) or 0
local wait = tonumber(cur[4]) or 0
local opens = tonumber(cur[5]) or 0
local function move(target, now, base, mult, maxw, ttl, channel, name)
  if target == 'open' then
    wait = math.floor(math.min(base * (mult ^ opens), maxw))
    opens = opens + 1
  else
    wait = 0
    if target == 'closed' then opens = 0 end
  end
  gen = gen + 1
  state = target
  since = now
  redis.call('HSET', h, 'state', state, 'gen', gen, 'since', since, 'wait', wait, 'opens', opens,
             'ho_permits', 0, 'ho_ok', 0, 'ho_fail', 0, 'ho_slow', 0)
  redis.call('PEXPIRE', h, ttl)
  redis.call('PUBLISH', channel,
             name .. '|' .. state .. '|' .. gen .. '|' .. since .. '|' .. wait .. '|' .. opens)
end
"""

# ARGV: expected gen, target, now, base wait, multiplier, max wait, ttl, channel, name
_TRANSITION = _HEAD + """
if gen == tonumber(ARGV[1]) then
  move(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
       tonumber(ARGV[7]), ARGV[8], ARGV[9])
end
return {state, gen, since, wait, opens, 0}
"""

# ARGV: now, permitted, max half-open ms (0 = none), base, mult, maxw, ttl, channel, name
# Returns the state plus a grant flag: 1 = a half-open permit, 2 = closed (no permit needed).
_ACQUIRE = _HEAD + """
local now = tonumber(ARGV[1])
if state == 'open' and now >= since + wait then
  move('half_open', now, 0, 1, 0, tonumber(ARGV[7]), ARGV[8], ARGV[9])
end
if state == 'half_open' then
  local maxho = tonumber(ARGV[3])
  if maxho > 0 and now >= since + maxho then
    move('open', now, tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]),
         ARGV[8], ARGV[9])
    return {state, gen, since, wait, opens, 0}
  end
  local p = redis.call('HINCRBY', h, 'ho_permits', 1)
  if p <= tonumber(ARGV[2]) then return {state, gen, since, wait, opens, 1} end
  redis.call('HINCRBY', h, 'ho_permits', -1)
  return {state, gen, since, wait, opens, 0}
end
if state == 'closed' then return {state, gen, since, wait, opens, 2} end
return {state, gen, since, wait, opens, 0}
"""

# ARGV: gen, outcome (ok|fail|ignore), slow (0|1), permitted, failure thr, slow thr,
#       now, base, mult, maxw, ttl, channel, name
_RECORD = _HEAD + """
if state ~= 'half_open' or gen ~= tonumber(ARGV[1]) then return {state, gen, since, wait, opens, 0} end
if ARGV[2] == 'ignore' then
  redis.call('HINCRBY', h, 'ho_permits', -1)
  return {state, gen, since, wait, opens, 0}
end
if ARGV[2] == 'fail' then redis.call('HINCRBY', h, 'ho_fail', 1) else redis.call('HINCRBY', h, 'ho_ok', 1) end
if ARGV[3] == '1' then redis.call('HINCRBY', h, 'ho_slow', 1) end
local t = redis.call('HMGET', h, 'ho_ok', 'ho_fail', 'ho_slow')
local ok, fail, slow = tonumber(t[1]) or 0, tonumber(t[2]) or 0, tonumber(t[3]) or 0
local n = ok + fail
if n >= tonumber(ARGV[4]) then
  local target = 'closed'
  if fail * 100 >= tonumber(ARGV[5]) * n or slow * 100 >= tonumber(ARGV[6]) * n then target = 'open' end
  move(target, tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]),
       tonumber(ARGV[11]), ARGV[12], ARGV[13])
  return {state, gen, since, wait, opens, 1}
end
return {state, gen, since, wait, opens, 0}
"""

_READ = _HEAD + "return {state, gen, since, wait, opens, 0}"


@dataclass(slots=True)
class Permit:
    """Leave to make one call; carries the generation it was granted in."""

    gen: int
    half_open: bool


def _now_ms() -> int:
    return int(time.time() * 1000)


class CircuitBreaker:
    """The breaker of one provider instance."""

    def __init__(self, name: str, cfg: CircuitBreakerConfig, *, redis: RedisState | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.cfg = cfg
        self.clock = clock
        self.redis = redis if (redis is not None and redis.configured and cfg.shared) else None
        self.window: CountWindow | TimeWindow = (
            CountWindow(cfg.sliding_window_size) if cfg.sliding_window_type == "count"
            else TimeWindow(cfg.sliding_window_ms / 1000))
        self.min_calls = (min(cfg.minimum_number_of_calls, cfg.sliding_window_size)
                          if cfg.sliding_window_type == "count" else cfg.minimum_number_of_calls)
        self.slow_s = cfg.slow_call_duration_ms / 1000
        # Mirror of the state machine (authoritative when Redis is not shared/available).
        self.state = State.CLOSED
        self.gen = 0
        self.since_ms = _now_ms()
        self.wait_ms = 0
        self.opens = 0
        self._ho_permits = self._ho_ok = self._ho_fail = self._ho_slow = 0
        self.transitions = 0
        # A breaker built while the shared state may already say "open" adopts it first.
        self._synced = self.redis is None
        self._opening = False
        self._gauge = BREAKER_STATE.labels(name)
        self._gauge.set(0)
        self._rejected = BREAKER_REJECTED.labels(name)
        if self.redis is not None:
            r = self.redis
            self.hash_key = r.key("breaker", name)
            self.channel = r.key("breaker")
            self._ttl_ms = max(cfg.max_wait_duration_in_open_state_ms * 4, 3_600_000)
            assert r.client is not None
            self._s_transition = r.client.register_script(_TRANSITION)
            self._s_acquire = r.client.register_script(_ACQUIRE)
            self._s_record = r.client.register_script(_RECORD)
            self._s_read = r.client.register_script(_READ)

    # -- the fast path ----------------------------------------------------------------
    async def acquire(self) -> Permit:
        """A permit to call, or :class:`CircuitOpen`."""
        if not self.cfg.enabled:
            return Permit(self.gen, False)
        if not self._synced and self._shared():
            self._synced = True
            await self.sync()
        state = self.state
        if state is State.CLOSED:
            return Permit(self.gen, False)
        now = _now_ms()
        if state is State.OPEN and now < self.since_ms + self.wait_ms:
            self._rejected.inc()
            raise CircuitOpen(self.name, State.OPEN, (self.since_ms + self.wait_ms - now) / 1000)
        if self._shared():
            try:
                return await self._acquire_shared(now)
            except RedisUnavailable:
                pass
        return self._acquire_local(now)

    async def record(self, permit: Permit, outcome: str, duration: float) -> None:
        """``outcome`` is ``ok``, ``fail`` or ``ignore``; ``duration`` in seconds."""
        if not self.cfg.enabled:
            return
        slow = duration >= self.slow_s and outcome != "ignore"
        if permit.half_open:
            if self._shared():
                try:
                    await self._record_shared(permit, outcome, slow)
                    return
                except RedisUnavailable:
                    pass
            self._record_half_open_local(permit, outcome, slow)
            return
        if outcome == "ignore" or permit.gen != self.gen or self.state is not State.CLOSED:
            return
        now = self.clock()
        self.window.record((FAILED if outcome == "fail" else 0) | (SLOW if slow else 0), now)
        calls, failed, slow_calls = self.window.snapshot(now)
        if calls < self.min_calls:
            return
        if (failed * 100 >= self.cfg.failure_rate_threshold * calls
                or slow_calls * 100 >= self.cfg.slow_call_rate_threshold * calls) and not self._opening:
            # One transition at a time: calls completing while it is in flight (a Redis round
            # trip) must not open it again and again (each re-open would lengthen the wait).
            self._opening = True
            try:
                log.warning("circuit breaker %s opens: %d/%d failed, %d slow", self.name, failed, calls,
                            slow_calls)
                await self._transition(State.OPEN, self.gen)
            finally:
                self._opening = False

    # -- local state machine ---------------------------------------------------------------
    def _shared(self) -> bool:
        return self.redis is not None and self.redis.available

    def _acquire_local(self, now: int) -> Permit:
        cfg = self.cfg
        if self.state is State.OPEN:
            if now < self.since_ms + self.wait_ms:
                self._rejected.inc()
                raise CircuitOpen(self.name, State.OPEN, (self.since_ms + self.wait_ms - now) / 1000)
            self._apply_local(State.HALF_OPEN, now)
        if self.state is State.HALF_OPEN:
            maxho = cfg.max_wait_duration_in_half_open_state_ms
            if maxho and now >= self.since_ms + maxho:
                self._apply_local(State.OPEN, now)
                self._rejected.inc()
                raise CircuitOpen(self.name, State.OPEN, self.wait_ms / 1000)
            if self._ho_permits >= cfg.permitted_calls_in_half_open_state:
                self._rejected.inc()
                raise CircuitOpen(self.name, State.HALF_OPEN, None)
            self._ho_permits += 1
            return Permit(self.gen, True)
        return Permit(self.gen, False)

    def _record_half_open_local(self, permit: Permit, outcome: str, slow: bool) -> None:
        if self.state is not State.HALF_OPEN or permit.gen != self.gen:
            return
        if outcome == "ignore":
            self._ho_permits -= 1
            return
        if outcome == "fail":
            self._ho_fail += 1
        else:
            self._ho_ok += 1
        self._ho_slow += slow
        n = self._ho_ok + self._ho_fail
        if n >= self.cfg.permitted_calls_in_half_open_state:
            reopen = (self._ho_fail * 100 >= self.cfg.failure_rate_threshold * n
                      or self._ho_slow * 100 >= self.cfg.slow_call_rate_threshold * n)
            self._apply_local(State.OPEN if reopen else State.CLOSED, _now_ms())

    def _apply_local(self, target: State, now: int) -> None:
        cfg = self.cfg
        if target is State.OPEN:
            wait = cfg.wait_duration_in_open_state_ms * cfg.open_backoff_multiplier ** self.opens
            self.wait_ms = int(min(wait, cfg.max_wait_duration_in_open_state_ms))
            self.opens += 1
        else:
            self.wait_ms = 0
            if target is State.CLOSED:
                self.opens = 0
        self._adopt(target, self.gen + 1, now, self.wait_ms, self.opens)

    def _adopt(self, state: State, gen: int, since: int, wait: int, opens: int, *,
               force: bool = False) -> None:
        """Take a state (from our own transition or another replica's). Replies of concurrent
        scripts can arrive out of order: an older generation never replaces a newer one, except
        when resynchronising with Redis after an outage (``force``)."""
        if gen < self.gen and not force:
            return
        changed = state is not self.state or gen != self.gen
        if not changed:
            return
        previous = self.state
        self.state, self.gen, self.since_ms, self.wait_ms, self.opens = state, gen, since, wait, opens
        self._ho_permits = self._ho_ok = self._ho_fail = self._ho_slow = 0
        if state is State.CLOSED or previous is not state:
            self.window.reset()
        self.transitions += 1
        self._gauge.set(STATE_VALUE[state])
        if previous is not state:
            BREAKER_TRANSITIONS.labels(self.name, state.value).inc()
            log.info("circuit breaker %s: %s -> %s", self.name, previous.value, state.value)

    async def _transition(self, target: State, expected_gen: int) -> None:
        """Move to ``target`` unless someone (another replica) already moved past ``expected_gen``."""
        if self._shared():
            try:
                res = await self._run_script(self._s_transition, expected_gen, target.value, _now_ms(),
                                             *self._open_args())
                self._adopt_reply(res)
                return
            except RedisUnavailable:
                pass
        if self.gen == expected_gen and self.state is not target:
            self._apply_local(target, _now_ms())

    # -- shared state ----------------------------------------------------------------------
    def _open_args(self) -> tuple[Any, ...]:
        cfg = self.cfg
        return (cfg.wait_duration_in_open_state_ms, cfg.open_backoff_multiplier,
                cfg.max_wait_duration_in_open_state_ms, self._ttl_ms, self.channel, self.name)

    async def _run_script(self, script: Any, *args: Any) -> list[Any]:
        assert self.redis is not None

        async def call(_: Redis) -> list[Any]:
            return list(await script(keys=[self.hash_key], args=list(args)))

        return await self.redis.run(call)

    def _adopt_reply(self, res: list[Any], *, force: bool = False) -> int:
        raw_state = res[0].decode() if isinstance(res[0], bytes) else str(res[0])
        self._adopt(State(raw_state), int(res[1]), int(res[2]), int(res[3]), int(res[4]), force=force)
        return int(res[5])

    async def _acquire_shared(self, now: int) -> Permit:
        cfg = self.cfg
        wait, mult, maxw, ttl, channel, name = self._open_args()
        res = await self._run_script(self._s_acquire, now, cfg.permitted_calls_in_half_open_state,
                                     cfg.max_wait_duration_in_half_open_state_ms, wait, mult, maxw, ttl,
                                     channel, name)
        grant = self._adopt_reply(res)
        # The permit belongs to the generation Redis granted it in (our mirror may be elsewhere).
        if grant == 1:
            return Permit(int(res[1]), True)
        if grant == 2:
            return Permit(int(res[1]), False)
        self._rejected.inc()
        if self.state is State.OPEN:
            raise CircuitOpen(self.name, State.OPEN, max(0.0, (self.since_ms + self.wait_ms - now) / 1000))
        raise CircuitOpen(self.name, self.state, None)

    async def _record_shared(self, permit: Permit, outcome: str, slow: bool) -> None:
        cfg = self.cfg
        res = await self._run_script(
            self._s_record, permit.gen, outcome, "1" if slow else "0", cfg.permitted_calls_in_half_open_state,
            cfg.failure_rate_threshold, cfg.slow_call_rate_threshold, _now_ms(), *self._open_args())
        self._adopt_reply(res)

    def on_message(self, payload: str) -> None:
        """A transition published by any replica (including this one)."""
        parts = payload.split("|")
        if len(parts) != 6 or parts[0] != self.name:
            return
        gen = int(parts[2])
        if gen <= self.gen and self.state.value == parts[1]:
            return
        if gen < self.gen:
            return
        self._adopt(State(parts[1]), gen, int(parts[3]), int(parts[4]), int(parts[5]))

    async def sync(self) -> None:
        """Adopt the shared state (after a restart or an outage)."""
        if not self._shared():
            return
        try:
            res = await self._run_script(self._s_read)
        except RedisUnavailable:
            return
        gen = int(res[1])
        if gen == 0 and self.gen > 0 and self.state is not State.CLOSED:
            # Redis lost the hash (restart without persistence): publish what we know.
            try:
                await self._run_script(self._s_transition, 0, self.state.value, self.since_ms,
                                       *self._open_args())
            except RedisUnavailable:
                pass
            return
        state = State(res[0].decode() if isinstance(res[0], bytes) else res[0])
        if gen != self.gen or state is not self.state:
            self._adopt_reply(res, force=True)

    def snapshot(self) -> dict[str, Any]:
        calls, failed, slow = self.window.snapshot(self.clock())
        now = _now_ms()
        out: dict[str, Any] = {
            "state": self.state.value, "shared": self._shared(), "generation": self.gen,
            "window": {"calls": calls, "failed": failed, "slow": slow,
                       "failure_rate": round(100 * failed / calls, 1) if calls else None,
                       "slow_rate": round(100 * slow / calls, 1) if calls else None},
            "consecutive_opens": self.opens,
        }
        if self.state is State.OPEN:
            out["half_open_in_s"] = round(max(0, self.since_ms + self.wait_ms - now) / 1000, 3)
        return out
