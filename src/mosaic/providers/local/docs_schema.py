"""The local docs store on disk: one SQLite file, its schema, and how it is opened.

Documents hold the current version; every version (including the current one) is also a
row of ``revisions``. ``documents_fts`` is an external-content FTS5 index over
``documents.title`` and ``documents.body``, kept in sync by triggers, so it can never
drift from the table in a committed transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import aiosqlite

from mosaic.errors import PluginError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS documents (
    -- AUTOINCREMENT: ids of deleted documents are never handed out again, so a stale
    -- id can only ever be "not found", never another document.
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    space_id   TEXT NOT NULL REFERENCES spaces(id),
    parent_id  INTEGER REFERENCES documents(id),
    position   INTEGER NOT NULL CHECK (position >= 0),
    title      TEXT NOT NULL CHECK (length(title) > 0),
    body       TEXT NOT NULL DEFAULT '',
    format     TEXT NOT NULL DEFAULT 'markdown',
    labels     TEXT NOT NULL DEFAULT '[]',
    version    INTEGER NOT NULL CHECK (version >= 1),
    author     TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_siblings ON documents(space_id, parent_id, position);
CREATE INDEX IF NOT EXISTS documents_parent ON documents(parent_id);

CREATE TABLE IF NOT EXISTS revisions (
    document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    title       TEXT NOT NULL,
    body        TEXT NOT NULL,
    format      TEXT NOT NULL,
    labels      TEXT NOT NULL,
    author      TEXT,
    message     TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL,
    PRIMARY KEY (document_id, version)
) WITHOUT ROWID;

CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    title, body,
    content='documents', content_rowid='id',
    tokenize='porter unicode61 remove_diacritics 2'
);

CREATE TRIGGER IF NOT EXISTS documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
CREATE TRIGGER IF NOT EXISTS documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
END;
CREATE TRIGGER IF NOT EXISTS documents_fts_update AFTER UPDATE OF title, body ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, title, body)
    VALUES ('delete', old.id, old.title, old.body);
    INSERT INTO documents_fts(rowid, title, body) VALUES (new.id, new.title, new.body);
END;
"""


def database_path(data_dir: Path) -> Path:
    return data_dir / "docs" / "docs.sqlite3"


async def open_database(path: Path) -> aiosqlite.Connection:
    """Open (creating if needed) the store; the connection is in autocommit mode.

    Autocommit (``isolation_level=None``) because callers issue ``BEGIN IMMEDIATE`` themselves:
    taking the write lock up front is what makes read-check-write sequences safe even when
    another process (a reloading instance) has the same file open.
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
            raise PluginError(
                f"{path} was written by a newer MosAIc (schema {current} > {SCHEMA_VERSION})"
            )
        if current < SCHEMA_VERSION:
            # One script, one transaction: executescript() would commit a transaction opened
            # outside it, so BEGIN and COMMIT live inside the script.
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
