"""API keys: ``mk_<keyid>_<secret>``, shown once, stored as argon2 hashes.

The key id is public (it names the key in lists, logs and the audit log); the secret is 256
random bits. A presented key is looked up by its id and verified against the stored argon2
hash, so a lookup costs one indexed read and one hash verification — never a scan.

argon2 is deliberately slow; to keep it off the hot path a successful verification is
remembered (as a SHA-256 digest of the presented key, compared in constant time) for
``verify_ttl`` seconds. Key status (revoked, expired) is re-read from the database at most every
``record_ttl`` seconds; revocation through this process takes effect at once, through another
replica within ``record_ttl``. While the database is unreachable, keys this process has seen keep
working with their last known status; others get ``StoreUnavailable`` (503).
``last_used_at`` is written in batches, not per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
import string
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.errors import InvalidRequest, NotFound, Unauthorized
from mosaic.store.engine import Database
from mosaic.store.errors import StoreUnavailable
from mosaic.store.models import ApiKey, as_utc, utcnow

PREFIX = "mk_"
_ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 12
TOKEN_RE = re.compile(r"^mk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:@-]{0,99}$")


@dataclass(frozen=True, slots=True)
class HashParams:
    """argon2id cost; the default is OWASP's minimum recommendation (19 MiB, t=2, p=1)."""

    time_cost: int = 2
    memory_cost: int = 19456
    parallelism: int = 1


@dataclass(slots=True)
class ApiKeyRecord:
    """What may be shown about a key: never its secret nor its hash."""

    id: str
    tenant: str
    name: str
    roles: list[str]
    attributes: dict[str, Any]
    quotas: dict[str, Any]
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    last_used_at: datetime | None = None

    @property
    def prefix(self) -> str:
        return f"{PREFIX}{self.id}_"

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "prefix": self.prefix, "tenant": self.tenant, "name": self.name,
                "roles": list(self.roles), "attributes": dict(self.attributes), "quotas": dict(self.quotas),
                "status": self.status(), "created_at": self.created_at, "created_by": self.created_by,
                "expires_at": self.expires_at, "revoked_at": self.revoked_at,
                "last_used_at": self.last_used_at}

    @classmethod
    def of(cls, row: ApiKey) -> ApiKeyRecord:
        return cls(id=row.id, tenant=row.tenant, name=row.name, roles=list(row.roles or []),
                   attributes=dict(row.attributes or {}), quotas=dict(row.quotas or {}),
                   created_at=as_utc(row.created_at), created_by=row.created_by,
                   expires_at=as_utc(row.expires_at) if row.expires_at else None,
                   revoked_at=as_utc(row.revoked_at) if row.revoked_at else None,
                   revoked_by=row.revoked_by,
                   last_used_at=as_utc(row.last_used_at) if row.last_used_at else None)


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    # The only time the full key exists outside the caller's hands: print it once, then drop it.
    token: str = field(repr=False)


def new_key_id() -> str:
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))


def parse_token(token: str) -> tuple[str, str] | None:
    m = TOKEN_RE.match(token)
    return (m.group(1), m.group(2)) if m else None


def looks_like_api_key(token: str) -> bool:
    return token.startswith(PREFIX)


