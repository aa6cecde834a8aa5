"""The admin HTTP API (``/admin/v1``): tenants, API keys, provider config, RBAC, usage, audit.

Mount it with ``app.include_router(build_admin_router(tenancy))``. Every route authenticates
the caller itself through ``tenancy.authenticator`` (so it is safe even without an auth
middleware in front) and goes through :class:`mosaic.tenancy.admin.Admin`, which checks RBAC
and writes the audit entry. Errors are RFC 9457 problem documents with the stable codes of
:mod:`mosaic.errors`; a new API key's secret appears in exactly one response, the creation.
"""

# No ``from __future__ import annotations`` here: FastAPI must evaluate the route signatures,
# and ``Me`` is local to build_admin_router.
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from mosaic.catalog.base import Service
from mosaic.config.schema import CacheConfig
from mosaic.errors import InvalidRequest, MosaicError
from mosaic.routing.config import RoutingConfig
from mosaic.security.identity import Identity
from mosaic.security.rbac import Rule
from mosaic.tenancy.runtime import Tenancy
from mosaic.tenancy.settings import TenantSettings
from mosaic.tenancy.usage import to_csv

log = logging.getLogger("mosaic.admin")
PREFIX = "/admin/v1"
PROBLEM = "application/problem+json"

TenantName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
KeyId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{12}$")]
Role = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,49}$")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TenantIn(_In):
    name: TenantName
    display_name: str = Field(default="", max_length=200, alias="displayName")
    settings: TenantSettings = Field(default_factory=TenantSettings)


# Plugin config values: JSON, nested at most three levels (every provider's config fits; an
# unbounded recursive schema would only invite pathological documents).
Leaf = str | int | float | bool | None
Level2 = dict[str, Leaf | list[Leaf]]
Level1 = dict[str, Leaf | list[Leaf] | Level2]


class PluginIn(_In):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")]
    type: Service
    provider: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,49}$")]
    enabled: bool = True
    default: bool = False
    config: dict[str, Leaf | list[Leaf] | Level1] = Field(default_factory=dict)


class ConfigIn(_In):
    """A tenant's providers, routing and cache, as in the configuration file's ``orchestration``."""

    plugins: list[PluginIn] = Field(default_factory=list, max_length=100)
    routing: RoutingConfig | None = None
    cache: CacheConfig | None = None

    def document(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True, exclude_none=True)


class KeyIn(_In):
    name: str = Field(min_length=1, max_length=100)
    roles: list[Role] = Field(min_length=1, max_length=20)
    expires_at: AwareDatetime | None = Field(default=None, alias="expiresAt")
    attributes: dict[str, str | int | float | bool] = Field(default_factory=dict, max_length=50)
    quotas: dict[str, int] = Field(default_factory=dict, max_length=2)


class RuleIn(_In):
    role: Role
    permission: str | None = Field(default=None, max_length=120)
    inherits: Role | None = None
    effect: Literal["allow", "deny"] = "allow"


class RulesIn(_In):
    rules: list[RuleIn] = Field(max_length=500)


def _bad_strings(value: Any) -> bool:
    if isinstance(value, str):
        if "\x00" in value:
            return True
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_bad_strings(k) or _bad_strings(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_bad_strings(v) for v in value)
    return False


def check_text(body: bytes) -> None:
    """Refuse JSON text no database can store: lone surrogates (``"\\udc00"``) and NUL characters.

    Bodies that are not JSON at all are left to FastAPI's own validation (422).
    """
    if not body:
        return
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return
    if _bad_strings(data):
        raise InvalidRequest("the request contains text that is not valid Unicode (lone surrogates or NUL "
                             "characters)")


def problem(exc: MosaicError, instance: str) -> Response:
    body: dict[str, Any] = {"type": f"urn:mosaic:problem:{exc.code}", "title": exc.code.replace("_", " "),
                            "status": exc.http_status, "detail": exc.message, "code": exc.code,
                            "instance": instance}
    if exc.details:
        body["details"] = exc.details
    headers = {"www-authenticate": 'Bearer realm="mosaic"'} if exc.http_status == 401 else None
    return Response(orjson.dumps(body, default=str), status_code=exc.http_status, media_type=PROBLEM,
                    headers=headers)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json")


