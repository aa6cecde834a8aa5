"""REST endpoints of the routing engine, as a FastAPI router the REST interface mounts.

* ``GET  /v1/routing/explain?operation=git.get_repository&repo=acme/api[&as=alice][&attr=region=EU]``
  — the same explanation as ``mosaic route explain``; every other query key is a param
  of the operation.
* ``GET  /v1/routing/phases`` — phases, the active one, the switch log.
* ``POST /v1/routing/phase`` ``{"phase": "2", "reason": "team A moved"}`` — switch atomically.

The Gateway is ``request.app.state.gateway``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from mosaic.errors import Forbidden, InvalidRequest, MosaicError
from mosaic.gateway.context import Principal, RequestContext
from mosaic.routing.engine import Explanation

router = APIRouter(prefix="/v1/routing", tags=["routing"])

# Query keys of /explain that are not operation params.
_CONTROL = frozenset({"operation", "as", "attr", "role", "tenant", "plugin", "all"})


class PhaseSwitch(BaseModel):
    phase: str = Field(description="Name of the phase to activate.")
    reason: str = Field(default="", max_length=500, description="Why: recorded in the switch log.")


class PhasesView(BaseModel):
    active: str | None
    phases: list[str]
    configured_active: str | None
    switches: list[dict[str, Any]]
    state_file: str | None


def _problem(exc: MosaicError) -> Response:
    from mosaic.interfaces.rest.problems import PROBLEM_CONTENT_TYPE, problem_body

    return Response(problem_body(exc.http_status, exc.code, exc.message, details=exc.details or None),
                    status_code=exc.http_status, media_type=PROBLEM_CONTENT_TYPE.decode())


def _caller(request: Request) -> Principal:
    try:
        from mosaic.interfaces.auth import principal_of
    except ImportError:  # the REST interface is optional
        return Principal()
    return principal_of(request.scope)


def principal_for(base: Principal, as_user: str | None, attrs: list[str], roles: list[str]) -> Principal:
    """The principal to explain for: the caller, or the user named by ``as`` (simulated)."""
    attributes = dict(base.attributes) if as_user is None else {}
    for item in attrs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidRequest(f"attr: expected key=value, got {item!r}")
        attributes[key] = value
    return Principal(id=as_user or base.id, roles=tuple(roles) if roles else base.roles,
                     attributes=attributes)


@router.get("/explain", response_model=Explanation,
            summary="Explain which provider would serve an operation, and why.")
async def explain(request: Request) -> Response:
    gateway = request.app.state.gateway
    q = request.query_params
    try:
        operation = q.get("operation")
        if not operation:
            raise InvalidRequest("query parameter 'operation' is required, e.g. operation=git.get_repository")
        params: dict[str, Any] = {}
        for key, value in q.multi_items():
            if key in _CONTROL:
                continue
            prev = params.get(key)
            params[key] = value if prev is None else [*(prev if isinstance(prev, list) else [prev]), value]
        principal = principal_for(_caller(request), q.get("as"), q.getlist("attr"), q.getlist("role"))
        ctx = RequestContext(tenant=q.get("tenant") or "default", principal=principal, plugin=q.get("plugin"))
        call = gateway.prepare(operation, params, ctx)
        result: Explanation = gateway.routing.explain(call.ctx, call.op,
                                                      all_rules=q.get("all", "").lower() in ("1", "true"))
    except MosaicError as exc:
        return _problem(exc)
    return JSONResponse(result.model_dump(mode="json"))


@router.get("/phases", response_model=PhasesView, summary="Routing phases and the switch log.")
async def phases(request: Request) -> PhasesView:
    view = request.app.state.gateway.routing.phases.view()
    return PhasesView(**{k: view[k] for k in PhasesView.model_fields})


@router.post("/phase", summary="Switch the active routing phase atomically (admin).")
async def switch_phase(request: Request, body: PhaseSwitch) -> Response:
    engine = request.app.state.gateway.routing
    caller = _caller(request)
    try:
        if "admin" not in caller.roles:
            raise Forbidden("switching the routing phase needs the admin role",
                            details={"roles": list(caller.roles)})
        entry = await engine.phases.switch(body.phase, by=caller.id, reason=body.reason)
    except MosaicError as exc:
        return _problem(exc)
    return JSONResponse({"switched": entry, "active": engine.phases.active})
