"""The GraphQL schema, generated from the catalog: reads are queries, writes mutations.

Each operation is one root field named like its MCP tool in camelCase
(``git_get_repository`` → ``gitGetRepository``) whose arguments are the params fields
(camelCase) and whose type is the result model converted by :mod:`.types`. Errors from
the gateway become GraphQL errors with the stable code in ``extensions.code``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from graphql import GraphQLError
from pydantic import BaseModel
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.types.unset import UNSET

from mosaic.catalog.base import Operation
from mosaic.errors import MosaicError
from mosaic.gateway.context import RequestContext
from mosaic.gateway.executor import Executor
from mosaic.interfaces.auth import context_for, principal_of
from mosaic.interfaces.graphql.types import (
    LONG_SCALAR,
    REQUIRED,
    Long,
    TypeRegistry,
    argument_annotation,
    to_plain,
)
from mosaic.interfaces.mcp.tools import describe

MAX_DEPTH = 10
MAX_TOKENS = 5000
MAX_ALIASES = 30
_RESERVED = frozenset({"info", "root", "self", "parent"})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


GATEWAY_KEY = "gateway"


def _context(info: strawberry.Info, op: Operation) -> tuple[Executor, RequestContext]:
    context = info.context if isinstance(info.context, dict) else {}
    gateway = context.get(GATEWAY_KEY)
    if not isinstance(gateway, Executor):
        raise GraphQLError("no gateway in the GraphQL context", extensions={"code": "internal_error"})
    request = context.get("request")
    ctx = context_for(principal_of(request.scope)) if request is not None else RequestContext()
    if request is not None:
        key = request.headers.get("idempotency-key")
        if key and not op.is_read:
            ctx.idempotency_key = key[:255]
    return gateway, ctx


def _resolver(op: Operation) -> Callable[..., Awaitable[BaseModel]]:
    async def resolve(info: strawberry.Info, **kwargs: Any) -> BaseModel:
        params = {k: to_plain(v) for k, v in kwargs.items() if v is not UNSET}
        gateway, ctx = _context(info, op)
        try:
            return await gateway.execute(op, params, ctx)
        except MosaicError as exc:
            extensions: dict[str, Any] = {"code": exc.code, "status": exc.http_status}
            if exc.details:
                extensions["details"] = exc.details
            raise GraphQLError(exc.message, extensions=extensions) from None

    resolve.__name__ = op.tool_name
    return resolve


def _field(op: Operation, registry: TypeRegistry) -> Any:
    registry.service_prefix = op.service
    result_type = registry.object_type(op.result)
    parameters = [inspect.Parameter("info", inspect.Parameter.KEYWORD_ONLY, annotation=strawberry.Info)]
    for fname in op.params.model_fields:
        if fname in _RESERVED:
            raise ValueError(f"{op.qualified_name}: params field {fname!r} clashes with a GraphQL "
                             "resolver argument; rename it in the catalog")
        annotation, default = argument_annotation(registry, op.params, fname)
        parameters.append(inspect.Parameter(
            fname, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
            default=inspect.Parameter.empty if default is REQUIRED else default))
    resolver = _resolver(op)
    resolver.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        parameters, return_annotation=result_type)
    resolver.__annotations__ = {}
    return strawberry.field(resolver=resolver, name=_camel(op.tool_name), description=describe(op))


def _root(name: str, fields: dict[str, Any]) -> Any:
    cls: type = type(name, (), dict(fields))
    cls.__annotations__ = {}
    return strawberry.type(cls, name=name)


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # Typed gateway errors (they carry a code) are answers, not incidents: log the rest only.
        unexpected = [e for e in errors if not (e.extensions and "code" in e.extensions)]
        if unexpected:
            super().process_errors(unexpected, execution_context)


@functools.lru_cache(maxsize=8)
def build_schema(operations: tuple[Operation, ...], *, max_depth: int = MAX_DEPTH,
                 max_tokens: int = MAX_TOKENS, max_aliases: int = MAX_ALIASES) -> strawberry.Schema:
    """The schema for these operations (cached: it holds no state). Resolvers find the
    Gateway in the GraphQL context under ``"gateway"``."""
    registry = TypeRegistry()
    queries: dict[str, Any] = {}
    mutations: dict[str, Any] = {}
    for op in operations:
        (queries if op.is_read else mutations)[op.tool_name] = _field(op, registry)
    return _Schema(
        query=_root("Query", queries),
        mutation=_root("Mutation", mutations) if mutations else None,
        config=StrawberryConfig(scalar_map={Long: LONG_SCALAR}),
        extensions=[
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
        ],
    )