def build_admin_router(tenancy: Tenancy) -> APIRouter:
    admin = tenancy.admin

    class AuthenticatedRoute(APIRoute):
        """Authenticate before anything else of the request is looked at.

        FastAPI reads and validates the body before it runs dependencies; an anonymous caller
        would then learn from parse and validation errors. This route class answers 401 first.
        """

        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def authenticated(request: Request) -> Response:
                try:
                    request.state.identity = await tenancy.authenticator.authenticate(
                        request.headers.get("authorization"))
                    if request.method in ("POST", "PUT", "PATCH"):
                        check_text(await request.body())
                except MosaicError as exc:
                    return problem(exc, request.url.path)
                return await handler(request)

            return authenticated

    router = APIRouter(prefix=PREFIX, tags=["admin"], route_class=AuthenticatedRoute)
    # Documents the scheme in OpenAPI; the credential itself was checked by the route class.
    bearer = HTTPBearer(auto_error=False, description="An API key (mk_...) or an OIDC access token.")

    async def identity(request: Request,
                       _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Identity:
        found: Identity = request.state.identity
        return found

    Me = Annotated[Identity, Depends(identity)]

    async def guarded(request: Request, fn: Callable[[], Awaitable[Response]]) -> Response:
        try:
            return await fn()
        except MosaicError as exc:
            return problem(exc, request.url.path)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("admin API internal error %s", error_id)
            return problem(MosaicError(f"internal error (reference {error_id})"), request.url.path)

    @router.get("/whoami", summary="The authenticated caller.")
    async def whoami(request: Request, me: Me) -> Response:
        return _json(me.describe())

    @router.get("/tenants", summary="Tenants the caller may see.")
    async def list_tenants(request: Request, me: Me) -> Response:
        async def run() -> Response:
            return _json([t.public() for t in await admin.list_tenants(me)])
        return await guarded(request, run)

    @router.post("/tenants", status_code=201, summary="Create a tenant (platform admins).")
    async def create_tenant(request: Request, me: Me, body: TenantIn) -> Response:
        async def run() -> Response:
            info = await admin.create_tenant(me, body.name, display_name=body.display_name,
                                             settings=body.settings.dump())
            return _json(info.public(), 201)
        return await guarded(request, run)

    @router.get("/tenants/{tenant}", summary="One tenant.")
    async def get_tenant(request: Request, me: Me, tenant: TenantName) -> Response:
        async def run() -> Response:
            return _json((await admin.get_tenant(me, tenant)).public())
        return await guarded(request, run)

    @router.patch("/tenants/{tenant}/settings", summary="Replace some of a tenant's settings.")
    async def patch_settings(request: Request, me: Me, tenant: TenantName,
                             changes: TenantSettings) -> Response:
        async def run() -> Response:
            given = changes.model_dump(mode="json", by_alias=True, exclude_unset=True)
            return _json((await admin.update_settings(me, tenant, given)).public())
        return await guarded(request, run)

    @router.get("/tenants/{tenant}/config", summary="The stored provider config (credentials as references).")
    async def get_config(request: Request, me: Me, tenant: TenantName) -> Response:
        async def run() -> Response:
            return _json({"config": await admin.show_config(me, tenant)})
        return await guarded(request, run)

    @router.put("/tenants/{tenant}/config", summary="Store the tenant's provider config.")
    async def put_config(request: Request, me: Me, tenant: TenantName, document: ConfigIn) -> Response:
        async def run() -> Response:
            return _json((await admin.configure(me, tenant, document.document())).public())
        return await guarded(request, run)

    @router.put("/tenants/{tenant}/rbac", summary="Replace the tenant's own RBAC rules.")
    async def put_rules(request: Request, me: Me, tenant: TenantName, body: RulesIn) -> Response:
        async def run() -> Response:
            rules = [Rule(role=r.role, permission=r.permission, inherits=r.inherits, effect=r.effect)
                     for r in body.rules]
            return _json((await admin.set_rules(me, tenant, rules)).public())
        return await guarded(request, run)

    @router.get("/tenants/{tenant}/keys", summary="The tenant's API keys (never their secrets).")
    async def list_keys(request: Request, me: Me, tenant: TenantName) -> Response:
        async def run() -> Response:
            return _json([k.public() for k in await admin.list_keys(me, tenant)])
        return await guarded(request, run)

    @router.post("/tenants/{tenant}/keys", status_code=201,
                 summary="Create an API key; its secret is in this response only.")
    async def create_key(request: Request, me: Me, tenant: TenantName, body: KeyIn) -> Response:
        async def run() -> Response:
            created = await admin.create_key(me, tenant, body.name, body.roles, expires_at=body.expires_at,
                                             attributes=dict(body.attributes), quotas=dict(body.quotas))
            return _json({"key": created.token, **created.record.public()}, 201)
        return await guarded(request, run)

    @router.delete("/tenants/{tenant}/keys/{key_id}", summary="Revoke an API key.")
    async def revoke_key(request: Request, me: Me, tenant: TenantName, key_id: KeyId) -> Response:
        async def run() -> Response:
            return _json((await admin.revoke_key(me, tenant, key_id)).public())
        return await guarded(request, run)

    @router.get("/usage", summary="Usage for billing, per minute bucket.")
    async def usage(request: Request, me: Me, since: Annotated[AwareDatetime, Query(alias="from")],
                    until: Annotated[AwareDatetime, Query(alias="to")],
                    tenant: Annotated[TenantName | None, Query()] = None,
                    fmt: Annotated[Literal["json", "csv"], Query(alias="format")] = "json") -> Response:
        async def run() -> Response:
            rows = await admin.usage_report(me, tenant, since, until)
            if fmt == "csv":
                return Response(to_csv(rows), media_type="text/csv")
            return _json(rows)
        return await guarded(request, run)

    @router.get("/audit/verify", summary="Verify the audit hash chains.")
    async def audit_verify(request: Request, me: Me,
                           tenant: Annotated[TenantName | None, Query()] = None) -> Response:
        async def run() -> Response:
            return _json((await admin.audit_verify(me, tenant)).to_dict())
        return await guarded(request, run)

    @router.get("/audit/export", summary="The audit log as JSON lines (hashes included).")
    async def audit_export(request: Request, me: Me, tenant: Annotated[TenantName | None, Query()] = None,
                           since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
                           until: Annotated[AwareDatetime | None, Query(alias="to")] = None) -> Response:
        async def run() -> Response:
            if since is not None and until is not None and since >= until:
                raise InvalidRequest("from must be before to")
            lines: AsyncIterator[bytes] = await admin.audit_export(me, tenant, since=since, until=until)
            return StreamingResponse(lines, media_type="application/x-ndjson")
        return await guarded(request, run)

    return router
