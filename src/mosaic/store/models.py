"""Database tables: tenants, API keys, credentials, RBAC rules, usage, the audit log.

The schema is changed only through migrations (``store/migrations/versions``); a test
compares these models with the migrated database so that the two cannot drift.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Stable constraint names, so that migrations can refer to them on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes (stored as UTC): make every value aware."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[str]: JSON}


class Tenant(Base):
    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="active")
    # Quotas, residency, network allowances (see tenancy.settings.TenantSettings).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # The tenant's ``orchestration`` document with credentials replaced by references to the
    # credentials table; None = embedded local providers under the tenant's own data dir.
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True, default=None)
    # Bumped on every change of settings, config, credentials or RBAC rules: gateways rebuild.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    hash: Mapped[str] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(default=list)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    quotas: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True, default=None)


class Credential(Base):
    """One encrypted secret of a tenant's provider config (envelope-encrypted blob)."""

    __tablename__ = "credentials"

    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class RbacRule(Base):
    """A tenant's own RBAC line: ``p`` (role, object, action, effect) or ``g`` (role, parent)."""

    __tablename__ = "rbac_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name", ondelete="CASCADE"), index=True)
    ptype: Mapped[str] = mapped_column(String(2))
    subject: Mapped[str] = mapped_column(String(100))
    object: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(50), default="")
    effect: Mapped[str] = mapped_column(String(10), default="allow")


class UsageBucket(Base):
    """Calls aggregated per minute: tenant, principal, provider, operation and outcome."""

    __tablename__ = "usage"
    __table_args__ = (
        UniqueConstraint("tenant", "bucket", "principal", "provider", "operation", "outcome",
                         name="uq_usage_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63))
    bucket: Mapped[datetime] = mapped_column()
    principal: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(100))
    operation: Mapped[str] = mapped_column(String(100))
    effect: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(50))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total_ms: Mapped[float] = mapped_column(Float, default=0.0)
    max_ms: Mapped[float] = mapped_column(Float, default=0.0)


Index("ix_usage_bucket", UsageBucket.bucket)


class AuditEntry(Base):
    """One link of a tenant's hash chain; never updated or deleted by MosAIc."""

    __tablename__ = "audit_entries"
    __table_args__ = (UniqueConstraint("tenant", "seq", name="uq_audit_entries_tenant_seq"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(63))
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(100))
    resource: Mapped[dict[str, Any]] = mapped_column(default=dict)
    provider: Mapped[str | None] = mapped_column(String(100), nullable=True)
    outcome: Mapped[str] = mapped_column(String(50))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


Index("ix_audit_entries_at", AuditEntry.at)


class AuditHead(Base):
    """The last link of each tenant's chain: deleting trailing entries no longer goes unseen."""

    __tablename__ = "audit_heads"

    tenant: Mapped[str] = mapped_column(String(63), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


TABLES = tuple(Base.metadata.sorted_tables)
