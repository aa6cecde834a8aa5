"""Apply migrations programmatically, and refuse to serve on a database that is not migrated."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.config.schema import Settings
from mosaic.store.engine import Database
from mosaic.store.errors import StoreNotMigrated, StoreUnavailable

SCRIPT_LOCATION = "mosaic.store:migrations"
# Any constant: replicas running `db upgrade` at once take turns on PostgreSQL.
_PG_LOCK = 0x6D6F736169630001


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations package has no revision"
    return head


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


async def current_revision(db: Database) -> str | None:
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(_current)
    except (OperationalError, DBAPIError, OSError) as exc:
        raise StoreUnavailable(f"cannot reach the database {db.display_url}: {type(exc).__name__}") from None


async def upgrade(db: Database, revision: str = "head") -> tuple[str | None, str]:
    """Apply migrations up to ``revision``; return (revision before, revision after)."""

    def run(conn: Connection) -> tuple[str | None, str]:
        before = _current(conn)
        command.upgrade(alembic_config(conn), revision)
        after = _current(conn)
        assert after is not None
        return before, after

    try:
        async with db.engine.begin() as conn:
            if db.dialect == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
            return await conn.run_sync(run)
    except (OperationalError, OSError) as exc:
        raise StoreUnavailable(f"cannot migrate the database {db.display_url}: "
                               f"{type(exc).__name__}") from None


async def check_migrated(db: Database) -> str:
    """The current revision, or :class:`StoreNotMigrated` saying exactly what to do."""
    current = await current_revision(db)
    head = head_revision()
    if current == head:
        return current
    if current is None:
        raise StoreNotMigrated(
            f"the database {db.display_url} has no MosAIc schema; run `mosaic db upgrade` first",
            details={"current": None, "required": head})
    known = {rev.revision for rev in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if current not in known:
        raise StoreNotMigrated(
            f"the database {db.display_url} is at revision {current}, which this version of MosAIc "
            f"does not know (it needs {head}); upgrade MosAIc or use another database",
            details={"current": current, "required": head})
    raise StoreNotMigrated(
        f"the database {db.display_url} is at revision {current} but this version needs {head}; "
        "run `mosaic db upgrade`", details={"current": current, "required": head})


async def require_migrated(settings: Settings | None = None, url: str | None = None) -> str:
    """For ``serve`` before it starts: the current revision, or a typed error saying what to do
    (:class:`StoreNotMigrated`, :class:`StoreUnavailable`)."""
    db = await Database.open(url, settings=settings)
    try:
        return await check_migrated(db)
    finally:
        await db.dispose()
