"""Building the tenancy stack from settings, as the HTTP app factory and ``serve`` do."""

from __future__ import annotations

from pathlib import Path

import pytest

from mosaic.config.schema import Settings
from mosaic.interfaces.auth import ApiKeys as StaticKeys
from mosaic.store import StoreNotMigrated
from mosaic.tenancy.runtime import Tenancy


async def test_open_from_settings_on_a_migrated_database(db_url: str, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOSAIC_OIDC_ISSUER", raising=False)
    settings = Settings(data_dir=tmp_path / "data", database_url=db_url)
    tenancy = await Tenancy.open(settings, static_keys=StaticKeys.of(["operator-key"]))
    await tenancy.start()
    try:
        me = await tenancy.authenticator.authenticate("Bearer operator-key")
        assert (me.tenant, me.method) == ("default", "static_key")
        assert [t.name for t in await tenancy.tenants.list_tenants()] == ["default"]
    finally:
        await tenancy.stop()


async def test_an_unmigrated_database_is_refused_at_open_and_at_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    with pytest.raises(StoreNotMigrated, match="run `mosaic db upgrade` first"):
        await Tenancy.open(settings)
    tenancy = Tenancy.build(settings)
    try:
        with pytest.raises(StoreNotMigrated):
            await tenancy.start(check=True)
    finally:
        await tenancy.db.dispose()
