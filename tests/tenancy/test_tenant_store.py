"""Tenants in the store: names, settings, provider config with credentials encrypted at rest,
${VAR} references, confinement of paths, refusal of code loading and exec, key rotation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from mosaic.errors import ConfigError, Conflict, Forbidden, InvalidRequest, NotFound
from mosaic.security.crypto import DecryptionFailed, Keyring, generate_key_line
from mosaic.store.engine import Database
from mosaic.store.models import Credential
from mosaic.tenancy.tenants import Tenants

TOKEN = "ghp_TENANTSECRET0123456789abcdefghijklmn"
GITEA = {"plugins": [{"id": "forge", "type": "git", "provider": "gitea", "default": True,
                      "config": {"baseUrl": "https://gitea.example.test/api/v1",
                                 "auth": {"type": "token", "token": TOKEN}}}]}


@pytest.fixture
async def tenants(db: Database, tmp_path: Path, keyring: Keyring) -> Tenants:
    t = Tenants(db, tmp_path / "data", keyring)
    await t.create("acme", display_name="Acme")
    await t.create("globex")
    return t


async def test_names_are_validated_and_unique(tenants: Tenants) -> None:
    for bad in ("", "Acme", "-x", "a" * 64, "a/b", "é"):
        with pytest.raises(InvalidRequest, match="tenant name"):
            await tenants.create(bad)
    with pytest.raises(Conflict, match="already exists"):
        await tenants.create("acme")
    assert [t.name for t in await tenants.list_tenants()] == ["acme", "globex"]
    with pytest.raises(NotFound):
        await tenants.get("nobody")
    assert await tenants.version("nobody") is None


async def test_settings_are_validated_and_every_change_bumps_the_version(tenants: Tenants) -> None:
    before = (await tenants.get("acme")).version
    info = await tenants.update_settings("acme", {"quotas": {"requestsPerMinute": 10},
                                                  "residency": {"regions": ["EU"], "providers": {"g": "eu"}}})
    assert info.version == before + 1
    assert info.settings.quotas.requests_per_minute == 10 and info.settings.residency is not None
    assert info.settings.residency.regions == ["eu"]
    with pytest.raises(InvalidRequest, match=r"quotas\.requestsPerMinute"):
        await tenants.update_settings("acme", {"quotas": {"requestsPerMinute": 0}})
    with pytest.raises(InvalidRequest, match="unknownKey"):
        await tenants.update_settings("acme", {"unknownKey": 1})
    assert (await tenants.set_status("acme", "disabled")).version == before + 2
    with pytest.raises(InvalidRequest):
        await tenants.set_status("acme", "deleted")


async def test_credentials_are_sealed_and_the_stored_document_holds_references(tenants: Tenants,
                                                                               db: Database) -> None:
    await tenants.configure("acme", GITEA)
    stored = await tenants.stored_config("acme")
    assert stored is not None
    assert stored["plugins"][0]["config"]["auth"] == {"type": "token", "token": {"$credential": "forge/auth.token"}}
    async with db.read() as s:
        rows = (await s.execute(text("SELECT * FROM tenants"))).all() + \
            (await s.execute(text("SELECT tenant, name, master_key_id FROM credentials"))).all()
        blob = (await s.scalars(select(Credential.ciphertext))).one()
    assert TOKEN not in repr(rows) and TOKEN.encode() not in blob
    state = await tenants.state("acme")
    spec = state.config.orchestration.plugins[0]
    assert spec.config["auth"]["token"] == TOKEN, "decrypted in memory for the gateway"
    assert TOKEN not in repr(state.config) + repr(spec), "but masked in every repr"


async def test_resubmitting_the_shown_document_keeps_secrets_and_dropping_them_deletes(tenants: Tenants,
                                                                                      db: Database) -> None:
    await tenants.configure("acme", GITEA)
    shown = await tenants.stored_config("acme")
    assert shown is not None
    shown["plugins"][0]["config"]["timeoutMs"] = 5000
    await tenants.configure("acme", {"orchestration": shown})
    state = await tenants.state("acme")
    assert state.config.orchestration.plugins[0].config["auth"]["token"] == TOKEN
    with pytest.raises(InvalidRequest, match="not stored"):
        await tenants.configure("globex", {"orchestration": shown})
    await tenants.configure("acme", {"plugins": []})
    async with db.read() as s:
        assert (await s.scalars(select(Credential.name))).all() == []


async def test_env_references_stay_references_and_are_restricted(tenants: Tenants) -> None:
    doc: dict[str, Any] = {"plugins": [{"id": "forge", "type": "git", "provider": "gitea", "config": {
        "baseUrl": "https://gitea.example.test/api/v1",
        "auth": {"type": "token", "token": "${MOSAIC_TENANT_ACME_GITEA_TOKEN}"}}}]}
    await tenants.configure("acme", doc)
    stored = await tenants.stored_config("acme")
    assert stored is not None
    assert stored["plugins"][0]["config"]["auth"]["token"] == "${MOSAIC_TENANT_ACME_GITEA_TOKEN}"
    state = await tenants.state("acme", env={"MOSAIC_TENANT_ACME_GITEA_TOKEN": "from-env"})
    assert state.config.orchestration.plugins[0].config["auth"]["token"] == "from-env"
    with pytest.raises(ConfigError, match="MOSAIC_TENANT_ACME_GITEA_TOKEN is not set"):
        await tenants.state("acme", env={})
    doc["plugins"][0]["config"]["auth"]["token"] = "${MOSAIC_MASTER_KEY}"
    with pytest.raises(Forbidden, match="not an environment variable this tenant may use"):
        await tenants.configure("acme", doc)
    with pytest.raises(Forbidden):
        await tenants.configure("globex", {"plugins": [{**doc["plugins"][0], "config": {
            **doc["plugins"][0]["config"], "auth": {"type": "token", "token": "${MOSAIC_TENANT_ACME_X}"}}}]})
    await tenants.update_settings("globex", {"envAllow": ["SHARED_CI_*"]})
    doc["plugins"][0]["config"]["auth"]["token"] = "${SHARED_CI_TOKEN}"
    await tenants.configure("globex", doc)


@pytest.mark.parametrize(("change", "error", "message"), [
    ({"module": "evil.module:Plugin"}, Forbidden, "reserved for the operator"),
    ({"config": {"dataDir": "/etc"}}, Forbidden, "inside the tenant's own data directory"),
    ({"config": {"dataDir": "../globex"}}, Forbidden, "inside the tenant's own data directory"),
    ({"config": {"allowExec": True}}, Forbidden, "allowExec"),
    ({"config": {"nonsense": 1}}, InvalidRequest, "unknown key"),
    ({"provider": "nosuch"}, InvalidRequest, "no provider plugin 'nosuch.cicd' is installed"),
])
async def test_dangerous_or_invalid_plugin_configs_are_refused(tenants: Tenants, change: dict[str, Any],
                                                               error: type[Exception], message: str) -> None:
    spec = {"id": "ci", "type": "cicd", "provider": "local", **change}
    with pytest.raises(error, match=message):
        await tenants.configure("acme", {"plugins": [spec]})


async def test_local_providers_live_in_the_tenants_own_directory(tenants: Tenants, tmp_path: Path) -> None:
    await tenants.configure("acme", {"plugins": [
        {"id": "git", "type": "git", "provider": "local", "default": True},
        {"id": "docs", "type": "docs", "provider": "local", "config": {"dataDir": "docs-data"}}]})
    state = await tenants.state("acme")
    root = (tmp_path / "data" / "tenants" / "acme").resolve()
    dirs = [Path(p.config["dataDir"]) for p in state.config.orchestration.plugins]
    assert dirs == [root, root / "docs-data"]
    default = await tenants.state("globex")
    assert {Path(p.config["dataDir"]) for p in default.config.orchestration.plugins} == \
        {(tmp_path / "data" / "tenants" / "globex").resolve()}
    await tenants.update_settings("globex", {"allowExec": True})
    await tenants.configure("globex", {"plugins": [{"id": "ci", "type": "cicd", "provider": "local",
                                                    "config": {"allowExec": True}}]})


async def test_rotation_reseals_under_the_new_primary_and_ciphertexts_do_not_move(tenants: Tenants,
                                                                                 db: Database,
                                                                                 keyring: Keyring) -> None:
    await tenants.configure("acme", GITEA)
    await tenants.configure("globex", GITEA)
    new = Keyring.parse(",".join([generate_key_line("test-k2"), *(f"{k.kid}:{_b64(k.key)}"
                                                                  for k in keyring.keys.values())]), "t")
    assert await tenants.rotate_credentials(new) == 2
    assert await tenants.rotate_credentials(new) == 0
    async with db.read() as s:
        assert set((await s.scalars(select(Credential.master_key_id))).all()) == {"test-k2"}
    only_new = Keyring.parse(f"test-k2:{_b64(new.primary.key)}", "t")
    rotated = Tenants(db, tenants.data_dir, only_new)
    assert (await rotated.state("acme")).config.orchestration.plugins[0].config["auth"]["token"] == TOKEN
    # Copying one tenant's ciphertext over another's does not hand the secret over.
    async with db.transaction() as s:
        acme = await s.get(Credential, ("acme", "forge/auth.token"))
        globex = await s.get(Credential, ("globex", "forge/auth.token"))
        assert acme is not None and globex is not None
        globex.ciphertext = acme.ciphertext
    with pytest.raises(DecryptionFailed):
        await rotated.state("globex")


def _b64(key: bytes) -> str:
    import base64

    return base64.b64encode(key).decode()
