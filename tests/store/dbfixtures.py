"""Database and Redis fixtures shared by tests/store, tests/security and tests/tenancy.

Every DB-touching test runs twice: on SQLite (a fresh migrated file per test) and on the
machine's real PostgreSQL (one ``mosaic_test_<random>`` database per test session, migrated
once, emptied after each test, dropped at the end). PostgreSQL being unreachable FAILS the
tests — it is never skipped. Redis tests use a unique key prefix and delete their keys after.

Conftests import these with ``from tests.store.dbfixtures import *``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest
from redis.asyncio import Redis

from mosaic.security.apikeys import HashParams
from mosaic.state.redis import RedisState
from mosaic.store.engine import Database
from mosaic.store.migrate import upgrade
from mosaic.store.models import TABLES

PG_ADMIN_URL = os.environ.get("MOSAIC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MOSAIC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# Cheap argon2 for tests: the cost parameters are not what is under test.
FAST_HASH = HashParams(time_cost=1, memory_cost=1024, parallelism=1)
BACKENDS = ("sqlite", "postgresql")
T = TypeVar("T")


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{database}"


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _migrate(url: str) -> None:
    db = await Database.open(url)
    try:
        await upgrade(db)
    finally:
        await db.dispose()


async def create_pg_database() -> str:
    """A new, empty PostgreSQL database (the caller drops it with :func:`drop_pg_database`)."""
    name = f"mosaic_test_{uuid.uuid4().hex[:12]}"
    try:
        await _pg_admin(f'CREATE DATABASE "{name}"')
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for these tests and is not usable: {exc!r}")
    return name


async def drop_pg_database(name: str) -> None:
    await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on a private loop in a thread (session fixtures may be set up from a test's loop)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of this session's migrated PostgreSQL database."""
    name = _run(create_pg_database())
    url = pg_url(name)
    try:
        _run(_migrate(url))
        yield url
    finally:
        _run(drop_pg_database(name))


async def _empty_pg(db: Database) -> None:
    names = ", ".join(f'"{t.name}"' for t in TABLES)
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test would cost more)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated, empty database of the parametrized backend."""
    if backend == "sqlite":
        target = tmp_path / "mosaic.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = request.getfixturevalue("pg_database")
    yield url
    db = await Database.open(url)
    try:
        await _empty_pg(db)
    finally:
        await db.dispose()


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await Database.open(db_url)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A unique key prefix; every key under it is deleted after the test."""
    prefix = f"mosaic_test_{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=prefix + "*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_state(redis_prefix: str) -> AsyncIterator[RedisState]:
    state = RedisState(REDIS_URL, prefix=redis_prefix)
    await state.start()
    if not state.available:
        pytest.fail(f"Redis at {REDIS_URL} is required for these tests and is not reachable")
    yield state
    await state.stop()


__all__ = [
    "BACKENDS",
    "FAST_HASH",
    "REDIS_URL",
    "backend",
    "create_pg_database",
    "db",
    "db_url",
    "drop_pg_database",
    "pg_database",
    "pg_url",
    "redis_prefix",
    "redis_state",
    "sqlite_template",
]
