"""``mosaic serve`` (REST + GraphQL + MCP over HTTP) and ``mosaic mcp`` (MCP over stdio).

``register(app)`` adds both commands to the main Typer app. The module also runs on
its own: ``python -m mosaic.interfaces.cli.serve serve --port 8080``.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import mosaic
from mosaic.config.schema import MosaicConfig, Settings
from mosaic.errors import MosaicError

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar="MOSAIC_CONFIG", help="YAML config; default: embedded local providers.")]
DataDirOpt = Annotated[Path | None, typer.Option(
    "--data-dir", envvar="MOSAIC_DATA_DIR", help="Data dir of the embedded local providers.")]
ToolsetsOpt = Annotated[str | None, typer.Option(
    "--toolsets", help="Only these services' tools, comma-separated: git,cicd,docs,project (or all).")]
ToolsOpt = Annotated[str | None, typer.Option(
    "--tools", help="Also (or only) these tools, comma-separated, e.g. git_get_repository,git_get_file.")]
ReadOnlyOpt = Annotated[bool, typer.Option("--read-only", help="Hide every tool that writes.")]
FullOpt = Annotated[bool, typer.Option(
    "--full-results", help="Return results with the provider's raw payload and empty fields.")]


def _fail(message: str, code: int = 2) -> typer.Exit:
    print(f"error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _load(config: Path | None) -> MosaicConfig | None:
    if config is None:
        return None
    from mosaic.config.loader import load_config

    return load_config(config)


def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to bind; default server.host or 127.0.0.1.")] = None,
    port: Annotated[int | None, typer.Option(help="Port; default server.port or 8080.")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    graceful_timeout: Annotated[int, typer.Option(
        min=0, help="Seconds to let in-flight requests finish on shutdown.")] = 30,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
    proxy_headers: Annotated[bool, typer.Option(
        help="Trust X-Forwarded-For/-Proto from --forwarded-allow-ips (behind a reverse proxy).")] = False,
    forwarded_allow_ips: Annotated[str, typer.Option(
        help="Proxy addresses whose X-Forwarded-* headers are trusted.")] = "127.0.0.1",
    tenancy: Annotated[bool, typer.Option(
        "--tenancy", envvar="MOSAIC_TENANCY",
        help="Serve the tenants of the database (MOSAIC_DATABASE_URL, default SQLite in the data "
             "dir): their API keys/OIDC, RBAC, quotas, usage and audit. Run `mosaic db upgrade` first.",
    )] = False,
) -> None:
    """Serve REST (/v1), GraphQL (/graphql), MCP (/mcp), /openapi.json, /healthz and /readyz."""
    import uvicorn

    from mosaic.interfaces.auth import ApiKeys, is_loopback
    from mosaic.interfaces.http_app import BIND_HOST_ENV, MCP_STATELESS_ENV, TENANCY_ENV
    from mosaic.state.redis import RedisState

    try:
        cfg = _load(config)
    except MosaicError as exc:
        raise _fail(exc.message) from None
    settings = Settings()
    keys = ApiKeys.from_config(cfg, settings)
    bind = host or (cfg.server.host if cfg else "127.0.0.1")
    bind_port = port if port is not None else (cfg.server.port if cfg else 8080)
    if tenancy:
        import asyncio

        from mosaic.store import redact_url, require_migrated, resolve_url

        if data_dir is not None:
            os.environ["MOSAIC_DATA_DIR"] = str(data_dir.resolve())
            settings = Settings()
        try:
            asyncio.run(require_migrated(settings))
        except MosaicError as exc:
            raise _fail(exc.message) from None
    try:
        # Read again by every worker: a bad value fails here, with a message, not in a traceback.
        RedisState.from_env()
    except MosaicError as exc:
        raise _fail(exc.message) from None
    if not keys.enabled and not tenancy and not is_loopback(bind):
        raise _fail(f"refusing to listen on {bind} without an API key: set MOSAIC_API_KEYS or "
                    "server.apiKeys in the config, or bind 127.0.0.1")

    # Workers build the app from the environment (uvicorn imports the factory in each).
    if config is not None:
        os.environ["MOSAIC_CONFIG"] = str(config.resolve())
    else:
        os.environ.pop("MOSAIC_CONFIG", None)
        if data_dir is not None:
            os.environ["MOSAIC_DATA_DIR"] = str(data_dir.resolve())
    os.environ[BIND_HOST_ENV] = bind
    # An MCP session lives in one process; with several workers each request must stand alone.
    os.environ[MCP_STATELESS_ENV] = "1" if workers > 1 else "0"
    os.environ[TENANCY_ENV] = "1" if tenancy else "0"

    shown = f"[{bind}]" if ":" in bind else bind
    providers = f"config {config}" if config else \
        f"embedded local providers (data dir {(data_dir or settings.data_dir).resolve()})"
    auth = (f"bearer API keys ({len(keys.digests)} configured)" if keys.enabled
            else "none: no API key configured, so listening on loopback only")
    if tenancy:
        auth = (f"tenant API keys / OIDC from {redact_url(resolve_url(settings=settings))}"
                + (f" + {len(keys.digests)} static key(s)" if keys.enabled else ""))
    banner = [
        f"MosAIc {mosaic.__version__} on http://{shown}:{bind_port}",
        "  REST /v1   GraphQL /graphql   MCP /mcp   OpenAPI /openapi.json   health /healthz /readyz",
        f"  providers: {providers}",
        f"  auth: {auth}",
        f"  workers: {workers}"
        + ("  (MCP served stateless: no sessions across workers)" if workers > 1 else ""),
    ]
    print("\n".join(banner), file=sys.stderr, flush=True)

    uvicorn.run(
        "mosaic.interfaces.http_app:app_from_env", factory=True,
        host=bind, port=bind_port, workers=workers,
        loop="uvloop", http="httptools", lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
        log_level=log_level.lower(), access_log=access_log, log_config=_log_config(log_level),
        # Off unless asked for: parsing forwarded headers costs ~5% of a request's CPU and
        # nothing here builds absolute URLs or logs client addresses by default.
        proxy_headers=proxy_headers, forwarded_allow_ips=forwarded_allow_ips,
    )


def mcp(
    toolsets: ToolsetsOpt = None,
    tools: ToolsOpt = None,
    read_only: ReadOnlyOpt = False,
    full_results: FullOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    log_level: Annotated[str, typer.Option(help="Log level (logs go to stderr).")] = "warning",
) -> None:
    """Serve MCP over stdio (for Claude Desktop, VS Code and other local agents)."""
    from mosaic.api import Orchestrator
    from mosaic.interfaces.mcp.server import Mode
    from mosaic.interfaces.mcp.stdio import serve_stdio
    from mosaic.interfaces.mcp.tools import ToolFilter, build_tools

    # stdout carries the protocol: every log line goes to stderr.
    logging.basicConfig(stream=sys.stderr, level=log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from mosaic.catalog.registry import CATALOG

        flt = ToolFilter.parse(toolsets, tools, read_only, build_tools(CATALOG.values()))
        orch = Orchestrator.from_file(config) if config else \
            Orchestrator.embedded(data_dir or Settings().data_dir)
        asyncio.run(serve_stdio(orch, Mode(filter=flt, compact=not full_results)))
    except MosaicError as exc:
        raise _fail(exc.message) from None
    except KeyboardInterrupt:
        pass


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("mcp")(mcp)


def mcp_main() -> None:
    """``python -m mosaic.interfaces.mcp``: the ``mcp`` command alone."""
    typer.run(mcp)


def _log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, plus MosAIc's own loggers at ``--log-level``, every handler redacting
    credentials (tokens, keys, passwords, Authorization headers) before anything is written."""
    from uvicorn.config import LOGGING_CONFIG

    cfg = copy.deepcopy(LOGGING_CONFIG)
    cfg["filters"] = {"redact": {"()": "mosaic.security.redaction.RedactingFilter"}}
    for handler in cfg["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact"]
    cfg["loggers"]["mosaic"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return cfg

def main() -> None:
    app = typer.Typer(add_completion=False, no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()

