"""``mosaic route``: explain routing decisions and switch migration phases.

    mosaic route explain git.get_repository repo=mosaic-core/api --as alice --attr region=EU
    mosaic route phases
    mosaic route phase 2 --reason "team A moved"
"""

from __future__ import annotations

import asyncio
import getpass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from mosaic.errors import ConfigError, InvalidRequest, MosaicError
from mosaic.interfaces.cli.output import fail, out, print_json

app = typer.Typer(no_args_is_help=True, help="Routing rules: explain decisions, switch phases.")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", envvar="MOSAIC_CONFIG",
                                               help="YAML config; default: embedded local providers.")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="MOSAIC_DATA_DIR",
                                                help="Data dir (phase state lives here).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _config(config: Path | None, data_dir: Path | None) -> Any:
    from mosaic.config.defaults import embedded_config
    from mosaic.config.loader import load_config
    from mosaic.config.schema import Settings

    if config is not None:
        return load_config(config)
    return embedded_config(data_dir or Settings().data_dir)


def _state_dir(cfg: Any, data_dir: Path | None) -> Path:
    from mosaic.config.schema import Settings

    routing = cfg.orchestration.routing
    return Path(routing.state_dir or data_dir or Settings().data_dir)


def _assignments(items: list[str]) -> dict[str, Any]:
    import json

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


