"""``mosaic keys|tenants|usage|audit|db`` end to end on a fresh SQLite and PostgreSQL database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from tests.store.dbfixtures import _run, create_pg_database, drop_pg_database, pg_url
from typer.testing import CliRunner

from mosaic.interfaces.cli.admin import register
from mosaic.security.crypto import generate_key_line

SECRET = "glpat-CLIsecretToken000111222"


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    register(root)
    return root


@pytest.fixture
def env(backend: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A fresh, unmigrated database of the backend, through the environment the CLI reads."""
    data = tmp_path / "data"
    base = {"MOSAIC_DATA_DIR": str(data), "MOSAIC_DATABASE_URL": "", "MOSAIC_MASTER_KEY": "",
            "MOSAIC_MASTER_KEY_FILE": ""}
    if backend == "sqlite":
        yield base
        return
    name = _run(create_pg_database())
    try:
        yield {**base, "MOSAIC_DATABASE_URL": pg_url(name), "MOSAIC_MASTER_KEY": generate_key_line("cli-k1")}
    finally:
        _run(drop_pg_database(name))


def call(app: typer.Typer, env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, list(args), env={**env, "COLUMNS": "300"})
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.output}\n{result.exception!r}"
    return result.output


def test_the_admin_commands_end_to_end(app: typer.Typer, env: dict[str, str], tmp_path: Path) -> None:
    refused = call(app, env, "keys", "list", code=10)
    assert "run `mosaic db upgrade`" in refused
    call(app, env, "db", "status", code=1)
    assert "upgraded from an empty database to revision" in call(app, env, "db", "upgrade")
    assert "already at revision" in call(app, env, "db", "upgrade")
    call(app, env, "db", "status")

    call(app, env, "tenants", "create", "acme", "--settings", '{"quotas": {"requestsPerMinute": 600}}')
    call(app, env, "tenants", "create", "acme", code=5)
    assert "tenant name" in call(app, env, "tenants", "create", "Bad Name", code=2)
    tenants = json.loads(call(app, env, "tenants", "list", "--json"))
    assert [t["name"] for t in tenants] == ["acme"]
    assert tenants[0]["settings"] == {"quotas": {"requestsPerMinute": 600}}

    out = call(app, env, "keys", "create", "--tenant", "acme", "--name", "ci", "--role", "developer",
               "--expires", "30d", "--attr", "region=eu", "--requests-per-minute", "10")
    token = next(line for line in out.splitlines() if line.startswith("mk_"))
    key_id = token.split("_")[1]
    listed = call(app, env, "keys", "list", "--tenant", "acme", "--json")
    assert token.split("_", 2)[2] not in listed
    record = json.loads(listed)[0]
    assert (record["id"], record["roles"], record["attributes"], record["quotas"], record["status"]) == \
        (key_id, ["developer"], {"region": "eu"}, {"requestsPerMinute": 10}, "active")
    assert "unknown role" in call(app, env, "keys", "create", "-t", "acme", "--name", "x", "-r", "boss", code=2)
    assert "revoked" in call(app, env, "keys", "revoke", token, "--tenant", "acme")
    assert json.loads(call(app, env, "keys", "list", "--json"))[0]["status"] == "revoked"

    doc = tmp_path / "acme.yaml"
    doc.write_text(f"""
plugins:
  - id: forge
    type: git
    provider: gitea
    config:
      baseUrl: https://gitea.example.test/api/v1
      auth: {{type: token, token: "{SECRET}"}}
""")
    assert "configured tenant acme" in call(app, env, "tenants", "configure", "acme", str(doc))
    shown = call(app, env, "tenants", "show", "acme")
    assert SECRET not in shown and '"$credential": "forge/auth.token"' in shown
    call(app, env, "tenants", "update", "acme", "--status", "disabled")
    call(app, env, "tenants", "update", "acme", code=2)

    new_primary = generate_key_line("cli-k2")
    old = env["MOSAIC_MASTER_KEY"] or (Path(env["MOSAIC_DATA_DIR"]) / "master.key").read_text().strip()
    rotated = call(app, {**env, "MOSAIC_MASTER_KEY": f"{new_primary},{old}"}, "db", "rotate-credentials")
    assert "re-encrypted 1 credential(s) under master key cli-k2" in rotated
    assert len(call(app, env, "db", "generate-master-key").strip().split(":")) == 2

    report = json.loads(call(app, env, "audit", "verify", "--json"))
    assert report["ok"] and report["chains"]["acme"]["entries"] >= 6
    export = tmp_path / "audit.jsonl"
    call(app, env, "audit", "export", "--tenant", "acme", "-o", str(export))
    actions = [json.loads(line)["action"] for line in export.read_text().splitlines()]
    assert actions[:4] == ["tenants.create", "tenants.create", "keys.create", "keys.list"]
    assert SECRET not in export.read_text()

    csv_text = call(app, env, "usage", "export", "--from", "2020-01-01", "--to", "2100-01-01", "--format", "csv")
    assert csv_text.splitlines()[0] == "tenant,bucket,principal,provider,operation,effect,outcome,count,total_ms,max_ms"
    assert json.loads(call(app, env, "usage", "export", "--from", "2020-01-01", "--to", "2100-01-01",
                           "--format", "json")) == []
    assert "--from must be before --to" in call(app, env, "usage", "export", "--from", "2030-01-01", "--to",
                                                 "2020-01-01", code=2)
    assert "expected an ISO date" in call(app, env, "usage", "export", "--from", "yesterday", "--to",
                                          "2020-01-01", code=2)
