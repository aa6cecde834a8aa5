"""Tenants in the database: create, list, settings, provider config with encrypted credentials.

Every change bumps the tenant's ``version``; gateways compare it to rebuild (see registry).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from mosaic.config.schema import MosaicConfig
from mosaic.errors import Conflict, InvalidRequest, NotFound
from mosaic.security.crypto import Keyring, credential_aad
from mosaic.security.rbac import Rule
from mosaic.store.engine import Database
from mosaic.store.models import Credential, RbacRule, Tenant, as_utc, utcnow
from mosaic.tenancy.config import materialize, prepare
from mosaic.tenancy.settings import DEFAULT_TENANT, TenantSettings, check_tenant_name

KeyringSource = Callable[[], Keyring]
STATUSES = ("active", "disabled")


@dataclass(slots=True)
class TenantInfo:
    name: str
    display_name: str
    status: str
    settings: TenantSettings
    configured: bool
    version: int
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "status": self.status,
                "settings": self.settings.dump(), "configured": self.configured, "version": self.version,
                "created_at": self.created_at, "updated_at": self.updated_at}

    @classmethod
    def of(cls, row: Tenant) -> TenantInfo:
        return cls(name=row.name, display_name=row.display_name, status=row.status,
                   settings=TenantSettings.parse(row.settings), configured=row.config is not None,
                   version=row.version, created_at=as_utc(row.created_at), updated_at=as_utc(row.updated_at))


@dataclass(slots=True)
class TenantState:
    """Everything a tenant's gateway is built from, read in one transaction."""

    info: TenantInfo
    config: MosaicConfig
    rules: list[Rule]


