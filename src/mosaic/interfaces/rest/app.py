"""The REST interface: one ASGI app serving every catalog operation under ``/v1``.

It is plain ASGI rather than FastAPI endpoints because there is one generic handler
for all operations and it runs on every request: the route table is compiled once,
params are validated once (by ``Gateway.execute``), results are serialized once by
pydantic's Rust serializer straight to bytes, and no per-request model is built.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from pydantic import BaseModel
from starlette.types import Receive, Scope, Send

from mosaic.errors import InvalidRequest, MosaicError
from mosaic.gateway.executor import Executor
from mosaic.interfaces.auth import context_for, principal_of
from mosaic.interfaces.rest.problems import send_error, send_problem
from mosaic.interfaces.rest.routes import FieldKind, Route, RouteTable

log = logging.getLogger("mosaic.rest")

PREFIX = "/v1"
MAX_BODY = 16 * 1024 * 1024
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_JSON_CT = (b"application/json", b"+json")


def decode_query(route: Route, query: bytes) -> dict[str, Any]:
    """Read params from the query string; lists repeat the key or are a JSON array."""
    out: dict[str, Any] = {}
    if not query:
        return out
    kinds = route.query_fields
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, errors="strict"):
        kind: FieldKind | None = kinds.get(key)
        if kind is None:
            if key in route.path_fields or (key in ("owner", "name") and "repo" in route.path_fields):
                raise InvalidRequest(f"query parameter {key!r} duplicates a path parameter",
                                     details={"fields": [{"field": key, "problem": "given in the path"}]})
            # Any other unknown key goes on to validation, which names it as unknown.
            out[key] = value
        elif kind == "scalar":
            out[key] = value
        elif kind == "list":
            if value.startswith("["):
                out[key] = _json(key, value)
            else:
                prev = out.get(key)
                if isinstance(prev, list):
                    prev.append(value)
                else:
                    out[key] = [value]
        else:
            out[key] = _json(key, value)
    return out


def _json(key: str, value: str) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        raise InvalidRequest(f"query parameter {key!r} must be JSON",
                             details={"fields": [{"field": key, "problem": "not valid JSON"}]}) from None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > MAX_BODY:
                raise _TooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


class RestApp:
    def __init__(self, gateway: Executor, table: RouteTable) -> None:
        self.gateway = gateway
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw: bytes = scope.get("raw_path") or scope["path"].encode()
        path = raw.decode("utf-8", "replace")
        if path.startswith(PREFIX):
            path = path[len(PREFIX):]
        if len(path) > 1 and path.endswith("/"):
            path = path[:-1]
        instance = PREFIX + path
        method: str = scope["method"]
        if method == "HEAD":
            method = "GET"
        found = self.table.match(method, path)
        if found is None:
            allowed = self.table.allowed_methods(path)
            if allowed:
                await send_problem(send, 405, "method_not_allowed",
                                   f"{scope['method']} is not allowed on {instance}",
                                   instance=instance,
                                   headers=[(b"allow", ", ".join(allowed).encode())])
            else:
                await send_problem(send, 404, "not_found", f"no REST route {instance}", instance=instance)
            return
        route, match = found
        try:
            await self._handle(scope, receive, send, route, match)
        except _Disconnected:
            return
        except _TooLarge:
            await send_problem(send, 413, "payload_too_large",
                               f"request body exceeds {MAX_BODY} bytes", instance=instance)
        except MosaicError as exc:
            await send_error(send, exc, instance)
        except Exception:
            ref = uuid.uuid4().hex[:12]
            log.exception("internal error %s serving %s %s", ref, method, instance)
            await send_problem(send, 500, "internal_error",
                               f"internal error (reference {ref})", instance=instance,
                               details={"error_id": ref})

    async def _handle(self, scope: Scope, receive: Receive, send: Send, route: Route,
                      match: re.Match[str]) -> None:
        idem: str | None = None
        content_type: bytes | None = None
        request_id: str | None = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                idem = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value
            elif name == b"x-request-id":
                request_id = value.decode("latin-1")

        path_params = route.path_params(match)
        query: bytes = scope.get("query_string", b"")
        if route.method not in ("GET", "DELETE"):
            if query:
                raise InvalidRequest(f"{route.method} {route.openapi_path} takes its parameters in the "
                                     "JSON body, not the query string")
            params = await self._body_params(receive, content_type, route)
            for key in path_params:
                if key in params:
                    raise InvalidRequest(f"{key!r} comes from the URL path, not the body",
                                         details={"fields": [{"field": key, "problem": "given in the path"}]})
            params.update(path_params)
        else:
            params = decode_query(route, query)
            params.update(path_params)

        ctx = context_for(principal_of(scope))
        if route.method != "GET" and idem is not None:
            if not _KEY.match(idem):
                raise InvalidRequest("Idempotency-Key must be 1-255 visible ASCII characters",
                                     details={"fields": [{"field": "Idempotency-Key", "problem": "invalid"}]})
            ctx.idempotency_key = idem
        if request_id is not None and _KEY.match(request_id):
            ctx.trace_id = request_id

        result = await self.gateway.execute(route.op, params, ctx)
        body = _dump(result)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        provider = ctx.meta.get("provider")
        if isinstance(provider, str):
            headers.append((b"x-mosaic-provider", provider.encode()))
        if route.method == "GET":
            next_cursor = getattr(result, "next_cursor", None)
            if isinstance(next_cursor, str):
                headers.append((b"link", _next_link(scope, query, next_cursor)))
        await send({"type": "http.response.start", "status": route.op.rest.status, "headers": headers})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})

    async def _body_params(self, receive: Receive, content_type: bytes | None,
                           route: Route) -> dict[str, Any]:
        raw = await _read_body(receive)
        if not raw.strip():
            return {}
        ct = (content_type or b"").split(b";", 1)[0].strip().lower()
        if not (ct == _JSON_CT[0] or ct.endswith(_JSON_CT[1])):
            raise _UnsupportedMedia(ct.decode("latin-1") or "none")
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidRequest(f"the request body of {route.op.qualified_name} must be a JSON object")
        return data


class _UnsupportedMedia(InvalidRequest):
    code = "unsupported_media_type"
    http_status = 415

    def __init__(self, got: str) -> None:
        super().__init__(f"the request body must be application/json (got {got})")


def _dump(result: BaseModel) -> bytes:
    # The instance's own serializer: the exact class, no re-validation, straight to bytes.
    return result.__pydantic_serializer__.to_json(result)


def _next_link(scope: Scope, query: bytes, cursor: str) -> bytes:
    pairs = [(k, v) for k, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True) if k != "cursor"]
    pairs.append(("cursor", cursor))
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    return b"<" + raw + b"?" + urlencode(pairs).encode() + b'>; rel="next"'