# ---------------------------------------------------------------- explain
@app.command("explain")
def explain(
    operation: Annotated[str, typer.Argument(help="SERVICE.OPERATION, e.g. git.get_repository")],
    assignments: Annotated[list[str] | None, typer.Argument(help="key=value or key:=json")] = None,
    as_user: Annotated[str | None, typer.Option("--as", help="Explain for this user id.")] = None,
    attr: Annotated[list[str] | None, typer.Option("--attr", help="Principal attribute key=value "
                                                   "(repeatable), e.g. region=EU.")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", help="Principal role (repeatable).")] = None,
    tenant: Annotated[str, typer.Option(help="Tenant id.")] = "default",
    all_rules: Annotated[bool, typer.Option("--all", help="List every rule, matched or not.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Do not start providers (health unknown).")
                       ] = False,
    config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show every candidate for a request: rules matched, score, health, the balancer's choice."""
    from mosaic.api import Orchestrator
    from mosaic.gateway.context import RequestContext
    from mosaic.routing.http import principal_for

    try:
        cfg = _config(config, data_dir)
        orch = Orchestrator(cfg)
        principal = principal_for(RequestContext().principal, as_user, attr or [], role or [])
        call = orch.gateway.prepare(operation, _assignments(assignments or []),
                                    RequestContext(tenant=tenant, principal=principal))
        engine = orch.gateway.routing

        async def run() -> Any:
            if offline:
                # Rules and phase only: no instance is started, so none is known to be down.
                from mosaic.routing.engine import RoutingEngine

                specs = cfg.orchestration.plugins
                routing = cfg.orchestration.routing
                rules_only = RoutingEngine(
                    routing, {p.id: p.type for p in specs},
                    defaults={p.type: p.id for p in specs if p.default and p.enabled},
                    state_dir=_state_dir(cfg, data_dir) if routing.phases else None)
                await rules_only.phases.load()
                return rules_only.explain(call.ctx, call.op, all_rules=all_rules)
            await orch.start()
            try:
                if engine.monitor is not None:
                    await engine.monitor.probe_all()
                return engine.explain(call.ctx, call.op, all_rules=all_rules)
            finally:
                await orch.stop()

        result = asyncio.run(run())
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    _print_explanation(result)


def _health_text(h: dict[str, Any], running: bool) -> str:
    if not running:
        return "[red]not running[/]"
    status = h.get("status", "unknown")
    color = {"healthy": "green", "degraded": "yellow", "unhealthy": "red"}.get(status, "dim")
    detail = f" [dim]{h['detail']}[/]" if h.get("detail") and status != "healthy" else ""
    return f"[{color}]{status}[/]{detail}"


def _print_explanation(x: Any) -> None:
    head = f"[bold]{x.operation}[/]"
    if x.phase is not None:
        head += f"  phase [bold]{x.phase}[/]"
    out.print(head, highlight=False)
    facts = ", ".join(f"{k}={v}" for k, v in x.facts.items() if k != "principal")
    p = x.facts.get("principal") or {}
    attrs = ", ".join(f"{k}={v}" for k, v in (p.get("attributes") or {}).items())
    out.print(f"[dim]request:[/] {facts}" + (f"  [dim]attributes:[/] {attrs}" if attrs else ""),
              highlight=False)
    table = Table(title="candidates", title_justify="left", show_edge=False)
    for col in ("#", "provider", "tier", "score", "rules matched", "health", "balancer", "choice"):
        table.add_column(col)
    for c in x.candidates:
        bal = ", ".join(f"{k}={v}" for k, v in c.balancer.items())
        choice = "[bold green]← chosen[/]" if c.chosen else (
            f"[red]skipped: {c.skipped}[/]" if c.skipped else ("failover" if c.position is not None else ""))
        table.add_row("" if c.position is None else str(c.position), c.provider,
                      "" if c.tier is None else str(c.tier) + (" (default)" if c.default_rule else ""),
                      "" if c.score is None else str(c.score), "\n".join(c.rules) or "[dim]-[/]",
                      _health_text(c.health, c.running), bal, choice)
    out.print(table)
    if x.routed:
        rules = Table(title=f"rules ({len(x.rules)} shown of {x.rules_total})", title_justify="left",
                      show_edge=False)
        for col in ("rule", "priority", "pattern", "condition", "providers", "matched"):
            rules.add_column(col)
        for r in x.rules:
            why = "[green]yes[/]" if r.matched else "[red]no[/] " + ", ".join(
                w for w, bad in (("operation", not r.applies), ("pattern", r.pattern_matched is False),
                                 ("condition", r.condition_matched is False)) if bad)
            rules.add_row(r.rule, str(r.priority) + (" default" if r.default else ""), r.pattern or "",
                          r.condition or "", ", ".join(r.providers), why)
        out.print(rules)
    summary = f"strategy [bold]{x.strategy}[/]"
    if x.balance:
        summary += "  " + ", ".join(f"{k}={v}" for k, v in x.balance.items())
    if x.fallback:
        summary += "  [yellow](no rule matched: default instance)[/]"
    out.print(summary, highlight=False)
    if x.error:
        out.print(f"[bold red]{x.error}[/]", highlight=False)
    else:
        out.print(f"→ [bold green]{x.chosen}[/]; failover order: {' → '.join(x.order)}", highlight=False)


# ---------------------------------------------------------------- phases
def _phase_state(cfg: Any, data_dir: Path | None) -> tuple[Any, dict[str, Any]]:
    from mosaic.routing.phases import PhaseStore, active_from_state

    routing = cfg.orchestration.routing
    store = PhaseStore(_state_dir(cfg, data_dir))
    state = store.read() or {}
    active = active_from_state(state, [p.name for p in routing.phases], routing.active_phase)
    return store, {"active": active, "configured_active": routing.active_phase,
                   "phases": [{"name": p.name, "description": p.description, "rules": len(p.rules),
                               "legacy": p.legacy} for p in routing.phases],
                   "switches": state.get("switches", []), "state_file": str(store.path)}


@app.command("phases")
def phases(config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False,
           last: Annotated[int, typer.Option(help="How many recent switches to show.")] = 10) -> None:
    """List the migration phases, the active one and the recent switches."""
    try:
        cfg = _config(config, data_dir)
        _, view = _phase_state(cfg, data_dir)
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print_json(view)
        return
    if not view["phases"]:
        out.print("no routing phases are configured")
        return
    table = Table(title="phases", title_justify="left", show_edge=False)
    for col in ("", "phase", "rules", "legacy", "description"):
        table.add_column(col)
    for p in view["phases"]:
        mark = "[bold green]●[/]" if p["name"] == view["active"] else ""
        table.add_row(mark, p["name"], str(p["rules"]), ", ".join(p["legacy"]), p["description"])
    out.print(table)
    switches = view["switches"][-last:]
    if switches:
        log = Table(title="switches", title_justify="left", show_edge=False)
        for col in ("at", "from", "to", "by", "reason"):
            log.add_column(col)
        for s in switches:
            log.add_row(str(s.get("at")), str(s.get("from")), str(s.get("to")), str(s.get("by")),
                        str(s.get("reason", "")))
        out.print(log)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command("phase")
def phase(name: Annotated[str, typer.Argument(help="The phase to activate.")],
          reason: Annotated[str, typer.Option(help="Recorded in the switch log.")] = "",
          config: ConfigOpt = None, data_dir: DataDirOpt = None, as_json: JsonOpt = False) -> None:
    """Switch the active migration phase (running gateways with this data dir adopt it)."""
    from mosaic.gateway.gateway import Gateway
    from mosaic.plugins.manager import PluginManager
    from mosaic.routing.phases import record_offline

    try:
        cfg = _config(config, data_dir)
        routing = cfg.orchestration.routing
        if not routing.phases:
            raise ConfigError(["no routing phases are configured (orchestration.routing.phases)"])
        Gateway(cfg, PluginManager())  # compiles every phase: a bad rule fails here, not later
        store, _ = _phase_state(cfg, data_dir)
        entry = record_offline(store, [p.name for p in routing.phases], routing.active_phase, name,
                               by=f"cli:{_user()}", reason=reason)
    except MosaicError as exc:
        fail(exc, as_json=as_json)
    if as_json:
        print_json({"switched": entry, "state_file": str(store.path)})
        return
    ms = routing.phase_watch_interval
    out.print(f"[green]✓[/] routing phase {entry['from']} → [bold]{entry['to']}[/] "
              f"(recorded in {store.path}; running gateways adopt it within {ms} ms)", highlight=False)