class Tenants:
    def __init__(self, db: Database, data_dir: Path, keyring: Keyring | KeyringSource | None = None) -> None:
        self.db = db
        self.data_dir = data_dir
        self._keyring = keyring

    def keyring(self) -> Keyring:
        if self._keyring is None:
            return Keyring.from_env()
        if isinstance(self._keyring, Keyring):
            return self._keyring
        self._keyring = self._keyring()
        return self._keyring

    # -- tenants ----------------------------------------------------------------------------
    async def create(self, name: str, *, display_name: str = "", settings: Mapping[str, Any] | None = None,
                     ) -> TenantInfo:
        check_tenant_name(name)
        parsed = TenantSettings.parse(dict(settings or {}))
        now = utcnow()
        row = Tenant(name=name, display_name=display_name[:200], status="active", settings=parsed.dump(),
                     config=None, version=1, created_at=now, updated_at=now)
        try:
            async with self.db.transaction() as s:
                s.add(row)
        except IntegrityError:
            raise Conflict(f"tenant {name!r} already exists", details={"tenant": name}) from None
        return TenantInfo.of(row)

    async def ensure(self, name: str) -> TenantInfo:
        try:
            return await self.get(name)
        except NotFound:
            try:
                label = "Default tenant" if name == DEFAULT_TENANT else ""
                return await self.create(name, display_name=label)
            except Conflict:
                return await self.get(name)

    async def get(self, name: str) -> TenantInfo:
        async with self.db.read() as s:
            row = await s.get(Tenant, name)
        if row is None:
            raise NotFound(f"no tenant {name!r}", details={"tenant": name})
        return TenantInfo.of(row)

    async def list_tenants(self) -> list[TenantInfo]:
        async with self.db.read() as s:
            rows = (await s.scalars(select(Tenant).order_by(Tenant.name))).all()
        return [TenantInfo.of(r) for r in rows]

    async def version(self, name: str) -> tuple[int, str] | None:
        """(version, status), or None for an unknown tenant: one indexed read."""
        async with self.db.read() as s:
            row = (await s.execute(select(Tenant.version, Tenant.status).where(Tenant.name == name))).first()
        return (int(row.version), str(row.status)) if row is not None else None

    async def set_status(self, name: str, status: str) -> TenantInfo:
        if status not in STATUSES:
            raise InvalidRequest(f"status must be one of {', '.join(STATUSES)}")
        async with self.db.transaction() as s:
            row = await self._row(s, name)
            row.status = status
            self._bump(row)
        return TenantInfo.of(row)

    async def update_settings(self, name: str, changes: Mapping[str, Any]) -> TenantInfo:
        """Replace the given top-level settings (``quotas``, ``residency``...); others are kept."""
        async with self.db.transaction() as s:
            row = await self._row(s, name)
            merged = {**(row.settings or {}), **dict(changes)}
            row.settings = TenantSettings.parse({k: v for k, v in merged.items() if v is not None}).dump()
            self._bump(row)
        return TenantInfo.of(row)

    @staticmethod
    async def _row(s: Any, name: str) -> Tenant:
        row: Tenant | None = await s.get(Tenant, name, with_for_update=True)
        if row is None:
            raise NotFound(f"no tenant {name!r}", details={"tenant": name})
        return row

    @staticmethod
    def _bump(row: Tenant) -> None:
        row.version = row.version + 1
        row.updated_at = utcnow()

    # -- provider configuration ------------------------------------------------------------------
    async def configure(self, name: str, document: Any) -> TenantInfo:
        """Store a tenant's provider configuration, sealing its credentials (see tenancy.config)."""
        info = await self.get(name)
        async with self.db.read() as s:
            existing = set((await s.scalars(select(Credential.name).where(Credential.tenant == name))).all())
        prepared = await asyncio.to_thread(prepare, name, document, info.settings, existing)
        sealed: dict[str, tuple[bytes, str]] = {}
        if prepared.secrets:
            keyring = await asyncio.to_thread(self.keyring)
            for cred, value in prepared.secrets.items():
                sealed[cred] = (keyring.encrypt_text(value, credential_aad(name, cred)), keyring.primary.kid)
        async with self.db.transaction() as s:
            row = await self._row(s, name)
            keep = prepared.credential_names
            await s.execute(delete(Credential).where(Credential.tenant == name,
                                                     Credential.name.not_in(keep or {""})))
            for cred, (blob, kid) in sealed.items():
                current = await s.get(Credential, (name, cred))
                if current is None:
                    s.add(Credential(tenant=name, name=cred, ciphertext=blob, master_key_id=kid))
                else:
                    current.ciphertext, current.master_key_id, current.updated_at = blob, kid, utcnow()
            row.config = prepared.document
            self._bump(row)
        return TenantInfo.of(row)

    async def clear_config(self, name: str) -> TenantInfo:
        """Back to the embedded local providers under the tenant's own data directory."""
        async with self.db.transaction() as s:
            row = await self._row(s, name)
            await s.execute(delete(Credential).where(Credential.tenant == name))
            row.config = None
            self._bump(row)
        return TenantInfo.of(row)

    async def stored_config(self, name: str) -> dict[str, Any] | None:
        """The document as stored: credentials appear only as ``{"$credential": name}``."""
        async with self.db.read() as s:
            row = await s.get(Tenant, name)
        if row is None:
            raise NotFound(f"no tenant {name!r}", details={"tenant": name})
        return row.config

    async def state(self, name: str, env: Mapping[str, str] | None = None) -> TenantState:
        """Settings, rules and the runnable config (credentials decrypted in memory only)."""
        async with self.db.read() as s:
            row = await s.get(Tenant, name)
            if row is None:
                raise NotFound(f"no tenant {name!r}", details={"tenant": name})
            creds = (await s.scalars(select(Credential).where(Credential.tenant == name))).all()
            rules = (await s.scalars(select(RbacRule).where(RbacRule.tenant == name)
                                     .order_by(RbacRule.id))).all()
        info = TenantInfo.of(row)
        plain: dict[str, str] = {}
        if creds:
            keyring = await asyncio.to_thread(self.keyring)
            plain = {c.name: keyring.decrypt_text(c.ciphertext, credential_aad(name, c.name)) for c in creds}
        config = await asyncio.to_thread(materialize, name, row.config, plain, info.settings,
                                         self.data_dir, env)
        return TenantState(info, config, [_rule(r) for r in rules])

    async def rotate_credentials(self, keyring: Keyring, *, all_keys: bool = False) -> int:
        """Re-seal credentials under the primary master key (those under other keys, or all)."""
        count = 0
        async with self.db.transaction() as s:
            creds = (await s.scalars(select(Credential).with_for_update())).all()
            touched: set[str] = set()
            for c in creds:
                if not all_keys and c.master_key_id == keyring.primary.kid:
                    continue
                aad = credential_aad(c.tenant, c.name)
                c.ciphertext = keyring.encrypt(keyring.decrypt(c.ciphertext, aad.encode()), aad.encode())
                c.master_key_id = keyring.primary.kid
                c.updated_at = utcnow()
                touched.add(c.tenant)
                count += 1
            for tenant in touched:
                self._bump(await self._row(s, tenant))
        return count

    # -- RBAC rules --------------------------------------------------------------------------------
    async def set_rules(self, name: str, rules: Sequence[Rule]) -> TenantInfo:
        checked = [r.validate() for r in rules]
        async with self.db.transaction() as s:
            row = await self._row(s, name)
            await s.execute(delete(RbacRule).where(RbacRule.tenant == name))
            for r in checked:
                s.add(RbacRule(tenant=name, ptype="g" if r.inherits else "p", subject=r.role,
                               object=r.inherits or r.permission or "", action="", effect=r.effect))
            self._bump(row)
        return TenantInfo.of(row)

    async def rules(self, name: str) -> list[Rule]:
        async with self.db.read() as s:
            stmt = select(RbacRule).where(RbacRule.tenant == name).order_by(RbacRule.id)
            rows = (await s.scalars(stmt)).all()
        return [_rule(r) for r in rows]


def _rule(row: RbacRule) -> Rule:
    if row.ptype == "g":
        return Rule(role=row.subject, inherits=row.object)
    return Rule(role=row.subject, permission=row.object, effect="deny" if row.effect == "deny" else "allow")
