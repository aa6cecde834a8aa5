"""Alembic environment: runs on the connection handed over by :mod:`mosaic.store.migrate`.

``mosaic db upgrade`` (or :func:`mosaic.store.migrate.upgrade`) passes an open connection in
``config.attributes["connection"]``. Running ``alembic`` by hand (to write a new revision) is
also supported: then ``sqlalchemy.url`` or ``MOSAIC_DATABASE_URL`` names the database.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from mosaic.store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      # SQLite cannot ALTER most things: later revisions use batch mode there.
                      render_as_batch=connection.dialect.name == "sqlite",
                      compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from mosaic.store.engine import resolve_url

    url = config.get_main_option("sqlalchemy.url") or resolve_url()
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    asyncio.run(_run_with_url(url))


main()
