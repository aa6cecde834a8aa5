"""Authentication at the edge: ``Authorization: Bearer <key>`` checked before any interface.

Keys come from the configuration (``server.apiKeys``) and from ``MOSAIC_API_KEYS``
(comma-separated). Each key is kept only as its SHA-256 digest; a presented token is
hashed and compared against every digest with :func:`hmac.compare_digest`, so the time
taken does not depend on which key (or how much of one) matched.

The middleware is plain ASGI (no ``BaseHTTPMiddleware``) because it sits in front of
every request and must cost microseconds. It stores the authenticated
:class:`~mosaic.gateway.context.Principal` in the ASGI scope under :data:`PRINCIPAL_KEY`;
the REST, GraphQL and MCP interfaces read it from there.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from mosaic.config.schema import MosaicConfig, Settings
from mosaic.errors import MosaicError
from mosaic.gateway.context import Principal, RequestContext

PRINCIPAL_KEY = "mosaic.principal"
# Liveness and readiness probes come from orchestrators that hold no key.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

_LOCAL = Principal(id="local", roles=("admin",))


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_HOSTS or host.startswith("127.")


@dataclass(frozen=True, slots=True)
class ApiKeys:
    """The configured keys, as digests; empty means authentication is off (loopback only)."""

    digests: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, keys: Iterable[str]) -> ApiKeys:
        seen: list[bytes] = []
        for key in keys:
            key = key.strip()
            if key:
                d = hashlib.sha256(key.encode()).digest()
                if d not in seen:
                    seen.append(d)
        return cls(tuple(seen))

    @classmethod
    def from_config(cls, config: MosaicConfig | None = None, settings: Settings | None = None) -> ApiKeys:
        keys: list[str] = []
        if config is not None:
            keys.extend(k.get_secret_value() for k in config.server.api_keys)
        env = (settings or Settings()).api_keys
        if env:
            keys.extend(env.split(","))
        return cls.of(keys)

    @property
    def enabled(self) -> bool:
        return bool(self.digests)

    def check(self, token: str) -> Principal | None:
        """The principal for ``token``, or None. Compares against every key, always."""
        presented = hashlib.sha256(token.encode()).digest()
        match: bytes | None = None
        for digest in self.digests:
            if hmac.compare_digest(presented, digest):
                match = digest
        if match is None:
            return None
        # The id names the key without revealing it: a short prefix of its digest.
        return Principal(id=f"apikey:{match.hex()[:12]}", roles=("admin",))


def principal_of(scope: Scope) -> Principal:
    """The principal the auth middleware attached to this request (the local operator if none)."""
    p = scope.get(PRINCIPAL_KEY)
    return p if isinstance(p, Principal) else _LOCAL


def context_for(principal: Principal) -> RequestContext:
    """A request context for the authenticated principal: a tenant-bound identity (API key or
    OIDC token of the tenancy store) carries its tenant; anything else is the default tenant."""
    tenant = getattr(principal, "tenant", "default")
    return RequestContext(tenant=tenant if isinstance(tenant, str) else "default", principal=principal)


# Resolves an ``Authorization`` header to a principal or raises a MosaicError (401, 403, 503).
Authenticate = Callable[[str | None], Awaitable[Principal]]


def _problem(status: int, code: str, title: str, detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({
        "type": f"urn:mosaic:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    })
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="mosaic"'))
    return headers, body


def _problem_401(detail: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    return _problem(401, "unauthorized", "Unauthorized", detail)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            header: str = value.decode("latin-1")
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


class AuthMiddleware:
    """Reject requests without a valid bearer key (401 problem), except the health probes."""

    def __init__(self, app: ASGIApp, keys: ApiKeys, authenticate: Authenticate | None = None) -> None:
        self.app = app
        self.keys = keys
        # With the tenancy store: API keys of tenants, OIDC tokens and the static keys, all
        # resolved by the store's authenticator (which knows the keys' tenants and roles).
        self.authenticate = authenticate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if self.authenticate is None and not self.keys.enabled:
            scope[PRINCIPAL_KEY] = _LOCAL
            await self.app(scope, receive, send)
            return
        if scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        if self.authenticate is not None:
            await self._with_authenticator(self.authenticate, scope, receive, send)
            return
        token = _bearer(scope)
        principal = self.keys.check(token) if token is not None else None
        if principal is None:
            detail = ("missing 'Authorization: Bearer <key>' header" if token is None
                      else "the bearer key is not valid")
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4401, "reason": "unauthorized"})
                return
            headers, body = _problem_401(detail)
            await send({"type": "http.response.start", "status": 401, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


    async def _with_authenticator(self, authenticate: Authenticate, scope: Scope, receive: Receive,
                                  send: Send) -> None:
        header: str | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value.decode("latin-1")
                break
        try:
            principal = await authenticate(header)
        except MosaicError as exc:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 4000 + exc.http_status, "reason": exc.code})
                return
            headers, body = _problem(exc.http_status, exc.code, exc.code.replace("_", " ").capitalize(),
                                     exc.message)
            await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, receive, send)


__all__ = ["PRINCIPAL_KEY", "ApiKeys", "AuthMiddleware", "context_for", "is_loopback", "principal_of"]
