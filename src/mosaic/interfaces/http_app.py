"""The one ASGI application behind ``mosaic serve``.

    /v1/...         REST, generated from the catalog (plain ASGI, see interfaces.rest)
    /graphql        GraphQL (Strawberry), generated from the catalog
    /mcp            MCP over streamable HTTP
    /openapi.json   OpenAPI 3.1 of /v1 (the caller's operations)
    /metrics        Prometheus metrics of the gateway (authenticated; platform admins with tenancy)
    /healthz        alive (no auth)
    /readyz         every configured plugin started and healthy (no auth)

Everything derived from the catalog is built once here, when the app is created; the
lifespan starts the Orchestrator (and the MCP session manager) and stops them again.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from strawberry.asgi import GraphQL

import mosaic
from mosaic.api import Orchestrator
from mosaic.catalog.registry import CATALOG
from mosaic.config.schema import Settings
from mosaic.gateway.executor import Executor
from mosaic.gateway.layers import REGISTRY as METRICS
from mosaic.interfaces.auth import ApiKeys, AuthMiddleware, is_loopback, principal_of
from mosaic.interfaces.graphql import GATEWAY_KEY, build_schema
from mosaic.interfaces.mcp.http import McpHttpApp, loopback_security
from mosaic.interfaces.mcp.server import McpInterface
from mosaic.interfaces.rest import PREFIX, RestApp, RouteTable, build_openapi
from mosaic.interfaces.rest.problems import PROBLEM_CONTENT_TYPE, problem_body
from mosaic.interfaces.visibility import CallerViews, Derived

if TYPE_CHECKING:
    from mosaic.tenancy.runtime import Tenancy

log = logging.getLogger("mosaic.http")

# Set by `mosaic serve` for the worker processes that build the app from the environment.
BIND_HOST_ENV = "MOSAIC_BIND_HOST"
MCP_STATELESS_ENV = "MOSAIC_MCP_STATELESS"
# "1": tenants, their API keys/OIDC tokens, RBAC, quotas, usage and audit from the store.
TENANCY_ENV = "MOSAIC_TENANCY"
ROUTING_ADMIN = "mosaic.routing.http"


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json")


def _include_routing_admin(app: FastAPI) -> None:
    """Mount the routing admin router when that module is installed."""
    try:
        spec = importlib.util.find_spec(ROUTING_ADMIN)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        return
    module = importlib.import_module(ROUTING_ADMIN)
    router = getattr(module, "router", None)
    if router is None:
        raise RuntimeError(f"{ROUTING_ADMIN} has no 'router'")
    app.include_router(router)


class _CallerGraphQL(GraphQL[dict[str, Any], None]):
    def __init__(self, schema: Any, gateway: Executor) -> None:
        super().__init__(schema)
        self.gateway = gateway

    async def get_context(self, request: Any, response: Any) -> dict[str, Any]:
        return {"request": request, GATEWAY_KEY: self.gateway}


class GraphQLApp:
    """``/graphql``: each caller gets the schema of the operations it may call (built once per
    set), so introspection shows, and validation accepts, only those."""

    def __init__(self, views: CallerViews, gateway: Executor) -> None:
        self.views = views
        self._apps = Derived(lambda ops: _CallerGraphQL(build_schema(ops), gateway))

    async def warm(self) -> None:
        await self._apps.get(self.views.operations)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ops = self.views.for_scope(scope)
        if not any(op.is_read for op in ops):  # a schema needs at least one query field
            body = problem_body(403, "forbidden", "your roles allow no operation in this tenant",
                                instance=scope.get("path"))
            refusal = Response(body, status_code=403, media_type=PROBLEM_CONTENT_TYPE.decode())
            await refusal(scope, receive, send)
            return
        app = await self._apps.get(ops)
        await app(scope, receive, send)


class MosaicApp(FastAPI):
    """FastAPI, with the two hot paths dispatched before its middleware stack and router.

    REST (``/v1/...``) and MCP (``/mcp``) requests go straight to their (authenticated)
    ASGI apps: they answer every error themselves, so FastAPI's exception middleware
    and the route scan would only add latency to each call. Everything else — health,
    GraphQL, OpenAPI, admin routers, lifespan — runs through FastAPI as usual, and the
    two apps are also registered as ordinary routes so the routing table is complete.
    """

    fast_rest: ASGIApp | None = None
    fast_mcp: ASGIApp | None = None
    # '/v1/git/', '/v1/docs/'...: only the catalog's services, so that other routers under
    # /v1 (the routing admin API at /v1/routing) still reach FastAPI.
    rest_prefixes: tuple[str, ...] = ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if self.fast_rest is not None and path.startswith(self.rest_prefixes):
                await self.fast_rest(scope, receive, send)
                return
            if self.fast_mcp is not None and path == "/mcp":
                await self.fast_mcp(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(orchestrator: Orchestrator | None = None, *, settings: Settings | None = None,
               bind_host: str = "127.0.0.1", mcp_json_response: bool = True,
               mcp_stateless: bool = False, tenancy: bool | Tenancy = False) -> MosaicApp:
    """Build the application. ``bind_host`` decides the MCP DNS-rebinding protection;
    ``mcp_stateless`` serves MCP without sessions (for several worker processes);
    ``tenancy`` (True, or a built :class:`Tenancy`) serves every tenant of the store, each
    request on its caller's tenant gateway, with the store's keys, RBAC, quotas and audit."""
    settings = settings or Settings()
    orch = orchestrator or Orchestrator.from_settings(settings)
    keys = ApiKeys.from_config(orch.config, settings)
    operations = list(CATALOG.values())
    tenants: Tenancy | None = None
    if tenancy is True:
        from mosaic.tenancy.runtime import Tenancy as _Tenancy

        tenants = _Tenancy.build(settings, default_gateway=orch.gateway, static_keys=keys)
    elif tenancy is not False:
        tenants = tenancy
    gateway: Executor = tenants.gateways if tenants is not None else orch.gateway
    authenticate = tenants.authenticator.authenticate if tenants is not None else None

    table = RouteTable(operations)
    rest = RestApp(gateway, table)
    # With RBAC, the OpenAPI document, the GraphQL schema and MCP's tool list are the caller's.
    views = CallerViews(operations, tenants.authorizer if tenants is not None else None)
    authenticated = keys.enabled or tenants is not None
    openapi = Derived(lambda ops: orjson.dumps(build_openapi(RouteTable(ops), auth=authenticated)))
    mcp = McpInterface(gateway, operations, views=views)
    mcp_http = McpHttpApp(mcp, json_response=mcp_json_response, stateless=mcp_stateless,
                          security=loopback_security() if is_loopback(bind_host) else None)
    graphql = GraphQLApp(views, gateway)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await orch.start()
        try:
            if tenants is not None:
                # Refuses an unmigrated database with a message saying `mosaic db upgrade`.
                await tenants.start(check=True)
            # The views of every operation (all callers without RBAC, admins with it): built now.
            await openapi.get(views.operations)
            await graphql.warm()
            try:
                async with mcp_http.run():
                    app.state.ready = True
                    yield
                    app.state.ready = False
            finally:
                if tenants is not None:
                    await tenants.stop()
        finally:
            await orch.stop()

    app = MosaicApp(title="MosAIc", version=mosaic.__version__, lifespan=lifespan,
                    openapi_url=None, docs_url=None, redoc_url=None)
    app.state.orchestrator = orch
    app.state.gateway = orch.gateway
    app.state.executor = gateway
    app.state.tenancy = tenants
    app.state.api_keys = keys
    app.state.mcp = mcp
    app.state.route_table = table
    app.state.ready = False

    async def healthz(request: Request) -> Response:
        return _json({"status": "ok", "version": mosaic.__version__})

    async def readyz(request: Request) -> Response:
        manager = orch.gateway.manager
        if not request.app.state.ready:
            return _json({"status": "starting"}, 503)
        health = await manager.health()
        plugins: dict[str, Any] = {pid: {"status": h.status, "detail": h.detail} for pid, h in health.items()}
        for pid, failed in manager.failed.items():
            plugins[pid] = {"status": "failed", "detail": failed.error}
        ok = bool(plugins) and all(p["status"] != "unhealthy" and p["status"] != "failed"
                                   for p in plugins.values())
        # Redis away is "degraded", not "not ready": the gateway keeps serving (L1, local limits).
        shared = orch.gateway.resilience.ready()
        status = ("degraded" if shared["status"] == "degraded" else "ready") if ok else "not_ready"
        return _json({"status": status, "plugins": plugins, "shared_state": shared}, 200 if ok else 503)

    async def metrics(request: Request) -> Response:
        # Metrics name every tenant's provider instances: with tenancy, platform admins only.
        if tenants is not None and not tenants.admin.is_platform_admin(principal_of(request.scope)):
            return Response(problem_body(403, "forbidden", "metrics are for platform admins",
                                         instance=request.url.path),
                            status_code=403, media_type=PROBLEM_CONTENT_TYPE.decode())
        return Response(generate_latest(METRICS), media_type=CONTENT_TYPE_LATEST)

    async def openapi_json(request: Request) -> Response:
        return Response(await openapi.get(views.for_scope(request.scope)), media_type="application/json")

    app.add_api_route("/healthz", healthz, methods=["GET"], include_in_schema=False)
    app.add_api_route("/readyz", readyz, methods=["GET"], include_in_schema=False)
    app.add_route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False)
    app.add_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.router.routes.append(Route("/graphql", endpoint=graphql, methods=["GET", "POST"]))
    app.router.routes.append(Route("/mcp", endpoint=mcp_http, methods=["GET", "POST", "DELETE"]))
    _include_routing_admin(app)
    if tenants is not None:
        from mosaic.tenancy.http import build_admin_router

        app.include_router(build_admin_router(tenants))
    services = sorted({op.service for op in operations})
    for service in services:
        app.mount(f"{PREFIX}/{service}", rest)

    async def http_problem(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "http_error")
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else "internal error"
        return Response(problem_body(status, code, str(detail), instance=request.url.path),
                        status_code=status, media_type=PROBLEM_CONTENT_TYPE.decode(),
                        headers=getattr(exc, "headers", None))

    app.add_exception_handler(StarletteHTTPException, http_problem)
    app.add_middleware(AuthMiddleware, keys=keys, authenticate=authenticate)
    app.fast_rest = AuthMiddleware(rest, keys, authenticate)
    app.rest_prefixes = tuple(f"{PREFIX}/{service}/" for service in services)
    app.fast_mcp = AuthMiddleware(mcp_http, keys, authenticate)
    return app


def app_from_env() -> MosaicApp:
    """Factory for uvicorn workers: config from ``MOSAIC_*`` variables (set by ``mosaic serve``)."""
    return create_app(bind_host=os.environ.get(BIND_HOST_ENV, "127.0.0.1"),
                      mcp_stateless=os.environ.get(MCP_STATELESS_ENV) == "1",
                      tenancy=os.environ.get(TENANCY_ENV) == "1")
