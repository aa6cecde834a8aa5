"""The store: URLs, migrations on both databases, the unmigrated-database refusal, SQLite modes."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.store.dbfixtures import create_pg_database, drop_pg_database, pg_url

from mosaic.config.schema import Settings
from mosaic.errors import ConfigError
from mosaic.store import (
    Database,
    StoreNotMigrated,
    StoreUnavailable,
    check_migrated,
    current_revision,
    head_revision,
    redact_url,
    require_migrated,
    resolve_url,
    upgrade,
)
from mosaic.store.models import AuditEntry, Base, Tenant, utcnow


def test_urls_are_normalized_and_redacted(tmp_path: Path) -> None:
    assert resolve_url("postgres://u:pw@db.example/mosaic").startswith("postgresql+asyncpg://u:pw@")
    assert resolve_url("postgresql://u@h/x").startswith("postgresql+asyncpg://")
    assert resolve_url("sqlite:////tmp/x.db") == "sqlite+aiosqlite:////tmp/x.db"
    assert resolve_url(settings=Settings(data_dir=tmp_path)) == \
        f"sqlite+aiosqlite:///{(tmp_path / 'mosaic.sqlite3').resolve()}"
    assert resolve_url(settings=Settings(data_dir=tmp_path, database_url="postgresql://h/db")) == \
        "postgresql+asyncpg://h/db"
    shown = redact_url("postgresql+asyncpg://user:s3cr3t-pw@h/db")
    assert "s3cr3t-pw" not in shown and "user" in shown
    with pytest.raises(ConfigError, match="unsupported database 'mysql'") as exc:
        resolve_url("mysql://root:topsecret@h/db")
    assert "topsecret" not in str(exc.value)
    with pytest.raises(ConfigError, match="not a valid URL"):
        resolve_url("::::")


async def _fresh(backend: str, tmp_path: Path) -> tuple[Database, str | None]:
    if backend == "sqlite":
        return await Database.open(f"sqlite:///{tmp_path / 'fresh.sqlite3'}"), None
    name = await create_pg_database()
    return await Database.open(pg_url(name)), name


async def test_unmigrated_database_is_refused_then_upgrade_applies(backend: str, tmp_path: Path) -> None:
    db, pg_name = await _fresh(backend, tmp_path)
    try:
        with pytest.raises(StoreNotMigrated) as exc:
            await check_migrated(db)
        with pytest.raises(StoreNotMigrated):
            await require_migrated(url=db.url)
        assert "run `mosaic db upgrade`" in exc.value.message
        assert exc.value.details == {"current": None, "required": head_revision()}
        before, after = await upgrade(db)
        assert (before, after) == (None, head_revision())
        assert await check_migrated(db) == head_revision()
        assert await require_migrated(url=db.url) == head_revision()
        # Idempotent: a second upgrade changes nothing.
        assert await upgrade(db) == (head_revision(), head_revision())
        # A revision this version does not know (a newer MosAIc migrated it) is refused too.
        async with db.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = 'ffff99'"))
        with pytest.raises(StoreNotMigrated, match="does not know"):
            await check_migrated(db)
    finally:
        await db.dispose()
        if pg_name:
            await drop_pg_database(pg_name)


async def test_models_match_the_migrated_schema(db: Database) -> None:
    def diff(conn: object) -> list[object]:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(ctx, Base.metadata))

    async with db.engine.connect() as conn:
        differences = await conn.run_sync(diff)
    assert differences == []


async def test_audit_entries_are_append_only_in_the_database(db: Database) -> None:
    async with db.transaction() as s:
        s.add(AuditEntry(tenant="t", seq=1, at=utcnow(), actor="a", kind="admin", action="x", resource={},
                         outcome="ok", details={}, prev_hash="0" * 64, hash="1" * 64))
    for stmt in ("UPDATE audit_entries SET outcome = 'forged'", "DELETE FROM audit_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(stmt))


async def test_transactions_commit_and_roll_back(db: Database) -> None:
    async with db.transaction() as s:
        s.add(Tenant(name="kept", display_name="", settings={}, version=1))
    with pytest.raises(IntegrityError):
        async with db.transaction() as s:
            s.add(Tenant(name="gone", display_name="", settings={}, version=1))
            await s.flush()
            s.add(Tenant(name="kept", display_name="", settings={}, version=1))
    async with db.read() as s:
        names = (await s.scalars(text("SELECT name FROM tenants ORDER BY name"))).all()
    assert names == ["kept"]


async def test_sqlite_runs_in_wal_with_full_sync_and_foreign_keys(tmp_path: Path) -> None:
    db = await Database.open(f"sqlite:///{tmp_path / 'm.sqlite3'}")
    try:
        async with db.engine.connect() as conn:
            mode = (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar()
            sync = (await conn.exec_driver_sql("PRAGMA synchronous")).scalar()
            fks = (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar()
        assert (mode, sync, fks) == ("wal", 2, 1)
        assert db.sqlite_path == tmp_path / "m.sqlite3"
    finally:
        await db.dispose()


async def test_write_transactions_take_the_sqlite_write_lock_at_once(tmp_path: Path) -> None:
    path = tmp_path / "lock.sqlite3"
    db = await Database.open(f"sqlite:///{path}")
    await upgrade(db)

    def try_write() -> str:
        conn = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return "acquired"
        except sqlite3.OperationalError as exc:
            return str(exc)
        finally:
            conn.close()

    try:
        async with db.transaction() as s:
            await s.execute(text("SELECT 1"))
            assert await asyncio.to_thread(try_write) == "database is locked"
        async with db.read() as s:
            await s.execute(text("SELECT 1"))
            # A read transaction does not block writers.
            assert await asyncio.to_thread(try_write) == "acquired"
    finally:
        await db.dispose()


async def test_unreachable_database_fails_fast_with_a_typed_error() -> None:
    db = await Database.open("postgresql://mosaic:pw@127.0.0.1:1/nothing")
    start = time.monotonic()
    try:
        with pytest.raises(StoreUnavailable) as exc:
            await current_revision(db)
    finally:
        await db.dispose()
    assert time.monotonic() - start < 6
    assert "pw" not in exc.value.message
