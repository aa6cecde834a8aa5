"""Transactions over the local docs database, and the queries several operations share.

One connection per plugin instance, used by one coroutine at a time (an asyncio lock):
aiosqlite runs statements of concurrent coroutines on the same connection interleaved,
which would otherwise mix their transactions. Writes start with ``BEGIN IMMEDIATE`` so a
read-check-write (optimistic concurrency, sibling positions) holds the database write
lock from the check to the write, even against another process on the same file.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from mosaic.catalog.docs import Breadcrumb
from mosaic.errors import Conflict, MosaicError, ProviderUnavailable
from mosaic.providers.local.docs_schema import open_database
from mosaic.providers.local.docs_tree import Node

_MAX_ID = 2**63 - 1

DOC_COLUMNS = ("id, space_id, parent_id, position, title, format, labels, version, author, "
               "created_at, updated_at")


def parse_id(value: str | None) -> int | None:
    """The integer key of a document id, or None when it cannot be one of ours."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    pk = int(value)
    return pk if 0 < pk <= _MAX_ID else None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dump_labels(labels: Sequence[str]) -> str:
    return json.dumps(list(labels), ensure_ascii=False)


def load_labels(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


class Tx:
    """Statements inside one transaction."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    async def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        async with self.db.execute(sql, args) as cur:
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        async with self.db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    async def run(self, sql: str, *args: Any) -> int:
        """Execute a write; the number of rows it changed."""
        async with self.db.execute(sql, args) as cur:
            return cur.rowcount

    async def insert(self, sql: str, *args: Any) -> int:
        async with self.db.execute(sql, args) as cur:
            if cur.lastrowid is None:  # pragma: no cover - sqlite always sets it for INSERT
                raise ProviderUnavailable("insert did not return a row id")
            return cur.lastrowid

    async def run_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.db.executemany(sql, rows)


class DocsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        if self._db is None:
            self._db = await open_database(self.path)

    async def close(self) -> None:
        # Under the lock: an operation still running finishes before the connection goes.
        async with self._lock:
            if self._db is not None:
                await self._db.close()
                self._db = None

    async def ping(self) -> None:
        async with self._conn().execute("SELECT 1") as cur:
            await cur.fetchone()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise ProviderUnavailable("the local docs store is not open (plugin not started)", sent=False)
        return self._db

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        """A read transaction: every statement inside sees the same snapshot."""
        async with self._transaction("BEGIN") as tx:
            yield tx

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        async with self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Tx]:
        async with self._lock:
            db = self._conn()
            try:
                await db.execute(begin)
                yield Tx(db)
                await db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                if isinstance(exc, MosaicError) or not isinstance(exc, sqlite3.Error):
                    raise
                raise _store_error(exc) from exc


def _store_error(exc: sqlite3.Error) -> MosaicError:
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"the change conflicts with the current data: {exc}")
    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
        return ProviderUnavailable("the local docs database is busy; retry shortly", sent=False)
    return ProviderUnavailable(f"the local docs database failed: {exc}")


# ---------------------------------------------------------------------------
# Shared queries


async def document_row(tx: Tx, pk: int, *, body: bool = True) -> sqlite3.Row | None:
    cols = DOC_COLUMNS + (", body" if body else "")
    return await tx.one(f"SELECT {cols} FROM documents WHERE id = ?", pk)


async def space_row(tx: Tx, space_id: str) -> sqlite3.Row | None:
    return await tx.one("SELECT * FROM spaces WHERE id = ?", space_id)


async def breadcrumbs(tx: Tx, pks: Sequence[int]) -> dict[int, list[Breadcrumb]]:
    """Ancestors (top first) of each document in ``pks``, in one recursive query."""
    if not pks:
        return {}
    marks = ",".join("?" * len(pks))
    rows = await tx.all(
        f"""
        WITH RECURSIVE up(start, id, parent_id, title, depth) AS (
            SELECT d.id, p.id, p.parent_id, p.title, 1
              FROM documents d JOIN documents p ON p.id = d.parent_id
             WHERE d.id IN ({marks})
            UNION ALL
            SELECT up.start, p.id, p.parent_id, p.title, up.depth + 1
              FROM up JOIN documents p ON p.id = up.parent_id
             WHERE up.depth < 10000
        )
        SELECT start, id, title, depth FROM up ORDER BY start, depth DESC
        """,
        *pks,
    )
    out: dict[int, list[Breadcrumb]] = {pk: [] for pk in pks}
    for r in rows:
        out[r["start"]].append(Breadcrumb(id=str(r["id"]), title=r["title"]))
    return out


async def subtree(tx: Tx, pk: int) -> list[int]:
    """``pk`` and every descendant of it."""
    rows = await tx.all(
        """
        WITH RECURSIVE down(id) AS (
            SELECT ?
            UNION
            SELECT d.id FROM documents d JOIN down ON d.parent_id = down.id
        )
        SELECT id FROM down
        """,
        pk,
    )
    return [r["id"] for r in rows]


async def child_count(tx: Tx, space_id: str, parent: int | None, *, excluding: int | None = None) -> int:
    row = await tx.one(
        "SELECT count(*) FROM documents WHERE space_id = ? AND parent_id IS ? AND id IS NOT ?",
        space_id, parent, excluding,
    )
    return int(row[0]) if row else 0


async def open_gap(tx: Tx, space_id: str, parent: int | None, position: int, *,
                   excluding: int | None = None) -> None:
    """Shift siblings at ``position`` and after one place down, making room."""
    await tx.run(
        "UPDATE documents SET position = position + 1 "
        "WHERE space_id = ? AND parent_id IS ? AND position >= ? AND id IS NOT ?",
        space_id, parent, position, excluding,
    )


async def close_gap(tx: Tx, space_id: str, parent: int | None, position: int) -> None:
    """Shift siblings after ``position`` one place up, after a document left it."""
    await tx.run(
        "UPDATE documents SET position = position - 1 "
        "WHERE space_id = ? AND parent_id IS ? AND position > ?",
        space_id, parent, position,
    )


async def space_nodes(tx: Tx, space_id: str) -> dict[str, Node]:
    rows = await tx.all(
        "SELECT id, parent_id, position, title FROM documents WHERE space_id = ?", space_id
    )
    return {
        str(r["id"]): Node(id=str(r["id"]),
                           parent_id=None if r["parent_id"] is None else str(r["parent_id"]),
                           position=r["position"], title=r["title"])
        for r in rows
    }
