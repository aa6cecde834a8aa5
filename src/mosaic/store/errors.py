"""Errors of the database store (typed, with stable codes like every client-visible error)."""

from __future__ import annotations

from mosaic.errors import MosaicError


class StoreNotMigrated(MosaicError):
    """The database has no schema, an older one, or one newer than this version knows."""

    code = "database_not_migrated"
    http_status = 503
    exit_code = 10


class StoreUnavailable(MosaicError):
    """The database cannot be reached (or answered too late)."""

    code = "store_unavailable"
    http_status = 503
    exit_code = 9
    retryable = True
