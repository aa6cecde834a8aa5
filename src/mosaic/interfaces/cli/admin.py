"""``mosaic keys|tenants|usage|audit|db``: administration from the command line.

The CLI acts as the local operator (a platform admin); every change is still written to the
audit log. The database is ``--database-url`` / ``MOSAIC_DATABASE_URL``, else the embedded
SQLite file under ``--data-dir`` / ``MOSAIC_DATA_DIR``. Every command but ``db upgrade``
refuses a database that is not migrated.

Mount with ``register(app)`` (adds the five sub-apps to the main ``mosaic`` app).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import yaml
from rich.table import Table

from mosaic.config.schema import Settings
from mosaic.errors import InvalidRequest, MosaicError
from mosaic.gateway.context import Principal
from mosaic.interfaces.cli.output import err, fail, out, print_json
from mosaic.security.crypto import generate_key_line
from mosaic.store.engine import Database
from mosaic.store.migrate import check_migrated, current_revision, head_revision, upgrade
from mosaic.tenancy.runtime import Tenancy, keyring_source
from mosaic.tenancy.usage import to_csv

T = TypeVar("T")

keys_app = typer.Typer(no_args_is_help=True, help="API keys: create (shown once), list, revoke.")
tenants_app = typer.Typer(no_args_is_help=True, help="Tenants: create, list, configure providers.")
usage_app = typer.Typer(no_args_is_help=True, help="Usage records for billing.")
audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit log.")
db_app = typer.Typer(no_args_is_help=True, help="The database: migrations and credential keys.")

DbOpt = Annotated[str | None, typer.Option("--database-url", envvar="MOSAIC_DATABASE_URL",
                                           help="Database URL; default: SQLite under the data dir.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="MOSAIC_DATA_DIR",
                                                help="Data directory (embedded database, master key).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
TenantOpt = Annotated[str, typer.Option("--tenant", "-t", help="Tenant name.")]

OPERATOR = Principal(id="cli:operator", roles=("admin",))
_DURATION = re.compile(r"^(\d+)([mhdw])$")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
    app.add_typer(tenants_app, name="tenants")
    app.add_typer(usage_app, name="usage")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")


def _settings(database_url: str | None, data_dir: Path | None) -> Settings:
    s = Settings()
    return s.model_copy(update={k: v for k, v in (("database_url", database_url), ("data_dir", data_dir))
                                if v is not None})


@asynccontextmanager
async def _tenancy(database_url: str | None, data_dir: Path | None) -> AsyncIterator[Tenancy]:
    s = _settings(database_url, data_dir)
    db = await Database.open(settings=s)
    try:
        await check_migrated(db)
    except BaseException:
        await db.dispose()
        raise
    tenancy = Tenancy(db, data_dir=s.data_dir)
    try:
        yield tenancy
    finally:
        await tenancy.audit.close()
        await db.dispose()


def _run(fn: Callable[[Tenancy], Awaitable[T]], database_url: str | None, data_dir: Path | None,
         as_json: bool = False) -> T:
    async def main() -> T:
        async with _tenancy(database_url, data_dir) as tenancy:
            return await fn(tenancy)

    try:
        return asyncio.run(main())
    except MosaicError as exc:
        fail(exc, as_json=as_json)


def parse_when(value: str, *, field: str) -> datetime:
    """An ISO date/datetime (UTC when no offset is given)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(f"{field}: expected an ISO date or datetime such as 2026-01-31 or "
                             f"2026-01-31T12:00:00Z (got {value[:40]!r})") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def parse_expiry(value: str) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from now, or an ISO datetime."""
    m = _DURATION.match(value.strip())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        delta = {"m": timedelta(minutes=n), "h": timedelta(hours=n), "d": timedelta(days=n),
                 "w": timedelta(weeks=n)}[unit]
        return datetime.now(UTC) + delta
    return parse_when(value, field="--expires")


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title, title_justify="left", show_edge=False)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if v is None else str(v) for v in r))
    out.print(table)


def _jsonable(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str))


# ---------------------------------------------------------------------------------- keys
@keys_app.command("create")
def keys_create(tenant: TenantOpt, name: Annotated[str, typer.Option("--name", help="A label for the key.")],
                role: Annotated[list[str], typer.Option("--role", "-r", help="Role (repeatable).")],
                expires: Annotated[str | None, typer.Option(
                    "--expires", help="30d, 12h, 2w... from now, or an ISO datetime.")] = None,
                attr: Annotated[list[str] | None, typer.Option(
                    "--attr", help="Attribute key=value, e.g. region=eu (repeatable).")] = None,
                rpm: Annotated[int | None, typer.Option("--requests-per-minute", min=1)] = None,
                wpd: Annotated[int | None, typer.Option("--writes-per-day", min=1)] = None,
                database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Create an API key. Its secret is printed once and cannot be shown again."""
    attributes: dict[str, Any] = {}
    for item in attr or []:
        k, sep, v = item.partition("=")
        if not sep or not k:
            fail(InvalidRequest(f"--attr {item!r}: expected key=value"), as_json=as_json)
        attributes[k] = v
    quotas = {k: v for k, v in (("requestsPerMinute", rpm), ("writesPerDay", wpd)) if v is not None}

    async def run(t: Tenancy) -> Any:
        when = parse_expiry(expires) if expires else None
        return await t.admin.create_key(OPERATOR, tenant, name, role, expires_at=when, attributes=attributes,
                                        quotas=quotas)

    created = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable({"key": created.token, **created.record.public()}))
        return
    out.print(f"API key [bold]{created.record.id}[/] for tenant [bold]{tenant}[/] "
              f"(roles: {', '.join(created.record.roles)})")
    # The secret goes to stdout alone on its line (easy to capture); the warning to stderr.
    sys.stdout.write(created.token + "\n")
    err.print("[yellow]Store this key now: it is not kept and cannot be shown again.[/]")


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
              database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """API keys (id, roles, status, last use) — never their secrets."""
    async def run(t: Tenancy) -> list[dict[str, Any]]:
        if tenant is not None:
            records = await t.admin.list_keys(OPERATOR, tenant)
        else:
            records = await t.keys.list_keys()
        return [r.public() for r in records]

    rows = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(rows))
        return
    _table("API keys", ["id", "tenant", "name", "roles", "status", "expires", "last used"],
           [[r["prefix"] + "…", r["tenant"], r["name"], ",".join(r["roles"]), r["status"], r["expires_at"],
             r["last_used_at"]] for r in rows])


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key id (mk_<id>_..., or just <id>).")],
                tenant: TenantOpt, database_url: DbOpt = None, data_dir: DataDirOpt = None,
                as_json: JsonOpt = False) -> None:
    """Revoke an API key at once."""
    kid = key_id.removeprefix("mk_").split("_", 1)[0]

    async def run(t: Tenancy) -> dict[str, Any]:
        return (await t.admin.revoke_key(OPERATOR, tenant, kid)).public()

    record = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(record))
    else:
        out.print(f"revoked API key [bold]{record['id']}[/] of tenant {record['tenant']}")


