"""Pull requests, reviews and commit statuses of the local git provider, in SQLite (WAL).

Rows are keyed by the repository's stable id (not its name), so renaming a repository
keeps its pull requests, and a repository deleted then re-created under the same name
starts clean. Every write is one SQL statement in autocommit mode: statements from
concurrent coroutines sharing the connection can never interleave inside a transaction,
and numbering (``MAX(number) + 1`` inside the INSERT) is atomic.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from mosaic.catalog.git import StatusState
from mosaic.errors import Conflict, ProviderUnavailable

PullState = Literal["open", "closed", "merged"]
ReviewState = Literal["approved", "changes_requested", "commented", "pending", "dismissed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pull_requests (
    repo_id    TEXT    NOT NULL,
    number     INTEGER NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL CHECK (state IN ('open', 'closed', 'merged')),
    head       TEXT    NOT NULL,
    base       TEXT    NOT NULL,
    head_sha   TEXT,
    base_sha   TEXT,
    merge_sha  TEXT,
    author     TEXT,
    draft      INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL,
    closed_at  TEXT,
    merged_at  TEXT,
    PRIMARY KEY (repo_id, number)
);
CREATE UNIQUE INDEX IF NOT EXISTS pull_requests_one_open
    ON pull_requests (repo_id, head, base) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS reviews (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id      TEXT    NOT NULL,
    pull_number  INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    body         TEXT    NOT NULL DEFAULT '',
    author       TEXT,
    commit_sha   TEXT,
    submitted_at TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_pull ON reviews (repo_id, pull_number, id);
CREATE TABLE IF NOT EXISTS commit_statuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id     TEXT NOT NULL,
    sha         TEXT NOT NULL,
    context     TEXT NOT NULL,
    state       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    target_url  TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (repo_id, sha, context)
);
"""


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True, slots=True)
class PullRow:
    repo_id: str
    number: int
    title: str
    body: str
    state: PullState
    head: str
    base: str
    head_sha: str | None
    base_sha: str | None
    merge_sha: str | None
    author: str | None
    draft: bool
    created_at: str
    updated_at: str
    closed_at: str | None
    merged_at: str | None

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ReviewRow:
    id: int
    repo_id: str
    pull_number: int
    state: ReviewState
    body: str
    author: str | None
    commit_sha: str | None
    submitted_at: str

    def record(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class StatusRow:
    id: int
    repo_id: str
    sha: str
    context: str
    state: StatusState
    description: str
    target_url: str | None
    created_at: str

    def record(self) -> dict[str, Any]:
        return asdict(self)


class GitMetaStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: aiosqlite.Connection | None = None

    async def open(self) -> None:
        try:
            db = await aiosqlite.connect(self.path, isolation_level=None)
        except (sqlite3.Error, OSError) as exc:
            raise ProviderUnavailable(f"cannot open {self.path.name}: {exc}", sent=False) from None
        try:
            db.row_factory = aiosqlite.Row
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.execute("PRAGMA synchronous=NORMAL")
            await db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            await db.close()
            raise ProviderUnavailable(f"cannot prepare {self.path.name}: {exc}", sent=False) from None
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._db.close()
            self._db = None

    @property
    def is_open(self) -> bool:
        return self._db is not None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise ProviderUnavailable("the local git metadata store is not open", sent=False)
        return self._db

    async def _one(self, sql: str, args: tuple[Any, ...]) -> aiosqlite.Row | None:
        async with self.db.execute(sql, args) as cur:
            return await cur.fetchone()

    async def _all(self, sql: str, args: tuple[Any, ...]) -> list[aiosqlite.Row]:
        async with self.db.execute(sql, args) as cur:
            return list(await cur.fetchall())

    # -- pull requests --------------------------------------------------------
    async def create_pull(self, repo_id: str, *, title: str, body: str, head: str, base: str,
                          author: str | None, draft: bool, head_sha: str, base_sha: str) -> PullRow:
        ts = now()
        try:
            row = await self._one(
                "INSERT INTO pull_requests (repo_id, number, title, body, state, head, base, head_sha,"
                " base_sha, author, draft, created_at, updated_at) VALUES (?, (SELECT COALESCE(MAX(number),"
                " 0) + 1 FROM pull_requests WHERE repo_id = ?), ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?)"
                " RETURNING *",
                (repo_id, repo_id, title, body, head, base, head_sha, base_sha, author, int(draft), ts, ts))
        except sqlite3.IntegrityError:
            raise Conflict(f"an open pull request from {head!r} into {base!r} already exists",
                           details={"head": head, "base": base}) from None
        assert row is not None
        return _pull(row)

    async def get_pull(self, repo_id: str, number: int) -> PullRow | None:
        row = await self._one("SELECT * FROM pull_requests WHERE repo_id = ? AND number = ?",
                              (repo_id, number))
        return _pull(row) if row is not None else None

    async def list_pulls(self, repo_id: str, state: str, offset: int, limit: int) -> list[PullRow]:
        if state == "all":
            rows = await self._all("SELECT * FROM pull_requests WHERE repo_id = ? ORDER BY number DESC"
                                   " LIMIT ? OFFSET ?", (repo_id, limit, offset))
        else:
            rows = await self._all("SELECT * FROM pull_requests WHERE repo_id = ? AND state = ?"
                                   " ORDER BY number DESC LIMIT ? OFFSET ?", (repo_id, state, limit, offset))
        return [_pull(r) for r in rows]

    async def update_pull(self, repo_id: str, number: int, *, expect_state: tuple[str, ...],
                          **fields: Any) -> PullRow | None:
        """Set ``fields`` only if the pull request is in one of ``expect_state``; None otherwise."""
        fields["updated_at"] = now()
        sets = ", ".join(f"{k} = ?" for k in fields)
        marks = ", ".join("?" for _ in expect_state)
        try:
            row = await self._one(
                f"UPDATE pull_requests SET {sets} WHERE repo_id = ? AND number = ? AND state IN ({marks})"
                " RETURNING *", (*fields.values(), repo_id, number, *expect_state))
        except sqlite3.IntegrityError:
            raise Conflict("another open pull request already has this head and base",
                           details={"number": number}) from None
        return _pull(row) if row is not None else None

    # -- reviews --------------------------------------------------------------
    async def add_review(self, repo_id: str, number: int, *, state: ReviewState, body: str,
                         author: str | None,
                         commit_sha: str | None) -> ReviewRow:
        row = await self._one(
            "INSERT INTO reviews (repo_id, pull_number, state, body, author, commit_sha, submitted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (repo_id, number, state, body, author, commit_sha, now()))
        assert row is not None
        return ReviewRow(**dict(row))

    async def list_reviews(self, repo_id: str, number: int, offset: int, limit: int) -> list[ReviewRow]:
        rows = await self._all("SELECT * FROM reviews WHERE repo_id = ? AND pull_number = ? ORDER BY id"
                               " LIMIT ? OFFSET ?", (repo_id, number, limit, offset))
        return [ReviewRow(**dict(r)) for r in rows]

    # -- statuses -------------------------------------------------------------
    async def set_status(self, repo_id: str, sha: str, *, context: str, state: StatusState,
                         description: str,
                         target_url: str | None) -> StatusRow:
        """One status per (commit, context): setting it again replaces it (idempotent)."""
        row = await self._one(
            "INSERT INTO commit_statuses (repo_id, sha, context, state, description, target_url, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repo_id, sha, context) DO UPDATE SET"
            " state = excluded.state, description = excluded.description,"
            " target_url = excluded.target_url, created_at = excluded.created_at RETURNING *",
            (repo_id, sha, context, state, description, target_url, now()))
        assert row is not None
        return StatusRow(**dict(row))

    async def list_statuses(self, repo_id: str, sha: str, offset: int, limit: int) -> list[StatusRow]:
        rows = await self._all("SELECT * FROM commit_statuses WHERE repo_id = ? AND sha = ?"
                               " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?",
                               (repo_id, sha, limit, offset))
        return [StatusRow(**dict(r)) for r in rows]

    # -- repositories -----------------------------------------------------------
    async def delete_repository(self, repo_id: str) -> None:
        for table in ("pull_requests", "reviews", "commit_statuses"):
            await self.db.execute(f"DELETE FROM {table} WHERE repo_id = ?", (repo_id,))


def _pull(row: aiosqlite.Row) -> PullRow:
    data = dict(row)
    data["draft"] = bool(data["draft"])
    return PullRow(**data)
