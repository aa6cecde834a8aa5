"""The shared base of every provider that talks HTTP to a vendor API.

A provider module holds only what differs between vendors (paths, payload mapping, header
style); everything else lives here:

* config: ``baseUrl``, ``auth`` (token | basic | bearer | app), ``ssl`` (verify, CA bundle,
  client certificate), ``timeoutMs``, extra ``headers`` — providers subclass :class:`HttpConfig`;
* one pooled :class:`httpx.AsyncClient` per plugin instance, made in ``start`` and closed in
  ``dispose``; tests inject an ``httpx.AsyncBaseTransport``;
* :meth:`HttpProviderPlugin.request`: auth, the deadline of the request context, rate-limit
  bookkeeping (into ``ctx.meta["rate_limit"]``) and HTTP/transport failures as typed errors;
* :meth:`HttpProviderPlugin.fetch_page`: any pagination style behind one opaque cursor;
* a generic ``passthrough`` and a ``health_check`` on a cheap authenticated endpoint.

Example (a complete read operation of a provider)::

    class AcmeGit(HttpProviderPlugin):
        provider = "acme"; service = "git"; name = "Acme"
        Config = AcmeConfig                      # an HttpConfig subclass
        token_format = "Bearer {token}"

        async def get_repository(self, p: GetRepositoryParams, ctx: RequestContext) -> Repository:
            body = (await self.request("GET", f"/repos/{p.repo}", ctx=ctx)).json()
            return to_repository(self.id, body)
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, Final
from urllib.parse import quote, unquote, urlsplit

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from mosaic.catalog.git import PassthroughParams, PassthroughResult
from mosaic.errors import ConfigError, InvalidRequest, MosaicError, ProviderUnavailable, Timeout, Unauthorized
from mosaic.gateway.context import RequestContext
from mosaic.plugins.contract import HealthStatus, ProviderPlugin
from mosaic.plugins.http_auth import (
    AppTokenSource,
    AuthConfig,
    AuthType,
    InstallationToken,
    basic_credentials,
    parse_expires_at,
)
from mosaic.plugins.http_errors import error_for_response, error_for_transport
from mosaic.plugins.http_pagination import Pagination, decode_cursor, encode_cursor
from mosaic.plugins.http_ratelimit import RateLimitState, parse_rate_limit
from mosaic.plugins.http_transport import PooledTransport, env_proxies

__all__ = [
    "HttpConfig",
    "HttpProviderPlugin",
    "SslConfig",
    "compact",
    "is_json",
    "json_body",
    "quote_path",
    "quote_segment",
    "safe_relative_path",
]

log = logging.getLogger("mosaic.plugins.http")

# Headers that carry credentials: set through ``auth`` (masked), never through ``headers``.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "proxy-authorization", "cookie", "private-token",
                                        "job-token", "x-api-key", "api-key"})
# Response headers a passthrough caller never needs and should not see.
_HIDDEN_RESPONSE_HEADERS: Final = frozenset({"set-cookie", "www-authenticate", "proxy-authenticate"})
HEALTH_TIMEOUT_S: Final = 10.0
# Below this fraction of the window left, a provider reports itself degraded.
LOW_HEADROOM: Final = 0.1


class SslConfig(BaseModel):
    """TLS settings. ``cert`` is a CA bundle (PEM) to trust *instead of* the system store — the
    usual case for a self-hosted forge with a private CA or a self-signed certificate.
    ``clientCert``/``clientKey`` present a client certificate (mutual TLS)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    verify: bool = True
    cert: Path | None = None
    client_cert: Path | None = Field(default=None, alias="clientCert")
    client_key: Path | None = Field(default=None, alias="clientKey")


class HttpConfig(BaseModel):
    """Config keys every HTTP provider has; a provider subclasses it for its own keys/defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    base_url: str = Field(alias="baseUrl", description="API root, e.g. https://git.example.com/api/v1")
    auth: AuthConfig | None = Field(default=None, description="Credentials; none = anonymous.")
    ssl: SslConfig = Field(default_factory=SslConfig)
    timeout_ms: int = Field(default=30_000, alias="timeoutMs", gt=0, le=600_000)
    max_connections: int = Field(default=1024, alias="maxConnections", ge=1, le=65_536,
                                 description="Pooled connections to the provider (kept alive 30 s).")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra headers on every request.")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("baseUrl must be an absolute http(s) URL")
        if parts.username is not None or parts.password is not None:
            raise ValueError("baseUrl must not contain credentials; use auth")
        if parts.query or parts.fragment:
            raise ValueError("baseUrl must not have a query or fragment")
        return v.strip().rstrip("/")

    @field_validator("headers")
    @classmethod
    def _headers(cls, v: dict[str, str]) -> dict[str, str]:
        bad = sorted(k for k in v if k.strip().lower() in _CREDENTIAL_HEADERS)
        if bad:
            raise ValueError(f"headers must not carry credentials ({', '.join(bad)}); use auth")
        return v


def quote_segment(value: str) -> str:
    """One path segment, with '/' escaped (branch names, refs, logins)."""
    return quote(value, safe="")


def quote_path(value: str) -> str:
    """A file path inside a repository: each segment escaped, the slashes kept."""
    return quote(value.strip("/"), safe="/")


def compact(data: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON body without the keys whose value is None (optional fields left unset)."""
    return {k: v for k, v in data.items() if v is not None}


