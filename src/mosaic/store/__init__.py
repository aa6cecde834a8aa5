"""The database store: engine/sessions, models, migrations (SQLite embedded, PostgreSQL at scale)."""

from mosaic.store.engine import Database, default_url, redact_url, resolve_url
from mosaic.store.errors import StoreNotMigrated, StoreUnavailable
from mosaic.store.migrate import check_migrated, current_revision, head_revision, require_migrated, upgrade

__all__ = [
    "Database",
    "StoreNotMigrated",
    "StoreUnavailable",
    "check_migrated",
    "current_revision",
    "default_url",
    "head_revision",
    "redact_url",
    "require_migrated",
    "resolve_url",
    "upgrade",
]
