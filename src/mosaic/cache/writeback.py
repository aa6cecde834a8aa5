"""Write-back of L2 entries: the request returns after the L1 write; Redis is written in batches.

Pending entries are coalesced by key and flushed every ``interval`` in one pipelined round
trip. They are never lost to an outage or a restart:

* while Redis is unreachable they stay queued (bounded: the oldest are dropped past
  ``max_pending`` — it is a cache) and the queue is snapshotted to a journal file;
* ``stop()`` flushes what it can and journals the rest;
* ``start()`` loads the journal, so the next process flushes what the previous one could not
  (entries whose TTL has run out meanwhile are dropped, as Redis would have).

An invalidation removes matching pending entries too, so a stale entry cannot be written after
the write that made it stale.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from mosaic.cache.l2 import L2Store
from mosaic.resilience.metrics import CACHE_WRITEBACK_PENDING
from mosaic.state.redis import RedisUnavailable

log = logging.getLogger("mosaic.cache.writeback")


@dataclass(slots=True)
class Pending:
    value: bytes
    expires_ms: int  # Unix ms
    tags: tuple[str, ...]
    started_ms: int  # Unix ms at which the fetch started (for the stale-write check)


class WriteBack:
    def __init__(self, l2: L2Store, journal: Path | None, *, interval: float = 0.05,
                 max_pending: int = 100_000, batch: int = 500) -> None:
        self.l2 = l2
        self.journal = journal
        self.interval = interval
        self.max_pending = max_pending
        self.batch = batch
        self.pending: dict[str, Pending] = {}
        self.flushed = self.dropped = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._journal_dirty = False
        self._last_journal = 0.0

    def add(self, key: str, value: bytes, ttl: float, tags: tuple[str, ...]) -> None:
        now_ms = int(time.time() * 1000)
        self.pending.pop(key, None)
        self.pending[key] = Pending(value, now_ms + int(ttl * 1000), tags, now_ms)
        while len(self.pending) > self.max_pending:
            del self.pending[next(iter(self.pending))]
            self.dropped += 1
        CACHE_WRITEBACK_PENDING.set(len(self.pending))
        self._wake.set()

    def discard(self, tags: list[str]) -> None:
        wanted = set(tags)
        for key in [k for k, p in self.pending.items() if wanted.intersection(p.tags)]:
            del self.pending[key]
        CACHE_WRITEBACK_PENDING.set(len(self.pending))

    async def start(self) -> None:
        await self._load_journal()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="cache-writeback")

    async def stop(self, grace: float = 2.0) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                while self.pending and self.l2.redis.available:
                    if not await self.flush_once():
                        break
        await self._write_journal(force=True)

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.interval)
            while self.pending:
                if not self.l2.redis.available or not await self.flush_once():
                    await self._write_journal()
                    break
            if not self.pending and self._journal_dirty:
                await self._write_journal(force=True)

    async def flush_once(self) -> bool:
        """Flush up to ``batch`` entries; False when Redis refused (entries are kept)."""
        now_ms = int(time.time() * 1000)
        taken: list[tuple[str, Pending]] = []
        for key in list(self.pending)[: self.batch]:
            item = self.pending.pop(key)
            if item.expires_ms > now_ms:
                taken.append((key, item))
        if not taken:
            CACHE_WRITEBACK_PENDING.set(len(self.pending))
            return True
        calls = [self.l2.store_args(k, p.value, p.expires_ms - now_ms, p.tags, p.started_ms, "")
                 for k, p in taken]
        try:
            await self.l2.store_many(calls)
        except RedisUnavailable:
            # Put them back in front, unless newer values arrived meanwhile.
            restored = {k: p for k, p in taken if k not in self.pending}
            restored.update(self.pending)
            self.pending = restored
            CACHE_WRITEBACK_PENDING.set(len(self.pending))
            return False
        self.flushed += len(taken)
        CACHE_WRITEBACK_PENDING.set(len(self.pending))
        return True

    async def on_redis_up(self) -> None:
        if self.pending:
            self._wake.set()

    # -- journal ---------------------------------------------------------------------------
    async def _write_journal(self, force: bool = False) -> None:
        if self.journal is None:
            return
        now = time.monotonic()
        if not force and now - self._last_journal < 1.0:
            return
        self._last_journal = now
        lines = [orjson.dumps({"k": k, "v": base64.b64encode(p.value).decode(), "e": p.expires_ms,
                               "t": list(p.tags), "s": p.started_ms}) for k, p in self.pending.items()]
        path = self.journal
        await asyncio.to_thread(_atomic_write, path, b"\n".join(lines))
        self._journal_dirty = bool(lines)

    async def _load_journal(self) -> None:
        path = self.journal
        if path is None:
            return
        data = await asyncio.to_thread(_read, path)
        if not data:
            return
        now_ms = int(time.time() * 1000)
        loaded = 0
        for line in data.splitlines():
            try:
                rec = orjson.loads(line)
                item = Pending(base64.b64decode(rec["v"]), int(rec["e"]), tuple(rec["t"]), int(rec["s"]))
            except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
                log.warning("skipping a corrupt write-back journal line")
                continue
            if item.expires_ms > now_ms and rec["k"] not in self.pending:
                self.pending[rec["k"]] = item
                loaded += 1
        self._journal_dirty = True
        if loaded:
            log.info("write-back: %d cache entries recovered from %s", loaded, path)
            CACHE_WRITEBACK_PENDING.set(len(self.pending))
            self._wake.set()


def _atomic_write(path: Path, data: bytes) -> None:
    if not data:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
