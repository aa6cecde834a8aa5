"""Transactions over the local project database, and the lookups several operations share.

One connection per plugin instance, used by one coroutine at a time (an asyncio lock):
aiosqlite runs statements of concurrent coroutines on the same connection interleaved,
which would otherwise mix their transactions. Writes start with ``BEGIN IMMEDIATE``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from mosaic.catalog.project import split_issue_key
from mosaic.errors import Conflict, InvalidRequest, MosaicError, NotFound, ProviderUnavailable
from mosaic.providers.local.project_schema import open_database

ISSUE_SELECT = "SELECT i.*, p.key AS project_key FROM issues i JOIN projects p ON p.id = i.project_id"
SPRINT_SELECT = "SELECT s.*, p.key AS project_key FROM sprints s JOIN projects p ON p.id = s.project_id"
_LINK_SELECT = """
SELECT l.*, sp.key || '-' || si.number AS source_key, tp.key || '-' || ti.number AS target_key
FROM links l
JOIN issues si ON si.id = l.source_id JOIN projects sp ON sp.id = si.project_id
JOIN issues ti ON ti.id = l.target_id JOIN projects tp ON tp.id = ti.project_id
"""
_MAX_ID = 2**63 - 1


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def dump_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def parse_id(value: str) -> int | None:
    """The integer key behind a sprint/comment id, or None when it cannot be one of ours."""
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    pk = int(value)
    return pk if 0 < pk <= _MAX_ID else None


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def encode_cursor(kind: str, after: int | str) -> str:
    """Keyset cursor: the sort key of the last item returned, tagged with its listing."""
    raw = dump_json([kind, after]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None, typ: type[int] | type[str]) -> Any:
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        data = None
    if not isinstance(data, list) or len(data) != 2 or data[0] != kind or type(data[1]) is not typ:
        raise InvalidRequest("invalid cursor: pass back the next_cursor of the previous page unchanged",
                             details={"cursor": cursor[:100]})
    return data[1]


class Tx:
    """Statements inside one transaction, and the shared lookups."""

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

    # -- lookups ---------------------------------------------------------------
    async def project(self, key: str) -> sqlite3.Row:
        row = await self.one("SELECT * FROM projects WHERE key = ?", key)
        if row is None:
            raise NotFound(f"project {key} not found", details={"project": key})
        return row

    async def issue(self, key: str) -> sqlite3.Row:
        project, number = split_issue_key(key)
        row = await self.one(ISSUE_SELECT + " WHERE p.key = ? AND i.number = ?", project, number)
        if row is None:
            raise NotFound(f"issue {key} not found", details={"issue": key})
        return row

    async def issue_by_id(self, pk: int) -> sqlite3.Row:
        row = await self.one(ISSUE_SELECT + " WHERE i.id = ?", pk)
        if row is None:  # pragma: no cover - callers pass ids they just read or wrote
            raise NotFound(f"issue {pk} not found")
        return row

    async def sprint(self, sprint_id: str) -> sqlite3.Row:
        pk = parse_id(sprint_id)
        row = None if pk is None else await self.one(SPRINT_SELECT + " WHERE s.id = ?", pk)
        if row is None:
            raise NotFound(f"sprint {sprint_id} not found", details={"sprint_id": sprint_id})
        return row

    async def links_of(self, issue_ids: Sequence[int]) -> list[sqlite3.Row]:
        """Every link from or to any of ``issue_ids``, oldest first."""
        if not issue_ids:
            return []
        marks = ",".join("?" * len(issue_ids))
        return await self.all(
            _LINK_SELECT + f" WHERE l.source_id IN ({marks}) OR l.target_id IN ({marks}) ORDER BY l.id",
            *issue_ids, *issue_ids,
        )

    async def link(self, type_: str, source_id: int, target_id: int) -> sqlite3.Row | None:
        return await self.one(_LINK_SELECT + " WHERE l.type = ? AND l.source_id = ? AND l.target_id = ?",
                              type_, source_id, target_id)

    async def blocking_pairs(self, project_id: int) -> list[sqlite3.Row]:
        """(blocker key, blocker state category, blocked key) for every issue of a project that
        something blocks; the blocker may live in another project."""
        return await self.all(
            """
            SELECT sp.key || '-' || si.number AS blocker, si.state_category AS blocker_category,
                   tp.key || '-' || ti.number AS blocked
            FROM links l
            JOIN issues si ON si.id = l.source_id JOIN projects sp ON sp.id = si.project_id
            JOIN issues ti ON ti.id = l.target_id JOIN projects tp ON tp.id = ti.project_id
            WHERE l.type = 'blocks' AND ti.project_id = ?
            ORDER BY l.id
            """,
            project_id,
        )


class ProjectStore:
    """The database of one plugin instance."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def open(self) -> None:
        if self._db is None:
            try:
                self._db = await open_database(self.path)
            except sqlite3.Error as exc:
                raise ProviderUnavailable(f"cannot open the project database: {exc}", sent=False) from exc

    async def close(self) -> None:
        async with self._lock:
            if self._db is not None:
                await self._db.close()
                self._db = None

    async def ping(self) -> None:
        async with self.read() as tx:
            await tx.one("SELECT 1")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        async with self._transaction("BEGIN") as tx:
            yield tx

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        async with self._transaction("BEGIN IMMEDIATE") as tx:
            yield tx

    @asynccontextmanager
    async def _transaction(self, begin: str) -> AsyncIterator[Tx]:
        async with self._lock:
            db = self._db
            if db is None:
                raise ProviderUnavailable("the local project provider is not started", sent=False)
            try:
                await db.execute(begin)
                try:
                    yield Tx(db)
                except BaseException:
                    await db.execute("ROLLBACK")
                    raise
                await db.execute("COMMIT")
            except MosaicError:
                raise
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"the change conflicts with existing data: {exc}") from exc
            except sqlite3.Error as exc:
                raise ProviderUnavailable(f"project database error: {exc}") from exc
