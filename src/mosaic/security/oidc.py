"""OIDC / JWT bearer tokens: signature against the issuer's JWKS, issuer, audience, expiry.

Only asymmetric algorithms are accepted (``none`` and the HMAC family are refused outright, which
closes the classic "sign with the public key as HMAC secret" confusion). The JWKS is fetched
asynchronously and cached; a token signed with a key id we do not know triggers one refresh
(at most every ``refresh_interval`` seconds, so garbage tokens cannot make us hammer the IdP).

Claims are mapped onto an :class:`Identity`: the tenant (``tenant_claim``, or ``default_tenant``),
roles (``roles_claim``, a list or a space/comma separated string, renamed through ``role_map``),
and attributes such as ``region`` that routing conditions and the residency guard read.
Claim paths are dotted (``realm_access.roles``); a claim whose own name contains dots (URLs
are common) is matched whole first.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import jwt
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mosaic.errors import ConfigError, Unauthorized
from mosaic.security.identity import Identity

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                        "ES256", "ES384", "ES512", "EdDSA"})


class OidcSettings(BaseSettings):
    """``MOSAIC_OIDC_*`` environment variables (JSON for the mappings)."""

    model_config = SettingsConfigDict(env_prefix="MOSAIC_OIDC_", extra="ignore")

    issuer: str | None = None
    audience: list[str] = Field(default_factory=list)
    jwks_url: str | None = None
    # An inline JWKS document (JSON), e.g. for air-gapped setups; used instead of jwks_url.
    jwks: dict[str, Any] | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "PS256", "EdDSA"])
    subject_claim: str = "sub"
    tenant_claim: str | None = "tenant"
    default_tenant: str | None = None
    roles_claim: str = "roles"
    role_map: dict[str, str] = Field(default_factory=dict)
    attribute_claims: dict[str, str] = Field(default_factory=lambda: {"region": "region"})
    leeway: float = Field(default=30.0, ge=0, le=600)
    refresh_interval: float = Field(default=30.0, ge=0)
    cache_ttl: float = Field(default=3600.0, gt=0)

    @field_validator("audience", "algorithms", mode="before")
    @classmethod
    def _csv(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            return json.loads(v) if v.startswith("[") else [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ASYMMETRIC]
        if bad:
            raise ValueError(f"only asymmetric algorithms are accepted, not {', '.join(bad)}")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    def check(self) -> None:
        problems = []
        if not self.audience:
            problems.append("MOSAIC_OIDC_AUDIENCE is required with MOSAIC_OIDC_ISSUER")
        if self.jwks is None and not self.jwks_url:
            problems.append("MOSAIC_OIDC_JWKS_URL (or MOSAIC_OIDC_JWKS) is required with MOSAIC_OIDC_ISSUER")
        if not self.tenant_claim and not self.default_tenant:
            problems.append("set MOSAIC_OIDC_TENANT_CLAIM or MOSAIC_OIDC_DEFAULT_TENANT")
        if problems:
            raise ConfigError(problems)


def claim(claims: dict[str, Any], path: str) -> Any:
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2 and token.startswith("ey")


class OidcVerifier:
    def __init__(self, settings: OidcSettings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        settings.check()
        self.settings = settings
        self._transport = transport
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._pinned: dict[str | None, str] = {}
        self._fetched_at = -1e9
        self._forced_at = -1e9
        self._lock = asyncio.Lock()
        if settings.jwks is not None:
            self._load(settings.jwks)
            self._fetched_at = float("inf")

    def _load(self, document: dict[str, Any]) -> None:
        keys: dict[str | None, jwt.PyJWK] = {}
        pinned: dict[str | None, str] = {}
        for raw in document.get("keys", []) if isinstance(document, dict) else []:
            # Symmetric (oct) keys are never trusted: a JWKS is public.
            if not isinstance(raw, dict) or raw.get("use", "sig") != "sig" or raw.get("kty") == "oct":
                continue
            try:
                key = jwt.PyJWK(raw)
            except (jwt.PyJWKError, jwt.InvalidKeyError):
                continue  # a key type we cannot use is not a reason to refuse the others
            keys[key.key_id] = key
            if isinstance(raw.get("alg"), str):
                pinned[key.key_id] = raw["alg"]
        self._keys = keys
        self._pinned = pinned

    async def _refresh(self, *, force: bool) -> None:
        url = self.settings.jwks_url
        if url is None:
            return
        async with self._lock:
            now = time.monotonic()
            if force:
                # Unknown key ids force a refetch (key rollover), at most once per interval.
                if now - self._forced_at < self.settings.refresh_interval:
                    return
                self._forced_at = now
            elif now - self._fetched_at < self.settings.cache_ttl:
                return
            try:
                async with httpx.AsyncClient(transport=self._transport, timeout=5.0) as client:
                    resp = await client.get(url, headers={"accept": "application/json"})
                    resp.raise_for_status()
                    self._load(resp.json())
                self._fetched_at = now
            except (httpx.HTTPError, ValueError):
                # Keep the keys we had (an IdP hiccup must not log everyone out), and do not
                # retry on every request: the next attempt waits for the refresh interval.
                self._fetched_at = now - self.settings.cache_ttl + self.settings.refresh_interval
                return

    async def _key(self, kid: str | None) -> jwt.PyJWK:
        await self._refresh(force=False)
        key = self._keys.get(kid)
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            await self._refresh(force=True)
            key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("the token is signed with a key the issuer does not publish")
        return key

    async def verify(self, token: str) -> Identity:
        s = self.settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("the bearer token is not a valid JWT") from None
        alg = header.get("alg")
        if alg not in s.algorithms:
            raise Unauthorized(f"token algorithm {str(alg)[:20]!r} is not accepted")
        kid = header.get("kid")
        key = await self._key(kid if isinstance(kid, str) else None)
        if self._pinned.get(key.key_id, alg) != alg:
            raise Unauthorized("token algorithm does not match its signing key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token, key=key.key, algorithms=[alg], audience=s.audience, issuer=s.issuer, leeway=s.leeway,
                options={"require": ["exp", "iss", "aud", s.subject_claim]})
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("the token is not meant for this audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("the token was issued by an issuer that is not trusted") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"the token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            raise Unauthorized("the token signature or claims are not valid") from None
        return self.identity(claims)

    def identity(self, claims: dict[str, Any]) -> Identity:
        s = self.settings
        subject = claim(claims, s.subject_claim)
        if not isinstance(subject, (str, int)) or str(subject) == "":
            raise Unauthorized("the token has no usable subject")
        tenant = claim(claims, s.tenant_claim) if s.tenant_claim else None
        if tenant is None:
            tenant = s.default_tenant
        if not isinstance(tenant, str) or not tenant:
            raise Unauthorized("the token names no tenant")
        raw_roles = claim(claims, s.roles_claim)
        if isinstance(raw_roles, str):
            raw_roles = raw_roles.replace(",", " ").split()
        roles = [s.role_map.get(str(r), str(r)) for r in raw_roles or [] if isinstance(r, (str, int))]
        attributes: dict[str, Any] = {}
        for name, path in s.attribute_claims.items():
            value = claim(claims, path)
            if isinstance(value, (str, int, float, bool)) or (
                    isinstance(value, list) and all(isinstance(v, (str, int, float, bool)) for v in value)):
                attributes[name] = value
        return Identity(id=f"oidc:{subject}", roles=tuple(dict.fromkeys(roles)), attributes=attributes,
                        tenant=tenant, method="oidc")
