"""The audit log: append-only, one hash chain per tenant, durable before a write returns.

Each entry stores ``prev_hash`` (its predecessor's hash, or 64 zeros for the first) and
``hash = sha256(prev_hash "\\n" canonical-json(entry))``; ``audit_heads`` holds each chain's
last (seq, hash). :meth:`AuditLog.verify` recomputes every chain and reports

* an edited entry (its hash no longer matches its content),
* a deleted entry (a gap in ``seq``, or a successor that no longer links to it),
* deleted trailing entries (the head names a later entry than the last one found),
* a rewritten chain (a successor whose ``prev_hash`` does not match).

Someone able to rewrite the whole tail *and* the head can only be caught against a copy of an
earlier head kept elsewhere — ``mosaic audit verify --json`` prints the heads, and the JSON-lines
export carries every hash, so a SIEM holds exactly such a copy.

Appends go through one writer task that commits whatever is queued in one transaction (group
commit): callers wait for *their* commit, so an entry is on disk before the response that it
audits leaves, and throughput does not collapse to one fsync per request. If the database is
unreachable the batch goes to a local spool file (fsynced) and is replayed, in order, into
the chain on the next successful commit; only when the spool cannot be written either does
``append`` fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from mosaic.errors import MosaicError
from mosaic.security.redaction import redact
from mosaic.store.engine import Database
from mosaic.store.errors import StoreUnavailable
from mosaic.store.models import AuditEntry, AuditHead, as_utc, utcnow

log = logging.getLogger("mosaic.audit")

GENESIS = "0" * 64
Kind = Literal["operation", "admin", "residency", "auth"]
_DB_ERRORS = (OperationalError, DBAPIError, OSError, TimeoutError, StoreUnavailable)


class AuditUnavailable(MosaicError):
    code = "audit_unavailable"
    http_status = 503
    retryable = True


@dataclass(slots=True)
class AuditRecord:
    tenant: str
    actor: str
    kind: Kind
    action: str
    outcome: str
    resource: dict[str, Any] = field(default_factory=dict)
    provider: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=utcnow)

    def to_json(self) -> bytes:
        return orjson.dumps({"tenant": self.tenant, "actor": self.actor, "kind": self.kind,
                             "action": self.action, "outcome": self.outcome, "resource": self.resource,
                             "provider": self.provider, "request_id": self.request_id,
                             "details": self.details, "at": _ts(self.at)})

    @classmethod
    def from_json(cls, data: bytes) -> AuditRecord:
        d = orjson.loads(data)
        return cls(tenant=d["tenant"], actor=d["actor"], kind=d["kind"], action=d["action"],
                   outcome=d["outcome"], resource=d["resource"], provider=d["provider"],
                   request_id=d["request_id"], details=d["details"], at=datetime.fromisoformat(d["at"]))


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an entry went: its chain position, or ``spooled`` when the database was away."""

    tenant: str
    seq: int | None
    hash: str | None
    spooled: bool = False


def _transient(exc: BaseException) -> bool:
    """A conflict to retry (deadlock, serialization failure, busy SQLite), not an outage."""
    code = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(
        getattr(getattr(exc, "orig", None), "__cause__", None), "sqlstate", None)
    text = str(getattr(exc, "orig", exc)).lower()
    return code in ("40P01", "40001") or "deadlock detected" in text or "database is locked" in text


