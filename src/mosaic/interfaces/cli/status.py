"""``mosaic status``: circuit breakers, rate-limit headroom, cache and Redis health.

Everything that replicas share lives in Redis, so this command reads it there — it shows the
state of the whole deployment, not of one process: the shared breaker state of each provider
instance, and each live replica's own view (its heartbeat: local breaker windows, limiter
headroom, cache statistics, whether it runs degraded).

    mosaic status                       # MOSAIC_REDIS_URL / MOSAIC_REDIS_PREFIX
    mosaic status --json
    mosaic status --config mosaic.yaml  # also list the configured limits of each plugin
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.table import Table

from mosaic.interfaces.cli.output import out, print_json

app = typer.Typer(help="Resilience state: circuit breakers, rate limits, cache, Redis.",
                  invoke_without_command=True, no_args_is_help=False)

MAX_SCAN = 100_000


async def _scan(client: Any, pattern: str, limit: int = MAX_SCAN) -> list[bytes]:
    keys: list[bytes] = []
    async for key in client.scan_iter(match=pattern, count=1000):
        keys.append(key)
        if len(keys) >= limit:
            break
    return keys


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def collect(redis_url: str | None, prefix: str, wait: float = 2.0) -> dict[str, Any]:
    """The deployment's shared state, read from Redis (never modified)."""
    if not redis_url:
        return {"redis": {"status": "not configured"}, "breakers": {}, "replicas": [],
                "note": "without Redis every process keeps its own state; set MOSAIC_REDIS_URL"}
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from mosaic.state.redis import redact_url

    client = Redis.from_url(redis_url, socket_timeout=wait, socket_connect_timeout=wait)
    prefix = prefix if prefix.endswith(":") else prefix + ":"
    try:
        started = time.perf_counter()
        await client.ping()
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        info = await client.info("server")
        breakers: dict[str, Any] = {}
        for key in await _scan(client, prefix + "breaker:*"):
            name = _text(key)[len(prefix + "breaker:"):]
            raw = await client.hgetall(key)
            fields = {_text(k): _text(v) for k, v in raw.items()}
            since = int(fields.get("since", "0") or 0)
            wait = int(fields.get("wait", "0") or 0)
            entry: dict[str, Any] = {"state": fields.get("state", "closed"),
                                     "generation": int(fields.get("gen", 0)),
                                     "consecutive_opens": int(fields.get("opens", 0))}
            if entry["state"] == "open":
                entry["half_open_in_s"] = round(max(0, since + wait - time.time() * 1000) / 1000, 3)
            breakers[name] = entry
        replicas = []
        for key in await _scan(client, prefix + "replica:*"):
            body = await client.get(key)
            if body:
                replicas.append(orjson.loads(body))
        cache_keys = len(await _scan(client, prefix + "c:*"))
        return {"redis": {"status": "up", "url": redact_url(redis_url), "prefix": prefix,
                          "ping_ms": latency_ms, "version": _text(info.get("redis_version", "?"))},
                "breakers": breakers, "replicas": replicas,
                "cache": {"l2_entries": cache_keys if cache_keys < MAX_SCAN else f">={MAX_SCAN}"}}
    except (RedisError, OSError) as exc:
        return {"redis": {"status": "down", "url": redact_url(redis_url),
                          "error": f"{type(exc).__name__}: {exc}"}, "breakers": {}, "replicas": []}
    finally:
        await client.aclose()


def _configured(config: Path) -> dict[str, Any]:
    from mosaic.config.loader import load_config
    from mosaic.resilience.config import parse_shared

    cfg = load_config(config, check_plugins=False)
    out_: dict[str, Any] = {}
    for spec in cfg.orchestration.plugins:
        shared = parse_shared(spec.config)
        out_[spec.id] = {
            "rate_limit": shared.rate_limit.model_dump(by_alias=True) if shared.rate_limit else None,
            "retry_attempts": shared.retry.attempts,
            "breaker": {"window": shared.circuit_breaker.sliding_window_type,
                        "failure_rate": shared.circuit_breaker.failure_rate_threshold},
            "max_concurrent_calls": shared.bulkhead.max_concurrent_calls,
        }
    return out_


