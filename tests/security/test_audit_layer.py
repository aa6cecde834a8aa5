"""The audit layer's durability contract: an entry per write before the response, spooled when
the database is away, and a typed error (saying the write was applied) when even that fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from mosaic.catalog.registry import CATALOG
from mosaic.gateway.context import RequestContext
from mosaic.gateway.pipeline import Call
from mosaic.security.audit import AuditLog, AuditUnavailable
from mosaic.security.layers import AuditLayer
from mosaic.store.engine import Database


class Done(BaseModel):
    id: str = "r1"


async def applied(call: Call) -> BaseModel:
    call.ctx.meta["provider"] = "local-git"
    return Done()


def call_of(op: str = "git.create_repository") -> Call:
    operation = CATALOG[op]
    params = operation.params.model_validate({"name": "api"} if op == "git.create_repository" else {"repo": "a/b"})
    return Call(RequestContext(tenant="acme"), operation, params)


async def test_a_write_is_committed_before_the_layer_returns(db: Database) -> None:
    log = AuditLog(db)
    try:
        call = call_of()
        await AuditLayer(log)(call, applied)
        assert call.ctx.meta["audit"] == {"seq": 1, "spooled": False}
        # Visible to another connection at once: it was committed, not merely queued.
        other = AuditLog(db)
        rows = [r async for r in other.entries("acme")]
        assert [(r.action, r.outcome, r.provider, r.request_id) for r in rows] == \
            [("git.create_repository", "ok", "local-git", call.ctx.trace_id)]
        read = call_of("git.get_repository")
        await AuditLayer(log)(read, applied)
        assert "audit" not in read.ctx.meta, "reads are not audited"
    finally:
        await log.close()


async def test_database_away_spools_and_no_spool_is_a_typed_error_saying_it_was_applied(tmp_path: Path) -> None:
    down = await Database.open("postgresql://mosaic@127.0.0.1:1/unreachable")
    spooled, failing = AuditLog(down, spool=tmp_path / "spool.jsonl"), AuditLog(down)
    try:
        call = call_of()
        await AuditLayer(spooled)(call, applied)
        assert call.ctx.meta["audit"] == {"seq": None, "spooled": True}
        with pytest.raises(AuditUnavailable) as exc:
            await AuditLayer(failing)(call_of(), applied)
        assert exc.value.details["applied"] is True and exc.value.http_status == 503
    finally:
        await spooled.close()
        await failing.close()
        await down.dispose()
