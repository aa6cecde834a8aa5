"""The database: one async engine + session factory for SQLite (embedded) or PostgreSQL.

``sqlite+aiosqlite:///<data_dir>/mosaic.sqlite3`` is the default. SQLite runs in WAL mode
(readers never block the writer) with ``synchronous=FULL`` because the audit log promises
that an entry is on disk before a write's response leaves: WAL with ``NORMAL`` could lose the
last commits on power loss. SQLAlchemy emits ``BEGIN`` itself (sqlite3's legacy transaction
control would start SELECT-only transactions late); write transactions (:meth:`Database.transaction`)
take the write lock at once, so read-then-write sequences (the audit chain's head, a tenant's
version) cannot interleave across connections or processes; :meth:`Database.read` does not.

PostgreSQL runs through asyncpg with bounded connect/command timeouts: a database that went
away fails a request within seconds instead of hanging it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from mosaic.config.schema import Settings
from mosaic.errors import ConfigError

Dialect = Literal["sqlite", "postgresql"]
DEFAULT_FILE = "mosaic.sqlite3"
IMMEDIATE = "mosaic_immediate"


def default_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{(data_dir / DEFAULT_FILE).resolve()}"


def normalize_url(url: str) -> str:
    """Map the spellings people use onto the async drivers; refuse other databases clearly."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError([f"database URL {redact_url(url)!r} is not a valid URL "
                           "(expected sqlite+aiosqlite:///path or postgresql+asyncpg://...)"]) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError([f"database URL {redact_url(url)!r}: unsupported database {backend!r} "
                       "(use sqlite+aiosqlite:///path or postgresql+asyncpg://...)"])


def redact_url(url: str | URL) -> str:
    """The URL with its password masked, for messages and logs."""
    try:
        return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def resolve_url(url: str | None = None, settings: Settings | None = None) -> str:
    """``url``, else ``MOSAIC_DATABASE_URL``, else the embedded SQLite file under the data dir."""
    if url:
        return normalize_url(url)
    s = settings or Settings()
    return normalize_url(s.database_url) if s.database_url else default_url(s.data_dir)


def _sqlite_hooks(engine: AsyncEngine) -> None:
    sync = engine.sync_engine

    @event.listens_for(sync, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not sqlite3, decides when a transaction begins (see the module docstring).
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=10000"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(sync, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(IMMEDIATE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine and its sessions. Create with :meth:`open`; close with :meth:`dispose`."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect: Dialect = "sqlite" if parsed.get_backend_name() == "sqlite" else "postgresql"
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "postgresql":
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20, pool_timeout=10,
                          connect_args={"timeout": 5, "command_timeout": 15})
        else:
            kwargs.update(connect_args={"timeout": 15})
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_hooks(self.engine)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str | None = None, *, settings: Settings | None = None,
                   echo: bool = False) -> Database:
        db = cls(resolve_url(url, settings), echo=echo)
        path = db.sqlite_path
        if path is not None:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        return db

    @property
    def sqlite_path(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        database = make_url(self.url).database
        return Path(database) if database and database != ":memory:" else None

    @property
    def display_url(self) -> str:
        return redact_url(self.url)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: committed on success, rolled back on error.

        On SQLite it takes the write lock at BEGIN (``BEGIN IMMEDIATE``): a deferred transaction
        that reads and then writes fails at once with "database is locked" when another writer
        committed in between, whereas an immediate one waits (``busy_timeout``) for its turn.
        PostgreSQL uses row locks (``SELECT ... FOR UPDATE``) where order matters.
        """
        async with self.sessions() as session, session.begin():
            if self.dialect == "sqlite":
                # The first connection use procures it with the option, then the begin hook runs.
                await session.connection(execution_options={IMMEDIATE: True})
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only transaction (never blocks writers, never waits for them)."""
        async with self.sessions() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
