"""GitHub App authentication through the plugin: the app JWT (signed with a freshly generated RSA
key and verified by the fake with the public half) is exchanged for an installation token, which is
reused, renewed before it expires, and dropped after a 401."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tests.providers.github.fake import GitHubFake
from tests.providers.github.spec import github_spec
from tests.support.spec_validation import SpecValidatingTransport

from mosaic.catalog import git as g
from mosaic.errors import ConfigError, InvalidRequest, Unauthorized
from mosaic.gateway.context import RequestContext
from mosaic.providers.github.git import GitHubGitPlugin

APP_ID = "271828"
INSTALLATION = 31415


@cache
def keypair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@dataclass
class AppEnv:
    fake: GitHubFake
    plugin: GitHubGitPlugin
    transport: SpecValidatingTransport


@pytest.fixture
async def app(spec_transport: Callable[..., SpecValidatingTransport]) -> AsyncIterator[AppEnv]:
    private, public = keypair()
    fake = GitHubFake()
    fake.add_user("alice", "ghp_alice")
    fake.add_org("acme", ["alice"])
    fake.add_installation(INSTALLATION, APP_ID, public, account="acme")
    fake.seed_repo("acme", "api", {"README.md": "hi\n"}, private=True)
    fake.seed_repo("alice", "elsewhere", {"README.md": "hi\n"}, private=True)
    transport = spec_transport(github_spec(), fake.transport())
    plugin = GitHubGitPlugin("github-app", transport=transport, clock=lambda: fake.now)
    await plugin.initialize(
        GitHubGitPlugin.Config.model_validate(
            {
                "auth": {
                    "type": "app",
                    "appId": int(APP_ID),
                    "privateKey": private,
                    "installationId": INSTALLATION,
                }
            }
        )
    )
    await plugin.start()
    yield AppEnv(fake, plugin, transport)
    await plugin.dispose()


async def test_installation_token_is_fetched_reused_and_renewed_before_expiry(app: AppEnv) -> None:
    ctx = RequestContext()
    repo = await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), ctx)
    assert repo.private and app.fake.tokens_issued == 1
    exchange, call = app.transport.requests[:2]
    assert exchange.url.path == f"/app/installations/{INSTALLATION}/access_tokens"
    claims = jwt.decode(
        exchange.headers["authorization"].split()[1],
        keypair()[1],
        algorithms=["RS256"],
        options={"verify_exp": False, "verify_iat": False},
    )  # the fake's clock is not now
    assert claims["iat"] <= app.fake.now < claims["exp"]
    assert claims["iss"] == APP_ID and claims["exp"] - claims["iat"] <= 600
    assert call.headers["authorization"] == "Bearer ghs_fake0001" + str(INSTALLATION)

    app.fake.now += 30 * 60  # half-way: the token is reused
    await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), ctx)
    assert app.fake.tokens_issued == 1

    app.fake.now += 26 * 60  # 56 min: still valid for 4 min, inside the renewal margin
    first_token = app.transport.requests[-1].headers["authorization"].split()[1]
    assert app.fake.installation_tokens[first_token][1] > app.fake.now  # not expired yet...
    await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), ctx)
    assert app.fake.tokens_issued == 2  # ...but renewed before it was
    assert app.transport.requests[-1].headers["authorization"] == "Bearer ghs_fake0002" + str(INSTALLATION)


async def test_a_revoked_token_is_dropped_after_the_401(app: AppEnv) -> None:
    await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), RequestContext())
    app.fake.installation_tokens.clear()  # revoked on GitHub's side
    with pytest.raises(Unauthorized):
        await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), RequestContext())
    await app.plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), RequestContext())
    assert app.fake.tokens_issued == 2


async def test_installation_scope(app: AppEnv) -> None:
    ctx = RequestContext()
    listed = await app.plugin.list_repositories(g.ListRepositoriesParams(), ctx)
    assert [r.full_name for r in listed.items] == ["acme/api"]
    assert ("GET", "/installation/repositories") in app.transport.calls()
    created = await app.plugin.create_repository(g.CreateRepositoryParams(name="svc", owner="acme"), ctx)
    assert created.full_name == "acme/svc"
    with pytest.raises(InvalidRequest, match="organization"):
        await app.plugin.create_repository(g.CreateRepositoryParams(name="svc2"), ctx)
    assert ("GET", "/user") not in app.transport.calls()  # an installation has no user


async def test_a_wrong_key_fails_with_a_clear_message(
    spec_transport: Callable[..., SpecValidatingTransport],
) -> None:
    other = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    fake = GitHubFake()
    fake.add_org("acme", [])
    fake.add_installation(INSTALLATION, APP_ID, keypair()[1], account="acme")
    plugin = GitHubGitPlugin(
        "gh", transport=spec_transport(github_spec(), fake.transport()), clock=lambda: fake.now
    )
    await plugin.initialize(
        GitHubGitPlugin.Config.model_validate(
            {"auth": {"type": "app", "appId": APP_ID, "privateKey": other, "installationId": INSTALLATION}}
        )
    )
    await plugin.start()
    with pytest.raises(Unauthorized, match="GitHub App authentication failed") as caught:
        await plugin.get_repository(g.GetRepositoryParams(repo="acme/api"), RequestContext())
    assert "PRIVATE KEY" not in str(caught.value.to_dict())
    await plugin.dispose()


async def test_private_key_from_a_file_and_a_broken_key(tmp_path: Path) -> None:
    pem = tmp_path / "app.pem"
    pem.write_text(keypair()[0])
    plugin = GitHubGitPlugin("gh")
    await plugin.initialize(
        GitHubGitPlugin.Config.model_validate(
            {
                "auth": {
                    "type": "app",
                    "appId": APP_ID,
                    "privateKeyPath": str(pem),
                    "installationId": INSTALLATION,
                }
            }
        )
    )
    await plugin.start()  # reads and checks the key; no request yet
    await plugin.dispose()
    pem.write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    broken = GitHubGitPlugin("gh")
    await broken.initialize(
        GitHubGitPlugin.Config.model_validate(
            {
                "auth": {
                    "type": "app",
                    "appId": APP_ID,
                    "privateKeyPath": str(pem),
                    "installationId": INSTALLATION,
                }
            }
        )
    )
    with pytest.raises(ConfigError, match="not a valid PEM RSA key"):
        await broken.start()