def _ts(at: datetime) -> str:
    return as_utc(at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    """Redacted, and made of JSON types only, so that what is hashed is exactly what is stored."""
    out: dict[str, Any] = orjson.loads(orjson.dumps(redact(value), default=str))
    return out


def entry_hash(prev_hash: str, tenant: str, seq: int, at: datetime, actor: str, kind: str, action: str,
               resource: dict[str, Any], provider: str | None, outcome: str, request_id: str | None,
               details: dict[str, Any]) -> str:
    body = orjson.dumps({"tenant": tenant, "seq": seq, "at": _ts(at), "actor": actor, "kind": kind,
                         "action": action, "resource": resource, "provider": provider,
                         "outcome": outcome, "request_id": request_id, "details": details},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(prev_hash.encode() + b"\n" + body).hexdigest()


def row_hash(row: AuditEntry) -> str:
    return entry_hash(row.prev_hash, row.tenant, row.seq, row.at, row.actor, row.kind, row.action,
                      row.resource or {}, row.provider, row.outcome, row.request_id, row.details or {})


def row_json(row: AuditEntry) -> dict[str, Any]:
    return {"tenant": row.tenant, "seq": row.seq, "at": _ts(row.at), "actor": row.actor, "kind": row.kind,
            "action": row.action, "resource": row.resource, "provider": row.provider,
            "outcome": row.outcome, "request_id": row.request_id, "details": row.details,
            "prev_hash": row.prev_hash, "hash": row.hash}


@dataclass(slots=True)
class ChainReport:
    tenant: str
    entries: int = 0
    head_seq: int | None = None
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class VerifyReport:
    chains: dict[str, ChainReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.chains.values())

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "chains": {t: {"ok": c.ok, "entries": c.entries, "head_seq": c.head_seq,
                                              "head_hash": c.head_hash, "problems": c.problems}
                                          for t, c in sorted(self.chains.items())}}


_Pending = tuple[AuditRecord, "asyncio.Future[Appended]"]


class AuditLog:
    def __init__(self, db: Database, *, spool: Path | None = None, max_batch: int = 256) -> None:
        self.db = db
        self.spool = spool
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- appending ----------------------------------------------------------------------------
    async def append(self, record: AuditRecord) -> Appended:
        """Commit ``record`` to its tenant's chain (or the spool) and return where it went."""
        if self._closed:
            raise AuditUnavailable("the audit log is closed")
        record.at = as_utc(record.at)
        record.resource = _plain(record.resource)
        record.details = _plain(record.details)
        if self._queue is None or self._writer is None or self._writer.done():
            self._queue = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop(), name="mosaic-audit")
        fut: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        await self._queue.put((record, fut))
        # Shielded: a caller that gives up (client disconnect) must not cancel the commit
        # that other callers in the same batch wait for.
        return await asyncio.shield(fut)

    async def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._closed = True
        queue, writer = self._queue, self._writer
        if queue is not None and writer is not None and not writer.done():
            await queue.join()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write_loop(self) -> None:
        queue = self._queue
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                results = await self._commit([r for r, _ in batch])
            except BaseException as exc:
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc if isinstance(exc, MosaicError) else AuditUnavailable(
                            f"audit entry could not be recorded: {type(exc).__name__}"))
                for _ in batch:
                    queue.task_done()
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, fut), res in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(res)
            for _ in batch:
                queue.task_done()

    async def _commit(self, records: list[AuditRecord]) -> list[Appended]:
        spooled = await self._read_spool()
        for attempt in range(5):
            try:
                appended = await self._insert([*spooled, *records])
            except IntegrityError:
                # Another replica appended to the same chain between our read and insert:
                # the head is re-read on the next attempt.
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            except (OperationalError, DBAPIError) as exc:
                if _transient(exc):
                    await asyncio.sleep(0.01 * (attempt + 1))
                    continue
                log.error("audit store unavailable (%s); spooling %d entries", type(exc).__name__,
                          len(records))
                return await self._spool(records)
            except _DB_ERRORS as exc:
                log.error("audit store unavailable (%s); spooling %d entries", type(exc).__name__,
                          len(records))
                return await self._spool(records)
            if spooled:
                await self._clear_spool()
                log.warning("replayed %d spooled audit entries", len(spooled))
            return appended[len(spooled):]
        return await self._spool(records)

    async def _insert(self, records: Sequence[AuditRecord]) -> list[Appended]:
        out: list[Appended] = []
        async with self.db.transaction() as s:
            # Heads are locked in one global order (sorted), so that two replicas appending to
            # the same chains can never wait for each other in a cycle.
            tenants = sorted({r.tenant for r in records})
            heads = {tenant: await self._lock_head(s, tenant) for tenant in tenants}
            for rec in records:
                seq, prev = heads[rec.tenant]
                seq += 1
                digest = entry_hash(prev, rec.tenant, seq, rec.at, rec.actor, rec.kind, rec.action,
                                    rec.resource, rec.provider, rec.outcome, rec.request_id, rec.details)
                s.add(AuditEntry(tenant=rec.tenant, seq=seq, at=rec.at, actor=rec.actor, kind=rec.kind,
                                 action=rec.action, resource=rec.resource, provider=rec.provider,
                                 outcome=rec.outcome, request_id=rec.request_id, details=rec.details,
                                 prev_hash=prev, hash=digest))
                heads[rec.tenant] = (seq, digest)
                out.append(Appended(rec.tenant, seq, digest))
            for tenant, (seq, digest) in heads.items():
                head = await s.get(AuditHead, tenant)
                assert head is not None
                head.seq, head.hash, head.updated_at = seq, digest, utcnow()
        return out

    async def _lock_head(self, s: AsyncSession, tenant: str) -> tuple[int, str]:
        insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        await s.execute(insert(AuditHead).values(tenant=tenant, seq=0, hash=GENESIS, updated_at=utcnow())
                        .on_conflict_do_nothing(index_elements=["tenant"]))
        row = (await s.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.tenant == tenant)
                               .with_for_update())).one()
        return int(row.seq), str(row.hash)

    # -- spool ------------------------------------------------------------------------------------
    async def _spool(self, records: list[AuditRecord]) -> list[Appended]:
        if self.spool is None:
            raise AuditUnavailable("the audit store is unreachable and no spool file is configured")
        path = self.spool

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, b"".join(r.to_json() + b"\n" for r in records))
                os.fsync(fd)
            finally:
                os.close(fd)

        try:
            await asyncio.to_thread(write)
        except OSError as exc:
            raise AuditUnavailable(f"the audit store is unreachable and the spool cannot be written: "
                                   f"{exc.strerror}") from None
        return [Appended(r.tenant, None, None, spooled=True) for r in records]

    async def _read_spool(self) -> list[AuditRecord]:
        path = self.spool
        if path is None:
            return []

        def read() -> bytes:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                return b""

        data = await asyncio.to_thread(read)
        out = []
        for line in data.splitlines():
            if line.strip():
                try:
                    out.append(AuditRecord.from_json(line))
                except (ValueError, KeyError):
                    log.error("skipping an unreadable line of the audit spool %s", path)
        return out

    async def _clear_spool(self) -> None:
        path = self.spool
        if path is not None:
            await asyncio.to_thread(path.unlink, missing_ok=True)

    async def spooled(self) -> int:
        return len(await self._read_spool())

    # -- reading ---------------------------------------------------------------------------------
    async def entries(self, tenant: str | None = None, *, since: datetime | None = None,
                      until: datetime | None = None, chunk: int = 1000) -> AsyncIterator[AuditEntry]:
        """Entries ordered by (tenant, seq), fetched ``chunk`` at a time."""
        last: tuple[str, int] = ("", 0)
        while True:
            stmt = select(AuditEntry).order_by(AuditEntry.tenant, AuditEntry.seq).limit(chunk)
            if tenant is not None:
                stmt = stmt.where(AuditEntry.tenant == tenant, AuditEntry.seq > last[1])
            else:
                stmt = stmt.where((AuditEntry.tenant > last[0]) |
                                  ((AuditEntry.tenant == last[0]) & (AuditEntry.seq > last[1])))
            if since is not None:
                stmt = stmt.where(AuditEntry.at >= as_utc(since))
            if until is not None:
                stmt = stmt.where(AuditEntry.at < as_utc(until))
            async with self.db.read() as s:
                rows = (await s.scalars(stmt)).all()
            for row in rows:
                row.at = as_utc(row.at)
                yield row
            if len(rows) < chunk:
                return
            last = (rows[-1].tenant, rows[-1].seq)

    async def export(self, tenant: str | None = None, *, since: datetime | None = None,
                     until: datetime | None = None) -> AsyncIterator[bytes]:
        """JSON lines (one entry per line, hashes included) for a SIEM."""
        async for row in self.entries(tenant, since=since, until=until):
            yield orjson.dumps(row_json(row)) + b"\n"

    async def heads(self) -> dict[str, tuple[int, str]]:
        async with self.db.read() as s:
            rows = (await s.execute(select(AuditHead.tenant, AuditHead.seq, AuditHead.hash))).all()
        return {r.tenant: (int(r.seq), str(r.hash)) for r in rows}

    async def verify(self, tenant: str | None = None) -> VerifyReport:
        report = VerifyReport()
        heads = await self.heads()
        state: dict[str, tuple[int, str]] = {}
        for name in ([tenant] if tenant is not None else heads):
            report.chains[name] = ChainReport(name)
        async for row in self.entries(tenant):
            chain = report.chains.setdefault(row.tenant, ChainReport(row.tenant))
            last_seq, prev = state.get(row.tenant, (0, GENESIS))
            chain.entries += 1
            if row.seq != last_seq + 1:
                gap = (f"entry {last_seq + 1} is missing" if row.seq == last_seq + 2 else
                       f"entries {last_seq + 1}..{row.seq - 1} are missing")
                chain.problems.append(f"{gap} (deleted): entry {row.seq} follows entry {last_seq}")
            elif row.prev_hash != prev:
                chain.problems.append(f"entry {row.seq} does not link to entry {last_seq} "
                                      "(the chain was rewritten)")
            if row_hash(row) != row.hash:
                chain.problems.append(f"entry {row.seq} was modified after it was written "
                                      f"(action {row.action!r}, at {_ts(row.at)})")
            state[row.tenant] = (row.seq, row.hash)
        for name, chain in report.chains.items():
            head = heads.get(name)
            last_seq, last_hash = state.get(name, (0, GENESIS))
            if head is None:
                if chain.entries:
                    chain.problems.append("the chain has no head record (it was deleted)")
                continue
            chain.head_seq, chain.head_hash = head
            if head[0] > last_seq:
                n = head[0] - last_seq
                chain.problems.append(f"the last {n} entr{'y is' if n == 1 else 'ies are'} missing "
                                      f"(deleted): the head is at {head[0]}, the chain ends at {last_seq}")
            elif head[0] < last_seq:
                chain.problems.append(f"entries after the head ({head[0]}) were inserted, up to {last_seq}")
            elif head[1] != last_hash:
                chain.problems.append(f"the head hash does not match entry {last_seq} (it was modified)")
        return report