def safe_relative_path(path: str) -> str:
    """Check that ``path`` stays under the API root: relative, no scheme/host, no dot segments."""
    problem: str | None = None
    if not path.startswith("/"):
        problem = "must start with '/'"
    elif path.startswith("//") or "://" in path or "\\" in path:
        problem = "must be relative to the provider's API root (no scheme or host)"
    elif any(c in path for c in "?#"):
        problem = "must not contain '?' or '#'; pass query parameters separately"
    elif any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        problem = "must not contain control characters"
    elif any(seg in (".", "..") for seg in unquote(unquote(path)).split("/")):
        problem = "must not contain '.' or '..' segments"
    if problem:
        raise InvalidRequest(f"path {path!r} {problem}", details={"field": "path"})
    return path


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class HttpProviderPlugin(ProviderPlugin):
    """Base of HTTP providers: one pooled client, auth, limits, errors, pagination, passthrough."""

    Config: ClassVar[type[BaseModel]] = HttpConfig
    # Cheap authenticated GET used by the default health check.
    health_path: ClassVar[str] = "/user"
    # How a ``token`` credential is sent; e.g. GitLab: ("PRIVATE-TOKEN", "{token}").
    token_header: ClassVar[str] = "Authorization"
    token_format: ClassVar[str] = "token {token}"
    # Auth types the vendor accepts; others are a config error at initialize.
    auth_types: ClassVar[frozenset[AuthType]] = frozenset({"token", "basic", "bearer", "app"})
    # GitHub App installation-token exchange (relative to baseUrl).
    app_token_path: ClassVar[str] = "/app/installations/{installation_id}/access_tokens"
    default_headers: ClassVar[dict[str, str]] = {"Accept": "application/json"}

    def __init__(self, plugin_id: str, *, transport: httpx.AsyncBaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(plugin_id)
        self._transport = transport
        self._clock = clock
        self._client: httpx.AsyncClient | None = None
        self._origin: tuple[str, str, int | None] | None = None  # (scheme, host, port) of baseUrl
        self._root = ""  # baseUrl + "/"
        self._app_tokens: AppTokenSource | None = None
        self.rate_limit = RateLimitState()
        self._requests = 0
        self._errors: Counter[str] = Counter()
        self._last_latency_ms: float | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r})"

    # -- config ---------------------------------------------------------------
    @property
    def settings(self) -> HttpConfig:
        if not isinstance(self.config, HttpConfig):
            raise ConfigError([f"plugin {self.id!r} is not initialized"])
        return self.config

    @property
    def base_url(self) -> str:
        return self.settings.base_url

    async def initialize(self, config: BaseModel) -> None:
        if not isinstance(config, HttpConfig):
            raise ConfigError([f"plugin {self.id!r}: config must be a {type(self).Config.__name__}"])
        if config.auth is not None and config.auth.type not in self.auth_types:
            raise ConfigError([f"plugin {self.id!r}: auth type {config.auth.type!r} is not supported by "
                               f"{self.provider} (use one of {', '.join(sorted(self.auth_types))})"])
        await super().initialize(config)

    # -- lifecycle ------------------------------------------------------------
    async def start(self) -> None:
        cfg = self.settings
        verify = await asyncio.to_thread(self._tls, cfg.ssl) if self._transport is None else True
        if cfg.auth is not None and cfg.auth.type == "app":
            self._app_tokens = await self._app_token_source(cfg.auth)
        self._root = cfg.base_url + "/"
        transport = self._transport
        if transport is None and not env_proxies():
            transport = PooledTransport(verify=verify, max_connections=cfg.max_connections)
        self._client = httpx.AsyncClient(
            base_url=self._root,
            transport=transport,
            verify=verify,
            limits=httpx.Limits(max_connections=cfg.max_connections,
                                max_keepalive_connections=cfg.max_connections, keepalive_expiry=30.0),
            timeout=cfg.timeout_ms / 1000,
            headers={"User-Agent": f"mosaic/{self.version} ({self.provider})", **self.default_headers,
                     **cfg.headers},
            # Renamed repositories answer with redirects; they are followed on the same origin only
            # (httpx drops Authorization across origins, but not vendor headers like PRIVATE-TOKEN).
            follow_redirects=True,
            event_hooks={"request": [self._same_origin]},
        )
        # Provider APIs are cookie-less, and a Set-Cookie from a provider must never ride along on
        # later calls made for other callers: no cookie jar (httpx has no switch for that, its
        # `cookies=` setter copies into a plain jar; saves ~25 us of CPU per call too).
        self._client._cookies = _NoCookies()
        await super().start()

    async def _same_origin(self, request: httpx.Request) -> None:
        origin = self._origin
        if origin is None:
            base = httpx.URL(self.settings.base_url)
            origin = self._origin = (base.scheme, base.host, base.port)
        if (request.url.scheme, request.url.host, request.url.port) != origin:
            raise ProviderUnavailable(
                f"{self.id}: the provider redirected to {request.url.scheme}://{request.url.host}; "
                "not followed so that credentials stay with the configured host",
                details={"provider": self.id, "reason": "cross_origin_redirect"})

    async def dispose(self) -> None:
        client, self._client, self._origin = self._client, None, None
        if client is not None:
            await client.aclose()
        await super().dispose()

    def _tls(self, cfg: SslConfig) -> ssl.SSLContext | bool:
        """Build the TLS context (reads files: run in a thread)."""
        for label, path in (("ssl.cert", cfg.cert), ("ssl.clientCert", cfg.client_cert),
                            ("ssl.clientKey", cfg.client_key)):
            if path is not None and not path.is_file():
                raise ConfigError([f"plugin {self.id!r}: {label} {str(path)!r} is not a readable file"])
        if cfg.verify and cfg.cert is None and cfg.client_cert is None:
            return True  # httpx's default: certifi's CA bundle
        if not cfg.verify:
            if cfg.client_cert is None:
                return False
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            try:
                ctx = ssl.create_default_context(cafile=str(cfg.cert) if cfg.cert else None)
            except ssl.SSLError as exc:
                raise ConfigError([f"plugin {self.id!r}: ssl.cert is not a PEM CA bundle: {exc.reason}"]) \
                    from None
        if cfg.client_cert is not None:
            try:
                ctx.load_cert_chain(str(cfg.client_cert), str(cfg.client_key) if cfg.client_key else None)
            except ssl.SSLError as exc:
                raise ConfigError([f"plugin {self.id!r}: ssl.clientCert/clientKey unusable: {exc.reason}"]) \
                    from None
        return ctx

    async def _app_token_source(self, auth: AuthConfig) -> AppTokenSource:
        key = auth.private_key
        if key is None and auth.private_key_path is not None:
            path = auth.private_key_path
            try:
                key = SecretStr(await asyncio.to_thread(path.read_text))
            except OSError:
                raise ConfigError([f"plugin {self.id!r}: auth.privateKeyPath {str(path)!r} cannot be read"]) \
                    from None
        assert key is not None and auth.app_id is not None  # guaranteed by AuthConfig
        source = AppTokenSource(app_id=auth.app_id, private_key=key, clock=self._clock)
        try:
            source.make_jwt()
        except Exception:  # pyjwt/cryptography raise several types; none may echo the key
            raise ConfigError([f"plugin {self.id!r}: the GitHub App private key is not a valid "
                               "PEM RSA key"]) from None
        return source

    # -- auth -----------------------------------------------------------------
    async def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate a request; override for a vendor-specific style."""
        auth = self.settings.auth
        if auth is None:
            return {}
        if auth.type == "token":
            assert auth.token is not None
            return {self.token_header: self.token_format.format(token=auth.token.get_secret_value())}
        if auth.type == "bearer":
            assert auth.token is not None
            return {"Authorization": f"Bearer {auth.token.get_secret_value()}"}
        if auth.type == "basic":
            assert auth.username is not None and auth.password is not None
            return {"Authorization": basic_credentials(auth.username, auth.password)}
        if self._app_tokens is None:
            raise ProviderUnavailable(f"plugin {self.id!r} is not started", sent=False)
        token = await self._app_tokens.token(self._exchange_app_jwt)
        return {"Authorization": f"Bearer {token.get_secret_value()}"}

    async def _exchange_app_jwt(self, app_jwt: str) -> InstallationToken:
        auth = self.settings.auth
        assert auth is not None and auth.installation_id is not None
        path = self.app_token_path.format(installation_id=auth.installation_id)
        response = await self._send("POST", path, ctx=None, params=None, json=None, content=None,
                                     headers={"Authorization": f"Bearer {app_jwt}",
                                              "Accept": "application/vnd.github+json"})
        if response.status_code != 201:
            error = self.map_error(response, "POST", path)
            if isinstance(error, Unauthorized):
                error.message = (f"{self.id}: GitHub App authentication failed (check appId, privateKey "
                                 f"and installationId): {error.message}")
                error.args = (error.message,)
            raise error
        body = json_body(response)
        token = body.get("token") if isinstance(body, dict) else None
        expires = parse_expires_at(body.get("expires_at")) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or expires is None:
            raise ProviderUnavailable(f"{self.id}: installation token response has no token/expires_at")
        return InstallationToken(token=SecretStr(token), expires_at=expires)

    # -- requests -------------------------------------------------------------
    def _timeout(self, ctx: RequestContext | None) -> float:
        configured = self.settings.timeout_ms / 1000
        remaining = ctx.remaining() if ctx is not None else None
        if remaining is None:
            return configured
        if remaining <= 0:
            raise Timeout(f"{self.id}: deadline passed before the request was sent", sent=False)
        return min(configured, remaining)

    async def _send(self, method: str, path: str, *, ctx: RequestContext | None,
                    params: Mapping[str, Any] | None, json: Any, content: bytes | None,
                    headers: Mapping[str, str] | None) -> httpx.Response:
        client = self._client
        if client is None:
            raise ProviderUnavailable(f"plugin {self.id!r} is not started", sent=False)
        safe_relative_path(path)
        timeout = self._timeout(ctx)
        query = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        # httpx's timeout bounds each phase (connect, each read...); the deadline bounds the whole call.
        budget = ctx.remaining() if ctx is not None else None
        started = time.monotonic()
        self._requests += 1
        try:
            async with asyncio.timeout(budget):
                # An absolute URL and no empty params: httpx skips re-merging them (~50 us a call).
                response = await client.request(
                    method, self._root + path[1:], params=query or None, json=json, content=content,
                    headers=dict(headers or {}), timeout=timeout)
        except TimeoutError:
            self._errors["timeout"] += 1
            raise Timeout(f"{self.id}: {method} {path} did not finish before the request's deadline",
                          details={"provider": self.id, "method": method, "path": path}) from None
        except httpx.TransportError as exc:
            error = error_for_transport(exc, plugin_id=self.id, method=method, path=path)
            self._errors[error.code] += 1
            log.info("%s %s %s failed: %s", self.id, method, path, error.code)
            raise error from exc
        self._last_latency_ms = round((time.monotonic() - started) * 1000, 3)
        log.debug("%s %s %s -> %s in %.1f ms", self.id, method, path, response.status_code,
                  self._last_latency_ms)
        self._observe(response, ctx)
        return response

    def _observe(self, response: httpx.Response, ctx: RequestContext | None) -> None:
        state = parse_rate_limit(response.headers, self._clock())
        if state is not None:
            self.rate_limit = state
        elif response.is_success and self.rate_limit.retry_after is not None:
            # A success without limit headers: the last Retry-After no longer applies.
            self.rate_limit = dataclasses.replace(self.rate_limit, retry_after=None)
        if ctx is not None and self.rate_limit.known:
            ctx.meta["rate_limit"] = self.rate_limit.as_dict()

    async def request(self, method: str, path: str, *, ctx: RequestContext | None = None,
                      params: Mapping[str, Any] | None = None, json: Any = None,
                      content: bytes | None = None, headers: Mapping[str, str] | None = None,
                      expected: tuple[int, ...] | None = None) -> httpx.Response:
        """Send one authenticated request to ``path`` (relative to ``baseUrl``).

        Returns the response when its status is in ``expected`` (default: any 2xx); otherwise
        raises the typed error :meth:`map_error` gives. ``params`` values of None are dropped.
        """
        auth = await self.auth_headers()
        response = await self._send(method, path, ctx=ctx, params=params, json=json, content=content,
                                     headers={**auth, **(headers or {})})
        status = response.status_code
        ok = status in expected if expected is not None else 200 <= status < 300
        if ok:
            return response
        if status == 401 and self._app_tokens is not None:
            self._app_tokens.invalidate()
        if status < 400:
            error: MosaicError = ProviderUnavailable(
                f"{self.id}: {method} {path} returned unexpected status {status}",
                details={"provider": self.id, "status": status, "method": method, "path": path})
        else:
            error = self._scrub(self.map_error(response, method, path))
        self._errors[error.code] += 1
        raise error

    def _scrub(self, error: MosaicError) -> MosaicError:
        """Mask our own credentials should a vendor echo them in an error message."""
        auth = self.settings.auth
        secrets = [s.get_secret_value() for s in (auth.token, auth.password) if s is not None] if auth else []
        if auth is not None and auth.username is not None and auth.password is not None:
            secrets.append(basic_credentials(auth.username, auth.password).removeprefix("Basic "))
        secrets += self._app_tokens.current() if self._app_tokens is not None else []
        message = error.message
        for secret in secrets:
            if len(secret) >= 4:
                message = message.replace(secret, "***")
        if message != error.message:
            error.message = message
            error.args = (message,)
        return error

    def map_error(self, response: httpx.Response, method: str, path: str) -> MosaicError:
        """Typed error for an error response; override to refine a vendor's quirks."""
        now = self._clock()
        current = parse_rate_limit(response.headers, now)
        return error_for_response(response, plugin_id=self.id, method=method, path=path,
                                  rate=current, now=now)

    async def fetch_page(self, path: str, *, ctx: RequestContext, pagination: Pagination, limit: int,
                         cursor: str | None = None, params: Mapping[str, Any] | None = None
                         ) -> tuple[list[Any], str | None]:
        """GET one page of a listing: its raw items and the cursor of the next page (None = last)."""
        query: dict[str, str] = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        query.update(pagination.first_params(limit))
        if cursor:
            query.update(decode_cursor(cursor, pagination.cursor_keys))
        response = await self.request("GET", path, ctx=ctx, params=query)
        body = json_body(response)
        try:
            items = pagination.items(body)
        except ValueError as exc:
            raise ProviderUnavailable(f"{self.id}: GET {path}: {exc}") from None
        following = pagination.next_params(response, body, query, len(items))
        return items, (encode_cursor(following) if following else None)

    # -- generic operations ---------------------------------------------------
    async def passthrough(self, p: PassthroughParams, ctx: RequestContext) -> PassthroughResult:
        """Send a raw call to the vendor API with this plugin's credentials and limits.

        The path is relative to ``baseUrl`` and may not leave it: no scheme, host or dot segments.
        """
        path = safe_relative_path(p.path)
        response = await self.request(p.method, path, ctx=ctx, params=p.query,
                                      json=p.body if p.body is not None else None)
        headers = {k.lower(): v for k, v in response.headers.items()
                   if k.lower() not in _HIDDEN_RESPONSE_HEADERS}
        return PassthroughResult(provider=self.id, status=response.status_code, headers=headers,
                                 body=json_body(response) if is_json(response) else (response.text or None))

    async def health_check(self) -> HealthStatus:
        if not self.started or self._client is None:
            return HealthStatus(status="unhealthy", detail="not started")
        ctx = RequestContext.with_timeout(min(HEALTH_TIMEOUT_S, self.settings.timeout_ms / 1000))
        started = time.monotonic()
        try:
            await self.request("GET", self.health_path, ctx=ctx)
        except MosaicError as exc:
            latency = round((time.monotonic() - started) * 1000, 3)
            status = "degraded" if exc.code == "rate_limited" else "unhealthy"
            return HealthStatus(status=status, latency_ms=latency, detail=exc.message,
                                rate_limit=self.rate_limit.as_dict() or None)
        latency = round((time.monotonic() - started) * 1000, 3)
        headroom = self.rate_limit.headroom()
        low = headroom is not None and headroom < LOW_HEADROOM
        detail = f"rate-limit headroom {headroom:.0%}" if low and headroom is not None else ""
        return HealthStatus(status="degraded" if low else "healthy", latency_ms=latency, detail=detail,
                            rate_limit=self.rate_limit.as_dict() or None)

    def metrics(self) -> dict[str, Any]:
        data = super().metrics()
        data.update({"requests": self._requests, "errors": dict(self._errors),
                     "last_latency_ms": self._last_latency_ms})
        if self.rate_limit.known:
            data["rate_limit"] = self.rate_limit.as_dict()
        return data


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def is_json(response: httpx.Response) -> bool:
    ctype = str(response.headers.get("content-type", "")).split(";")[0].strip().lower()
    return ctype == "application/json" or ctype.endswith("+json")


def json_body(response: httpx.Response) -> Any:
    """The JSON body, None when empty; a malformed body is the provider's failure."""
    if not response.content:
        return None
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise ProviderUnavailable(
            f"provider answered {response.request.method} {response.request.url.path} with a body that is "
            "not JSON") from None

