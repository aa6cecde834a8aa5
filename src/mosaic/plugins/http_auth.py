"""Credentials of an HTTP provider and the GitHub App installation-token exchange.

Secrets are :class:`pydantic.SecretStr`: their ``repr``/``str`` is masked, so a config object can be
logged or shown in an error without leaking them. Only :meth:`SecretStr.get_secret_value` at the
moment a header is built reveals one.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Literal

import jwt
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

AuthType = Literal["token", "basic", "bearer", "app"]

# GitHub accepts app JWTs for at most 10 minutes; 9 leaves room for clock drift, as does
# back-dating ``iat`` by a minute (GitHub's own recommendation).
JWT_LIFETIME_S = 9 * 60
JWT_BACKDATE_S = 60
# Installation tokens live an hour; renew them this long before they expire.
TOKEN_REFRESH_MARGIN_S = 5 * 60


class AuthConfig(BaseModel):
    """``auth`` block of an HTTP provider's config.

    * ``token``: a personal/API token (header style is the provider's: ``token X``, ``PRIVATE-TOKEN``...)
    * ``bearer``: an OAuth access token, sent as ``Authorization: Bearer X``
    * ``basic``: ``username`` + ``password`` (or an app password)
    * ``app``: a GitHub App (``appId``, ``privateKey`` or ``privateKeyPath``, ``installationId``),
      exchanged for short-lived installation tokens
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: AuthType = "token"
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    app_id: str | None = Field(default=None, alias="appId")
    private_key: SecretStr | None = Field(default=None, alias="privateKey")
    private_key_path: Path | None = Field(default=None, alias="privateKeyPath")
    installation_id: int | None = Field(default=None, alias="installationId", ge=1)

    @field_validator("app_id", mode="before")
    @classmethod
    def _app_id(cls, v: object) -> object:
        # App ids are numbers in GitHub's UI; accept both spellings in YAML.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        needs: dict[str, tuple[str, ...]] = {
            "token": ("token",), "bearer": ("token",), "basic": ("username", "password"),
            "app": ("app_id", "installation_id"),
        }
        missing = [f for f in needs[self.type] if getattr(self, f) in (None, "")]
        if self.type in ("token", "bearer") and self.token is not None and not self.token.get_secret_value():
            missing.append("token")
        if missing:
            names = ", ".join(_alias(f) for f in missing)
            raise ValueError(f"auth type {self.type!r} needs {names}")
        if self.type == "app" and (self.private_key is None) == (self.private_key_path is None):
            raise ValueError("auth type 'app' needs exactly one of privateKey or privateKeyPath")
        allowed = set(needs[self.type])
        if self.type == "app":
            allowed |= {"private_key", "private_key_path"}
        stray = [f for f in ("token", "username", "password", "app_id", "private_key",
                             "private_key_path", "installation_id")
                 if f not in allowed and getattr(self, f) is not None]
        if stray:
            raise ValueError(f"auth type {self.type!r} does not use {', '.join(_alias(f) for f in stray)}")
        return self


def _alias(field: str) -> str:
    return AuthConfig.model_fields[field].alias or field


def basic_credentials(username: str, password: SecretStr) -> str:
    raw = f"{username}:{password.get_secret_value()}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


class InstallationToken(BaseModel):
    token: SecretStr
    expires_at: float


# Given a freshly signed app JWT, returns the installation token and its expiry (Unix time).
TokenExchange = Callable[[str], Awaitable[InstallationToken]]


class AppTokenSource:
    """Signs GitHub App JWTs and caches the installation token they are exchanged for.

    Concurrent callers needing a new token share one exchange (single flight): the first takes the
    lock and exchanges, the others wait and find the fresh token when they get the lock.
    """

    def __init__(self, *, app_id: str, private_key: SecretStr,
                 clock: Callable[[], float] = time.time,
                 refresh_margin: float = TOKEN_REFRESH_MARGIN_S) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._cached: InstallationToken | None = None
        self._lock = asyncio.Lock()
        self.exchanges = 0

    def __repr__(self) -> str:
        return f"AppTokenSource(app_id={self.app_id!r})"

    def make_jwt(self) -> str:
        now = int(self._clock())
        claims = {"iat": now - JWT_BACKDATE_S, "exp": now + JWT_LIFETIME_S, "iss": self.app_id}
        return jwt.encode(claims, self._private_key.get_secret_value(), algorithm="RS256")

    def _fresh(self) -> InstallationToken | None:
        cached = self._cached
        if cached is not None and self._clock() < cached.expires_at - self._refresh_margin:
            return cached
        return None

    async def token(self, exchange: TokenExchange) -> SecretStr:
        cached = self._fresh()
        if cached is not None:
            return cached.token
        async with self._lock:
            cached = self._fresh()
            if cached is None:
                self.exchanges += 1
                cached = await exchange(self.make_jwt())
                self._cached = cached
            return cached.token

    def current(self) -> list[str]:
        """The cached token, if any (for masking it in messages)."""
        return [self._cached.token.get_secret_value()] if self._cached is not None else []

    def invalidate(self) -> None:
        """Forget the cached token (e.g. after a 401: it was revoked or the clock is off)."""
        self._cached = None


def parse_expires_at(value: object) -> float | None:
    """GitHub's ``expires_at`` (ISO 8601, ``Z`` suffix) as Unix time."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
