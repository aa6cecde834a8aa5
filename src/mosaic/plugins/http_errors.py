"""HTTP failures → MosAIc's typed errors.

Messages carry the vendor's own explanation (``message``, ``error``, ``errors``...) so a caller
learns *why*, plus method, path and status. They never carry request headers, query strings or
bodies: those are where credentials live.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import orjson

from mosaic.errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    MosaicError,
    NotFound,
    ProviderUnavailable,
    RateLimited,
    Timeout,
    Unauthorized,
)
from mosaic.plugins.http_ratelimit import RateLimitState
from mosaic.plugins.http_transport import never_sent

MAX_MESSAGE = 500


def _text(value: Any) -> str | None:
    """Flatten the many shapes vendors use for an error message into one line."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        parts = [t for t in (_text(v) for v in value) if t]
        return "; ".join(parts) or None
    if isinstance(value, dict):
        for key in ("message", "error_description", "error", "detail", "title", "msg"):
            found = _text(value.get(key))
            if found:
                return found
        # GitLab validation errors: {"message": {"name": ["has already been taken"]}}
        parts = [f"{k} {t}" for k, v in value.items() if (t := _text(v))]
        return "; ".join(parts) or None
    return str(value)


def vendor_message(response: httpx.Response) -> str:
    """The vendor's explanation of an error response (JSON ``message`` etc., else the text)."""
    body: Any = None
    content = response.content
    if content:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
    message: str | None = None
    if isinstance(body, dict):
        message = _text({k: body[k] for k in ("message", "error_description", "error", "detail",
                                               "title", "msg") if k in body})
        extra = _text(body.get("errors"))
        if extra and extra != message:
            message = f"{message}: {extra}" if message else extra
    elif body is not None:
        message = _text(body)
    if not message and content and "html" not in response.headers.get("content-type", ""):
        message = content.decode("utf-8", "replace").strip()
    message = " ".join((message or response.reason_phrase or "").split())
    return message[:MAX_MESSAGE] + ("…" if len(message) > MAX_MESSAGE else "")


def error_for_response(response: httpx.Response, *, plugin_id: str, method: str, path: str,
                       rate: RateLimitState | None, now: float) -> MosaicError:
    """Typed error for a non-success response."""
    status = response.status_code
    message = vendor_message(response)
    text = f"{plugin_id}: {method} {path} returned {status}" + (f": {message}" if message else "")
    details: dict[str, Any] = {"provider": plugin_id, "status": status, "method": method, "path": path}
    wait = rate.wait_seconds(now) if rate is not None else None

    if status == 429 or (status == 403 and rate is not None
                         and (rate.exhausted or rate.retry_after is not None)):
        return RateLimited(text, retry_after=wait, details=details)
    if status == 401:
        return Unauthorized(text, details=details)
    if status == 403:
        return Forbidden(text, details=details)
    if status in (404, 410):
        return NotFound(text, details=details)
    if status in (409, 412, 423):
        # 412: a precondition (If-Match, expected sha) no longer holds; 423: the resource is locked
        # (e.g. an archived repository) — both are conflicts with the resource's current state.
        return Conflict(text, details=details)
    if status in (408, 504):
        return Timeout(text, details=details)
    if status >= 500:
        return ProviderUnavailable(text, details=details)
    return InvalidRequest(text, details=details)


def _is_tls_verification(exc: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def error_for_transport(exc: httpx.TransportError, *, plugin_id: str, method: str,
                        path: str) -> ProviderUnavailable:
    """Typed error for a request that got no HTTP response."""
    details: dict[str, Any] = {"provider": plugin_id, "method": method, "path": path}
    where = f"{plugin_id}: {method} {path}"
    reason = str(exc) or type(exc).__name__
    not_sent = never_sent(exc)
    if not_sent and _is_tls_verification(exc):
        return ProviderUnavailable(
            f"{where}: TLS certificate verification failed ({reason}); if the server uses a private "
            "CA or a self-signed certificate, point ssl.cert at its CA bundle",
            details={**details, "reason": "tls_verification"}, sent=False)
    if not_sent:
        # Nothing was sent: the connection was never established (or never handed to us).
        return ProviderUnavailable(f"{where}: could not connect: {reason}", details=details, sent=False)
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        return Timeout(f"{where}: timed out waiting for the provider", details=details)
    return ProviderUnavailable(f"{where}: {type(exc).__name__}: {reason}", details=details)
