"""Everything tenancy and security need, built and started as one unit.

    tenancy = Tenancy.build(settings, default_gateway=orch.gateway, static_keys=api_keys)   # no I/O
    await tenancy.start(check=True)          # refuses an unmigrated database (StoreNotMigrated)
    identity = await tenancy.authenticator.authenticate(request.headers.get("authorization"))
    result = await tenancy.gateways.execute(op, params, identity.context())
    ...
    await tenancy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from mosaic.config.schema import Settings
from mosaic.gateway.gateway import Gateway
from mosaic.plugins.manager import PluginManager
from mosaic.security.apikeys import ApiKeys, HashParams
from mosaic.security.audit import AuditLog
from mosaic.security.authn import Authenticator, StaticKeys
from mosaic.security.crypto import Keyring
from mosaic.security.oidc import OidcSettings, OidcVerifier
from mosaic.security.rbac import Authorizer
from mosaic.security.ssrf import Resolver
from mosaic.state.redis import RedisState
from mosaic.store.engine import Database, resolve_url
from mosaic.store.migrate import check_migrated
from mosaic.tenancy.admin import Admin
from mosaic.tenancy.quotas import Quotas
from mosaic.tenancy.registry import Services, TenantGateways
from mosaic.tenancy.tenants import Tenants
from mosaic.tenancy.usage import UsageRecorder

log = logging.getLogger("mosaic.tenancy")

MASTER_KEY_FILE = "master.key"
AUDIT_SPOOL = "audit-spool.jsonl"


def keyring_source(data_dir: Path, dialect: str, env: Mapping[str, str] | None = None) -> Keyring:
    """The master keys; the embedded SQLite setup creates ``<data_dir>/master.key`` on first use."""
    return Keyring.from_env(env, default_file=data_dir / MASTER_KEY_FILE, create=dialect == "sqlite")


class Tenancy:
    def __init__(self, db: Database, *, data_dir: Path, default_gateway: Gateway | None = None,
                 keyring: Keyring | None = None, redis: RedisState | None = None,
                 oidc: OidcVerifier | None = None, static_keys: StaticKeys | None = None,
                 hash_params: HashParams | None = None, env: Mapping[str, str] | None = None,
                 resolver: Resolver | None = None, refresh_interval: float = 5.0,
                 usage_flush_interval: float = 2.0,
                 manager_factory: Callable[[], PluginManager] = PluginManager) -> None:
        self.db = db
        self.data_dir = data_dir
        self.redis = redis
        self.authorizer = Authorizer()
        self.audit = AuditLog(db, spool=data_dir / AUDIT_SPOOL)
        self.usage = UsageRecorder(db, flush_interval=usage_flush_interval)
        self.quotas = Quotas(redis)
        self.keys = ApiKeys(db, params=hash_params)
        self.tenants = Tenants(db, data_dir, keyring if keyring is not None else
                               (lambda: keyring_source(data_dir, db.dialect, env)))
        self.gateways = TenantGateways(
            self.tenants, Services(self.authorizer, self.audit, self.quotas, self.usage),
            default_gateway=default_gateway, redis_url=redis.url if redis is not None else None,
            redis_prefix=redis.prefix if redis is not None else None, refresh_interval=refresh_interval,
            env=env, resolver=resolver, manager_factory=manager_factory)
        self.admin = Admin(self.tenants, self.keys, self.authorizer, self.audit, self.usage,
                           on_change=self.gateways.invalidate)
        self.authenticator = Authenticator(self.keys, oidc=oidc, static=static_keys,
                                           tenant_status=self._tenant_status)
        self._touch_task: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: Settings | None = None, *, default_gateway: Gateway | None = None,
              static_keys: StaticKeys | None = None, hash_params: HashParams | None = None) -> Tenancy:
        """From ``MOSAIC_*`` settings, without I/O (for an app factory); :meth:`start` checks the
        database. OIDC is enabled by ``MOSAIC_OIDC_ISSUER``; Redis by ``MOSAIC_REDIS_URL``."""
        s = settings or Settings()
        oidc_settings = OidcSettings()
        oidc = OidcVerifier(oidc_settings) if oidc_settings.enabled else None
        redis = RedisState.from_env() if s.redis_url else None
        return cls(Database(resolve_url(settings=s)), data_dir=s.data_dir, default_gateway=default_gateway,
                   redis=redis, oidc=oidc, static_keys=static_keys, hash_params=hash_params)

    @classmethod
    async def open(cls, settings: Settings | None = None, *, default_gateway: Gateway | None = None,
                   static_keys: StaticKeys | None = None, check: bool = True,
                   hash_params: HashParams | None = None) -> Tenancy:
        """:meth:`build`, then refuse an unmigrated database (:class:`StoreNotMigrated`)."""
        tenancy = cls.build(settings, default_gateway=default_gateway, static_keys=static_keys,
                            hash_params=hash_params)
        if check:
            try:
                await tenancy.check()
            except BaseException:
                await tenancy.db.dispose()
                raise
        return tenancy

    async def check(self) -> str:
        """The database's revision, or :class:`StoreNotMigrated` saying to run ``mosaic db upgrade``."""
        path = self.db.sqlite_path
        if path is not None:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        return await check_migrated(self.db)

    async def _tenant_status(self, tenant: str) -> str | None:
        found = await self.tenants.version(tenant)
        return found[1] if found is not None else None

    async def start(self, *, check: bool = False) -> None:
        """Start Redis, the usage writer and the tenant gateways (``check``: :meth:`check` first)."""
        if check:
            await self.check()
        if self.redis is not None:
            await self.redis.start()
        await self.usage.start()
        await self.gateways.start()
        self._touch_task = asyncio.get_running_loop().create_task(self._touch_loop(), name="mosaic-key-touch")

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(5.0)
            try:
                await self.keys.flush_last_used()
            except Exception:
                log.exception("writing API keys' last use failed")

    async def stop(self) -> None:
        task, self._touch_task = self._touch_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.gateways.stop()
        await self.usage.stop()
        with contextlib.suppress(Exception):
            await self.keys.flush_last_used(min_interval=0)
        await self.audit.close()
        if self.redis is not None:
            await self.redis.stop()
        await self.db.dispose()
