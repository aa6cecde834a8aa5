"""The local project store on disk: one SQLite file, its schema, and how it is opened.

Workflow states live on the project as JSON (they are always read and replaced whole);
each issue also keeps its state's category so that filters and the sprint planner need
no per-project lookup. Labels are a JSON array on the issue, searched with ``json_each``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from mosaic.errors import PluginError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    lead        TEXT,
    states      TEXT NOT NULL,
    -- Issue numbers are never reused, so an old key can only be "not found", never another issue.
    next_number INTEGER NOT NULL DEFAULT 1 CHECK (next_number >= 1),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS sprints (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL REFERENCES projects(id),
    name       TEXT NOT NULL,
    goal       TEXT NOT NULL DEFAULT '',
    start_at   TEXT,
    end_at     TEXT,
    state      TEXT NOT NULL CHECK (state IN ('planned', 'active', 'closed')),
    capacity   REAL CHECK (capacity IS NULL OR capacity >= 0),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sprints_project ON sprints(project_id, id);

CREATE TABLE IF NOT EXISTS issues (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id     INTEGER NOT NULL REFERENCES projects(id),
    number         INTEGER NOT NULL CHECK (number >= 1),
    title          TEXT NOT NULL CHECK (length(title) > 0),
    description    TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    state_category TEXT NOT NULL CHECK (state_category IN ('todo', 'in_progress', 'done', 'canceled')),
    priority       INTEGER NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 4),
    estimate       REAL CHECK (estimate IS NULL OR estimate >= 0),
    assignee       TEXT,
    labels         TEXT NOT NULL DEFAULT '[]',
    sprint_id      INTEGER REFERENCES sprints(id),
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    UNIQUE (project_id, number)
);
CREATE INDEX IF NOT EXISTS issues_sprint ON issues(sprint_id);
CREATE INDEX IF NOT EXISTS issues_assignee ON issues(assignee);

CREATE TABLE IF NOT EXISTS links (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT NOT NULL CHECK (type IN ('blocks', 'relates', 'duplicates')),
    source_id  INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    target_id  INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    CHECK (source_id != target_id),
    UNIQUE (type, source_id, target_id)
);
CREATE INDEX IF NOT EXISTS links_source ON links(source_id);
CREATE INDEX IF NOT EXISTS links_target ON links(target_id);

CREATE TABLE IF NOT EXISTS comments (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id   INTEGER NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    body       TEXT NOT NULL,
    author     TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_issue ON comments(issue_id, id);
"""


def database_path(data_dir: Path) -> Path:
    return data_dir / "project" / "project.sqlite3"


async def open_database(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) the store; the connection is in autocommit mode.

    Autocommit (``isolation_level=None``) because the store issues ``BEGIN IMMEDIATE``
    itself: holding the write lock from a check (next issue number, duplicate key) to the
    write keeps those sequences safe even against another process on the same file.
    """
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    db = await aiosqlite.connect(path, isolation_level=None)
    try:
        db.row_factory = sqlite3.Row
        await db.execute("PRAGMA busy_timeout = 5000")
        await db.execute("PRAGMA journal_mode = WAL")
        await db.execute("PRAGMA synchronous = NORMAL")
        await db.execute("PRAGMA foreign_keys = ON")
        async with db.execute("PRAGMA user_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row else 0
        if current > SCHEMA_VERSION:
            raise PluginError(f"{path} was written by a newer MosAIc (schema {current} > {SCHEMA_VERSION})")
        if current < SCHEMA_VERSION:
            # executescript() commits any open transaction first, so BEGIN/COMMIT live inside it.
            try:
                await db.executescript(
                    f"BEGIN IMMEDIATE;{_SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
                )
            except BaseException:
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise
    except BaseException:
        await db.close()
        raise
    return db
