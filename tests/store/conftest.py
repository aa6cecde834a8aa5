"""Database (SQLite + PostgreSQL) and Redis fixtures: see tests/store/dbfixtures.py."""

from tests.store.dbfixtures import *  # noqa: F403
