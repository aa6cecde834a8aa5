"""Usage recording for billing: per tenant, principal, provider, operation and outcome.

The request path only adds to an in-memory aggregate (no await, no I/O); a background task
writes the aggregate every ``flush_interval`` seconds as per-minute buckets, upserting
(count, total and max duration) so that replicas add to the same rows. If the database is
unreachable the aggregate is kept and retried (bounded by ``max_pending`` keys; beyond that
the oldest minute is dropped and the drop is logged). A crash loses at most one flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.store.engine import Database
from mosaic.store.models import UsageBucket, as_utc

log = logging.getLogger("mosaic.usage")

Key = tuple[str, datetime, str, str, str, str, str]
FIELDS = ("tenant", "bucket", "principal", "provider", "operation", "effect", "outcome",
          "count", "total_ms", "max_ms")


@dataclass(slots=True)
class Agg:
    count: int = 0
    total_ms: float = 0.0
    max_ms: float = 0.0

    def add(self, count: int, total: float, peak: float) -> None:
        self.count += count
        self.total_ms += total
        self.max_ms = max(self.max_ms, peak)


def minute_of(ts: float) -> datetime:
    return datetime.fromtimestamp(ts - ts % 60, UTC)


class UsageRecorder:
    def __init__(self, db: Database, *, flush_interval: float = 2.0, max_pending: int = 100_000) -> None:
        self.db = db
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: dict[Key, Agg] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.dropped = 0

    def record(self, tenant: str, principal: str, provider: str, operation: str, effect: str,
               outcome: str, duration_ms: float, *, at: float | None = None) -> None:
        key: Key = (tenant, minute_of(time.time() if at is None else at), principal[:200], provider[:100],
                    operation[:100], effect, outcome[:50])
        agg = self._pending.get(key)
        if agg is None:
            if len(self._pending) >= self.max_pending:
                self._drop_oldest()
            agg = self._pending[key] = Agg()
        agg.add(1, duration_ms, duration_ms)

    def _drop_oldest(self) -> None:
        oldest = min(k[1] for k in self._pending)
        victims = [k for k in self._pending if k[1] == oldest]
        for k in victims:
            self.dropped += self._pending.pop(k).count
        log.error("usage: %d pending buckets of %s dropped (database unreachable too long)",
                  len(victims), oldest.isoformat())

    @property
    def pending(self) -> int:
        return sum(a.count for a in self._pending.values())

    # -- writing -------------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write the aggregate; return the number of calls written (0 when it had to be kept)."""
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return 0
            try:
                await self._upsert(batch)
            except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
                log.warning("usage flush failed (%s); keeping %d buckets", type(exc).__name__, len(batch))
                for key, agg in batch.items():
                    self._pending.setdefault(key, Agg()).add(agg.count, agg.total_ms, agg.max_ms)
                return 0
            return sum(a.count for a in batch.values())

    async def _upsert(self, batch: dict[Key, Agg]) -> None:
        pg = self.db.dialect == "postgresql"
        insert = pg_insert if pg else sqlite_insert
        greatest = func.greatest if pg else func.max
        rows = [{"tenant": k[0], "bucket": k[1], "principal": k[2], "provider": k[3], "operation": k[4],
                 "effect": k[5], "outcome": k[6], "count": a.count, "total_ms": a.total_ms,
                 "max_ms": a.max_ms} for k, a in batch.items()]
        async with self.db.transaction() as s:
            for start in range(0, len(rows), 500):
                stmt = insert(UsageBucket).values(rows[start:start + 500])
                excluded = stmt.excluded
                stmt = stmt.on_conflict_do_update(
                    index_elements=["tenant", "bucket", "principal", "provider", "operation", "outcome"],
                    set_={"count": UsageBucket.count + excluded.count,
                          "total_ms": UsageBucket.total_ms + excluded.total_ms,
                          "max_ms": greatest(UsageBucket.max_ms, excluded.max_ms)})
                await s.execute(stmt)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="mosaic-usage-flush")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception:
                log.exception("usage flush failed")

    # -- reading ---------------------------------------------------------------------------------
    async def query(self, since: datetime, until: datetime,
                    tenant: str | None = None) -> list[dict[str, Any]]:
        window = (UsageBucket.bucket >= as_utc(since), UsageBucket.bucket < as_utc(until))
        stmt = (select(UsageBucket).where(*window)
                .order_by(UsageBucket.tenant, UsageBucket.bucket, UsageBucket.provider, UsageBucket.operation,
                          UsageBucket.principal, UsageBucket.outcome))
        if tenant is not None:
            stmt = stmt.where(UsageBucket.tenant == tenant)
        async with self.db.read() as s:
            rows = (await s.scalars(stmt)).all()
        return [{"tenant": r.tenant, "bucket": as_utc(r.bucket).isoformat(), "principal": r.principal,
                 "provider": r.provider, "operation": r.operation, "effect": r.effect, "outcome": r.outcome,
                 "count": r.count, "total_ms": round(r.total_ms, 3), "max_ms": round(r.max_ms, 3)}
                for r in rows]


def _cell(value: Any) -> Any:
    # A cell starting with = + - @ is a formula to a spreadsheet (CSV injection): quote it.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row[k]) for k in FIELDS})
    return buf.getvalue()
