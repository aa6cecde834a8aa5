"""Typed errors with stable codes.

Every error a client can see is one of these. The ``code`` is part of the public
interface (REST problem bodies, GraphQL ``extensions.code``, MCP tool errors, CLI
exit codes) and must never change once released.
"""

from __future__ import annotations

from typing import Any, ClassVar


class MosaicError(Exception):
    """Base of every error MosAIc reports to a client."""

    code: ClassVar[str] = "internal_error"
    http_status: ClassVar[int] = 500
    exit_code: ClassVar[int] = 1
    # Whether the same request may succeed on another provider or later.
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            body["details"] = self.details
        return body


class InvalidRequest(MosaicError):
    code = "invalid_request"
    http_status = 422
    exit_code = 2


class UnknownOperation(InvalidRequest):
    code = "unknown_operation"
    http_status = 404


class OperationNotSupported(MosaicError):
    """The chosen provider cannot perform this catalog operation at all."""

    code = "operation_not_supported"
    http_status = 501
    exit_code = 3

    def __init__(self, operation: str, provider: str, reason: str | None = None) -> None:
        msg = f"provider {provider!r} does not support {operation}"
        if reason:
            msg += f": {reason}"
        super().__init__(msg, details={"operation": operation, "provider": provider})


class NotFound(MosaicError):
    code = "not_found"
    http_status = 404
    exit_code = 4


class Conflict(MosaicError):
    code = "conflict"
    http_status = 409
    exit_code = 5


class Unauthorized(MosaicError):
    code = "unauthorized"
    http_status = 401
    exit_code = 6


class Forbidden(MosaicError):
    code = "forbidden"
    http_status = 403
    exit_code = 7


class RateLimited(MosaicError):
    code = "rate_limited"
    http_status = 429
    exit_code = 8
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None,
                 details: dict[str, Any] | None = None) -> None:
        d = dict(details or {})
        if retry_after is not None:
            d["retry_after"] = retry_after
        super().__init__(message, details=d)
        self.retry_after = retry_after


class ProviderUnavailable(MosaicError):
    code = "provider_unavailable"
    http_status = 503
    exit_code = 9
    retryable = True

    def __init__(self, message: str, *, details: dict[str, Any] | None = None,
                 sent: bool = True) -> None:
        super().__init__(message, details=details)
        # False when the failure proves the request never reached the provider
        # (connection refused, DNS, TLS before send): even a non-idempotent write
        # may then move to another candidate.
        self.sent = sent


class Timeout(ProviderUnavailable):
    code = "timeout"
    http_status = 504


class ConfigError(MosaicError):
    code = "config_error"
    http_status = 500
    exit_code = 10

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) if len(problems) == 1 else
                         f"{len(problems)} configuration problems:\n" + "\n".join(problems))
        self.problems = problems


class PluginError(MosaicError):
    code = "plugin_error"
    exit_code = 11


ERRORS_BY_CODE: dict[str, type[MosaicError]] = {
    cls.code: cls
    for cls in (MosaicError, InvalidRequest, UnknownOperation, OperationNotSupported, NotFound,
                Conflict, Unauthorized, Forbidden, RateLimited, ProviderUnavailable, Timeout,
                ConfigError, PluginError)
}