class ApiKeys:
    """Create, list, revoke and verify a database's API keys."""

    def __init__(self, db: Database, *, params: HashParams | None = None, verify_ttl: float = 300.0,
                 record_ttl: float = 5.0) -> None:
        self.db = db
        p = params or HashParams()
        self.hasher = PasswordHasher(time_cost=p.time_cost, memory_cost=p.memory_cost,
                                     parallelism=p.parallelism)
        self.verify_ttl = verify_ttl
        self.record_ttl = record_ttl
        self._verified: dict[str, tuple[bytes, float]] = {}
        self._records: dict[str, tuple[ApiKeyRecord, str, float]] = {}
        self._touched: dict[str, datetime] = {}
        self._flushed: dict[str, float] = {}

    # -- administration ---------------------------------------------------------------------
    async def create(self, tenant: str, name: str, roles: Sequence[str], *, created_by: str,
                     expires_at: datetime | None = None, attributes: dict[str, Any] | None = None,
                     quotas: dict[str, Any] | None = None) -> CreatedKey:
        if not NAME_RE.match(name):
            raise InvalidRequest("key name: 1-100 characters, letters, digits, space and ._:@- "
                                 "(starting with a letter or digit)", details={"field": "name"})
        if not roles:
            raise InvalidRequest("a key needs at least one role", details={"field": "roles"})
        if expires_at is not None and as_utc(expires_at) <= utcnow():
            raise InvalidRequest("expires_at is in the past", details={"field": "expires_at"})
        key_id = new_key_id()
        secret = secrets.token_urlsafe(32)
        token = f"{PREFIX}{key_id}_{secret}"
        digest = await asyncio.to_thread(self.hasher.hash, token)
        row = ApiKey(id=key_id, tenant=tenant, name=name, hash=digest, roles=list(dict.fromkeys(roles)),
                     attributes=dict(attributes or {}), quotas=dict(quotas or {}), created_by=created_by,
                     expires_at=as_utc(expires_at) if expires_at else None, created_at=utcnow())
        async with self.db.transaction() as s:
            s.add(row)
        return CreatedKey(ApiKeyRecord.of(row), token)

    async def list_keys(self, tenant: str | None = None, *,
                        include_revoked: bool = True) -> list[ApiKeyRecord]:
        stmt = select(ApiKey).order_by(ApiKey.tenant, ApiKey.created_at, ApiKey.id)
        if tenant is not None:
            stmt = stmt.where(ApiKey.tenant == tenant)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        async with self.db.read() as s:
            rows = (await s.scalars(stmt)).all()
        return [ApiKeyRecord.of(r) for r in rows]

    async def get(self, key_id: str, tenant: str | None = None) -> ApiKeyRecord:
        async with self.db.read() as s:
            row = await s.get(ApiKey, key_id)
        # Another tenant's key is reported exactly like a key that does not exist.
        if row is None or (tenant is not None and row.tenant != tenant):
            raise NotFound(f"no API key {key_id!r}", details={"key_id": key_id})
        return ApiKeyRecord.of(row)

    async def revoke(self, key_id: str, *, revoked_by: str, tenant: str | None = None) -> ApiKeyRecord:
        async with self.db.transaction() as s:
            row = await s.get(ApiKey, key_id, with_for_update=True)
            if row is None or (tenant is not None and row.tenant != tenant):
                raise NotFound(f"no API key {key_id!r}", details={"key_id": key_id})
            if row.revoked_at is None:
                row.revoked_at = utcnow()
                row.revoked_by = revoked_by
            record = ApiKeyRecord.of(row)
        self._forget(key_id)
        return record

    def _forget(self, key_id: str) -> None:
        self._verified.pop(key_id, None)
        self._records.pop(key_id, None)

    # -- authentication ---------------------------------------------------------------------
    async def _record(self, key_id: str) -> tuple[ApiKeyRecord, str] | None:
        now = time.monotonic()
        cached = self._records.get(key_id)
        if cached is not None and cached[2] > now:
            return cached[0], cached[1]
        try:
            async with self.db.read() as s:
                row = await s.get(ApiKey, key_id)
        except (OperationalError, DBAPIError, OSError, TimeoutError):
            # The database is away: a key this process knows keeps working with what it knew
            # (revocations made meanwhile apply when it is back); an unknown one cannot be checked.
            if cached is not None:
                return cached[0], cached[1]
            raise StoreUnavailable("cannot verify the API key now: the database is unreachable") from None
        if row is None:
            self._records.pop(key_id, None)
            return None
        record = ApiKeyRecord.of(row)
        self._records[key_id] = (record, row.hash, now + self.record_ttl)
        if len(self._records) > 100_000:
            self._records.clear()
        return record, row.hash

    async def verify(self, token: str) -> ApiKeyRecord:
        """The key's record, or :class:`Unauthorized` (whose message never contains the key)."""
        parsed = parse_token(token)
        if parsed is None:
            raise Unauthorized("the API key is malformed (expected mk_<id>_<secret>)")
        key_id, _ = parsed
        found = await self._record(key_id)
        if found is None:
            raise Unauthorized("the API key is not valid")
        record, stored_hash = found
        presented = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        cached = self._verified.get(key_id)
        if cached is None or cached[1] <= now or not hmac.compare_digest(cached[0], presented):
            try:
                await asyncio.to_thread(self.hasher.verify, stored_hash, token)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                raise Unauthorized("the API key is not valid") from None
            self._verified[key_id] = (presented, now + self.verify_ttl)
        status = record.status()
        if status == "revoked":
            raise Unauthorized(f"API key {key_id} has been revoked")
        if status == "expired":
            raise Unauthorized(f"API key {key_id} has expired")
        self._touched[key_id] = utcnow()
        return record

    async def flush_last_used(self, min_interval: float = 60.0) -> int:
        """Write batched ``last_used_at`` values (each key at most every ``min_interval`` s)."""
        now = time.monotonic()
        due = {k: t for k, t in self._touched.items() if self._flushed.get(k, 0.0) + min_interval <= now}
        if not due:
            return 0
        async with self.db.transaction() as s:
            for key_id, at in due.items():
                await s.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=at))
        for key_id in due:
            self._touched.pop(key_id, None)
            self._flushed[key_id] = now
        return len(due)
