"""What GitHub's git and Actions plugins share on top of the HTTP base.

* :class:`GitHubConfig`: ``baseUrl`` defaults to ``https://api.github.com``; Enterprise Server is
  ``https://HOST/api/v3``. ``webUrl`` (where ``html_url`` links point) is derived from it when unset.
* headers: ``Accept: application/vnd.github+json``, ``X-GitHub-Api-Version: 2022-11-28``,
  ``Authorization: Bearer <token>`` (personal/OAuth token or a GitHub App installation token, which
  the base obtains from the App's JWT and renews before it expires).
* :meth:`GitHubHttpPlugin.map_error`: GitHub's own ways of saying "conflict" (422 ``already_exists``)
  and "slow down" (a 403 naming the secondary rate limit without headers).
* :meth:`GitHubHttpPlugin.download`: endpoints that answer 302 to a short-lived download URL (job
  logs, artifact archives). Each hop is followed by hand: our credentials go only to the API's own
  scheme/host/port; a hop to any other host is a request of a separate client that has none.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, ClassVar, Final
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import orjson
from pydantic import BaseModel, Field, field_validator

from mosaic.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    MosaicError,
    ProviderUnavailable,
    RateLimited,
    Timeout,
)
from mosaic.gateway.context import RequestContext
from mosaic.plugins.http import HttpConfig, HttpProviderPlugin, quote_segment
from mosaic.plugins.http_auth import AuthType
from mosaic.plugins.http_errors import error_for_transport

GITHUB_API: Final = "https://api.github.com"
API_VERSION: Final = "2022-11-28"
# GitHub asks clients to wait at least a minute after a secondary rate limit without Retry-After.
SECONDARY_LIMIT_WAIT_S: Final = 60.0
MAX_REDIRECTS: Final = 5
DEFAULT_MAX_DOWNLOAD: Final = 64 * 1024 * 1024


class GitHubConfig(HttpConfig):
    base_url: str = Field(default=GITHUB_API, alias="baseUrl",
                          description="API root: https://api.github.com, or https://HOST/api/v3 for "
                                      "GitHub Enterprise Server.")
    web_url: str | None = Field(default=None, alias="webUrl",
                                description="Web root for links the API does not return; default: "
                                            "derived from baseUrl.")
    max_download_bytes: int = Field(default=DEFAULT_MAX_DOWNLOAD, alias="maxDownloadBytes", ge=1,
                                    description="Largest log or artifact archive fetched into memory.")

    @field_validator("web_url")
    @classmethod
    def _web(cls, v: str | None) -> str | None:
        if v is None:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("webUrl must be an absolute http(s) URL")
        return v.strip().rstrip("/")


def web_root(base_url: str) -> str:
    """github.com's web root for api.github.com, ``https://X.ghe.com`` for ``api.X.ghe.com`` (GHE.com),
    else the API root without its ``/api/v3`` suffix (Enterprise Server)."""
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host == "api.github.com":
        return "https://github.com"
    netloc = parts.netloc
    if host.startswith("api.") and host.endswith(".ghe.com"):
        netloc = netloc.replace("api.", "", 1)
    path = parts.path.rstrip("/")
    if path.endswith("/api/v3"):
        path = path[: -len("/api/v3")]
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class GitHubHttpPlugin(HttpProviderPlugin):
    """Base of the GitHub plugins (not a plugin itself: it has no ``service``)."""

    provider: ClassVar[str] = "github"
    Config: ClassVar[type[BaseModel]] = GitHubConfig
    health_path: ClassVar[str] = "/rate_limit"
    token_format: ClassVar[str] = "Bearer {token}"
    # GitHub dropped password auth for the API; tokens (classic/fine-grained/OAuth) and Apps remain.
    auth_types: ClassVar[frozenset[AuthType]] = frozenset({"token", "bearer", "app"})
    default_headers: ClassVar[dict[str, str]] = {"Accept": "application/vnd.github+json",
                                                 "X-GitHub-Api-Version": API_VERSION}

    def __init__(self, plugin_id: str, **kwargs: Any) -> None:
        super().__init__(plugin_id, **kwargs)
        self._storage: httpx.AsyncClient | None = None

    @property
    def gh(self) -> GitHubConfig:
        cfg = self.settings
        assert isinstance(cfg, GitHubConfig)
        return cfg

    @property
    def web_base(self) -> str:
        return self.gh.web_url or web_root(self.gh.base_url)

    @property
    def uses_app(self) -> bool:
        auth = self.gh.auth
        return auth is not None and auth.type == "app"

    @staticmethod
    def repo_path(repo: str) -> str:
        parts = repo.split("/")
        if len(parts) != 2:
            raise InvalidRequest(f"GitHub repositories are 'owner/name', got {repo!r}",
                                 details={"repo": repo})
        return f"/repos/{quote_segment(parts[0])}/{quote_segment(parts[1])}"

    # -- errors ------------------------------------------------------------------
    def map_error(self, response: httpx.Response, method: str, path: str) -> MosaicError:
        error = super().map_error(response, method, path)
        body = _json(response)
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
        if response.status_code in (403, 429) and not isinstance(error, RateLimited) \
                and "rate limit" in message.lower():
            return RateLimited(error.message, retry_after=SECONDARY_LIMIT_WAIT_S, details=error.details)
        if response.status_code == 422 and _already_exists(body, message):
            return Conflict(error.message, details=error.details)
        return error

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        await super().start()
        verify = await asyncio.to_thread(self._storage_tls) if self._transport is None else True
        # Downloads leave the API host for short-lived signed URLs: they get a client of their own that
        # holds no credential at all (and none of the shared client's same-origin guard, which is
        # there to keep credentials home).
        self._storage = httpx.AsyncClient(
            transport=self._transport, verify=verify, timeout=self.gh.timeout_ms / 1000,
            follow_redirects=True, headers={"User-Agent": f"mosaic/{self.version} ({self.provider})"})

    async def dispose(self) -> None:
        storage, self._storage = self._storage, None
        if storage is not None:
            await storage.aclose()
        await super().dispose()

    def _storage_tls(self) -> ssl.SSLContext | bool:
        """Storage hosts have public certificates; an Enterprise Server's private CA is trusted too."""
        cfg = self.gh.ssl
        if not cfg.verify:
            return False
        if cfg.cert is None:
            return True
        ctx = ssl.create_default_context()
        try:
            ctx.load_verify_locations(cafile=str(cfg.cert))
        except (OSError, ssl.SSLError):
            raise ConfigError([f"plugin {self.id!r}: ssl.cert is not a readable PEM CA bundle"]) from None
        return ctx

    # -- downloads through redirects ----------------------------------------------
    async def download(self, path: str, *, ctx: RequestContext) -> bytes:
        """GET ``path`` (an API endpoint answering 302 to the content) and return the content.

        Each hop on the API's own scheme/host/port is sent with our credentials and inspected; the
        first hop elsewhere is fetched by the credential-less storage client, which follows the
        storage's own redirects. The request's deadline bounds the whole download.
        """
        try:
            async with asyncio.timeout(ctx.remaining()):
                return await self._follow(path, ctx)
        except TimeoutError:
            raise Timeout(f"{self.id}: GET {path} did not finish before the request's deadline") from None
        except httpx.TransportError as exc:
            raise error_for_transport(exc, plugin_id=self.id, method="GET", path=path) from exc

    async def _follow(self, path: str, ctx: RequestContext) -> bytes:
        api, storage = self._client, self._storage
        if api is None or storage is None:
            raise ProviderUnavailable(f"plugin {self.id!r} is not started", sent=False)
        api_origin = _origin(self.base_url)
        url = self.base_url + path
        for _ in range(MAX_REDIRECTS + 1):
            trusted = _origin(url) == api_origin
            parts = urlsplit(url)
            # The query of a pre-signed URL is a credential of its own: it never appears in errors.
            shown = parts.path if trusted else f"{parts.hostname}{parts.path}"
            if trusted:
                request = api.build_request("GET", url, headers=await self.auth_headers(),
                                            timeout=self._timeout(ctx))
                response = await api.send(request, stream=True, follow_redirects=False)
                self._observe(response, ctx)
            else:
                request = storage.build_request("GET", url, timeout=self._timeout(ctx))
                response = await storage.send(request, stream=True, follow_redirects=True)
            try:
                if trusted and response.is_redirect:
                    location = response.headers.get("location", "")
                    target = urljoin(url, location)
                    if not location or urlsplit(target).scheme not in ("http", "https"):
                        raise ProviderUnavailable(
                            f"{self.id}: GET {shown} redirected to an unusable location")
                    url = target
                    continue
                if not response.is_success:
                    await response.aread()
                    raise self.map_error(response, "GET", shown)
                return await self._read_capped(response, shown)
            finally:
                await response.aclose()
        raise ProviderUnavailable(f"{self.id}: GET {path}: more than {MAX_REDIRECTS} redirects")

    async def _read_capped(self, response: httpx.Response, shown: str) -> bytes:
        cap = self.gh.max_download_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise InvalidRequest(f"{self.id}: GET {shown}: {declared} bytes exceed maxDownloadBytes ({cap})")
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                raise InvalidRequest(f"{self.id}: GET {shown}: more than maxDownloadBytes ({cap}) bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _json(response: httpx.Response) -> Any:
    try:
        return orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        return None


def _already_exists(body: Any, message: str) -> bool:
    """GitHub's validation errors for a name/ref/pull request that exists already."""
    if "already exists" in message.lower():
        return True
    errors = body.get("errors") if isinstance(body, dict) else None
    for item in errors if isinstance(errors, list) else []:
        if isinstance(item, dict) and (item.get("code") == "already_exists"
                                       or "already exists" in str(item.get("message", "")).lower()):
            return True
        if isinstance(item, str) and "already exists" in item.lower():
            return True
    return False
