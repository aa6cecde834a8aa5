"""Authentication at the edge: ``Authorization: Bearer <token>`` → :class:`Identity`.

Accepted tokens, tried by shape (never by trial and error across kinds):

* ``mk_<keyid>_<secret>`` — a MosAIc API key (tenant, roles, attributes, quotas from its record);
* a JWT (``eyJ...``, three dot-separated parts) — when OIDC is configured;
* a static key from ``server.apiKeys`` / ``MOSAIC_API_KEYS`` — the ``default`` tenant's admin
  (the operator's keys, kept for compatibility with the single-tenant setup).

Every failure is :class:`Unauthorized` with a message that never contains the token. The
tenant a credential names must exist and be active (checked through a short cache).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from sqlalchemy.exc import DBAPIError, OperationalError

from mosaic.errors import Forbidden, Unauthorized
from mosaic.gateway.context import Principal
from mosaic.security.apikeys import ApiKeys, looks_like_api_key
from mosaic.security.identity import Identity
from mosaic.security.oidc import OidcVerifier, looks_like_jwt
from mosaic.store.errors import StoreUnavailable
from mosaic.tenancy.settings import DEFAULT_TENANT

MAX_TOKEN = 8192
TenantStatus = Callable[[str], Awaitable[str | None]]


class StaticKeys(Protocol):
    @property
    def enabled(self) -> bool: ...

    def check(self, token: str) -> Principal | None: ...


def bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise Unauthorized("missing 'Authorization: Bearer <token>' header")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise Unauthorized("the Authorization header must use the Bearer scheme")
    token = token.strip()
    if not token:
        raise Unauthorized("the Authorization header has no token after 'Bearer'")
    if len(token) > MAX_TOKEN or any(c.isspace() or not c.isprintable() for c in token):
        raise Unauthorized("the bearer token is malformed")
    return token


class Authenticator:
    def __init__(self, keys: ApiKeys | None, *, oidc: OidcVerifier | None = None,
                 static: StaticKeys | None = None, tenant_status: TenantStatus | None = None,
                 status_ttl: float = 5.0) -> None:
        self.keys = keys
        self.oidc = oidc
        self.static = static if static is not None and static.enabled else None
        self.tenant_status = tenant_status
        self.status_ttl = status_ttl
        self._status: dict[str, tuple[str | None, float]] = {}

    @property
    def enabled(self) -> bool:
        """Whether any credential kind is configured (else the edge serves loopback only)."""
        return self.keys is not None or self.oidc is not None or self.static is not None

    async def authenticate(self, authorization: str | None) -> Identity:
        token = bearer_token(authorization)
        if looks_like_api_key(token):
            if self.keys is None:
                raise Unauthorized("API keys are not enabled on this server")
            record = await self.keys.verify(token)
            identity = Identity(id=f"key:{record.id}", roles=tuple(record.roles),
                                attributes=dict(record.attributes), tenant=record.tenant, method="api_key",
                                key_id=record.id, quotas=dict(record.quotas))
        elif looks_like_jwt(token) and self.oidc is not None:
            identity = await self.oidc.verify(token)
        elif self.static is not None and (principal := self.static.check(token)) is not None:
            identity = Identity(id=principal.id, roles=principal.roles, attributes=dict(principal.attributes),
                                tenant=DEFAULT_TENANT, method="static_key")
        else:
            raise Unauthorized("the bearer token is not valid")
        await self._check_tenant(identity.tenant)
        return identity

    async def _check_tenant(self, tenant: str) -> None:
        if self.tenant_status is None:
            return
        now = time.monotonic()
        cached = self._status.get(tenant)
        if cached is not None and cached[1] > now:
            status = cached[0]
        else:
            try:
                status = await self.tenant_status(tenant)
            except (OperationalError, DBAPIError, OSError, TimeoutError, StoreUnavailable):
                if cached is None:
                    raise StoreUnavailable("cannot check the tenant now: the database is "
                                           "unreachable") from None
                status = cached[0]  # the database is away: keep what this process knew
            else:
                self._status[tenant] = (status, now + self.status_ttl)
                if len(self._status) > 10_000:
                    self._status.clear()
        if status is None:
            raise Unauthorized("the credential names a tenant that does not exist")
        if status != "active":
            raise Forbidden(f"tenant {tenant!r} is {status}")