# ---------------------------------------------------------------------------------- tenants
def _load_document(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRequest(f"{path}: invalid YAML/JSON: {getattr(exc, 'problem', exc)}") from None


def _settings_arg(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"--settings: invalid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InvalidRequest("--settings must be a JSON object")
    return data


SettingsOpt = Annotated[str | None, typer.Option(
    "--settings",
    help='JSON, e.g. \'{"quotas": {"requestsPerMinute": 600}, "residency": {"regions": ["eu"]}}\'')]


@tenants_app.command("create")
def tenants_create(name: Annotated[str, typer.Argument(help="Lowercase letters, digits and '-'.")],
                   display_name: Annotated[str, typer.Option("--display-name")] = "",
                   settings: SettingsOpt = None, database_url: DbOpt = None, data_dir: DataDirOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Create a tenant (it starts with embedded local providers under its own data directory)."""
    async def run(t: Tenancy) -> dict[str, Any]:
        info = await t.admin.create_tenant(OPERATOR, name, display_name=display_name,
                                           settings=_settings_arg(settings))
        return info.public()

    info = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(info))
    else:
        out.print(f"created tenant [bold]{info['name']}[/]")


@tenants_app.command("list")
def tenants_list(database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Every tenant with its status and settings."""
    async def run(t: Tenancy) -> list[dict[str, Any]]:
        return [i.public() for i in await t.admin.list_tenants(OPERATOR)]

    rows = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(rows))
        return
    _table("tenants", ["name", "status", "providers", "version", "settings"],
           [[r["name"], r["status"], "configured" if r["configured"] else "embedded", r["version"],
             json.dumps(r["settings"]) if r["settings"] else ""] for r in rows])


@tenants_app.command("show")
def tenants_show(name: str, database_url: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """A tenant's settings and stored provider config (credentials appear as references)."""
    async def run(t: Tenancy) -> dict[str, Any]:
        info = await t.admin.get_tenant(OPERATOR, name)
        return {**info.public(), "config": await t.admin.show_config(OPERATOR, name)}

    print_json(_jsonable(_run(run, database_url, data_dir, True)))


@tenants_app.command("configure")
def tenants_configure(name: str, file: Annotated[Path, typer.Argument(
                          help="YAML/JSON with plugins, routing, cache (as in the config file).")],
                      database_url: DbOpt = None, data_dir: DataDirOpt = None,
                      as_json: JsonOpt = False) -> None:
    """Store a tenant's provider configuration; credentials in it are encrypted at rest."""
    async def run(t: Tenancy) -> dict[str, Any]:
        document = await asyncio.to_thread(_load_document, file)
        return (await t.admin.configure(OPERATOR, name, document)).public()

    info = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(info))
    else:
        out.print(f"configured tenant [bold]{name}[/] (version {info['version']})")


@tenants_app.command("update")
def tenants_update(name: str, settings: SettingsOpt = None,
                   status: Annotated[str | None, typer.Option("--status", help="active or disabled")] = None,
                   database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Change a tenant's settings (the given top-level keys are replaced) or status."""
    async def run(t: Tenancy) -> dict[str, Any]:
        info = None
        if settings:
            info = await t.admin.update_settings(OPERATOR, name, _settings_arg(settings))
        if status:
            info = await t.admin.set_tenant_status(OPERATOR, name, status)
        if info is None:
            raise InvalidRequest("nothing to change: give --settings and/or --status")
        return info.public()

    info = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(_jsonable(info))
    else:
        out.print(f"updated tenant [bold]{name}[/] (version {info['version']})")


# ---------------------------------------------------------------------------------- usage
@usage_app.command("export")
def usage_export(since: Annotated[str, typer.Option("--from", help="Start (inclusive), ISO date/datetime.")],
                 until: Annotated[str, typer.Option("--to", help="End (exclusive), ISO date/datetime.")],
                 fmt: Annotated[str, typer.Option("--format", help="csv or json")] = "csv",
                 tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
                 output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
                 database_url: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Calls per tenant, principal, provider, operation and outcome, per minute, with durations."""
    if fmt not in ("csv", "json"):
        fail(InvalidRequest(f"--format must be csv or json (got {fmt!r})"))

    async def run(t: Tenancy) -> list[dict[str, Any]]:
        return await t.admin.usage_report(OPERATOR, tenant, parse_when(since, field="--from"),
                                          parse_when(until, field="--to"))

    rows = _run(run, database_url, data_dir)
    text = to_csv(rows) if fmt == "csv" else json.dumps(rows, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        err.print(f"{len(rows)} usage rows written to {output}")


# ---------------------------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
                 database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Recompute every hash chain; exit 1 and list the problems if anything was altered."""
    async def run(t: Tenancy) -> dict[str, Any]:
        return (await t.admin.audit_verify(OPERATOR, tenant)).to_dict()

    report = _run(run, database_url, data_dir, as_json)
    if as_json:
        print_json(report)
    else:
        for name, chain in report["chains"].items():
            mark = "[green]ok[/]" if chain["ok"] else "[red]TAMPERED[/]"
            out.print(f"{name}: {mark} — {chain['entries']} entries, head {chain['head_seq']} "
                      f"{(chain['head_hash'] or '')[:16]}")
            for problem in chain["problems"]:
                out.print(f"  [red]✗[/] {problem}")
        if not report["chains"]:
            out.print("the audit log is empty")
    if not report["ok"]:
        raise typer.Exit(1)


@audit_app.command("export")
def audit_export(tenant: Annotated[str | None, typer.Option("--tenant", "-t")] = None,
                 since: Annotated[str | None, typer.Option("--from")] = None,
                 until: Annotated[str | None, typer.Option("--to")] = None,
                 output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
                 database_url: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Entries as JSON lines (for a SIEM), hashes included so that the copy anchors the chain."""
    async def run(t: Tenancy) -> int:
        lines = await t.admin.audit_export(OPERATOR, tenant,
                                           since=parse_when(since, field="--from") if since else None,
                                           until=parse_when(until, field="--to") if until else None)
        count = 0
        sink = sys.stdout.buffer if output is None else await asyncio.to_thread(output.open, "wb")
        try:
            async for line in lines:
                sink.write(line)
                count += 1
            sink.flush()
        finally:
            if output is not None:
                sink.close()
        return count

    count = _run(run, database_url, data_dir)
    if output is not None:
        err.print(f"{count} audit entries written to {output}")


# ---------------------------------------------------------------------------------- db
@db_app.command("upgrade")
def db_upgrade(database_url: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Apply the database migrations (safe to run again, and from several replicas at once)."""
    async def main() -> tuple[str, str | None, str]:
        db = await Database.open(settings=_settings(database_url, data_dir))
        try:
            before, after = await upgrade(db)
            return db.display_url, before, after
        finally:
            await db.dispose()

    try:
        where, before, after = asyncio.run(main())
    except MosaicError as exc:
        fail(exc)
    if before == after:
        out.print(f"{where}: already at revision {after}")
    else:
        out.print(f"{where}: upgraded from {before or 'an empty database'} to revision {after}")


@db_app.command("status")
def db_status(database_url: DbOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """The database's revision and the one this version needs (exit 1 when behind)."""
    async def main() -> tuple[str, str | None]:
        db = await Database.open(settings=_settings(database_url, data_dir))
        try:
            return db.display_url, await current_revision(db)
        finally:
            await db.dispose()

    try:
        where, current = asyncio.run(main())
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    head = head_revision()
    if as_json:
        print_json({"database": where, "current": current, "required": head, "ok": current == head})
    else:
        out.print(f"{where}: revision {current or '(none)'}, required {head}")
    if current != head:
        raise typer.Exit(1)


@db_app.command("generate-master-key")
def db_generate_master_key(kid: Annotated[str | None, typer.Option("--kid", help="Key id.")] = None) -> None:
    """Print a new master key (``kid:base64``) for MOSAIC_MASTER_KEY or the key file."""
    sys.stdout.write(generate_key_line(kid) + "\n")


@db_app.command("rotate-credentials")
def db_rotate_credentials(all_keys: Annotated[bool, typer.Option(
                              "--all", help="Re-seal every credential, not only those under older keys.",
                          )] = False,
                          database_url: DbOpt = None, data_dir: DataDirOpt = None) -> None:
    """Re-encrypt stored provider credentials under the primary master key."""
    async def run(t: Tenancy) -> tuple[int, str]:
        s = _settings(database_url, data_dir)
        keyring = await asyncio.to_thread(keyring_source, s.data_dir, t.db.dialect)
        count = await t.tenants.rotate_credentials(keyring, all_keys=all_keys)
        return count, keyring.primary.kid

    count, kid = _run(run, database_url, data_dir)
    out.print(f"re-encrypted {count} credential(s) under master key {kid}")
