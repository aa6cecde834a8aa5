"""The audit hash chain on both databases: verification catches edited, deleted and rewritten
entries; concurrent appenders (two "replicas") keep one valid chain; an outage spools."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from mosaic.security.audit import GENESIS, AuditLog, AuditRecord, AuditUnavailable, entry_hash
from mosaic.store.engine import Database


def rec(tenant: str = "acme", action: str = "git.create_repository", **kw: object) -> AuditRecord:
    return AuditRecord(tenant=tenant, actor=str(kw.pop("actor", "key:abc")), kind="operation", action=action,
                       outcome=str(kw.pop("outcome", "ok")), resource={"repo": "acme/api"},
                       provider="local-git", request_id="r1", details=dict(kw))


@asynccontextmanager
async def tampering(db: Database) -> AsyncIterator[None]:
    """What a database owner could do: switch the append-only triggers off."""
    async with db.engine.begin() as conn:
        if db.dialect == "postgresql":
            await conn.exec_driver_sql("ALTER TABLE audit_entries DISABLE TRIGGER USER")
        else:
            await conn.exec_driver_sql("DROP TRIGGER audit_entries_no_update")
            await conn.exec_driver_sql("DROP TRIGGER audit_entries_no_delete")
    try:
        yield
    finally:
        if db.dialect == "postgresql":
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql("ALTER TABLE audit_entries ENABLE TRIGGER USER")


async def sql(db: Database, statement: str, **params: object) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(statement), params)


@pytest.fixture
async def audit(db: Database) -> AsyncIterator[AuditLog]:
    log = AuditLog(db)
    yield log
    await log.close()


async def test_a_fresh_chain_verifies_and_links(audit: AuditLog) -> None:
    results = [await audit.append(rec(action=f"op{i}")) for i in range(5)]
    assert [r.seq for r in results] == [1, 2, 3, 4, 5]
    report = await audit.verify()
    assert report.ok, report.to_dict()
    chain = report.chains["acme"]
    assert (chain.entries, chain.head_seq, chain.head_hash) == (5, 5, results[-1].hash)
    prev = GENESIS
    async for row in audit.entries("acme"):
        assert row.prev_hash == prev
        prev = row.hash
    assert prev == results[-1].hash


async def test_an_edited_entry_is_detected(audit: AuditLog, db: Database) -> None:
    for i in range(5):
        await audit.append(rec(action=f"op{i}"))
    async with tampering(db):
        await sql(db, "UPDATE audit_entries SET outcome = 'ok', actor = 'someone-else' WHERE seq = 3")
    report = await audit.verify()
    assert not report.ok
    assert report.chains["acme"].problems == ["entry 3 was modified after it was written (action 'op2', at "
                                              + report.chains["acme"].problems[0].split(", at ")[1]]


async def test_a_deleted_entry_is_detected(audit: AuditLog, db: Database) -> None:
    for i in range(5):
        await audit.append(rec(action=f"op{i}"))
    async with tampering(db):
        await sql(db, "DELETE FROM audit_entries WHERE seq = 3")
    problems = (await audit.verify()).chains["acme"].problems
    assert problems == ["entry 3 is missing (deleted): entry 4 follows entry 2"]


async def test_deleted_trailing_entries_are_detected_through_the_head(audit: AuditLog, db: Database) -> None:
    for i in range(4):
        await audit.append(rec(action=f"op{i}"))
    async with tampering(db):
        await sql(db, "DELETE FROM audit_entries WHERE seq >= 3")
    problems = (await audit.verify()).chains["acme"].problems
    assert problems == ["the last 2 entries are missing (deleted): the head is at 4, the chain ends at 2"]


async def test_a_rewritten_entry_with_a_recomputed_hash_breaks_the_next_link(audit: AuditLog,
                                                                              db: Database) -> None:
    for i in range(4):
        await audit.append(rec(action=f"op{i}"))
    rows = [r async for r in audit.entries("acme")]
    second = rows[1]
    forged = entry_hash(second.prev_hash, second.tenant, second.seq, second.at, second.actor, second.kind,
                        "innocent.read", second.resource, second.provider, second.outcome,
                        second.request_id, second.details)
    async with tampering(db):
        await sql(db, "UPDATE audit_entries SET action = 'innocent.read', hash = :h WHERE seq = 2", h=forged)
    problems = (await audit.verify()).chains["acme"].problems
    assert problems == ["entry 3 does not link to entry 2 (the chain was rewritten)"]


async def test_two_replicas_appending_concurrently_keep_one_valid_chain_per_tenant(db: Database,
                                                                                     db_url: str) -> None:
    other_db = await Database.open(db_url)
    one, two = AuditLog(db), AuditLog(other_db)
    try:
        jobs = [(one if i % 2 else two).append(rec(tenant="acme" if i % 3 else "globex", action=f"op{i}"))
                for i in range(60)]
        results = await asyncio.gather(*jobs)
    finally:
        await one.close()
        await two.close()
        await other_db.dispose()
    by_tenant: dict[str, list[int]] = {}
    for r in results:
        assert r.seq is not None
        by_tenant.setdefault(r.tenant, []).append(r.seq)
    for seqs in by_tenant.values():
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    report = await AuditLog(db).verify()
    assert report.ok, report.to_dict()
    assert {t: c.entries for t, c in report.chains.items()} == {"acme": 40, "globex": 20}


async def test_an_outage_spools_durably_and_the_spool_is_replayed_in_order(db: Database, tmp_path: Path) -> None:
    spool = tmp_path / "audit-spool.jsonl"
    down = await Database.open("postgresql://mosaic@127.0.0.1:1/unreachable")
    offline = AuditLog(down, spool=spool)
    try:
        first = await offline.append(rec(action="during.outage.1"))
        second = await offline.append(rec(action="during.outage.2", token="ghp_CCCCCCCCCCCCCCCCCCCCCCCCCCCCCC"))
    finally:
        await offline.close()
        await down.dispose()
    assert first.spooled and second.spooled and first.seq is None
    assert "ghp_CCCC" not in spool.read_text()
    online = AuditLog(db, spool=spool)
    try:
        third = await online.append(rec(action="after.recovery"))
        assert third.seq == 3
        assert not spool.exists()
        actions = [r.action async for r in online.entries("acme")]
        assert actions == ["during.outage.1", "during.outage.2", "after.recovery"]
        assert (await online.verify()).ok
    finally:
        await online.close()


async def test_without_a_spool_an_outage_is_a_typed_error() -> None:
    down = await Database.open("postgresql://mosaic@127.0.0.1:1/unreachable")
    log = AuditLog(down)
    try:
        with pytest.raises(AuditUnavailable, match="no spool"):
            await log.append(rec())
    finally:
        await log.close()
        await down.dispose()


async def test_json_lines_export_carries_every_field_and_hash(audit: AuditLog) -> None:
    await audit.append(rec(tenant="acme", action="a1", password="hunter2", note="Bearer abc123456789"))
    await audit.append(rec(tenant="globex", action="g1"))
    lines = [orjson.loads(line) async for line in audit.export()]
    assert [(x["tenant"], x["seq"], x["action"]) for x in lines] == [("acme", 1, "a1"), ("globex", 1, "g1")]
    first = lines[0]
    assert set(first) == {"tenant", "seq", "at", "actor", "kind", "action", "resource", "provider", "outcome",
                          "request_id", "details", "prev_hash", "hash"}
    assert first["details"] == {"password": "***", "note": "Bearer ***"}
    only = [orjson.loads(x) async for x in audit.export("globex")]
    assert [x["tenant"] for x in only] == ["globex"]
