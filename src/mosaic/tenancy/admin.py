"""Admin actions: RBAC-checked and audited, the one entry point for CLI and HTTP admin APIs.

Who may do what:

* a **platform admin** — the local operator (CLI, in-process Python) or an identity of the
  ``default`` tenant allowed ``admin.tenants:write`` there — manages every tenant: creates and
  disables tenants, sets quotas, provider budgets, network and exec allowances;
* a tenant's own admins (``admin.keys``, ``admin.config``, ``admin.policies``,
  ``admin.usage``, ``admin.audit`` permissions in *their* tenant) manage that tenant only: keys,
  provider config and credentials, RBAC rules, residency; they read its usage and audit log.

Every action — reads and refused attempts included — is written to the audit log before it
returns: into the target tenant's stream, or the caller's own when it was refused (an attempt to
reach another tenant is that tenant's business only once it was allowed).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.errors import Forbidden, InvalidRequest, MosaicError, NotFound
from mosaic.gateway.context import Principal
from mosaic.security.apikeys import ApiKeyRecord, ApiKeys, CreatedKey
from mosaic.security.audit import AuditLog, AuditRecord, VerifyReport
from mosaic.security.identity import Identity
from mosaic.security.rbac import Authorizer, Rule
from mosaic.store.errors import StoreUnavailable
from mosaic.tenancy.settings import DEFAULT_TENANT, PLATFORM_ONLY, RateQuota, check_tenant_name
from mosaic.tenancy.tenants import TenantInfo, Tenants
from mosaic.tenancy.usage import UsageRecorder

T = TypeVar("T")
Area = Literal["keys", "tenants", "config", "usage", "audit", "policies"]


def home_tenant(actor: Principal) -> str:
    return actor.tenant if isinstance(actor, Identity) else DEFAULT_TENANT


class Admin:
    def __init__(self, tenants: Tenants, keys: ApiKeys, authorizer: Authorizer, audit: AuditLog,
                 usage: UsageRecorder | None = None,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.tenants = tenants
        self.keys = keys
        self.authorizer = authorizer
        self.audit = audit
        self.usage = usage
        self.on_change = on_change

    # -- checks ---------------------------------------------------------------------------------
    def is_platform_admin(self, actor: Principal) -> bool:
        if not isinstance(actor, Identity):
            return True
        return actor.tenant == DEFAULT_TENANT and self.authorizer.allowed(
            actor.roles, DEFAULT_TENANT, "admin.tenants", "write")

    def _authorize(self, actor: Principal, tenant: str | None, area: Area, act: str) -> None:
        home = home_tenant(actor)
        if tenant is not None and tenant != home and not self.is_platform_admin(actor):
            raise Forbidden(f"{actor.id} may not manage another tenant")
        self.authorizer.require(actor, home, f"admin.{area}", act)

    async def _run(self, actor: Principal, tenant: str | None, area: Area, act: str, action: str,
                   resource: dict[str, Any], fn: Callable[[], Awaitable[T]],
                   describe: Callable[[T], dict[str, Any]] | None = None, platform: bool = False) -> T:
        home = home_tenant(actor)
        stream = tenant if tenant is not None else home
        try:
            if platform and not self.is_platform_admin(actor):
                raise Forbidden(f"{actor.id} is not a platform admin")
            self._authorize(actor, tenant, area, act)
        except Forbidden as exc:
            await self._audit(actor, home, action, resource, exc.code, {"error": exc.message})
            raise
        try:
            try:
                result = await fn()
            except (OperationalError, DBAPIError, OSError, TimeoutError) as exc:
                raise StoreUnavailable(f"{action} failed: the database is unreachable "
                                       f"({type(exc).__name__})") from None
        except MosaicError as exc:
            await self._audit(actor, stream, action, resource, exc.code, {"error": exc.message[:300]})
            raise
        extra = describe(result) if describe is not None else {}
        await self._audit(actor, stream, action, {**resource, **extra}, "ok", {})
        if act == "write" and tenant is not None and self.on_change is not None:
            self.on_change(tenant)
        return result

    async def _audit(self, actor: Principal, tenant: str, action: str, resource: dict[str, Any],
                     outcome: str, details: dict[str, Any]) -> None:
        details = {**details, "roles": list(actor.roles)}
        if isinstance(actor, Identity):
            details["auth"] = actor.method
        await self.audit.append(AuditRecord(tenant=tenant, actor=actor.id, kind="admin", action=action,
                                            outcome=outcome, resource=resource, details=details))

    # -- tenants ---------------------------------------------------------------------------------
    async def create_tenant(self, actor: Principal, name: str, *, display_name: str = "",
                            settings: Mapping[str, Any] | None = None) -> TenantInfo:
        check_tenant_name(name)
        return await self._run(
            actor, name, "tenants", "write", "tenants.create", {"tenant": name},
            lambda: self.tenants.create(name, display_name=display_name, settings=settings), platform=True)

    async def list_tenants(self, actor: Principal) -> list[TenantInfo]:
        """Every tenant for a platform admin; a tenant's own admins see their tenant only."""
        home = home_tenant(actor)

        async def run() -> list[TenantInfo]:
            if self.is_platform_admin(actor):
                return await self.tenants.list_tenants()
            return [await self.tenants.get(home)]

        return await self._run(actor, None, "tenants", "read", "tenants.list", {}, run,
                               lambda rows: {"count": len(rows)})

    async def get_tenant(self, actor: Principal, name: str) -> TenantInfo:
        return await self._run(actor, name, "tenants", "read", "tenants.get", {"tenant": name},
                               lambda: self.tenants.get(name))

    async def set_tenant_status(self, actor: Principal, name: str, status: str) -> TenantInfo:
        return await self._run(actor, name, "tenants", "write", "tenants.status",
                               {"tenant": name, "status": status},
                               lambda: self.tenants.set_status(name, status), platform=True)

    async def update_settings(self, actor: Principal, name: str, changes: Mapping[str, Any]) -> TenantInfo:
        platform_keys = (*PLATFORM_ONLY, "provider_budgets", "allow_exec", "env_allow")
        restricted = sorted(k for k in changes if k in platform_keys)
        area: Area = "tenants" if restricted else "config"
        return await self._run(actor, name, area, "write", "tenants.settings",
                               {"tenant": name, "keys": sorted(changes)},
                               lambda: self.tenants.update_settings(name, changes), platform=bool(restricted))

    # -- provider configuration, RBAC rules --------------------------------------------------------
    async def configure(self, actor: Principal, tenant: str, document: Any) -> TenantInfo:
        return await self._run(actor, tenant, "config", "write", "config.set", {"tenant": tenant},
                               lambda: self.tenants.configure(tenant, document),
                               lambda info: {"version": info.version})

    async def clear_config(self, actor: Principal, tenant: str) -> TenantInfo:
        return await self._run(actor, tenant, "config", "write", "config.clear", {"tenant": tenant},
                               lambda: self.tenants.clear_config(tenant))

    async def show_config(self, actor: Principal, tenant: str) -> dict[str, Any] | None:
        return await self._run(actor, tenant, "config", "read", "config.get", {"tenant": tenant},
                               lambda: self.tenants.stored_config(tenant))

    async def set_rules(self, actor: Principal, tenant: str, rules: Sequence[Rule]) -> TenantInfo:
        return await self._run(actor, tenant, "policies", "write", "policies.set",
                               {"tenant": tenant, "rules": len(rules)},
                               lambda: self.tenants.set_rules(tenant, rules))

    # -- API keys ---------------------------------------------------------------------------------
    async def create_key(self, actor: Principal, tenant: str, name: str, roles: Sequence[str], *,
                         expires_at: datetime | None = None, attributes: dict[str, Any] | None = None,
                         quotas: dict[str, Any] | None = None) -> CreatedKey:
        async def create() -> CreatedKey:
            await self.tenants.get(tenant)
            known = self.authorizer.roles(tenant) | set(await self._custom_roles(tenant))
            unknown = sorted(set(roles) - known)
            if unknown:
                raise InvalidRequest(f"unknown role(s) {', '.join(unknown)} "
                                     f"(known: {', '.join(sorted(known))})")
            self._no_escalation(actor, tenant, roles)
            checked = _key_quotas(quotas)
            return await self.keys.create(tenant, name, roles, created_by=actor.id, expires_at=expires_at,
                                          attributes=_attributes(attributes), quotas=checked)

        return await self._run(actor, tenant, "keys", "write", "keys.create",
                               {"tenant": tenant, "name": name, "roles": list(roles)}, create,
                               lambda created: {"key_id": created.record.id})

    def _no_escalation(self, actor: Principal, tenant: str, roles: Sequence[str]) -> None:
        """A key may not carry a role its creator does not hold (platform admins excepted)."""
        if self.is_platform_admin(actor):
            return
        if "admin" in actor.roles:
            return
        beyond = sorted(set(roles) - set(actor.roles))
        if beyond:
            raise Forbidden(f"{actor.id} cannot grant role(s) it does not hold: {', '.join(beyond)}")

    async def _custom_roles(self, tenant: str) -> list[str]:
        return [r.role for r in await self.tenants.rules(tenant)]

    async def list_keys(self, actor: Principal, tenant: str) -> list[ApiKeyRecord]:
        return await self._run(actor, tenant, "keys", "read", "keys.list", {"tenant": tenant},
                               lambda: self.keys.list_keys(tenant), lambda rows: {"count": len(rows)})

    async def revoke_key(self, actor: Principal, tenant: str, key_id: str) -> ApiKeyRecord:
        return await self._run(actor, tenant, "keys", "write", "keys.revoke",
                               {"tenant": tenant, "key_id": key_id},
                               lambda: self.keys.revoke(key_id, revoked_by=actor.id, tenant=tenant))

    # -- usage and audit ---------------------------------------------------------------------------
    async def usage_report(self, actor: Principal, tenant: str | None, since: datetime,
                           until: datetime) -> list[dict[str, Any]]:
        if self.usage is None:
            raise NotFound("usage recording is not enabled")
        usage = self.usage
        if since >= until:
            raise InvalidRequest("--from must be before --to")
        if tenant is None and not self.is_platform_admin(actor):
            tenant = home_tenant(actor)

        async def query() -> list[dict[str, Any]]:
            await usage.flush()
            return await usage.query(since, until, tenant)

        return await self._run(actor, tenant, "usage", "read", "usage.export",
                               {"tenant": tenant or "*", "from": since.isoformat(), "to": until.isoformat()},
                               query, lambda rows: {"rows": len(rows)})

    async def audit_verify(self, actor: Principal, tenant: str | None) -> VerifyReport:
        if tenant is None and not self.is_platform_admin(actor):
            tenant = home_tenant(actor)
        scope = tenant
        return await self._run(actor, tenant, "audit", "read", "audit.verify", {"tenant": tenant or "*"},
                               lambda: self.audit.verify(scope), lambda r: {"ok": r.ok})

    async def audit_export(self, actor: Principal, tenant: str | None, *, since: datetime | None = None,
                           until: datetime | None = None) -> AsyncIterator[bytes]:
        if tenant is None and not self.is_platform_admin(actor):
            tenant = home_tenant(actor)
        scope = tenant

        async def start() -> AsyncIterator[bytes]:
            return self.audit.export(scope, since=since, until=until)

        return await self._run(actor, tenant, "audit", "read", "audit.export", {"tenant": tenant or "*"},
                               start)


def _key_quotas(quotas: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return RateQuota.model_validate(quotas or {}).model_dump(by_alias=True, exclude_none=True)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidRequest(f"invalid key quotas: {problems}", details={"field": "quotas"}) from None


def _attributes(attributes: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (attributes or {}).items():
        if not isinstance(k, str) or not k or len(k) > 64:
            raise InvalidRequest("attribute names are 1-64 characters")
        if not isinstance(v, (str, int, float, bool)):
            raise InvalidRequest(f"attribute {k!r} must be a string, number or boolean")
        if (isinstance(v, float) and not math.isfinite(v)) or (isinstance(v, int) and abs(v) > 2**53):
            raise InvalidRequest(f"attribute {k!r} must be a finite number within ±2^53")
        if isinstance(v, str) and len(v) > 500:
            raise InvalidRequest(f"attribute {k!r} is longer than 500 characters")
        out[k] = v
    return out
