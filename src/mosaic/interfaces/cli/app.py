"""The ``mosaic`` command line: catalog, plugins, config, and calling any operation."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mosaic.catalog.registry import CATALOG
from mosaic.errors import InvalidRequest, MosaicError
from mosaic.interfaces.cli.output import err, fail, out, print_json, to_jsonable

app = typer.Typer(name="mosaic", no_args_is_help=True, add_completion=False,
                  help="MosAIc: one interface over git, CI/CD, docs and project-management services.")
ops_app = typer.Typer(no_args_is_help=True, help="The operation catalog.")
plugins_app = typer.Typer(no_args_is_help=True, help="Provider plugins.")
config_app = typer.Typer(no_args_is_help=True, help="Configuration files.")
app.add_typer(ops_app, name="ops")
app.add_typer(plugins_app, name="plugins")
app.add_typer(config_app, name="config")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", envvar="MOSAIC_CONFIG",
                                               help="YAML config; default: embedded local providers.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="MOSAIC_DATA_DIR",
                                                help="Data dir of the embedded local providers.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _orchestrator(config: Path | None, data_dir: Path | None) -> Any:
    from mosaic.api import Orchestrator
    from mosaic.config.schema import Settings

    if config is not None:
        return Orchestrator.from_file(config)
    return Orchestrator.embedded(data_dir or Settings().data_dir)


# ---------------------------------------------------------------- ops
@ops_app.command("list")
def ops_list(service: Annotated[str | None, typer.Option(help="Only this service.")] = None,
             as_json: JsonOpt = False) -> None:
    """List every operation of the catalog, grouped by service."""
    ops = [op for op in CATALOG.values() if service is None or op.service == service]
    if as_json:
        print_json([{
            "name": op.qualified_name, "tool": op.tool_name, "service": op.service,
            "description": op.summary, "read": op.is_read, "write": not op.is_read,
            "idempotent": op.safe_to_repeat, "destructive": op.destructive,
            "rest": {"method": op.rest.method, "path": "/v1" + op.rest.path},
            "params_schema": op.params.model_json_schema(),
            "result_schema": op.result.model_json_schema(),
        } for op in ops])
        return
    for svc in dict.fromkeys(op.service for op in ops):
        table = Table(title=f"{svc}", title_justify="left", show_edge=False)
        table.add_column("operation", style="bold cyan")
        table.add_column("kind")
        table.add_column("REST")
        table.add_column("description")
        for op in (o for o in ops if o.service == svc):
            kind = "read" if op.is_read else ("write, idempotent" if op.idempotent else "write")
            table.add_row(op.qualified_name, kind, f"{op.rest.method} /v1{op.rest.path}", op.summary)
        out.print(table)


# ---------------------------------------------------------------- plugins
@plugins_app.command("list")
def plugins_list(config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Installed provider plugins with their capabilities, and configured instances' health."""
    from mosaic.plugins.loader import PluginResolver

    rows: list[dict[str, Any]] = []
    for name, cls in PluginResolver().all_classes().items():
        if isinstance(cls, MosaicError):
            rows.append({"plugin": name, "error": cls.message})
        else:
            rows.append({"plugin": name, "provider": cls.provider, "service": cls.service,
                         "name": cls.name, "version": cls.version,
                         "capabilities": sorted(cls.capabilities()),
                         "unsupported": dict(cls.unsupported)})

    async def instances() -> list[dict[str, Any]]:
        orch = _orchestrator(config, data_dir)
        await orch.start()
        try:
            health = await orch.gateway.manager.health()
            res = [{"id": pid, "provider": p.provider, "service": p.service,
                    "health": health[pid].status, "detail": health[pid].detail}
                   for pid, p in orch.gateway.manager.plugins.items()]
            res += [{"id": pid, "provider": f.spec.provider, "service": f.spec.type,
                     "health": "failed", "detail": f.error}
                    for pid, f in orch.gateway.manager.failed.items()]
            return res
        finally:
            await orch.stop()

    try:
        inst = asyncio.run(instances())
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print_json({"installed": rows, "instances": inst})
        return
    table = Table(title="installed plugins", title_justify="left", show_edge=False)
    for col in ("plugin", "service", "version", "operations"):
        table.add_column(col)
    for r in rows:
        if "error" in r:
            table.add_row(r["plugin"], "-", "-", f"[red]{r['error']}[/]")
        else:
            total = len(CATALOG.names(r["service"]))
            table.add_row(r["plugin"], r["service"], r["version"], f"{len(r['capabilities'])}/{total}")
    out.print(table)
    itable = Table(title="configured instances", title_justify="left", show_edge=False)
    for col in ("id", "provider", "service", "health", "detail"):
        itable.add_column(col)
    colours = {"healthy": "green", "degraded": "yellow"}
    for r in inst:
        c = colours.get(r["health"], "red")
        itable.add_row(r["id"], r["provider"], r["service"], f"[{c}]{r['health']}[/]", r["detail"])
    out.print(itable)


