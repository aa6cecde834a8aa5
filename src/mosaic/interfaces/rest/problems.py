"""Errors as ``application/problem+json`` (RFC 9457) carrying MosAIc's stable error code.

Every problem body has the RFC's members (``type``, ``title``, ``status``, ``detail``,
``instance``) plus the extension members ``code`` (the stable code from
:mod:`mosaic.errors`) and ``details`` (structured facts such as the bad fields).
"""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Any

import orjson
from starlette.types import Send

from mosaic.errors import MosaicError, RateLimited

PROBLEM_TYPE_PREFIX = "urn:mosaic:problem:"
PROBLEM_CONTENT_TYPE = b"application/problem+json"

# JSON schema of a problem body, shared by the OpenAPI document and the tests.
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457). `code` is stable and never changes meaning.",
    "properties": {
        "type": {"type": "string", "description": "URI naming the kind of problem."},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "What went wrong, for a human."},
        "instance": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "details": {"type": "object", "additionalProperties": True},
    },
    "required": ["type", "title", "status", "code"],
    "additionalProperties": True,
}


def problem_body(status: int, code: str, detail: str, *, instance: str | None = None,
                 details: dict[str, Any] | None = None) -> bytes:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance is not None:
        body["instance"] = instance
    if details:
        body["details"] = details
    return orjson.dumps(body, default=str)


async def send_problem(send: Send, status: int, code: str, detail: str, *, instance: str | None = None,
                       details: dict[str, Any] | None = None,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = problem_body(status, code, detail, instance=instance, details=details)
    out = [(b"content-type", PROBLEM_CONTENT_TYPE), (b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, exc: MosaicError, instance: str | None = None) -> None:
    extra: list[tuple[bytes, bytes]] = []
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        extra.append((b"retry-after", str(max(0, math.ceil(exc.retry_after))).encode()))
    await send_problem(send, exc.http_status, exc.code, exc.message, instance=instance,
                       details=exc.details or None, headers=extra)
