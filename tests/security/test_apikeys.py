"""API keys on both databases: shown once, argon2 at rest, lookup by id, expiry, revocation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from tests.store.dbfixtures import FAST_HASH

from mosaic.errors import InvalidRequest, NotFound, Unauthorized
from mosaic.security.apikeys import ApiKeys, parse_token
from mosaic.store.engine import Database
from mosaic.store.models import ApiKey, Tenant


async def _tenant(db: Database, *names: str) -> None:
    async with db.transaction() as s:
        for name in names:
            s.add(Tenant(name=name, display_name="", settings={}, version=1))


@pytest.fixture
async def keys(db: Database) -> ApiKeys:
    await _tenant(db, "acme", "globex")
    return ApiKeys(db, params=FAST_HASH)


async def test_a_key_is_shown_once_and_stored_only_as_an_argon2_hash(keys: ApiKeys, db: Database) -> None:
    created = await keys.create("acme", "ci", ["developer"], created_by="op")
    key_id, secret = parse_token(created.token) or ("", "")
    assert created.record.id == key_id and len(secret) == 43
    assert created.token not in repr(created) and secret not in repr(created.record.public())
    async with db.read() as s:
        row = await s.get(ApiKey, key_id)
        dump = " ".join(str(v) for v in (await s.execute(text("SELECT * FROM api_keys"))).one())
    assert row is not None and row.hash.startswith("$argon2id$")
    assert secret not in dump and created.token not in dump
    listed = await keys.list_keys("acme")
    assert [r.id for r in listed] == [key_id]
    assert "hash" not in listed[0].public()
    assert listed[0].public()["prefix"] == f"mk_{key_id}_"


async def test_verification_by_id_then_hash(keys: ApiKeys) -> None:
    created = await keys.create("acme", "ci", ["reader"], created_by="op", attributes={"region": "eu"})
    record = await keys.verify(created.token)
    assert (record.tenant, record.roles, record.attributes) == ("acme", ["reader"], {"region": "eu"})
    key_id, secret = parse_token(created.token) or ("", "")
    wrong = f"mk_{key_id}_{'A' * 43}"
    for bad in (wrong, created.token[:-1] + ("B" if created.token[-1] != "B" else "C"),
                f"mk_{'z' * 12}_{secret}", "mk_short", created.token + "x"):
        with pytest.raises(Unauthorized) as exc:
            await keys.verify(bad)
        assert secret not in exc.value.message and bad not in exc.value.message


async def test_revocation_takes_effect_immediately_even_after_a_cached_success(keys: ApiKeys) -> None:
    created = await keys.create("acme", "ci", ["developer"], created_by="op")
    await keys.verify(created.token)
    revoked = await keys.revoke(created.record.id, revoked_by="admin", tenant="acme")
    assert revoked.status() == "revoked" and revoked.revoked_by == "admin"
    with pytest.raises(Unauthorized, match="has been revoked"):
        await keys.verify(created.token)


async def test_revocation_through_another_replica_applies_within_the_record_ttl(keys: ApiKeys,
                                                                                db: Database) -> None:
    replica = ApiKeys(db, params=FAST_HASH, record_ttl=0.05)
    created = await keys.create("acme", "ci", ["developer"], created_by="op")
    await replica.verify(created.token)
    await keys.revoke(created.record.id, revoked_by="admin")
    await asyncio.sleep(0.06)
    with pytest.raises(Unauthorized, match="revoked"):
        await replica.verify(created.token)


async def test_expiry(keys: ApiKeys, db: Database) -> None:
    with pytest.raises(InvalidRequest, match="in the past"):
        await keys.create("acme", "old", ["reader"], created_by="op",
                          expires_at=datetime.now(UTC) - timedelta(seconds=1))
    created = await keys.create("acme", "soon", ["reader"], created_by="op",
                                expires_at=datetime.now(UTC) + timedelta(hours=1))
    await keys.verify(created.token)
    async with db.transaction() as s:
        row = await s.get(ApiKey, created.record.id)
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    fresh = ApiKeys(db, params=FAST_HASH)
    with pytest.raises(Unauthorized, match="has expired"):
        await fresh.verify(created.token)


async def test_last_used_is_written_in_batches(keys: ApiKeys, db: Database) -> None:
    created = await keys.create("acme", "ci", ["reader"], created_by="op")
    for _ in range(5):
        await keys.verify(created.token)
    async with db.read() as s:
        assert (await s.get(ApiKey, created.record.id)).last_used_at is None  # type: ignore[union-attr]
    assert await keys.flush_last_used(min_interval=0) == 1
    assert await keys.flush_last_used(min_interval=60) == 0
    async with db.read() as s:
        used = (await s.scalars(select(ApiKey.last_used_at))).one()
    assert used is not None


async def test_another_tenants_key_is_invisible_and_names_are_checked(keys: ApiKeys) -> None:
    created = await keys.create("acme", "ci", ["reader"], created_by="op")
    with pytest.raises(NotFound):
        await keys.get(created.record.id, tenant="globex")
    with pytest.raises(NotFound):
        await keys.revoke(created.record.id, revoked_by="x", tenant="globex")
    assert await keys.list_keys("globex") == []
    with pytest.raises(InvalidRequest, match="key name"):
        await keys.create("acme", "", ["reader"], created_by="op")
    with pytest.raises(InvalidRequest, match="at least one role"):
        await keys.create("acme", "ok", [], created_by="op")