@plugins_app.command("matrix")
def plugins_matrix() -> None:
    """Print the capability matrix (Markdown) of every installed plugin."""
    import sys

    from mosaic.plugins.matrix import render

    sys.stdout.write(render())


# ---------------------------------------------------------------- config
@config_app.command("validate")
def config_validate(file: Path, as_json: JsonOpt = False) -> None:
    """Check a config file; report every problem at once (file:line, key path, expectation)."""
    from mosaic.config.loader import load_config
    from mosaic.errors import ConfigError

    try:
        cfg = load_config(file)
    except ConfigError as exc:
        if as_json:
            print_json({"valid": False, "problems": exc.problems})
        else:
            for p in exc.problems:
                err.print(f"[red]✗[/] {p}", highlight=False, soft_wrap=True)
            err.print(f"{len(exc.problems)} problem(s) in {file}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
    n = len(cfg.orchestration.plugins)
    if as_json:
        print_json({"valid": True, "plugins": n})
    else:
        out.print(f"[green]✓[/] {file}: valid ({n} plugin(s))", highlight=False)


# ---------------------------------------------------------------- call
def parse_assignments(items: list[str]) -> dict[str, Any]:
    """``key=value`` keeps a string (pydantic converts it to the field's type);
    ``key:=json`` takes a JSON value, as in HTTPie."""
    params: dict[str, Any] = {}
    for item in items:
        if ":=" in item and item.index(":=") < item.index("=") + 1:
            key, _, value = item.partition(":=")
            try:
                params[key] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"{key}: not valid JSON after ':=' ({exc.msg})") from None
        elif "=" in item:
            key, _, value = item.partition("=")
            params[key] = value
        else:
            raise InvalidRequest(f"expected key=value or key:=json, got {item!r}")
        if not key:
            raise InvalidRequest(f"missing parameter name in {item!r}")
    return params


@app.command("call")
def call(operation: Annotated[str, typer.Argument(help="SERVICE.OPERATION, e.g. git.get_repository")],
         assignments: Annotated[list[str] | None, typer.Argument(help="key=value or key:=json")] = None,
         json_params: Annotated[str | None, typer.Option("--params", "--json-params",
                                                         help="All params as one JSON object.")] = None,
         plugin: Annotated[str | None, typer.Option("--plugin", help="Provider instance id.")] = None,
         config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False,
         raw: Annotated[bool, typer.Option("--raw", help="Include providers' raw payloads.")] = False,
         ) -> None:
    """Run one catalog operation in-process through Gateway.execute."""
    from mosaic.gateway.context import RequestContext

    try:
        op = CATALOG.resolve(operation)
        params: dict[str, Any] = {}
        if json_params:
            try:
                loaded = json.loads(json_params)
            except json.JSONDecodeError as exc:
                raise InvalidRequest(f"--params is not valid JSON: {exc.msg}") from None
            if not isinstance(loaded, dict):
                raise InvalidRequest("--params must be a JSON object")
            params.update(loaded)
        params.update(parse_assignments(assignments or []))

        orch = _orchestrator(config, data_dir)
        # Validate before starting any provider, so a typo costs nothing.
        prepared = orch.gateway.prepare(op, params, RequestContext(plugin=plugin))

        async def run() -> Any:
            await orch.start()
            try:
                return await orch.gateway.run(prepared)
            finally:
                await orch.stop()

        result = asyncio.run(run())
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    data = to_jsonable(result, raw=raw)
    if as_json:
        print_json(data)
    else:
        out.print_json(data=data)


def _mount_optional() -> None:
    """Sub-commands owned by other modules (routing, serving) attach themselves here."""
    import importlib

    try:
        route = importlib.import_module("mosaic.interfaces.cli.route")
        app.add_typer(route.app, name="route", help="Routing rules: explain decisions, switch phases.")
    except ModuleNotFoundError:
        pass
    serve = importlib.import_module("mosaic.interfaces.cli.serve")
    serve.register(app)
    admin = importlib.import_module("mosaic.interfaces.cli.admin")
    admin.register(app)
    try:
        status = importlib.import_module("mosaic.interfaces.cli.status")
        app.add_typer(status.app, name="status", help="Breakers, limits, cache and Redis health.")
    except ModuleNotFoundError:
        pass


_mount_optional()


def main() -> None:
    import logging

    from mosaic.security.redaction import install_log_redaction

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    app()
