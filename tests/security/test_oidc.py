"""OIDC bearer tokens: signature via JWKS, issuer/audience/expiry, claim mapping, key rollover."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from mosaic.errors import ConfigError, Unauthorized
from mosaic.security.oidc import OidcSettings, OidcVerifier

ISSUER = "https://idp.example.test/realms/mosaic"
AUDIENCE = "mosaic-gateway"
JWKS_URL = "https://idp.example.test/realms/mosaic/certs"


@functools.cache
def rsa_key(kid: str) -> rsa.RSAPrivateKey:
    """One key per kid for the whole session: generating RSA keys is slow."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Idp:
    """A signing authority with a JWKS endpoint served through httpx.MockTransport."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.fetches = 0
        self.add_rsa("k1")

    def add_rsa(self, kid: str, publish: bool = True) -> None:
        self.keys[kid] = rsa_key(kid)
        if publish:
            self.published.append(kid)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid in self.published:
            key = self.keys[kid]
            algo = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
            jwk = algo.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "use": "sig"})
        return {"keys": out}

    def transport(self) -> httpx.MockTransport:
        def handle(request: httpx.Request) -> httpx.Response:
            assert str(request.url) == JWKS_URL
            self.fetches += 1
            return httpx.Response(200, json=self.jwks())
        return httpx.MockTransport(handle)

    def token(self, kid: str = "k1", alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 300,
                "tenant": "acme", "roles": ["developer"], "region": "eu", **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": kid})


@pytest.fixture
def idp() -> Idp:
    return Idp()


@pytest.fixture
def make(idp: Idp) -> Callable[..., OidcVerifier]:
    def build(**overrides: Any) -> OidcVerifier:
        settings = OidcSettings(issuer=ISSUER, audience=[AUDIENCE], jwks_url=JWKS_URL,
                                refresh_interval=60, **overrides)
        return OidcVerifier(settings, transport=idp.transport())
    return build


async def test_valid_token_maps_claims_to_an_identity(idp: Idp, make: Callable[..., OidcVerifier]) -> None:
    ident = await make().verify(idp.token())
    assert (ident.id, ident.tenant, ident.roles, ident.method) == ("oidc:user-42", "acme", ("developer",), "oidc")
    assert ident.attributes == {"region": "eu"}


async def test_nested_claims_role_map_and_default_tenant(idp: Idp, make: Callable[..., OidcVerifier]) -> None:
    verifier = make(tenant_claim="https://mosaic.dev/tenant", roles_claim="realm_access.roles",
                    role_map={"mosaic-admins": "admin"}, attribute_claims={"region": "loc.region", "team": "team"})
    token = idp.token(**{"https://mosaic.dev/tenant": "globex", "realm_access": {"roles": ["mosaic-admins", "x"]},
                         "loc": {"region": "us"}, "team": {"nested": "dropped"}, "roles": None, "tenant": None})
    ident = await verifier.verify(token)
    assert ident.tenant == "globex" and ident.roles == ("admin", "x") and ident.attributes == {"region": "us"}
    fallback = make(tenant_claim="org", default_tenant="default")
    assert (await fallback.verify(idp.token(tenant=None, roles="reader auditor"))).roles == ("reader", "auditor")
    assert (await fallback.verify(idp.token(tenant=None))).tenant == "default"


@pytest.mark.parametrize(("claims", "message"), [
    ({"aud": "someone-else"}, "not meant for this audience"),
    ({"iss": "https://evil.example.test"}, "not trusted"),
    ({"exp": int(time.time()) - 3600}, "expired"),
    ({"sub": None}, "lacks the 'sub' claim"),
    ({"tenant": None}, "names no tenant"),
])
async def test_wrong_claims_are_refused(idp: Idp, make: Callable[..., OidcVerifier], claims: dict[str, Any],
                                        message: str) -> None:
    with pytest.raises(Unauthorized, match=message):
        await make().verify(idp.token(**claims))


async def test_algorithm_attacks_are_refused(idp: Idp, make: Callable[..., OidcVerifier]) -> None:
    verifier = make()
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "exp": now + 60, "tenant": "acme"}
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]
    with pytest.raises(Unauthorized, match="algorithm 'none' is not accepted"):
        await verifier.verify(unsigned)
    # The classic confusion: HMAC-sign with the issuer's *public* key as the secret.
    public_pem = idp.keys["k1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    forged = _hs256(claims, public_pem)
    with pytest.raises(Unauthorized, match="algorithm 'HS256' is not accepted"):
        await verifier.verify(forged)
    tampered = idp.token()
    head, _, sig = tampered.split(".")
    other = idp.token(tenant="globex").split(".")[1]
    with pytest.raises(Unauthorized, match="signature or claims are not valid"):
        await verifier.verify(f"{head}.{other}.{sig}")
    with pytest.raises(Unauthorized, match="not a valid JWT"):
        await verifier.verify("eyJub3QiOiJqc29u.x.y")
    with pytest.raises(ValueError, match="only asymmetric algorithms"):
        OidcSettings(issuer=ISSUER, audience=[AUDIENCE], jwks_url=JWKS_URL, algorithms=["HS256"])


def _hs256(claims: dict[str, Any], secret: bytes, *, alg: str = "HS256", kid: str = "k1") -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": alg, "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


async def test_key_rollover_refetches_once_and_unknown_keys_cannot_hammer_the_idp(
        idp: Idp, make: Callable[..., OidcVerifier]) -> None:
    verifier = make()
    await verifier.verify(idp.token())
    assert idp.fetches == 1
    await verifier.verify(idp.token())
    assert idp.fetches == 1, "the JWKS is cached"
    idp.add_rsa("k2")
    assert (await verifier.verify(idp.token(kid="k2"))).tenant == "acme"
    assert idp.fetches == 2, "an unknown kid triggers one refresh"
    idp.add_rsa("rogue", publish=False)
    for _ in range(5):
        with pytest.raises(Unauthorized, match="key the issuer does not publish"):
            await verifier.verify(idp.token(kid="rogue"))
    assert idp.fetches == 2, "refreshes are rate limited"


async def test_ec_keys_and_an_inline_jwks(idp: Idp) -> None:
    idp.keys["e1"] = ec.generate_private_key(ec.SECP256R1())
    idp.published.append("e1")
    jwks = idp.jwks()
    jwks["keys"][0]["alg"] = "RS256"  # k1 pinned to RS256
    jwks["keys"].append({"kty": "oct", "k": "c2VjcmV0", "kid": "sym"})  # never trusted
    verifier = OidcVerifier(OidcSettings(issuer=ISSUER, audience=[AUDIENCE], jwks=jwks,
                                         algorithms=["RS256", "PS256", "ES256"]))
    assert (await verifier.verify(idp.token(kid="e1", alg="ES256"))).id == "oidc:user-42"
    assert (await verifier.verify(idp.token(kid="k1", alg="RS256"))).id == "oidc:user-42"
    with pytest.raises(Unauthorized, match="does not match its signing key"):
        await verifier.verify(idp.token(kid="k1", alg="PS256"))
    with pytest.raises(Unauthorized, match="does not publish"):
        await verifier.verify(_hs256({"iss": ISSUER}, b"secret", alg="RS256", kid="sym"))


def test_settings_need_audience_jwks_and_tenant_source() -> None:
    with pytest.raises(ConfigError) as exc:
        OidcVerifier(OidcSettings(issuer=ISSUER, tenant_claim=None))
    text = str(exc.value)
    assert "AUDIENCE" in text and "JWKS" in text and "TENANT" in text
    env = OidcSettings.model_validate({"audience": "a, b", "algorithms": '["ES256"]'})
    assert env.audience == ["a", "b"] and env.algorithms == ["ES256"]