def _render(data: dict[str, Any]) -> None:
    redis = data["redis"]
    line = f"[bold]Redis[/bold]: {redis['status']}"
    if redis.get("url"):
        line += f"  {redis['url']}  prefix {redis.get('prefix', '')}"
    if redis.get("ping_ms") is not None:
        line += f"  ping {redis['ping_ms']} ms  (redis {redis.get('version')})"
    if redis.get("error"):
        line += f"  [red]{redis['error']}[/red]"
    out.print(line)
    if data.get("note"):
        out.print(data["note"])

    table = Table(title="circuit breakers (shared)", title_justify="left", show_edge=False)
    for col in ("provider", "state", "opens in a row", "half-open in"):
        table.add_column(col)
    for name, b in sorted(data.get("breakers", {}).items()):
        style = {"open": "red", "half_open": "yellow"}.get(b["state"], "green")
        table.add_row(name, f"[{style}]{b['state']}[/{style}]", str(b["consecutive_opens"]),
                      f"{b['half_open_in_s']} s" if "half_open_in_s" in b else "")
    if data.get("breakers"):
        out.print(table)

    replicas = data.get("replicas", [])
    out.print(f"[bold]replicas[/bold]: {len(replicas)} live")
    for rep in replicas:
        ready = rep.get("ready", {}).get("status", "?")
        table = Table(title=f"replica {rep.get('replica')} ({ready})", title_justify="left", show_edge=False)
        for col in ("provider", "breaker (local view)", "window calls/failed/slow", "rate limit", "inflight"):
            table.add_column(col)
        for pid, p in sorted(rep.get("providers", {}).items()):
            b, w, rl = p["breaker"], p["breaker"]["window"], p.get("rate_limit", {})
            limit = rl.get("configured") or {}
            headroom = (f"{rl.get('remaining')}/{limit.get('max_requests')} per {limit.get('window_ms')} ms "
                        f"({rl.get('scope')})" if limit else "none")
            if rl.get("blocked_for_s"):
                headroom += f", provider asked to wait {rl['blocked_for_s']} s"
            table.add_row(pid, b["state"], f"{w['calls']}/{w['failed']}/{w['slow']}", headroom,
                          str(p.get("bulkhead", {}).get("inflight", 0)))
        out.print(table)
        cache = rep.get("cache")
        if cache:
            out.print(f"  cache: L1 {cache['l1_entries']}/{cache['l1_max']}, hit ratio {cache['hit_ratio']}, "
                      f"l1 {cache['l1_hits']} l2 {cache['l2_hits']} miss {cache['misses']} "
                      f"negative {cache['negative_hits']}, {cache['strategy']}")
    if data.get("cache"):
        out.print(f"[bold]cache (shared)[/bold]: {data['cache']['l2_entries']} L2 entries")
    for pid, conf in sorted(data.get("configured", {}).items()):
        out.print(f"[bold]{pid}[/bold] configured: {orjson.dumps(conf).decode()}")


@app.callback(invoke_without_command=True)
def status(
    ctx: typer.Context,
    redis_url: Annotated[str | None, typer.Option("--redis-url", envvar="MOSAIC_REDIS_URL",
                                                  help="Redis shared by the replicas.")] = None,
    prefix: Annotated[str, typer.Option(envvar="MOSAIC_REDIS_PREFIX", help="Key prefix.")] = "mosaic:",
    config: Annotated[Path | None, typer.Option("--config", "-c", envvar="MOSAIC_CONFIG",
                                                help="Also show each plugin's configured limits.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Breaker states, rate-limit headroom, cache statistics and Redis health of the deployment."""
    if ctx.invoked_subcommand is not None:
        return
    data = asyncio.run(collect(redis_url, prefix))
    if config is not None:
        from mosaic.errors import MosaicError

        try:
            data["configured"] = _configured(config)
        except MosaicError as exc:
            data["configured_error"] = exc.message
    if as_json:
        print_json(data)
    else:
        _render(data)
    if data["redis"]["status"] == "down":
        raise typer.Exit(1)
