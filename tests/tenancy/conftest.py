"""Database (SQLite + PostgreSQL), Redis and tenancy fixtures: tests/store/dbfixtures.py and
tests/tenancy/harness.py."""

from tests.store.dbfixtures import *  # noqa: F403
from tests.tenancy.harness import *  # noqa: F403
